// DeepLIFT with the rescale rule (Shrikumar et al. 2017): multipliers flow
// back like gradients, except through nonlinearities, where they are the
// ratio of output to input differences against a reference input. The
// attribution is multiplier times (x - reference), and it sums to
// f(x) - f(reference) for the target logit.
#include <torch/torch.h>

#include "mipin/attribution/engine.h"
#include "mipin/attribution/gradient.h"
#include "mipin/attribution/layer_maps.h"
#include "mipin/attribution/registry.h"

namespace mipin {
namespace {

constexpr double kTiny = 1e-7;

at::Tensor safe_ratio(const at::Tensor& num, const at::Tensor& den, const at::Tensor& ok) {
  return torch::where(ok, num / torch::where(ok, den, torch::ones_like(den)), torch::zeros_like(num));
}

class DeepLift final : public AttributionMethod {
 public:
  explicit DeepLift(at::Tensor reference) : reference_(std::move(reference)) {}
  std::string name() const override { return "deeplift"; }

  at::Tensor attribute(const Network& network, const at::Tensor& x,
                       const at::Tensor& targets) const override {
    torch::NoGradGuard no_grad;
    const at::Tensor x0 = reference_.defined() ? reference_.expand_as(x).contiguous() : torch::zeros_like(x);
    ForwardRecord record, ref;
    const at::Tensor logits = network.forward(x, &record);
    network.forward(x0, &ref);
    Composite c = gradient_composite();
    c.rename("deeplift");
    const ForwardRecord* r0 = &ref;
    // ReLU: rescale by delta-out / delta-in where the input moved.
    c.with(LayerKind::ReLU, std::make_shared<FunctionRule>([r0](const RuleContext& ctx, const at::Tensor& m) {
      const at::Tensor& z = ctx.record.input;
      const at::Tensor& z0 = r0->layers[ctx.index].input;
      const at::Tensor dz = z - z0;
      const at::Tensor moved = dz.abs() > kTiny;
      const at::Tensor rescale = safe_ratio(torch::relu(z) - torch::relu(z0), dz, moved);
      return m * torch::where(moved, rescale, z.gt(0).to(m.scalar_type()));
    }));
    // Max pooling: the window's output difference goes to the input that won
    // at x (or, if that input did not move, the one that won at the reference).
    c.with(LayerKind::MaxPool2d, std::make_shared<FunctionRule>([r0](const RuleContext& ctx, const at::Tensor& m) {
      const LayerRecord& rec = ctx.record;
      const LayerRecord& rec0 = r0->layers[ctx.index];
      const at::Tensor dy = rec.output - rec0.output;
      auto at_switches = [](const at::Tensor& t, const at::Tensor& sw) {
        return t.flatten(2).gather(2, sw.flatten(2)).view_as(sw);
      };
      const at::Tensor dx_win = rec.output - at_switches(rec0.input, rec.switches);
      const at::Tensor dx_ref = at_switches(rec.input, rec0.switches) - rec0.output;
      const at::Tensor use_win = dx_win.abs() > kTiny;
      const at::Tensor use_ref = use_win.logical_not().logical_and(dx_ref.abs() > kTiny);
      const at::Tensor m_win = m * safe_ratio(dy, dx_win, use_win);
      const at::Tensor m_ref = m * safe_ratio(dy, dx_ref, use_ref);
      LayerRecord at_ref = rec;
      at_ref.switches = rec0.switches;
      return maps::unpool_max(rec, m_win) + maps::unpool_max(at_ref, m_ref);
    }));
    const at::Tensor top = one_hot_top(targets, logits.size(1), torch::ones({x.size(0)}, logits.options()));
    return propagate(network, record, c, top) * (x - x0);
  }

 private:
  at::Tensor reference_;
};

const RegisterMethod registration({
    "deeplift",
    "DeepLIFT rescale rule against a reference input; sums to f(x) - f(reference)",
    "--baseline zero|mean|FILE.npy (the reference, default zero)",
    [](const MethodSettings& s) { return std::make_unique<DeepLift>(s.baseline); },
});

}  // namespace
}  // namespace mipin
