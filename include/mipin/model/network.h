#pragma once
// A Network is a graph of layers (nodes) in topological order; a chain,
// x^l = phi_l(x^{l-1}), is the simplest graph. Values are numbered: value 0
// is the network input and value i + 1 the output of node i, so in a chain
// node l reads value l. The last node's output is the network's output.
// Its forward pass can record what attribution needs at every node.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "mipin/model/layer.h"

namespace mipin {

struct ForwardRecord {
  std::vector<LayerRecord> layers;  // layers[l].input is x^{l}, .output x^{l+1}
  at::Tensor input;
  at::Tensor logits;
  // Value v: the input (v = 0) or node v - 1's output.
  const at::Tensor& value(size_t v) const { return v == 0 ? input : layers.at(v - 1).output; }
};

class Network {
 public:
  Network() = default;
  Network(const Network& other);             // deep copy: tensors are cloned
  Network& operator=(const Network& other);
  Network(Network&&) = default;
  Network& operator=(Network&&) = default;

  // Appends a node and returns it. Without inputs it reads the last value
  // (a chain); otherwise the values it reads, each an earlier one.
  template <typename L, typename = std::enable_if_t<std::is_base_of_v<Layer, L>>>
  L& add(L layer, std::vector<size_t> inputs = {}) {
    auto owned = std::make_unique<L>(std::move(layer));
    L& ref = *owned;
    add(std::unique_ptr<Layer>(std::move(owned)), std::move(inputs));
    return ref;
  }
  // Returns the value the new node outputs.
  size_t add(std::unique_ptr<Layer> layer, std::vector<size_t> inputs = {});
  // Removes a single-input node; the nodes that read its output read its input.
  void erase(size_t position);

  size_t size() const { return layers_.size(); }
  bool empty() const { return layers_.empty(); }
  Layer& layer(size_t i) { return *layers_.at(i); }
  const Layer& layer(size_t i) const { return *layers_.at(i); }
  // The values node i reads, in its input order.
  const std::vector<size_t>& inputs(size_t i) const { return inputs_.at(i); }
  // The nodes that read value v, in order (a node reading it twice, twice).
  std::vector<size_t> reader_nodes(size_t v) const;
  // How many times value v is read (the output value once more, by the caller).
  size_t readers(size_t v) const { return reader_nodes(v).size() + (v == layers_.size() ? 1 : 0); }
  // Every node reads only the value before it.
  bool is_chain() const;

  // x: [N, ...input_shape]. Checks the input shape when it is known.
  at::Tensor forward(const at::Tensor& x, ForwardRecord* record = nullptr) const;

  // Shape of one example of every value: [input, after node 0, ...].
  // Throws mipin::Error naming the first layer the shape does not fit.
  std::vector<std::vector<int64_t>> shapes(const std::vector<int64_t>& input_shape) const;

  // Per-example input shape ([C, H, W] or [features]); empty when unknown.
  const std::vector<int64_t>& input_shape() const { return input_shape_; }
  void set_input_shape(std::vector<int64_t> shape);
  // Throws mipin::Error when x does not fit the known input shape.
  void check_input(const at::Tensor& x) const;

  int64_t num_classes() const;  // output width of the final layer
  // Converts every weight: float64 makes exact checks against autograd
  // possible where float32 rounding would flip a ReLU at its kink.
  void to(at::ScalarType type);
  void set_training(bool training);
  std::vector<at::Tensor> trainable_parameters();
  int64_t parameter_count() const;
  // Hash of the layer list and every tensor's values: identifies a model.
  std::string fingerprint() const;

  // The network as the TorchScript module computes it, where a canonizer
  // rewrote this one (BatchNorm folded into the convolutions): the module's
  // own layers, run on LibTorch's convolution kernels, so that its float32
  // forward pass is the module's to the bit and a ReLU input within
  // rounding of its kink falls on the module's side of it. Itself where
  // nothing was rewritten. Methods that need no canonical form (the
  // gradient and the methods built on it) explain this one, and so equal
  // float32 autograd of the module (`mipin check` shows the difference).
  const Network& as_module() const { return module_form_ ? *module_form_ : *this; }
  // Keeps `original`, this network before a rewrite, as its module form.
  void set_module_form(Network original);

 private:
  // Deep-copied with the network; dropped when nodes are added or removed,
  // or weights handed out for training.
  std::shared_ptr<Network> module_form_;
  bool module_kernels_ = false;  // this is a module form
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::vector<size_t>> inputs_;
  std::vector<int64_t> input_shape_;
};

std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace mipin
