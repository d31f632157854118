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
#include "attribution/op_parts.h"
#include "model/activations.h"
#include "torchscript/torch_op.h"

namespace mipin {
namespace {

constexpr double kTiny = 1e-7;

// A node's gradient with its inputs at the midpoint of x's and the
// reference's: exact for a bilinear map (a product of two computed tensors,
// attention's Q K^T and P V), f(a, b) - f(a0, b0) = J(mid) (Δa, Δb), and
// for a linear one. It is the product rule a b - a0 b0 = b0 Δa + a0 Δb +
// Δa Δb with the last term split evenly.
Signals midpoint_vjp(const RuleContext& ctx, const LayerRecord& rec0, const at::Tensor& m) {
  static const std::shared_ptr<const Rule> vjp = autograd_rule();
  const auto mid = [](const at::Tensor& a, const at::Tensor& a0) {
    return a.is_floating_point() && a0.defined() ? (a + a0) / 2 : a;
  };
  LayerRecord record;
  if (ctx.record.inputs.empty()) {
    record.input = mid(ctx.record.input, rec0.input);
  } else {
    for (size_t k = 0; k < ctx.record.inputs.size(); ++k) {
      record.inputs.push_back(mid(ctx.record.inputs[k], k < rec0.inputs.size() ? rec0.inputs[k] : at::Tensor()));
    }
  }
  return vjp->backward(RuleContext{ctx.layer, record, ctx.index, ctx.network}, m);
}

// An element-wise op of one input with no rule of its own (erf, exp,
// clamp, ...: OpGroup::activation): its rescale, Δy / Δx where the input
// moved and its gradient where it did not.
Signals elementwise_rescale(const RuleContext& ctx, const LayerRecord& rec0, const at::Tensor& m) {
  static const std::shared_ptr<const Rule> vjp = autograd_rule();
  MIPIN_CHECK(ctx.record.inputs.size() <= 1, "deeplift: node ", ctx.index, " (", ctx.layer.describe(),
              ") is element-wise but reads ", ctx.record.inputs.size(), " values");
  const at::Tensor dz = ctx.record.input - rec0.input, dy = ctx.record.output - rec0.output;
  const at::Tensor moved = dz.abs() > kTiny;
  return Signals(torch::where(moved, m * dy / torch::where(moved, dz, torch::ones_like(dz)), vjp->backward(ctx, m)[0]));
}

// LayerNorm as the product of the centred input c = x - mean and r = 1 / sd
// (a function of c), with the product rule at the midpoint and r's change
// spread along c's change (its rescale): m . Δy = m_x . Δx exactly.
at::Tensor layer_norm_multipliers(const RuleContext& ctx, const LayerRecord& rec0, const at::Tensor& m) {
  const auto parts = layer_norm_parts(ctx.layer);
  MIPIN_CHECK(parts.has_value(), "deeplift: node ", ctx.index, " is not a layer_norm");
  const at::Tensor& x = ctx.record.input;
  const std::vector<int64_t> axes = normalised_axes(*parts, x.dim());
  const auto centred = [&](const at::Tensor& t) { return t - t.mean(axes, /*keepdim=*/true); };
  const at::Tensor c = centred(x), c0 = centred(rec0.input);
  const at::Tensor r = 1 / layer_norm_sd(*parts, x), r0 = 1 / layer_norm_sd(*parts, rec0.input);
  const at::Tensor my = parts->weight.defined() ? m * parts->weight : m;
  const at::Tensor dc = c - c0, dr = r - r0;
  // The product's share to c, and to r.
  at::Tensor mc = my * ((r + r0) / 2);
  const at::Tensor mr = (my * ((c + c0) / 2)).sum(axes, /*keepdim=*/true);
  // r = h(c): Δr spread along Δc, or h's gradient -r^3 c / F where c did not move.
  int64_t count = 1;
  for (int64_t d : axes) count *= x.size(d);
  const at::Tensor norm2 = dc.square().sum(axes, /*keepdim=*/true);
  const at::Tensor moved = norm2 > kTiny * kTiny;
  const at::Tensor along = dr * dc / torch::where(moved, norm2, torch::ones_like(norm2));
  const at::Tensor tangent = -r.pow(3) * c / double(count);
  mc = mc + mr * torch::where(moved, along, tangent);
  // c = x - mean(x): the multipliers less their mean.
  return mc - mc.mean(axes, /*keepdim=*/true);
}

// softmax: its Jacobian integrated along the straight path from the
// reference's input to x's, m_z = int_0^1 J(z0 + t Δz)^T m dt, so that
// m_z . Δz = m . Δs (the fundamental theorem of calculus), with 16
// Gauss-Legendre nodes (6e-10 of the sum on the zoo ViT's attention). The
// product rule on exp(z - k) * (1 / S) sums exactly too, but where the
// reference's scores lie far below x's its 1 / S0 is large and its two
// terms cancel: multipliers three times these at the ViT's first block,
// maps of 1e6 after four.
at::Tensor softmax_multipliers(const RuleContext& ctx, const LayerRecord& rec0, const at::Tensor& m) {
  const auto* op = dynamic_cast<const TorchOp*>(&ctx.layer);
  MIPIN_CHECK(op != nullptr, "deeplift: node ", ctx.index, " is not a softmax");
  const auto dim_argument = op->constant_argument(1);
  MIPIN_CHECK(dim_argument && dim_argument->isInt(), "deeplift: the softmax at node ", ctx.index,
              " has no constant axis");
  const at::Tensor& z = ctx.record.input;
  const at::Tensor z0 = rec0.input.expand_as(z);
  const int64_t dim = dim_argument->toInt();
  // Gauss-Legendre nodes and weights on [0, 1].
  static const std::vector<std::pair<double, double>> nodes = [] {
    const double x[8] = {0.0950125098376374, 0.2816035507792589, 0.4580167776572274, 0.6178762444026438,
                         0.7554044083550030, 0.8656312023878318, 0.9445750230732326, 0.9894009349916499};
    const double w[8] = {0.1894506104550685, 0.1826034150449236, 0.1691565193950025, 0.1495959888165767,
                         0.1246289712555339, 0.0951585116824928, 0.0622535239386479, 0.0271524594117541};
    std::vector<std::pair<double, double>> out;
    for (int i = 0; i < 8; ++i) {
      out.emplace_back((1 - x[i]) / 2, w[i] / 2);
      out.emplace_back((1 + x[i]) / 2, w[i] / 2);
    }
    return out;
  }();
  const at::Tensor dz = z - z0;
  at::Tensor out = torch::zeros_like(z);
  for (const auto& [t, w] : nodes) {
    const at::Tensor y = torch::softmax(z0 + t * dz, dim);
    out += w * y * (m - (m * y).sum(dim, /*keepdim=*/true));
  }
  return out;
}

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
    Composite c("deeplift");
    c.fallback(gradient_composite());
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
    // Transformer ops (docs/design.md 1.5): products at the midpoint (and
    // linear ops, a sum, a mean, adding a constant, where the gradient is
    // exact), LayerNorm and softmax as products of their parts, any other
    // element-wise op by its own rescale.
    const auto product = std::make_shared<FunctionRule>([r0](const RuleContext& ctx, const at::Tensor& m) {
      return midpoint_vjp(ctx, r0->layers[ctx.index], m);
    });
    c.with_group(OpGroup::product, product).with_group(OpGroup::affine, product);
    c.with_group(OpGroup::activation, std::make_shared<FunctionRule>([r0](const RuleContext& ctx, const at::Tensor& m) {
      return elementwise_rescale(ctx, r0->layers[ctx.index], m);
    }));
    c.with_op("aten::layer_norm", std::make_shared<FunctionRule>([r0](const RuleContext& ctx, const at::Tensor& m) {
      return Signals(layer_norm_multipliers(ctx, r0->layers[ctx.index], m));
    }));
    c.with_op("aten::softmax", std::make_shared<FunctionRule>([r0](const RuleContext& ctx, const at::Tensor& m) {
      return Signals(softmax_multipliers(ctx, r0->layers[ctx.index], m));
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
