#pragma once
// Element-wise activations other than ReLU, one table entry each: the
// function, its derivative, the aten ops it is imported from and its
// TorchScript form. Every rule that treats an activation as a category
// (the gradient's f'(z), MIP-IN's transfer factor, DeepLIFT's rescale)
// reads it from here, so adding an activation is one entry.
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace mipin {

struct ActivationSpec {
  using Parameters = std::vector<double>;
  std::string name;                    // "silu"
  std::vector<std::string> aten_ops;   // "aten::silu", "aten::silu_"
  // Names of the scalar arguments that follow the input in the aten op, in
  // order; each is read as a number (gelu's approximate: "none" 0, "tanh" 1).
  std::vector<std::string> parameter_names;
  Parameters defaults;                 // PyTorch's defaults of those arguments
  at::Tensor (*f)(const at::Tensor& z, const Parameters& p);
  // s * f'(z), given z and y = f(z): the gradient, by ATen's own backward op.
  at::Tensor (*derivative_times)(const at::Tensor& s, const at::Tensor& z, const at::Tensor& y,
                                 const Parameters& p);
  // Piecewise linear with a ReLU-like gate: the rules that change only the
  // ReLU family (guided backprop, deconvnet) change this one too.
  bool relu_family = false;
  // Its values lie in [0, 1]: a multiply by its output is a gate.
  bool gate_like = false;
  // Whether its values are never negative with these parameters (null: they
  // can be).
  bool (*non_negative)(const Parameters& p) = nullptr;
};

// Every activation; throws mipin::Error for an unknown name.
const std::vector<ActivationSpec>& activation_specs();
const ActivationSpec& activation_spec(const std::string& name);
// The entry importing aten op `op` ("aten::silu_"), or null.
const ActivationSpec* activation_for_op(const std::string& op);

// What the rules of the activation category use, each in one pass.
// f'(z) * s: the gradient.
at::Tensor activation_gradient(const ActivationSpec& spec, const ActivationSpec::Parameters& p,
                               const at::Tensor& s, const at::Tensor& z, const at::Tensor& y);
// The transfer factor t = (f(z) - f(0)) / z (f'(0) where z = 0) times s:
// for ReLU the forward gate; DeepLIFT's multiplier against a zero reference.
at::Tensor activation_transfer(const ActivationSpec& spec, const ActivationSpec::Parameters& p,
                               const at::Tensor& s, const at::Tensor& z, const at::Tensor& y);
// DeepLIFT's rescale: s * (f(z) - f(z0)) / (z - z0), f'(z) where |z - z0| <= tiny.
at::Tensor activation_rescale(const ActivationSpec& spec, const ActivationSpec::Parameters& p,
                              const at::Tensor& s, const at::Tensor& z, const at::Tensor& y,
                              const at::Tensor& z0, const at::Tensor& y0, double tiny);

}  // namespace mipin
