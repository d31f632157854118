// DeepLIFT with the rescale rule (Shrikumar et al. 2017): multipliers flow
// back like gradients, except through nonlinearities, where they are the
// ratio of output to input differences against a reference input. The
// attribution is multiplier times (x - reference), and it sums to
// f(x) - f(reference) for the target logit.
#include <torch/torch.h>

#include "mipin/attribution/engine.h"
#include "mipin/attribution/fused.h"
#include "mipin/attribution/gradient.h"
#include "mipin/attribution/layer_maps.h"
#include "mipin/attribution/registry.h"
#include "mipin/model/layers.h"
#include "mipin/util/error.h"
#include "model/activations.h"

namespace mipin {
namespace {

constexpr double kTiny = 1e-7;

class DeepLift final : public AttributionMethod {
 public:
  explicit DeepLift(at::Tensor reference) : reference_(std::move(reference)) {}
  std::string name() const override { return "deeplift"; }

  at::Tensor attribute(const Network& network, const at::Tensor& x,
                       const at::Tensor& targets) const override {
    torch::NoGradGuard no_grad;
    // One reference for every example: its forward pass runs once, at batch
    // size 1, and the rules broadcast it.
    const at::Tensor x0 = !reference_.defined() ? torch::zeros_like(x[0]).unsqueeze(0)
                          : reference_.dim() == x.dim() ? reference_
                                                        : reference_.unsqueeze(0);
    MIPIN_CHECK(x0.size(0) == 1 && x0[0].sizes() == x[0].sizes(), "deeplift: the reference has shape ",
                x0.sizes(), ", expected one input of shape ", x[0].sizes());
    ForwardRecord ref;
    network.forward(x0.contiguous(), &ref);
    return backward_from_targets(network, x, targets, composite(&ref), TopValues::unit()) * (x - x0);
  }

  std::vector<size_t> fallback_nodes(const Network& network) const override {
    return composite(nullptr).fallback_nodes(network);
  }

 private:
  // The rules read the reference's forward record r0 (its structure does
  // not depend on it).
  static Composite composite(const ForwardRecord* r0) {
    Composite c = gradient_composite();
    c.rename("deeplift");
    // ReLU: rescale by delta-out / delta-in where the input moved.
    c.with(LayerKind::ReLU, std::make_shared<FunctionRule>([r0](const RuleContext& ctx, const at::Tensor& m) {
             return fused::rescale_relu(m, ctx.record.input, r0->layers[ctx.index].input, kTiny);
           }));
    // Max pooling: the window's output difference goes to the input that won
    // at x (or, if that input did not move, the one that won at the reference).
    c.with(LayerKind::MaxPool2d, std::make_shared<FunctionRule>([r0](const RuleContext& ctx, const at::Tensor& m) {
             const LayerRecord& rec = ctx.record;
             const LayerRecord& rec0 = r0->layers[ctx.index];
             MIPIN_CHECK(rec.switches.defined() && rec0.switches.defined(),
                         "deeplift: max pooling switches were not recorded (layer ", ctx.index, ")");
             return fused::deeplift_unpool_max(m, rec.input, rec.output, rec.switches, rec0.input, rec0.output,
                                               rec0.switches, kTiny);
           }));
    // Other activations: the same rescale with their own f.
    c.with(LayerKind::Activation, std::make_shared<FunctionRule>([r0](const RuleContext& ctx, const at::Tensor& m) {
             const auto& a = static_cast<const Activation&>(ctx.layer);
             const LayerRecord& rec0 = r0->layers[ctx.index];
             return activation_rescale(activation_spec(a.function), a.parameters, m, ctx.record.input,
                                       ctx.record.output, rec0.input, rec0.output, kTiny);
           }));
    // A gate, v = a * g: the product rule that keeps the sum exact,
    // a g - a0 g0 = (g + g0) / 2 (a - a0) + (a + a0) / 2 (g - g0).
    c.with(LayerKind::Mul, std::make_shared<FunctionRule>([r0](const RuleContext& ctx, const at::Tensor& m) {
             const auto& mul = static_cast<const Mul&>(ctx.layer);
             const LayerRecord& rec0 = r0->layers[ctx.index];
             // The gradient's map at the midpoint of x's and the reference's inputs.
             LayerRecord mean;
             mean.inputs = {(ctx.record.inputs[0] + rec0.inputs[0]) / 2, (ctx.record.inputs[1] + rec0.inputs[1]) / 2};
             return maps::mul_transpose(mul, mean, m);
           }));
    return c;
  }

  at::Tensor reference_;
};

const RegisterMethod registration(MethodEntry{
    "deeplift",
    "DeepLIFT rescale rule against a reference input; sums to f(x) - f(reference)",
    {OptionSpec::reference("baseline", "the reference input")},
    [](const MethodSettings& s) { return std::make_unique<DeepLift>(s.options.reference("baseline")); },
}.times_input());

}  // namespace
}  // namespace mipin
