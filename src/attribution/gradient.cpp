#include "mipin/attribution/gradient.h"

#include <torch/torch.h>

#include "mipin/attribution/engine.h"
#include "mipin/attribution/fused.h"
#include "mipin/attribution/layer_maps.h"
#include "mipin/attribution/registry.h"
#include "mipin/util/error.h"
#include "model/activations.h"

namespace mipin {
namespace {

template <typename L>
const L& as(const RuleContext& c) {
  return static_cast<const L&>(c.layer);
}

std::shared_ptr<const Rule> rule(FunctionRule::Function f) {
  return std::make_shared<FunctionRule>(std::move(f));
}

}  // namespace

std::shared_ptr<const PairRule> relu_under_max_pool(fused::ReluBackward rule) {
  return std::make_shared<FunctionPairRule>(
      [rule](const RuleContext& relu, const RuleContext& pool, const at::Tensor& s) {
        MIPIN_CHECK(pool.record.switches.defined(),
                    "max pooling switches were not recorded: run the forward pass with a record");
        // In the layout the two single rules would leave (the 2x2 unpooling
        // writes planes), so that the pair and the singles agree to the bit.
        const at::Tensor& x = relu.record.input;
        const bool planes = static_cast<const MaxPool2d&>(pool.layer).is_2x2();
        return fused::unpool_max_relu(s, pool.record.switches, planes ? x.contiguous() : x, rule);
      });
}

Composite gradient_composite() {
  Composite c("gradient");
  c.fallback_is_exact();
  c.with_affine(rule([](const RuleContext& ctx, const at::Tensor& s) {
     const auto& layer = as<AffineLayer>(ctx);
     return layer.transposed_map(layer.weight, s, ctx.record.input, TransposeKernels::fastest);
   }))
      .with(LayerKind::ReLU, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return fused::relu_gate(s, ctx.record.input);
      }))
      .with(LayerKind::MaxPool2d, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::unpool_max(as<MaxPool2d>(ctx), ctx.record, s);
      }))
      .with(LayerKind::AvgPool2d, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::avg_pool_transpose(as<AvgPool2d>(ctx), ctx.record, s);
      }))
      .with(LayerKind::AdaptiveAvgPool2d, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::adaptive_avg_pool_transpose(ctx.record, s);
      }))
      .with(LayerKind::Flatten, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::unflatten(ctx.record, s);
      }))
      .with(LayerKind::BatchNorm2d, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::batchnorm_transpose(as<BatchNorm2d>(ctx), s);
      }))
      .with(LayerKind::Dropout,
            rule([](const RuleContext&, const at::Tensor& s) { return s; }))
      .with(LayerKind::Activation, rule([](const RuleContext& ctx, const at::Tensor& s) {
        const auto& a = as<Activation>(ctx);
        return activation_gradient(activation_spec(a.function), a.parameters, s, ctx.record.input,
                                   ctx.record.output);
      }))
      .with(LayerKind::Reshape, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::unflatten(ctx.record, s);
      }))
      .with(LayerKind::Add, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::add_copy(ctx.record, s);
      }))
      .with(LayerKind::Concat, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::concat_split(as<Concat>(ctx), ctx.record, s);
      }))
      .with(LayerKind::Mul, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::mul_transpose(as<Mul>(ctx), ctx.record, s);
      }))
      // A ReLU under a max pooling: the gate matters only at the winners.
      .with_pair(LayerKind::ReLU, LayerKind::MaxPool2d, relu_under_max_pool());
  return c;
}

at::Tensor Gradient::attribute(const Network& network, const at::Tensor& x,
                               const at::Tensor& targets) const {
  // The gradient needs no canonical form: it is taken through the network
  // as the module computes it, so it is float32 autograd's to rounding even
  // where a ReLU input lies within rounding of its kink.
  const at::Tensor g =
      backward_from_targets(network.as_module(), x, targets, gradient_composite(), TopValues::unit());
  return absolute_ ? g.abs() : g;
}

namespace {
const RegisterMethod registration(MethodEntry{
    "gradient",
    "gradient of the target logit with respect to the input (saliency)",
    {OptionSpec::flag("abs", "the absolute value of the gradient")},
    [](const MethodSettings& s) { return std::make_unique<Gradient>(s.options.flag("abs")); },
}.as_gradient_like());
}  // namespace

}  // namespace mipin
