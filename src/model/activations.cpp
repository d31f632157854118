#include "model/activations.h"

#include <torch/torch.h>

#include "mipin/attribution/fused.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

using P = ActivationSpec::Parameters;

c10::string_view gelu_approximation(const P& p) { return p.at(0) != 0 ? "tanh" : "none"; }

bool always(const P&) { return true; }

// One entry per activation: name, aten ops, parameters and their defaults,
// f, s * f'(z), family, whether its values can be negative.
const std::vector<ActivationSpec> kSpecs = {
    {"hardtanh", {"aten::hardtanh", "aten::hardtanh_"}, {"min_val", "max_val"}, {-1, 1},
     [](const at::Tensor& z, const P& p) { return at::hardtanh(z, p.at(0), p.at(1)); },
     [](const at::Tensor& s, const at::Tensor& z, const at::Tensor&, const P& p) {
       return at::hardtanh_backward(s, z, p.at(0), p.at(1));
     },
     true, false, [](const P& p) { return p.at(0) >= 0; }},
    {"relu6", {"aten::relu6", "aten::relu6_"}, {}, {},
     [](const at::Tensor& z, const P&) { return at::hardtanh(z, 0, 6); },
     [](const at::Tensor& s, const at::Tensor& z, const at::Tensor&, const P&) {
       return at::hardtanh_backward(s, z, 0, 6);
     },
     true, false, always},
    {"leaky_relu", {"aten::leaky_relu", "aten::leaky_relu_"}, {"negative_slope"}, {0.01},
     [](const at::Tensor& z, const P& p) { return at::leaky_relu(z, p.at(0)); },
     [](const at::Tensor& s, const at::Tensor& z, const at::Tensor&, const P& p) {
       return at::leaky_relu_backward(s, z, p.at(0), false);
     },
     true},
    {"elu", {"aten::elu", "aten::elu_"}, {"alpha", "scale", "input_scale"}, {1, 1, 1},
     [](const at::Tensor& z, const P& p) { return at::elu(z, p.at(0), p.at(1), p.at(2)); },
     [](const at::Tensor& s, const at::Tensor& z, const at::Tensor&, const P& p) {
       return at::elu_backward(s, p.at(0), p.at(1), p.at(2), false, z);
     }},
    {"gelu", {"aten::gelu", "aten::gelu_"}, {"approximate"}, {0},
     [](const at::Tensor& z, const P& p) { return at::gelu(z, gelu_approximation(p)); },
     [](const at::Tensor& s, const at::Tensor& z, const at::Tensor&, const P& p) {
       // LibTorch 1.13's exact gelu_backward on the CPU is wrong when the
       // signal and the input are in different memory formats (channels-last
       // against contiguous: errors of the signal's size): one format for both.
       const auto format = z.suggest_memory_format();
       return at::gelu_backward(s.contiguous(format), z.contiguous(format), gelu_approximation(p));
     }},
    {"silu", {"aten::silu", "aten::silu_"}, {}, {},
     [](const at::Tensor& z, const P&) { return at::silu(z); },
     [](const at::Tensor& s, const at::Tensor& z, const at::Tensor&, const P&) { return at::silu_backward(s, z); }},
    {"sigmoid", {"aten::sigmoid", "aten::sigmoid_"}, {}, {},
     [](const at::Tensor& z, const P&) { return at::sigmoid(z); },
     [](const at::Tensor& s, const at::Tensor&, const at::Tensor& y, const P&) { return at::sigmoid_backward(s, y); },
     false, true, always},
    {"tanh", {"aten::tanh", "aten::tanh_"}, {}, {},
     [](const at::Tensor& z, const P&) { return at::tanh(z); },
     [](const at::Tensor& s, const at::Tensor&, const at::Tensor& y, const P&) { return at::tanh_backward(s, y); }},
    {"softplus", {"aten::softplus"}, {"beta", "threshold"}, {1, 20},
     [](const at::Tensor& z, const P& p) { return at::softplus(z, p.at(0), p.at(1)); },
     [](const at::Tensor& s, const at::Tensor& z, const at::Tensor&, const P& p) {
       return at::softplus_backward(s, z, p.at(0), p.at(1));
     },
     false, false, [](const P& p) { return p.at(0) > 0; }},
    {"hardsigmoid", {"aten::hardsigmoid", "aten::hardsigmoid_"}, {}, {},
     [](const at::Tensor& z, const P&) { return at::hardsigmoid(z); },
     [](const at::Tensor& s, const at::Tensor& z, const at::Tensor&, const P&) { return at::hardsigmoid_backward(s, z); },
     false, true, always},
    {"hardswish", {"aten::hardswish", "aten::hardswish_"}, {}, {},
     [](const at::Tensor& z, const P&) { return at::hardswish(z); },
     [](const at::Tensor& s, const at::Tensor& z, const at::Tensor&, const P&) { return at::hardswish_backward(s, z); }},
};

// f(0) and f'(0), for the transfer factor: computed once per call on one
// value (cheap against a pass over the activation).
std::pair<double, double> at_zero(const ActivationSpec& spec, const P& p) {
  const at::Tensor zero = torch::zeros({1});
  const at::Tensor f0 = spec.f(zero, p);
  const at::Tensor d0 = spec.derivative_times(torch::ones({1}), zero, f0, p);
  return {f0.item<double>(), d0.item<double>()};
}

}  // namespace

const std::vector<ActivationSpec>& activation_specs() { return kSpecs; }

const ActivationSpec& activation_spec(const std::string& name) {
  for (const auto& spec : kSpecs) {
    if (spec.name == name) return spec;
  }
  MIPIN_FAIL("unknown activation '", name, "'");
}

const ActivationSpec* activation_for_op(const std::string& op) {
  for (const auto& spec : kSpecs) {
    for (const auto& name : spec.aten_ops) {
      if (name == op) return &spec;
    }
  }
  return nullptr;
}

at::Tensor activation_gradient(const ActivationSpec& spec, const P& p, const at::Tensor& s,
                               const at::Tensor& z, const at::Tensor& y) {
  return spec.derivative_times(s, z, y, p);
}

at::Tensor activation_transfer(const ActivationSpec& spec, const P& p, const at::Tensor& s,
                               const at::Tensor& z, const at::Tensor& y) {
  const auto [f0, d0] = at_zero(spec, p);
  // Below |z| = 1e-6 the quotient loses its digits to cancellation; f'(0)
  // is its limit there.
  return fused::transfer(s, z, y, f0, d0);
}

at::Tensor activation_rescale(const ActivationSpec& spec, const P& p, const at::Tensor& s,
                              const at::Tensor& z, const at::Tensor& y, const at::Tensor& z0,
                              const at::Tensor& y0, double tiny) {
  return fused::rescale(s, z, y, z0, y0, spec.derivative_times(s, z, y, p), tiny);
}

}  // namespace mipin
