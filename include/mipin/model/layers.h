#pragma once
// The layer types a Network can hold. Each is a plain struct of its
// hyper-parameters and tensors; the forward pass is LibTorch's own op.
#include <array>

#include "mipin/model/layer.h"

namespace mipin {

using Pair = std::array<int64_t, 2>;

// Which kernels a transposed convolution may take. Winograd's algorithm
// (3x3 unit-stride layers with enough positions) takes a half to a third of
// the direct kernels' time, but its rounding error is relative to the
// largest value in each tile of the output rather than to each output's own
// terms. Sensitivities and linear images of a signal (the gradient and its
// relatives, MIP-IN's inverse, PatternNet) may take it; quotients may not:
// LRP's near-zero denominators put huge values beside small ones, and the
// rounding error of a huge value would land on its neighbours.
enum class TransposeKernels { direct_only, fastest };

// A layer y = W x + b, linear in its input and in its weight: Linear and
// Conv2d. Methods that put another weight in W's place (LRP's positive
// part, PatternNet's pattern, MIP-IN's fitted operator, a re-initialised
// weight) go through these maps and never ask which of the two it is.
struct AffineLayer : Layer {
  at::Tensor weight;  // Linear: [out, in]; Conv2d: [out, in / groups, kh, kw]
  at::Tensor bias;    // [out] or undefined

  // The layer's map with `weight` (of this layer's weight shape) in place
  // of its own, plus `bias` where defined. Direct kernels: forward outputs
  // decide ReLU masks and max-pooling winners (model/convolution.h).
  virtual at::Tensor map(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {}) const = 0;
  // The transpose of x -> map(x, weight) applied to `signal`, sized like
  // `input`, the layer's recorded input (a strided convolution's output
  // does not fix its input's size).
  virtual at::Tensor transposed_map(const at::Tensor& weight, const at::Tensor& signal, const at::Tensor& input,
                                    TransposeKernels kernels = TransposeKernels::direct_only) const = 0;
  // The rows of input the map reads, one per output position and group:
  // [rows, groups, inputs per group]. Output unit j reads group
  // j / (units / groups); its bias-free output at a row is that group's
  // row times its weight row (weight.flatten(1)[j]).
  virtual at::Tensor patch_rows(const at::Tensor& input) const = 0;
  // Each output unit reads one of this many groups of inputs.
  virtual int64_t weight_groups() const { return 1; }
  // Output units (features or channels).
  int64_t units() const { return weight.size(0); }
  // Taps per output unit: 1 for Linear, the kernel's area for Conv2d.
  int64_t taps() const { return weight.dim() > 2 ? weight[0][0].numel() : 1; }
  // A per-unit vector [units] shaped to broadcast against the weight.
  at::Tensor per_unit(const at::Tensor& values) const;
  std::vector<NamedTensor> tensors() const override;
};

// The affine view of a layer, or null when it is not one.
const AffineLayer* as_affine(const Layer& layer);
AffineLayer* as_affine(Layer& layer);
// The kinds that are affine layers, for composites that give them all one rule.
std::vector<LayerKind> affine_kinds();

struct Linear final : AffineLayer {
  LayerKind kind() const override { return LayerKind::Linear; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override;
  at::Tensor map(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {}) const override;
  at::Tensor transposed_map(const at::Tensor& weight, const at::Tensor& signal, const at::Tensor& input,
                            TransposeKernels kernels = TransposeKernels::direct_only) const override;
  at::Tensor patch_rows(const at::Tensor& input) const override;
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
};

struct Conv2d final : AffineLayer {
  Pair stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
  LayerKind kind() const override { return LayerKind::Conv2d; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override;
  at::Tensor map(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {}) const override;
  at::Tensor transposed_map(const at::Tensor& weight, const at::Tensor& signal, const at::Tensor& input,
                            TransposeKernels kernels = TransposeKernels::direct_only) const override;
  at::Tensor patch_rows(const at::Tensor& input) const override;
  int64_t weight_groups() const override { return groups; }
  int64_t in_channels() const { return weight.size(1) * groups; }
  int64_t out_channels() const { return weight.size(0); }
};

struct ReLU final : Layer {
  LayerKind kind() const override { return LayerKind::ReLU; }
  bool output_non_negative(const std::vector<bool>&) const override { return true; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override { return in; }
  std::string describe() const override { return "ReLU()"; }
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<ReLU>(*this); }
};

struct MaxPool2d final : Layer {
  Pair kernel{2, 2}, stride{2, 2}, padding{0, 0}, dilation{1, 1};
  bool ceil_mode = false;
  // 2x2 windows, stride 2, no padding or dilation, floor mode (max_pool_2x2.h).
  bool is_2x2() const;
  LayerKind kind() const override { return LayerKind::MaxPool2d; }
  bool output_non_negative(const std::vector<bool>& in) const override { return all_non_negative(in); }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<MaxPool2d>(*this); }
};

struct AvgPool2d final : Layer {
  Pair kernel{2, 2}, stride{2, 2}, padding{0, 0};
  bool ceil_mode = false;
  bool count_include_pad = true;
  LayerKind kind() const override { return LayerKind::AvgPool2d; }
  bool output_non_negative(const std::vector<bool>& in) const override { return all_non_negative(in); }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<AvgPool2d>(*this); }
};

struct AdaptiveAvgPool2d final : Layer {
  Pair output_size{1, 1};
  LayerKind kind() const override { return LayerKind::AdaptiveAvgPool2d; }
  bool output_non_negative(const std::vector<bool>& in) const override { return all_non_negative(in); }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override {
    return std::make_unique<AdaptiveAvgPool2d>(*this);
  }
};

// Flattens every axis after the batch axis.
struct Flatten final : Layer {
  LayerKind kind() const override { return LayerKind::Flatten; }
  bool output_non_negative(const std::vector<bool>& in) const override { return all_non_negative(in); }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override { return "Flatten()"; }
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<Flatten>(*this); }
};

struct BatchNorm2d final : Layer {
  at::Tensor weight, bias, running_mean, running_var;  // [C]
  double eps = 1e-5;
  double momentum = 0.1;
  LayerKind kind() const override { return LayerKind::BatchNorm2d; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override;
  std::vector<NamedTensor> tensors() const override;
};

// Identity at inference; drops units only while training.
struct Dropout final : Layer {
  double p = 0.5;
  LayerKind kind() const override { return LayerKind::Dropout; }
  bool output_non_negative(const std::vector<bool>& in) const override { return all_non_negative(in); }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override { return in; }
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<Dropout>(*this); }
};

// ---- graph nodes ----------------------------------------------------------

// v = a + b (+ ...), inputs of one shape: a residual connection.
struct Add final : Layer {
  LayerKind kind() const override { return LayerKind::Add; }
  bool output_non_negative(const std::vector<bool>& in) const override { return all_non_negative(in); }
  size_t arity() const override { return 0; }
  at::Tensor forward_of(const std::vector<at::Tensor>& inputs, LayerRecord* record) const override;
  Shape output_shape_of(const std::vector<Shape>& in) const override;
  std::string describe() const override { return "Add()"; }
  std::string torchscript_of(const std::vector<std::string>& inputs, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<Add>(*this); }
};

// v = cat(a, b, ...) along `dim` (counted with the batch axis, as aten's
// cat counts it; negative from the end). The batch axis cannot be concatenated.
struct Concat final : Layer {
  int64_t dim = 1;
  LayerKind kind() const override { return LayerKind::Concat; }
  bool output_non_negative(const std::vector<bool>& in) const override { return all_non_negative(in); }
  size_t arity() const override { return 0; }
  at::Tensor forward_of(const std::vector<at::Tensor>& inputs, LayerRecord* record) const override;
  Shape output_shape_of(const std::vector<Shape>& in) const override;
  std::string describe() const override;
  std::string torchscript_of(const std::vector<std::string>& inputs, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<Concat>(*this); }
  // dim as an axis of the batched tensor (0 < axis < rank).
  int64_t axis(int64_t rank) const;
};

// v = a * g: a value times a gate computed in the network from it
// (squeeze-and-excitation's channel weights, broadcast over H and W).
struct Mul final : Layer {
  // Which input is the gate: known from the graph (the input a sigmoid-like
  // activation computed) or, when -1, the one that broadcasts.
  int gate = -1;
  LayerKind kind() const override { return LayerKind::Mul; }
  bool output_non_negative(const std::vector<bool>& in) const override { return all_non_negative(in); }
  size_t arity() const override { return 2; }
  at::Tensor forward_of(const std::vector<at::Tensor>& inputs, LayerRecord* record) const override;
  Shape output_shape_of(const std::vector<Shape>& in) const override;
  std::string describe() const override;
  std::string torchscript_of(const std::vector<std::string>& inputs, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<Mul>(*this); }
  // The gate's position among the recorded inputs.
  size_t gate_index(const std::vector<Shape>& input_shapes) const;
  size_t gate_index(const LayerRecord& record) const;
};

// An element-wise function other than ReLU, by name from the table in
// model/activations.h ("silu", "hardtanh", ...), with its scalar parameters
// in the order that table gives.
struct Activation final : Layer {
  std::string function;
  std::vector<double> parameters;
  LayerKind kind() const override { return LayerKind::Activation; }
  bool output_non_negative(const std::vector<bool>& in) const override;
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  Shape output_shape(const Shape& in) const override { return in; }
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<Activation>(*this); }
};

// A view to another per-example shape. Each entry of `shape` is a size, -1
// (inferred, at most once) or input_dim(k): the input's axis k (k >= 1),
// as x.view(x.size(0), x.size(1), -1) reads it.
struct Reshape final : Layer {
  std::vector<int64_t> shape;
  static constexpr int64_t input_dim(int64_t k) { return -2 - k; }
  LayerKind kind() const override { return LayerKind::Reshape; }
  bool output_non_negative(const std::vector<bool>& in) const override { return all_non_negative(in); }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  Shape output_shape(const Shape& in) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<Reshape>(*this); }
};

}  // namespace mipin
