#pragma once
// A layer of a Network: one small, typed unit. Attribution methods dispatch on
// LayerKind to pick a rule per layer type, so adding a method never touches
// the layers.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mipin {

enum class LayerKind {
  Linear,
  Conv2d,
  ReLU,
  MaxPool2d,
  AvgPool2d,
  AdaptiveAvgPool2d,
  Flatten,
  BatchNorm2d,
  Dropout,
  // Graph nodes (residual, branching and gated networks).
  Add,         // v = a + b (+ ...): residual connections
  Concat,      // v = cat(a, b, ...) along the channel/feature axis
  Mul,         // v = a * g, g a gate computed in the network (squeeze-and-excitation)
  Activation,  // an element-wise function other than ReLU (model/activations.h)
  Reshape,     // a view to another per-example shape
  // Any other op of a TorchScript graph, run as TorchScript runs it
  // (torchscript/torch_op.h); methods without a rule for it take
  // autograd's vector-Jacobian product of it (the fallback).
  Op,
};

std::string to_string(LayerKind kind);

// What one layer's forward pass leaves behind for attribution: its input
// (ReLU gates are input > 0) and, for max pooling, the argmax switches.
// A node that combines several values (Add, Concat, Mul) keeps them all in
// `inputs`; `input` is the first of them.
struct LayerRecord {
  at::Tensor input;
  at::Tensor output;
  at::Tensor switches;
  std::vector<at::Tensor> inputs;
  // Every input is >= 0, known from the graph (a ReLU's output, a pooling
  // of one): rules can skip scanning it for its sign.
  bool input_non_negative = false;
};

using Shape = std::vector<int64_t>;

// A named tensor of a layer ("weight", "bias", "running_mean", ...). The
// handle shares storage with the layer's own tensor.
struct NamedTensor {
  std::string name;
  at::Tensor tensor;
  bool trainable;
};

// Most layers read one value; a combining node (Add, Concat, Mul) reads two
// or more and overrides the *_of variants, which the graph calls.
class Layer {
 public:
  virtual ~Layer() = default;
  virtual LayerKind kind() const = 0;
  // How many values the layer reads; 0 means two or more.
  virtual size_t arity() const { return 1; }

  // record may be null; when given, the layer fills switches (max pooling).
  virtual at::Tensor forward(const at::Tensor& x, LayerRecord* record) const;
  // Output shape for one example (no batch axis); throws mipin::Error with
  // the expected input when the shape does not fit.
  virtual Shape output_shape(const Shape& input_shape) const;
  // One line, PyTorch style: "Conv2d(1, 32, kernel=3x3, stride=1, padding=1)".
  virtual std::string describe() const = 0;
  // TorchScript expression computing this layer from variable `x`, with its
  // tensors bound as module attributes named attribute_prefix + name.
  virtual std::string torchscript(const std::string& x, const std::string& attribute_prefix) const;

  // The same for every input of a graph node, in the node's input order.
  virtual at::Tensor forward_of(const std::vector<at::Tensor>& inputs, LayerRecord* record) const;
  virtual Shape output_shape_of(const std::vector<Shape>& input_shapes) const;
  virtual std::string torchscript_of(const std::vector<std::string>& inputs,
                                     const std::string& attribute_prefix) const;

  virtual std::unique_ptr<Layer> clone() const = 0;
  virtual std::vector<NamedTensor> tensors() const { return {}; }
  // The op an Op node runs ("aten::layer_norm"), by which composites give
  // it a rule; empty for mipin's own layer kinds.
  virtual std::string op() const { return {}; }
  // An Op node that only moves values (transpose, select, reshape, cat,
  // ...): its vector-Jacobian product is every method's rule.
  virtual bool only_moves_values() const { return false; }

  // Whether the output is never negative, given which inputs are not: a
  // ReLU's never is whatever its input; a max, mean, sum or rearrangement
  // of non-negative values is not either.
  virtual bool output_non_negative(const std::vector<bool>& inputs_non_negative) const {
    (void)inputs_non_negative;
    return false;
  }
  // Each of them is (the answer of layers that only select, average, add or
  // rearrange their inputs).
  static bool all_non_negative(const std::vector<bool>& inputs) {
    for (bool b : inputs) {
      if (!b) return false;
    }
    return !inputs.empty();
  }

  std::vector<at::Tensor> trainable_parameters() const;
  int64_t parameter_count() const;
  // Training mode matters for BatchNorm (batch statistics) and Dropout.
  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }

 protected:
  bool training_ = false;
};

}  // namespace mipin
