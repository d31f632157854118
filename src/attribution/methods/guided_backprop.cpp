// Guided backpropagation and deconvnet: the gradient's rules with a modified
// ReLU backward. Guided backprop keeps the forward gate and also drops
// negative signal; deconvnet ignores the forward gate and rectifies the signal.
#include <torch/torch.h>

#include "mipin/attribution/composite_method.h"
#include "mipin/attribution/fused.h"
#include "mipin/attribution/gradient.h"
#include "mipin/attribution/registry.h"
#include "mipin/model/layers.h"
#include "model/activations.h"

namespace mipin {
namespace {

Composite with_relu_rule(const std::string& name, fused::ReluBackward relu) {
  Composite c(name);
  c.fallback(gradient_composite());
  c.with(LayerKind::ReLU, std::make_shared<FunctionRule>([relu](const RuleContext& ctx, const at::Tensor& s) {
    return fused::relu_backward(s, ctx.record.input, relu);
  }));
  // The gradient's pair stands for its own ReLU rule: this one for the new one.
  c.with_pair(LayerKind::ReLU, LayerKind::MaxPool2d, relu_under_max_pool(relu));
  // The rest of the ReLU family (ReLU6, leaky ReLU) the same way: the
  // rectified signal, through the forward slope (guided) or alone
  // (deconvnet). Smooth activations keep the gradient's rule.
  c.with(LayerKind::Activation, std::make_shared<FunctionRule>([relu](const RuleContext& ctx, const at::Tensor& s) {
    const auto& a = static_cast<const Activation&>(ctx.layer);
    const ActivationSpec& spec = activation_spec(a.function);
    if (!spec.relu_family) return activation_gradient(spec, a.parameters, s, ctx.record.input, ctx.record.output);
    const at::Tensor rectified = s.clamp_min(0);
    return relu == fused::ReluBackward::rectify
               ? rectified
               : activation_gradient(spec, a.parameters, rectified, ctx.record.input, ctx.record.output);
  }));
  // Every other op of a group has the gradient's rule as its own: only an
  // op in none (an LSTM, a custom op) is a fallback.
  for (OpGroup group : {OpGroup::affine, OpGroup::activation, OpGroup::normalization, OpGroup::pooling,
                        OpGroup::product}) {
    c.with_group(group, autograd_rule());
  }
  return c;
}

const RegisterMethod guided(MethodEntry{
    "guided-backprop",
    "gradient whose ReLU backward also drops negative signal (Springenberg et al. 2015)",
    {},
    [](const MethodSettings&) {
      return std::make_unique<CompositeMethod>("guided-backprop", [](const Network&) {
        return with_relu_rule("guided-backprop", fused::ReluBackward::gate_and_rectify);
      });
    },
}.as_gradient_like());

const RegisterMethod deconvnet(MethodEntry{
    "deconvnet",
    "gradient whose ReLU backward rectifies the signal instead of using the forward gate "
    "(Zeiler and Fergus 2014)",
    {},
    [](const MethodSettings&) {
      return std::make_unique<CompositeMethod>("deconvnet", [](const Network&) {
        return with_relu_rule("deconvnet", fused::ReluBackward::rectify);
      });
    },
}.as_gradient_like());

}  // namespace
}  // namespace mipin
