#include "mipin/model/network.h"

#include <torch/torch.h>

#include <cstring>
#include <iomanip>
#include <optional>

#include "mipin/model/convolution.h"
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

Network::Network(const Network& other)
    : module_kernels_(other.module_kernels_), inputs_(other.inputs_), input_shape_(other.input_shape_) {
  for (const auto& layer : other.layers_) layers_.push_back(layer->clone());
  if (other.module_form_) module_form_ = std::make_shared<Network>(*other.module_form_);
}

void Network::set_module_form(Network original) {
  if (original.module_form_) {
    module_form_ = std::move(original.module_form_);  // the first form is the module's
    return;
  }
  original.module_kernels_ = true;
  module_form_ = std::make_shared<Network>(std::move(original));
}

Network& Network::operator=(const Network& other) {
  if (this != &other) {
    Network copy(other);
    *this = std::move(copy);
  }
  return *this;
}

size_t Network::add(std::unique_ptr<Layer> layer, std::vector<size_t> inputs) {
  const size_t node = layers_.size();
  if (inputs.empty()) inputs.push_back(node);
  const size_t arity = layer->arity();
  MIPIN_CHECK(arity == 0 ? inputs.size() >= 2 : inputs.size() == arity, layer->describe(), " takes ",
              arity == 0 ? std::string("two or more inputs") : std::to_string(arity) + " input(s)", ", found ",
              inputs.size());
  for (size_t v : inputs) {
    MIPIN_CHECK(v <= node, "node ", node, " (", layer->describe(), ") reads value ", v,
                ", which no earlier node computes (values 0 to ", node, " exist)");
  }
  layers_.push_back(std::move(layer));
  inputs_.push_back(std::move(inputs));
  module_form_.reset();
  return node + 1;
}

void Network::erase(size_t position) {
  MIPIN_CHECK(position < layers_.size(), "cannot remove layer ", position, " of a network with ",
              layers_.size(), " layers");
  MIPIN_CHECK(inputs_[position].size() == 1, "cannot remove node ", position, " (",
              layers_[position]->describe(), "): it reads ", inputs_[position].size(), " values");
  const size_t replaced = position + 1, by = inputs_[position][0];
  layers_.erase(layers_.begin() + static_cast<std::ptrdiff_t>(position));
  module_form_.reset();
  inputs_.erase(inputs_.begin() + static_cast<std::ptrdiff_t>(position));
  for (auto& node : inputs_) {
    for (size_t& v : node) v = v == replaced ? by : v > replaced ? v - 1 : v;
  }
}

std::vector<size_t> Network::reader_nodes(size_t v) const {
  std::vector<size_t> out;
  for (size_t i = v; i < inputs_.size(); ++i) {
    for (size_t u : inputs_[i]) {
      if (u == v) out.push_back(i);
    }
  }
  return out;
}

bool Network::is_chain() const {
  for (size_t i = 0; i < inputs_.size(); ++i) {
    if (inputs_[i].size() != 1 || inputs_[i][0] != i) return false;
  }
  return true;
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
  // float64 serves exact checks (a network converted with to_double).
  MIPIN_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, "expected float32 inputs, found ",
              c10::toString(x.scalar_type()));
}

at::Tensor Network::forward(const at::Tensor& x, ForwardRecord* record) const {
  check_input(x);
  std::optional<ModuleConvolutions> module_kernels;
  if (module_kernels_) module_kernels.emplace();
  if (record) {
    record->layers.clear();
    record->layers.resize(layers_.size());
    record->input = x;
  }
  if (is_chain()) {
    at::Tensor h = x;
    bool h_non_negative = false;  // the network's input may be anything
    for (size_t i = 0; i < layers_.size(); ++i) {
      LayerRecord* r = record ? &record->layers[i] : nullptr;
      if (r) {
        r->input = h;
        r->input_non_negative = h_non_negative;
        h_non_negative = layers_[i]->output_non_negative({h_non_negative});
      }
      h = layers_[i]->forward(h, r);
      if (r) r->output = h;
    }
    if (record) record->logits = h;
    return h;
  }
  // A value is kept until its last reader has run (all of them with a record).
  std::vector<at::Tensor> values(layers_.size() + 1);
  std::vector<size_t> last_reader(layers_.size() + 1, 0);
  for (size_t i = 0; i < layers_.size(); ++i) {
    for (size_t v : inputs_[i]) last_reader[v] = i;
  }
  values[0] = x;
  std::vector<bool> non_negative(record ? layers_.size() + 1 : 0, false);
  for (size_t i = 0; i < layers_.size(); ++i) {
    LayerRecord* r = record ? &record->layers[i] : nullptr;
    std::vector<at::Tensor> in;
    in.reserve(inputs_[i].size());
    for (size_t v : inputs_[i]) in.push_back(values[v]);
    if (r) {
      r->input = in[0];
      if (in.size() > 1) r->inputs = in;
      std::vector<bool> in_non_negative;
      for (size_t v : inputs_[i]) in_non_negative.push_back(non_negative[v]);
      r->input_non_negative = Layer::all_non_negative(in_non_negative);
      non_negative[i + 1] = layers_[i]->output_non_negative(in_non_negative);
    }
    values[i + 1] = layers_[i]->forward_of(in, r);
    if (r) r->output = values[i + 1];
    if (!record) {
      for (size_t v : inputs_[i]) {
        if (last_reader[v] == i) values[v] = at::Tensor();
      }
    }
  }
  if (record) record->logits = values.back();
  return values.back();
}

std::vector<std::vector<int64_t>> Network::shapes(const std::vector<int64_t>& input_shape) const {
  std::vector<std::vector<int64_t>> out{input_shape};
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::vector<Shape> in;
    for (size_t v : inputs_[i]) in.push_back(out[v]);
    try {
      out.push_back(layers_[i]->output_shape_of(in));
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

void Network::to(at::ScalarType type) {
  for (auto& layer : layers_) {
    for (auto& t : layer->tensors()) {
      // set_data swaps the storage under every handle of this tensor,
      // the layer's own member included.
      if (t.tensor.defined() && t.tensor.is_floating_point()) t.tensor.set_data(t.tensor.to(type));
    }
  }
  if (module_form_) module_form_->to(type);
}

void Network::set_training(bool training) {
  for (auto& layer : layers_) layer->set_training(training);
  if (module_form_) module_form_->set_training(training);
}

std::vector<at::Tensor> Network::trainable_parameters() {
  module_form_.reset();  // the weights are about to change
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
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& layer = layers_[i];
    const std::string d = layer->describe();
    mix(d.data(), d.size());
    // The wiring of a graph; a chain's is implied (and its fingerprint the
    // one it had before graphs existed).
    if (inputs_[i] != std::vector<size_t>{i}) {
      for (size_t v : inputs_[i]) {
        const uint64_t id = v;
        mix(&id, sizeof id);
      }
    }
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
