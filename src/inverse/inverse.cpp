// The inverse as a rule set, and explaining with it.
#include "mipin/inverse/inverse.h"

#include <torch/torch.h>

#include "mipin/attribution/engine.h"
#include "mipin/attribution/fused.h"
#include "mipin/attribution/gradient.h"
#include "mipin/attribution/layer_maps.h"
#include "mipin/attribution/registry.h"
#include "mipin/model/layers.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

std::shared_ptr<const Rule> rule(FunctionRule::Function f) {
  return std::make_shared<FunctionRule>(std::move(f));
}

}  // namespace

at::Tensor make_top_signal(TopSignal top, const at::Tensor& logits) {
  return top == TopSignal::Logits ? logits : torch::softmax(logits, 1);
}

at::Tensor apply_inverse_operator(const Layer& layer, const at::Tensor& op,
                                  const at::Tensor& signal, const at::Tensor& layer_input) {
  if (layer.kind() == LayerKind::Linear) return maps::linear_transpose(op.t(), signal);
  MIPIN_CHECK(layer.kind() == LayerKind::Conv2d,
              "inverse operators belong to Linear or Conv2d layers, found ", layer.describe());
  return maps::conv_transpose(static_cast<const Conv2d&>(layer), op, signal, layer_input,
                              TransposeKernels::fastest);
}

Composite Inverse::composite() const {
  Composite c("mipin");
  // Forward: the forward gate (s where the layer's input was positive);
  // Backward: the signal rectified; Both: the two together.
  const ReluMode mode = options_.relu_mode;
  const fused::ReluBackward relu = mode == ReluMode::Forward    ? fused::ReluBackward::gate
                                   : mode == ReluMode::Backward ? fused::ReluBackward::rectify
                                                                : fused::ReluBackward::gate_and_rectify;
  c.with(LayerKind::ReLU, rule([relu](const RuleContext& ctx, const at::Tensor& s) {
     return fused::relu_backward(s, ctx.record.input, relu);
   }))
      .with(LayerKind::MaxPool2d, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::unpool_max(static_cast<const MaxPool2d&>(ctx.layer), ctx.record, s);
      }))
      .with(LayerKind::AvgPool2d, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::avg_pool_spread(static_cast<const AvgPool2d&>(ctx.layer), ctx.record, s);
      }))
      .with(LayerKind::AdaptiveAvgPool2d, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::adaptive_avg_pool_spread(ctx.record, s);
      }))
      .with(LayerKind::Flatten, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::unflatten(ctx.record, s);
      }))
      .with(LayerKind::Dropout, rule([](const RuleContext&, const at::Tensor& s) { return s; }));
  c.with_pair(LayerKind::ReLU, LayerKind::MaxPool2d, relu_under_max_pool(relu));
  // Linear and Conv2d have no rule by kind: only fitted layers can be inverted.
  for (const auto& [index, op] : operators_) {
    const at::Tensor u = op;
    c.with_layer(index, rule([u](const RuleContext& ctx, const at::Tensor& s) {
      return apply_inverse_operator(ctx.layer, u, s, ctx.record.input);
    }));
  }
  return c;
}

at::Tensor Inverse::top_signal(const at::Tensor& logits) const {
  return make_top_signal(options_.top, logits);
}

at::Tensor Inverse::source_signal(const Network& network, const at::Tensor& x) const {
  torch::NoGradGuard no_grad;
  ForwardRecord record;
  const at::Tensor logits = network.forward(x, &record);
  return propagate(network, record, composite(), top_signal(logits));
}

at::Tensor Inverse::explain(const Network& network, const at::Tensor& x,
                            const at::Tensor& targets) const {
  torch::NoGradGuard no_grad;
  ForwardRecord record;
  const at::Tensor logits = network.forward(x, &record);
  MIPIN_CHECK(targets.numel() == x.size(0), "expected one target per example (", x.size(0),
              "), found ", targets.numel());
  const at::Tensor top = top_signal(logits);
  const at::Tensor values = top.gather(1, targets.reshape({-1, 1}).clamp(0, top.size(1) - 1));
  return propagate(network, record, composite(), one_hot_top(targets, top.size(1), values));
}

void Inverse::check_compatible(const Network& network, const std::string& model_name) const {
  const std::string fingerprint = network.fingerprint();
  MIPIN_CHECK(fingerprint == model_fingerprint_, "the inverse was fitted for another model (",
              this->model_name.empty() ? std::string() : "'" + this->model_name + "', ",
              "fingerprint ", model_fingerprint_, "), but ",
              model_name.empty() ? std::string("this model") : "'" + model_name + "'",
              " has fingerprint ", fingerprint, ": fit the inverse for this model with `mipin fit`");
}

namespace {
const RegisterMethod registration({
    "mipin",
    "MIP-IN source signal of the target class through the fitted inverse (in input units)",
    "--inverse FILE (from `mipin fit`)",
    [](const MethodSettings& s) -> std::unique_ptr<AttributionMethod> {
      MIPIN_CHECK(s.inverse != nullptr, "method 'mipin' needs --inverse FILE (made by `mipin fit`)");
      return std::make_unique<MipIn>(*s.inverse);
    },
});
}  // namespace

}  // namespace mipin
