#pragma once
// A Network is a chain of layers, x^l = phi_l(x^{l-1}). Its forward pass can
// record what attribution needs at every layer.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mipin/model/layer.h"

namespace mipin {

struct ForwardRecord {
  std::vector<LayerRecord> layers;  // layers[l].input is x^{l}, .output x^{l+1}
  at::Tensor logits;
};

class Network {
 public:
  Network() = default;
  Network(const Network& other);             // deep copy: tensors are cloned
  Network& operator=(const Network& other);
  Network(Network&&) = default;
  Network& operator=(Network&&) = default;

  // Appends a layer and returns it, for chained construction.
  template <typename L>
  L& add(L layer) {
    auto owned = std::make_unique<L>(std::move(layer));
    L& ref = *owned;
    layers_.push_back(std::move(owned));
    return ref;
  }
  void add(std::unique_ptr<Layer> layer) { layers_.push_back(std::move(layer)); }
  void insert(size_t position, std::unique_ptr<Layer> layer);
  void erase(size_t position);

  size_t size() const { return layers_.size(); }
  bool empty() const { return layers_.empty(); }
  Layer& layer(size_t i) { return *layers_.at(i); }
  const Layer& layer(size_t i) const { return *layers_.at(i); }

  // x: [N, ...input_shape]. Checks the input shape when it is known.
  at::Tensor forward(const at::Tensor& x, ForwardRecord* record = nullptr) const;

  // Shape of one example at every layer boundary: [input, after layer 0, ...].
  // Throws mipin::Error naming the first layer the shape does not fit.
  std::vector<std::vector<int64_t>> shapes(const std::vector<int64_t>& input_shape) const;

  // Per-example input shape ([C, H, W] or [features]); empty when unknown.
  const std::vector<int64_t>& input_shape() const { return input_shape_; }
  void set_input_shape(std::vector<int64_t> shape);
  // Throws mipin::Error when x does not fit the known input shape.
  void check_input(const at::Tensor& x) const;

  int64_t num_classes() const;  // output width of the final layer
  void set_training(bool training);
  std::vector<at::Tensor> trainable_parameters();
  int64_t parameter_count() const;
  // Hash of the layer list and every tensor's values: identifies a model.
  std::string fingerprint() const;

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<int64_t> input_shape_;
};

std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace mipin
