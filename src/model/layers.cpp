#include "mipin/model/layers.h"

#include <torch/torch.h>

#include "mipin/model/convolution.h"
#include "model/activations.h"
#include "mipin/model/max_pool_2x2.h"
#include "mipin/model/network.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

std::string pair_string(const Pair& p) {
  return p[0] == p[1] ? std::to_string(p[0]) : std::to_string(p[0]) + "x" + std::to_string(p[1]);
}

std::string script_list(const Pair& p) {
  return "[" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + "]";
}

at::Tensor clone_or_undefined(const at::Tensor& t) {
  return t.defined() ? t.detach().clone().set_requires_grad(t.requires_grad()) : t;
}

// Output length of a sliding window along one axis (PyTorch's formula).
// The window comes from a model file: a zero stride would divide by zero.
int64_t window_output(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation,
                      bool ceil_mode, const std::string& what) {
  MIPIN_CHECK(kernel >= 1 && stride >= 1 && dilation >= 1 && pad >= 0, what,
              " needs a kernel, stride and dilation of at least 1 and no negative padding, found kernel ",
              kernel, ", stride ", stride, ", dilation ", dilation, ", padding ", pad);
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  if (span < 0) return 0;  // the window does not fit even once
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  // With ceil_mode the last window must start inside the input or left padding.
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

void require_chw(const std::vector<int64_t>& in, const std::string& what) {
  MIPIN_CHECK(in.size() == 3, what, " expects an input of shape [C, H, W], found ",
              shape_string(in));
}

std::vector<int64_t> pooled_shape(const std::vector<int64_t>& in, const Pair& kernel,
                                  const Pair& stride, const Pair& padding, const Pair& dilation,
                                  bool ceil_mode, const std::string& what) {
  require_chw(in, what);
  std::vector<int64_t> out{in[0], 0, 0};
  for (int a = 0; a < 2; ++a) {
    out[a + 1] = window_output(in[a + 1], kernel[a], stride[a], padding[a], dilation[a], ceil_mode, what);
    MIPIN_CHECK(out[a + 1] > 0, what, " cannot take an input of shape ", shape_string(in),
                ": the window is larger than the (padded) input");
  }
  return out;
}

}  // namespace

std::string to_string(LayerKind kind) {
  switch (kind) {
    case LayerKind::Linear: return "Linear";
    case LayerKind::Conv2d: return "Conv2d";
    case LayerKind::ReLU: return "ReLU";
    case LayerKind::MaxPool2d: return "MaxPool2d";
    case LayerKind::AvgPool2d: return "AvgPool2d";
    case LayerKind::AdaptiveAvgPool2d: return "AdaptiveAvgPool2d";
    case LayerKind::Flatten: return "Flatten";
    case LayerKind::BatchNorm2d: return "BatchNorm2d";
    case LayerKind::Dropout: return "Dropout";
    case LayerKind::Add: return "Add";
    case LayerKind::Concat: return "Concat";
    case LayerKind::Mul: return "Mul";
    case LayerKind::Activation: return "Activation";
    case LayerKind::Reshape: return "Reshape";
    case LayerKind::Op: return "Op";
  }
  return "?";
}

// ---- Layer: one input by default ------------------------------------------
at::Tensor Layer::forward(const at::Tensor&, LayerRecord*) const {
  MIPIN_FAIL(describe(), " combines several values: call forward_of with all of them");
}

Shape Layer::output_shape(const Shape&) const {
  MIPIN_FAIL(describe(), " combines several values: call output_shape_of with all of them");
}

std::string Layer::torchscript(const std::string&, const std::string&) const {
  MIPIN_FAIL(describe(), " combines several values: call torchscript_of with all of them");
}

at::Tensor Layer::forward_of(const std::vector<at::Tensor>& inputs, LayerRecord* record) const {
  MIPIN_CHECK(inputs.size() == 1, describe(), " takes one input, found ", inputs.size());
  return forward(inputs[0], record);
}

Shape Layer::output_shape_of(const std::vector<Shape>& inputs) const {
  MIPIN_CHECK(inputs.size() == 1, describe(), " takes one input, found ", inputs.size());
  return output_shape(inputs[0]);
}

std::string Layer::torchscript_of(const std::vector<std::string>& inputs, const std::string& prefix) const {
  MIPIN_CHECK(inputs.size() == 1, describe(), " takes one input, found ", inputs.size());
  return torchscript(inputs[0], prefix);
}

std::vector<at::Tensor> Layer::trainable_parameters() const {
  std::vector<at::Tensor> out;
  for (auto& t : tensors()) {
    if (t.trainable && t.tensor.defined()) out.push_back(t.tensor);
  }
  return out;
}

int64_t Layer::parameter_count() const {
  int64_t n = 0;
  for (auto& t : tensors()) {
    if (t.trainable && t.tensor.defined()) n += t.tensor.numel();
  }
  return n;
}

// ---- Linear -------------------------------------------------------------
at::Tensor Linear::forward(const at::Tensor& x, LayerRecord*) const {
  // One example: a matrix-vector product, where BLAS's matrix-matrix path
  // costs about twice as much.
  if (x.dim() == 2 && x.size(0) == 1) {
    return (bias.defined() ? at::addmv(bias, weight, x[0]) : weight.mv(x[0])).unsqueeze(0);
  }
  return torch::linear(x, weight, bias);
}

std::vector<int64_t> Linear::output_shape(const std::vector<int64_t>& in) const {
  // [F], or [..., F]: applied to each position (a token) alike.
  MIPIN_CHECK(!in.empty() && in.back() == in_features(), describe(),
              " expects an input of shape [", in_features(), "] or [..., ", in_features(), "], found ",
              shape_string(in));
  std::vector<int64_t> out = in;
  out.back() = out_features();
  return out;
}

std::string Linear::describe() const {
  return "Linear(" + std::to_string(in_features()) + ", " + std::to_string(out_features()) +
         (bias.defined() ? "" : ", bias=False") + ")";
}

std::string Linear::torchscript(const std::string& x, const std::string& prefix) const {
  return "torch.linear(" + x + ", self." + prefix + "weight, " +
         (bias.defined() ? "self." + prefix + "bias" : "None") + ")";
}

std::unique_ptr<Layer> Linear::clone() const {
  auto copy = std::make_unique<Linear>(*this);
  copy->weight = clone_or_undefined(weight);
  copy->bias = clone_or_undefined(bias);
  return copy;
}


// ---- Conv2d -------------------------------------------------------------
at::Tensor Conv2d::forward(const at::Tensor& x, LayerRecord*) const {
  return convolve(*this, x, weight, bias);
}

std::vector<int64_t> Conv2d::output_shape(const std::vector<int64_t>& in) const {
  require_chw(in, describe());
  MIPIN_CHECK(in[0] == in_channels(), describe(), " expects ", in_channels(),
              " input channels, found an input of shape ", shape_string(in));
  const Pair kernel{weight.size(2), weight.size(3)};
  std::vector<int64_t> out{out_channels(), 0, 0};
  for (int a = 0; a < 2; ++a) {
    out[a + 1] = window_output(in[a + 1], kernel[a], stride[a], padding[a], dilation[a], false, describe());
    MIPIN_CHECK(out[a + 1] > 0, describe(), " cannot take an input of shape ", shape_string(in),
                ": the kernel is larger than the padded input");
  }
  return out;
}

std::string Conv2d::describe() const {
  std::string s = "Conv2d(" + std::to_string(in_channels()) + ", " +
                  std::to_string(out_channels()) + ", kernel=" +
                  pair_string({weight.size(2), weight.size(3)}) + ", stride=" + pair_string(stride) +
                  ", padding=" + pair_string(padding);
  if (dilation != Pair{1, 1}) s += ", dilation=" + pair_string(dilation);
  if (groups != 1) s += ", groups=" + std::to_string(groups);
  if (!bias.defined()) s += ", bias=False";
  return s + ")";
}

std::string Conv2d::torchscript(const std::string& x, const std::string& prefix) const {
  return "torch.conv2d(" + x + ", self." + prefix + "weight, " +
         (bias.defined() ? "self." + prefix + "bias" : "None") + ", " + script_list(stride) +
         ", " + script_list(padding) + ", " + script_list(dilation) + ", " +
         std::to_string(groups) + ")";
}

std::unique_ptr<Layer> Conv2d::clone() const {
  auto copy = std::make_unique<Conv2d>(*this);
  copy->weight = clone_or_undefined(weight);
  copy->bias = clone_or_undefined(bias);
  return copy;
}


// ---- ReLU ---------------------------------------------------------------
at::Tensor ReLU::forward(const at::Tensor& x, LayerRecord*) const { return torch::relu(x); }

std::string ReLU::torchscript(const std::string& x, const std::string&) const {
  return "torch.relu(" + x + ")";
}

// ---- MaxPool2d ----------------------------------------------------------
bool MaxPool2d::is_2x2() const {
  return kernel == Pair{2, 2} && stride == Pair{2, 2} && padding == Pair{0, 0} && dilation == Pair{1, 1} &&
         !ceil_mode;
}

at::Tensor MaxPool2d::forward(const at::Tensor& x, LayerRecord* record) const {
  // The fast loops have no autograd: training takes LibTorch's kernel.
  if (is_2x2() && x.dim() == 4 && x.scalar_type() == at::kFloat && !x.requires_grad()) {
    auto [out, indices] = max_pool_2x2(x, record != nullptr);
    if (record) record->switches = indices;
    return out;
  }
  if (record == nullptr) {
    return torch::max_pool2d(x, kernel, stride, padding, dilation, ceil_mode);
  }
  auto [out, indices] =
      torch::max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil_mode);
  record->switches = indices;
  return out;
}

std::vector<int64_t> MaxPool2d::output_shape(const std::vector<int64_t>& in) const {
  return pooled_shape(in, kernel, stride, padding, dilation, ceil_mode, describe());
}

std::string MaxPool2d::describe() const {
  std::string s = "MaxPool2d(kernel=" + pair_string(kernel) + ", stride=" + pair_string(stride);
  if (padding != Pair{0, 0}) s += ", padding=" + pair_string(padding);
  if (dilation != Pair{1, 1}) s += ", dilation=" + pair_string(dilation);
  if (ceil_mode) s += ", ceil_mode=True";
  return s + ")";
}

std::string MaxPool2d::torchscript(const std::string& x, const std::string&) const {
  return "torch.max_pool2d(" + x + ", " + script_list(kernel) + ", " + script_list(stride) + ", " +
         script_list(padding) + ", " + script_list(dilation) + ", " +
         (ceil_mode ? "True" : "False") + ")";
}

// ---- AvgPool2d ----------------------------------------------------------
at::Tensor AvgPool2d::forward(const at::Tensor& x, LayerRecord*) const {
  return torch::avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad);
}

std::vector<int64_t> AvgPool2d::output_shape(const std::vector<int64_t>& in) const {
  return pooled_shape(in, kernel, stride, padding, {1, 1}, ceil_mode, describe());
}

std::string AvgPool2d::describe() const {
  std::string s = "AvgPool2d(kernel=" + pair_string(kernel) + ", stride=" + pair_string(stride);
  if (padding != Pair{0, 0}) s += ", padding=" + pair_string(padding);
  if (ceil_mode) s += ", ceil_mode=True";
  if (!count_include_pad) s += ", count_include_pad=False";
  return s + ")";
}

std::string AvgPool2d::torchscript(const std::string& x, const std::string&) const {
  return "torch.avg_pool2d(" + x + ", " + script_list(kernel) + ", " + script_list(stride) + ", " +
         script_list(padding) + ", " + (ceil_mode ? "True" : "False") + ", " +
         (count_include_pad ? "True" : "False") + ")";
}

// ---- AdaptiveAvgPool2d --------------------------------------------------
at::Tensor AdaptiveAvgPool2d::forward(const at::Tensor& x, LayerRecord*) const {
  return torch::adaptive_avg_pool2d(x, output_size);
}

std::vector<int64_t> AdaptiveAvgPool2d::output_shape(const std::vector<int64_t>& in) const {
  require_chw(in, describe());
  return {in[0], output_size[0], output_size[1]};
}

std::string AdaptiveAvgPool2d::describe() const {
  return "AdaptiveAvgPool2d(output_size=" + pair_string(output_size) + ")";
}

std::string AdaptiveAvgPool2d::torchscript(const std::string& x, const std::string&) const {
  return "torch.adaptive_avg_pool2d(" + x + ", " + script_list(output_size) + ")";
}

// ---- Flatten ------------------------------------------------------------
at::Tensor Flatten::forward(const at::Tensor& x, LayerRecord*) const { return x.flatten(1); }

std::vector<int64_t> Flatten::output_shape(const std::vector<int64_t>& in) const {
  int64_t n = 1;
  for (auto d : in) n *= d;
  return {n};
}

std::string Flatten::torchscript(const std::string& x, const std::string&) const {
  return "torch.flatten(" + x + ", 1)";
}

// ---- BatchNorm2d --------------------------------------------------------
at::Tensor BatchNorm2d::forward(const at::Tensor& x, LayerRecord*) const {
  return torch::batch_norm(x, weight, bias, running_mean, running_var, training_, momentum, eps,
                           false);
}

std::vector<int64_t> BatchNorm2d::output_shape(const std::vector<int64_t>& in) const {
  // [C, H, W] after a convolution, or [C] after a Linear layer (BatchNorm1d).
  MIPIN_CHECK(in.size() == 3 || in.size() == 1, describe(),
              " expects an input of shape [C, H, W] or [C], found ", shape_string(in));
  MIPIN_CHECK(in[0] == running_mean.size(0), describe(), " expects ", running_mean.size(0),
              " channels, found an input of shape ", shape_string(in));
  return in;
}

std::string BatchNorm2d::describe() const {
  return "BatchNorm2d(" + std::to_string(running_mean.size(0)) + ")";
}

std::string BatchNorm2d::torchscript(const std::string& x, const std::string& prefix) const {
  const std::string p = "self." + prefix;
  return "torch.batch_norm(" + x + ", " + p + "weight, " + p + "bias, " + p + "running_mean, " +
         p + "running_var, False, " + std::to_string(momentum) + ", " + std::to_string(eps) +
         ", False)";
}

std::unique_ptr<Layer> BatchNorm2d::clone() const {
  auto copy = std::make_unique<BatchNorm2d>(*this);
  copy->weight = clone_or_undefined(weight);
  copy->bias = clone_or_undefined(bias);
  copy->running_mean = clone_or_undefined(running_mean);
  copy->running_var = clone_or_undefined(running_var);
  return copy;
}

std::vector<NamedTensor> BatchNorm2d::tensors() const {
  return {{"weight", weight, true},
          {"bias", bias, true},
          {"running_mean", running_mean, false},
          {"running_var", running_var, false}};
}

// ---- Dropout ------------------------------------------------------------
at::Tensor Dropout::forward(const at::Tensor& x, LayerRecord*) const {
  return training_ ? torch::dropout(x, p, true) : x;
}

std::string Dropout::describe() const {
  std::ostringstream s;
  s << "Dropout(p=" << p << ")";
  return s.str();
}

std::string Dropout::torchscript(const std::string& x, const std::string&) const {
  // Exported models are for inference (train=False), yet keep the layer
  // visible to anyone reading the graph.
  std::ostringstream s;
  s << "torch.dropout(" << x << ", " << p << ", False)";
  return s.str();
}

// ---- Add ----------------------------------------------------------------
namespace {
std::string joined(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? separator : "") + parts[i];
  return out;
}

void require_inputs(const Layer& layer, size_t found) {
  const size_t arity = layer.arity();
  MIPIN_CHECK(arity == 0 ? found >= 2 : found == arity, layer.describe(), " takes ",
              arity == 0 ? std::string("two or more inputs") : std::to_string(arity) + " inputs",
              ", found ", found);
}
}  // namespace

at::Tensor Add::forward_of(const std::vector<at::Tensor>& inputs, LayerRecord*) const {
  require_inputs(*this, inputs.size());
  at::Tensor out = inputs[0] + inputs[1];
  for (size_t i = 2; i < inputs.size(); ++i) out.add_(inputs[i]);
  return out;
}

Shape Add::output_shape_of(const std::vector<Shape>& in) const {
  require_inputs(*this, in.size());
  for (const auto& shape : in) {
    MIPIN_CHECK(shape == in[0], "Add() expects inputs of one shape, found ", shape_string(in[0]), " and ",
                shape_string(shape));
  }
  return in[0];
}

std::string Add::torchscript_of(const std::vector<std::string>& inputs, const std::string&) const {
  return joined(inputs, " + ");
}

// ---- Concat -------------------------------------------------------------
int64_t Concat::axis(int64_t rank) const {
  const int64_t a = dim < 0 ? dim + rank : dim;
  MIPIN_CHECK(a > 0 && a < rank, describe(), " cannot concatenate along axis ", dim, " of inputs with ", rank,
              " axes (the batch axis is 0)");
  return a;
}

at::Tensor Concat::forward_of(const std::vector<at::Tensor>& inputs, LayerRecord*) const {
  require_inputs(*this, inputs.size());
  return at::cat(inputs, axis(inputs[0].dim()));
}

Shape Concat::output_shape_of(const std::vector<Shape>& in) const {
  require_inputs(*this, in.size());
  const int64_t a = axis(static_cast<int64_t>(in[0].size()) + 1) - 1;
  Shape out = in[0];
  for (size_t i = 1; i < in.size(); ++i) {
    Shape other = in[i];
    MIPIN_CHECK(other.size() == out.size(), describe(), " expects inputs with the same number of axes, found ",
                shape_string(in[0]), " and ", shape_string(other));
    out[a] += other[a];
    other[a] = in[0][a];
    MIPIN_CHECK(other == in[0], describe(), " expects inputs that differ only along axis ", a + 1, ", found ",
                shape_string(in[0]), " and ", shape_string(in[i]));
  }
  return out;
}

std::string Concat::describe() const { return "Concat(dim=" + std::to_string(dim) + ")"; }

std::string Concat::torchscript_of(const std::vector<std::string>& inputs, const std::string&) const {
  return "torch.cat([" + joined(inputs, ", ") + "], " + std::to_string(dim) + ")";
}

// ---- Mul ----------------------------------------------------------------
at::Tensor Mul::forward_of(const std::vector<at::Tensor>& inputs, LayerRecord*) const {
  require_inputs(*this, inputs.size());
  return inputs[0] * inputs[1];
}

size_t Mul::gate_index(const std::vector<Shape>& in) const {
  if (gate >= 0) return static_cast<size_t>(gate);
  auto count = [](const Shape& s) {
    int64_t n = 1;
    for (auto d : s) n *= d;
    return n;
  };
  MIPIN_CHECK(count(in[0]) != count(in[1]), describe(),
              " multiplies two values of one shape, neither of which is a gate (a sigmoid-like "
              "activation's output or a value that broadcasts): found ", shape_string(in[0]), " and ",
              shape_string(in[1]));
  return count(in[0]) < count(in[1]) ? 0 : 1;
}

size_t Mul::gate_index(const LayerRecord& record) const {
  MIPIN_CHECK(record.inputs.size() == 2, describe(), ": the record holds ", record.inputs.size(),
              " inputs, expected 2");
  auto shape = [](const at::Tensor& t) { return Shape(t.sizes().begin() + 1, t.sizes().end()); };
  return gate_index({shape(record.inputs[0]), shape(record.inputs[1])});
}

Shape Mul::output_shape_of(const std::vector<Shape>& in) const {
  require_inputs(*this, in.size());
  const size_t g = gate_index(in);
  const Shape& value = in[1 - g];
  const Shape& gated = in[g];
  // The gate broadcasts over the value: each of its axes is 1 or the value's.
  bool fits = gated.size() <= value.size();
  for (size_t i = 0; fits && i < gated.size(); ++i) {
    const int64_t d = gated[gated.size() - 1 - i];
    fits = d == 1 || d == value[value.size() - 1 - i];
  }
  MIPIN_CHECK(fits, describe(), " cannot broadcast the gate ", shape_string(gated), " over ",
              shape_string(value));
  return value;
}

std::string Mul::describe() const {
  return gate < 0 ? "Mul(gate=broadcast)" : "Mul(gate=input " + std::to_string(gate) + ")";
}

std::string Mul::torchscript_of(const std::vector<std::string>& inputs, const std::string&) const {
  return inputs.at(0) + " * " + inputs.at(1);
}

// ---- Activation ---------------------------------------------------------
at::Tensor Activation::forward(const at::Tensor& x, LayerRecord*) const {
  return activation_spec(function).f(x, parameters);
}

bool Activation::output_non_negative(const std::vector<bool>&) const {
  const ActivationSpec& spec = activation_spec(function);
  return spec.non_negative && spec.non_negative(parameters);
}

std::string Activation::describe() const {
  const ActivationSpec& spec = activation_spec(function);
  std::ostringstream s;
  s << "Activation(" << function;
  for (size_t i = 0; i < parameters.size() && i < spec.parameter_names.size(); ++i) {
    s << ", " << spec.parameter_names[i] << "=" << parameters[i];
  }
  s << ")";
  return s.str();
}

std::string Activation::torchscript(const std::string& x, const std::string&) const {
  const ActivationSpec& spec = activation_spec(function);
  std::ostringstream s;
  s.precision(17);
  s << "torch." << spec.aten_ops.at(0).substr(6) << "(" << x;
  for (size_t i = 0; i < parameters.size(); ++i) {
    if (spec.parameter_names.at(i) == "approximate") {
      s << ", approximate='" << (parameters[i] != 0 ? "tanh" : "none") << "'";
    } else {
      s << ", " << std::showpoint << parameters[i];
    }
  }
  s << ")";
  return s.str();
}

// ---- Reshape ------------------------------------------------------------
Shape Reshape::output_shape(const Shape& in) const {
  Shape out;
  int64_t known = 1, total = 1, inferred = -1;
  for (auto d : in) total *= d;
  for (int64_t d : shape) {
    if (d == -1) {
      MIPIN_CHECK(inferred < 0, describe(), " infers more than one axis");
      inferred = static_cast<int64_t>(out.size());
      out.push_back(1);
      continue;
    }
    if (d < -1) {
      const int64_t k = -2 - d;
      MIPIN_CHECK(k >= 1 && k <= static_cast<int64_t>(in.size()), describe(), " reads axis ", k,
                  " of an input of shape ", shape_string(in));
      d = in[k - 1];
    }
    out.push_back(d);
    known *= d;
  }
  if (inferred >= 0) {
    MIPIN_CHECK(known > 0 && total % known == 0, describe(), " cannot view an input of shape ",
                shape_string(in), " with the sizes it names");
    out[inferred] = total / known;
    known = total;
  }
  MIPIN_CHECK(known == total, describe(), " cannot view an input of shape ", shape_string(in), " (",
              total, " values) as ", shape_string(out), " (", known, " values)");
  return out;
}

at::Tensor Reshape::forward(const at::Tensor& x, LayerRecord*) const {
  std::vector<int64_t> sizes{x.size(0)};
  const Shape out = output_shape(Shape(x.sizes().begin() + 1, x.sizes().end()));
  sizes.insert(sizes.end(), out.begin(), out.end());
  return x.reshape(sizes);
}

std::string Reshape::describe() const {
  std::string s = "Reshape([N";
  for (int64_t d : shape) {
    s += ", " + (d >= -1 ? std::to_string(d) : "input.size(" + std::to_string(-2 - d) + ")");
  }
  return s + "])";
}

std::string Reshape::torchscript(const std::string& x, const std::string&) const {
  std::string s = x + ".reshape([" + x + ".size(0)";
  for (int64_t d : shape) s += ", " + (d >= -1 ? std::to_string(d) : x + ".size(" + std::to_string(-2 - d) + ")");
  return s + "])";
}

}  // namespace mipin
