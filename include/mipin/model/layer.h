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
};

std::string to_string(LayerKind kind);

// What one layer's forward pass leaves behind for attribution: its input
// (ReLU gates are input > 0) and, for max pooling, the argmax switches.
struct LayerRecord {
  at::Tensor input;
  at::Tensor output;
  at::Tensor switches;
};

// A named tensor of a layer ("weight", "bias", "running_mean", ...). The
// handle shares storage with the layer's own tensor.
struct NamedTensor {
  std::string name;
  at::Tensor tensor;
  bool trainable;
};

class Layer {
 public:
  virtual ~Layer() = default;
  virtual LayerKind kind() const = 0;
  // record may be null; when given, the layer fills switches (max pooling).
  virtual at::Tensor forward(const at::Tensor& x, LayerRecord* record) const = 0;
  // Output shape for one example (no batch axis); throws mipin::Error with
  // the expected input when the shape does not fit.
  virtual std::vector<int64_t> output_shape(const std::vector<int64_t>& input_shape) const = 0;
  // One line, PyTorch style: "Conv2d(1, 32, kernel=3x3, stride=1, padding=1)".
  virtual std::string describe() const = 0;
  // TorchScript expression computing this layer from variable `x`, with its
  // tensors bound as module attributes named attribute_prefix + name.
  virtual std::string torchscript(const std::string& x, const std::string& attribute_prefix) const = 0;
  virtual std::unique_ptr<Layer> clone() const = 0;
  virtual std::vector<NamedTensor> tensors() const { return {}; }

  std::vector<at::Tensor> trainable_parameters() const;
  int64_t parameter_count() const;
  // Training mode matters for BatchNorm (batch statistics) and Dropout.
  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }

 protected:
  bool training_ = false;
};

}  // namespace mipin
