#include "mipin/model/network.h"

#include <torch/torch.h>

#include <cstring>
#include <iomanip>

#include "mipin/model/layers.h"
#include "mipin/util/error.h"

namespace mipin {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Network::Network(const Network& other) : input_shape_(other.input_shape_) {
  for (const auto& layer : other.layers_) layers_.push_back(layer->clone());
}

Network& Network::operator=(const Network& other) {
  if (this != &other) {
    Network copy(other);
    *this = std::move(copy);
  }
  return *this;
}

void Network::insert(size_t position, std::unique_ptr<Layer> layer) {
  MIPIN_CHECK(position <= layers_.size(), "cannot insert a layer at position ", position,
              " of a network with ", layers_.size(), " layers");
  layers_.insert(layers_.begin() + static_cast<std::ptrdiff_t>(position), std::move(layer));
}

void Network::erase(size_t position) {
  MIPIN_CHECK(position < layers_.size(), "cannot remove layer ", position, " of a network with ",
              layers_.size(), " layers");
  layers_.erase(layers_.begin() + static_cast<std::ptrdiff_t>(position));
}

void Network::set_input_shape(std::vector<int64_t> shape) {
  if (!shape.empty()) shapes(shape);  // validates that every layer takes it
  input_shape_ = std::move(shape);
}

void Network::check_input(const at::Tensor& x) const {
  MIPIN_CHECK(x.dim() >= 2, "expected a batch of inputs [N, ...], found a tensor of shape ",
              shape_string(x.sizes().vec()));
  const std::vector<int64_t> got(x.sizes().begin() + 1, x.sizes().end());
  if (!input_shape_.empty()) {
    MIPIN_CHECK(got == input_shape_, "input shape mismatch: the model takes inputs of shape ",
                shape_string(input_shape_), " per example, found ", shape_string(got));
  } else {
    shapes(got);
  }
  MIPIN_CHECK(x.scalar_type() == at::kFloat, "expected float32 inputs, found ",
              c10::toString(x.scalar_type()));
}

at::Tensor Network::forward(const at::Tensor& x, ForwardRecord* record) const {
  check_input(x);
  if (record) {
    record->layers.clear();
    record->layers.resize(layers_.size());
  }
  at::Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    LayerRecord* r = record ? &record->layers[i] : nullptr;
    if (r) r->input = h;
    h = layers_[i]->forward(h, r);
    if (r) r->output = h;
  }
  if (record) record->logits = h;
  return h;
}

std::vector<std::vector<int64_t>> Network::shapes(const std::vector<int64_t>& input_shape) const {
  std::vector<std::vector<int64_t>> out{input_shape};
  for (size_t i = 0; i < layers_.size(); ++i) {
    try {
      out.push_back(layers_[i]->output_shape(out.back()));
    } catch (const Error& e) {
      MIPIN_FAIL("layer ", i, ": ", e.what());
    }
  }
  return out;
}

int64_t Network::num_classes() const {
  MIPIN_CHECK(!layers_.empty(), "the network has no layers");
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
    if ((*it)->kind() == LayerKind::Linear) {
      return static_cast<const Linear&>(**it).out_features();
    }
  }
  MIPIN_CHECK(!input_shape_.empty(), "cannot tell the number of classes: no Linear layer and no known input shape");
  const auto s = shapes(input_shape_).back();
  MIPIN_CHECK(s.size() == 1, "the network's output is not a vector of logits: shape ", shape_string(s));
  return s[0];
}

void Network::set_training(bool training) {
  for (auto& layer : layers_) layer->set_training(training);
}

std::vector<at::Tensor> Network::trainable_parameters() {
  std::vector<at::Tensor> out;
  for (auto& layer : layers_) {
    for (auto& p : layer->trainable_parameters()) out.push_back(p);
  }
  return out;
}

int64_t Network::parameter_count() const {
  int64_t n = 0;
  for (const auto& layer : layers_) n += layer->parameter_count();
  return n;
}

std::string Network::fingerprint() const {
  // FNV-1a, 64 bit, over the layer descriptions and tensor bytes.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 1099511628211ull;
    }
  };
  for (const auto& layer : layers_) {
    const std::string d = layer->describe();
    mix(d.data(), d.size());
    for (auto& t : layer->tensors()) {
      if (!t.tensor.defined()) continue;
      const at::Tensor c = t.tensor.detach().to(at::kFloat).contiguous();
      mix(c.data_ptr(), static_cast<size_t>(c.numel()) * sizeof(float));
    }
  }
  std::ostringstream s;
  s << std::hex << std::setw(16) << std::setfill('0') << h;
  return s.str();
}

}  // namespace mipin
