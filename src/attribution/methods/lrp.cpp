// Layer-wise relevance propagation (Bach et al. 2015; rules as in Montavon et
// al. 2019). Relevance starts as the target logit and is redistributed layer
// by layer; ReLU passes it on, max pooling gives it to the winner, linear
// layers use one of the rules below.
#include <torch/torch.h>

#include "mipin/attribution/composite_method.h"
#include "mipin/attribution/fused.h"
#include "mipin/attribution/gradient.h"
#include "mipin/attribution/layer_maps.h"
#include "mipin/attribution/registry.h"
#include "mipin/model/convolution.h"
#include "mipin/model/layers.h"
#include "mipin/util/error.h"
#include "attribution/op_parts.h"
#include "util/derived_tensor_cache.h"

namespace mipin {
namespace {

const AffineLayer& affine(const Layer& layer) { return static_cast<const AffineLayer&>(layer); }

// What the rules use of a layer's weight: W itself, its positive part W+ =
// max(W, 0), its negative part W- = min(W, 0), or their negatives.
enum class Part { weight, positive, negative, minus_positive, minus_negative };
// One part, or several stacked along the input axis (see Terms).
using Parts = std::vector<Part>;

// Parts are kept while the weight lives and is unchanged: the rules need
// them on every call, and deriving them again would cost a pass over the
// weight (400 MB for VGG16's first dense layer) and, for a convolution, a
// new packed copy for its kernels. The price is one more copy of each
// weight a rule has used, held until the model is freed.
at::Tensor weight_parts(const at::Tensor& w, const Parts& parts) {
  // The weight itself is not cached: its entry would keep it alive.
  if (parts == Parts{Part::weight}) return w;
  static auto* cache = new DerivedTensorCache<Parts, at::Tensor>(256);
  return cache->get(w, parts, [&]() -> at::Tensor {
    if (parts.size() > 1) {
      std::vector<at::Tensor> each;
      for (Part p : parts) each.push_back(weight_parts(w, {p}));
      return at::cat(each, 1);
    }
    switch (parts[0]) {
      case Part::positive: return w.clamp_min(0);
      case Part::negative: return w.clamp_max(0);
      case Part::minus_positive: return -weight_parts(w, {Part::positive});
      case Part::minus_negative: return -weight_parts(w, {Part::negative});
      case Part::weight: break;  // returned above
    }
    MIPIN_FAIL("weight_parts: no derivation for this part");
  });
}

// Rules with several terms a_i W_i (signed inputs, z-box's bounds). An
// ungrouped layer takes them as one map, the inputs stacked along the
// feature/channel axis and the weights alike: on an image's first layer (1
// or 3 channels) one such convolution costs about what each of the
// separate ones did. A grouped convolution would mix the stacked channels
// across its groups, so it takes the terms one by one.
class Terms {
 public:
  Terms(const Layer& layer, std::vector<at::Tensor> inputs, const Parts& parts)
      : layer_(affine(layer)), inputs_(std::move(inputs)) {
    const at::Tensor& w = layer_.weight;
    stacked_ = layer_.weight_groups() == 1;
    if (stacked_) {
      input_ = at::cat(inputs_, 1);
      weight_ = weight_parts(w, parts);
    } else {
      for (Part p : parts) weights_.push_back(weight_parts(w, {p}));
    }
  }

  // z = sum_i a_i W_i.
  at::Tensor forward() const {
    if (stacked_) return layer_.map(input_, weight_);
    at::Tensor z = layer_.map(inputs_[0], weights_[0]);
    for (size_t i = 1; i < inputs_.size(); ++i) z += layer_.map(inputs_[i], weights_[i]);
    return z;
  }

  // sum_i a_i * (W_i^T s).
  at::Tensor redistribute(const at::Tensor& s) const {
    std::vector<at::Tensor> parts;
    if (stacked_) {
      parts = layer_.transposed_map(weight_, s, input_).chunk(inputs_.size(), 1);
    } else {
      for (size_t i = 0; i < inputs_.size(); ++i) parts.push_back(layer_.transposed_map(weights_[i], s, inputs_[i]));
    }
    at::Tensor out = inputs_[0] * parts[0];
    for (size_t i = 1; i < parts.size(); ++i) out += inputs_[i] * parts[i];
    return out;
  }

 private:
  const AffineLayer& layer_;
  std::vector<at::Tensor> inputs_, weights_;
  bool stacked_;
  at::Tensor input_, weight_;
};

// LRP-epsilon: R_in = a * W^T (R / (z + eps sign z)), z the layer's output.
std::shared_ptr<const Rule> epsilon_rule(double epsilon) {
  return std::make_shared<FunctionRule>([epsilon](const RuleContext& ctx, const at::Tensor& r) {
    const at::Tensor& a = ctx.record.input;
    const at::Tensor s = fused::stabilised_divide(r, ctx.record.output, epsilon);
    const AffineLayer& layer = affine(ctx.layer);
    // In place: the transposed map's result is a new tensor, and a
    // network's worth of fresh allocations costs page faults.
    return layer.transposed_map(layer.weight, s, a).mul_(a);
  });
}

// Where the alpha-beta rules put a layer's bias, a choice the LRP papers
// leave open and libraries make differently:
//   ignore  out of both denominators: the inputs share all the relevance
//           (conserved layer by layer); mipin's default
//   absorb  its positive part joins the positive contributions'
//           denominator and its negative part the negative ones', so the
//           bias keeps its share and less reaches the inputs (Zennit 0.5.1's
//           ZPlus and AlphaBeta)
// The epsilon rule divides by the layer's output, bias included, in both.
enum class BiasRule { ignore, absorb };

BiasRule parse_bias_rule(const std::string& text) { return text == "absorb" ? BiasRule::absorb : BiasRule::ignore; }

OptionSpec stabilizer_option() {
  return OptionSpec::real("stabilizer", 1e-9,
                          "added to each denominator with its sign (Zennit's default is 1e-6)").at_least(0);
}

OptionSpec bias_option() {
  return OptionSpec::choice("bias", {"ignore", "absorb"},
                            "where the bias goes: ignore (out of the denominators, relevance conserved) or "
                            "absorb (its positive and negative parts in the denominators, as Zennit 0.5.1)");
}

// A bias part [units] shaped to broadcast against the layer's output z.
at::Tensor bias_like_output(const at::Tensor& part, const at::Tensor& z) {
  std::vector<int64_t> shape(size_t(z.dim()), 1);
  shape[1] = part.numel();
  return part.view(shape);
}

// LRP-alpha-beta (alpha - beta = 1): positive and negative contributions are
// normalised separately; alpha=1, beta=0 is LRP-z+.
std::shared_ptr<const Rule> alpha_beta_rule(double alpha, double beta, BiasRule bias = BiasRule::ignore,
                                            double stabilizer = 1e-9) {
  return std::make_shared<FunctionRule>([alpha, beta, bias, stabilizer](const RuleContext& ctx, const at::Tensor& r) {
    const at::Tensor& a = ctx.record.input;
    const AffineLayer& layer = affine(ctx.layer);
    // Behind a ReLU the input has no negative part: its terms are zero, and
    // skipping them halves the convolutions of this rule. The graph knows
    // where a ReLU or a pooling of one made the input; elsewhere a scan
    // finds out (a full min costs four division passes: on resnet50 at
    // batch 8 the scans of every input were 14% of LRP-z+'s time).
    const bool signed_input = !ctx.record.input_non_negative && a.min().item<double>() < 0;
    const at::Tensor ap = signed_input ? a.clamp_min(0) : a, an = signed_input ? a.clamp_max(0) : at::Tensor();
    const bool with_bias = bias == BiasRule::absorb && layer.bias.defined();
    auto share = [&](Part first, Part second) {
      // The bias part of the same sign as the contributions a+ W_first.
      auto denominator = [&](at::Tensor z) {
        if (!with_bias) return z;
        const at::Tensor part = first == Part::positive ? layer.bias.clamp_min(0) : layer.bias.clamp_max(0);
        return z.add_(bias_like_output(part, z));
      };
      // Relevance over the contributions a+ W_first + a- W_second.
      if (signed_input) {
        const Terms terms(ctx.layer, {ap, an}, {first, second});
        return terms.redistribute(fused::stabilised_divide(r, denominator(terms.forward()), stabilizer));
      }
      const at::Tensor w1 = weight_parts(layer.weight, {first});
      const at::Tensor s = fused::stabilised_divide(r, denominator(layer.map(ap, w1)), stabilizer);
      return layer.transposed_map(w1, s, a).mul_(ap);
    };
    at::Tensor out = share(Part::positive, Part::negative);
    if (alpha != 1) out = alpha * out;
    if (beta != 0) out = out - beta * share(Part::negative, Part::positive);
    return out;
  });
}

// z-box (Montavon et al. 2017) for the first layer, whose inputs lie in
// [low, high] rather than being non-negative activations.
std::shared_ptr<const Rule> zbox_rule(double low, double high) {
  return std::make_shared<FunctionRule>([low, high](const RuleContext& ctx, const at::Tensor& r) {
    const at::Tensor& a = ctx.record.input;
    // z = a w - l w+ - h w-, and the relevance splits the same way.
    const Terms terms(ctx.layer, {a, torch::full_like(a, low), torch::full_like(a, high)},
                      {Part::weight, Part::minus_positive, Part::minus_negative});
    return terms.redistribute(fused::stabilised_divide(r, terms.forward(), 1e-9));
  });
}

// Average pooling is linear: the epsilon rule applies with its own map.
std::shared_ptr<const Rule> pooling_rule(double epsilon) {
  return std::make_shared<FunctionRule>([epsilon](const RuleContext& ctx, const at::Tensor& r) {
    const at::Tensor& a = ctx.record.input;
    const at::Tensor s = fused::stabilised_divide(r, ctx.record.output, epsilon);
    const at::Tensor c = ctx.layer.kind() == LayerKind::AvgPool2d
                             ? maps::avg_pool_transpose(static_cast<const AvgPool2d&>(ctx.layer),
                                                        ctx.record, s)
                             : maps::adaptive_avg_pool_transpose(ctx.record, s);
    return a * c;
  });
}

// A residual add splits relevance in proportion to each input's share of
// the sum (epsilon-stabilised, as Zennit's residual canonizer does), so
// that it is conserved: sum_k a_k R / z = R.
std::shared_ptr<const Rule> add_rule(double epsilon) {
  return std::make_shared<FunctionRule>([epsilon](const RuleContext& ctx, const at::Tensor& r) {
    const std::vector<at::Tensor> shares = fused::proportional_split(r, ctx.record.output, ctx.record.inputs, epsilon);
    return Signals(shares.begin(), shares.end());
  });
}

// A BatchNorm that could not be folded is a per-channel affine map: the
// epsilon rule with its scale (its shift, like a bias, absorbs relevance).
std::shared_ptr<const Rule> batchnorm_rule(double epsilon) {
  return std::make_shared<FunctionRule>([epsilon](const RuleContext& ctx, const at::Tensor& r) {
    const at::Tensor& a = ctx.record.input;
    const at::Tensor s = fused::stabilised_divide(r, ctx.record.output, epsilon);
    return a * maps::batchnorm_transpose(static_cast<const BatchNorm2d&>(ctx.layer), s);
  });
}

// Ops of transformers (AttnLRP, Achtibat et al. 2024): the epsilon rule of
// the op's linearisation, R_k = share_k x_k J_k^T (R / y). For a linear op
// (a sum, a mean, a constant added or multiplied) it is the epsilon rule;
// for softmax, its linearisation with the rest absorbed as a bias,
// R = x (R - s sum R); for a product of two computed tensors (attention's
// Q K^T and P V) the relevance splits evenly between the operands.
std::shared_ptr<const Rule> linearised_rule(double epsilon, bool product) {
  return std::make_shared<FunctionRule>([epsilon, product](const RuleContext& ctx, const at::Tensor& r) {
    const at::Tensor s = fused::stabilised_divide(r, ctx.record.output, epsilon);
    const size_t n = std::max<size_t>(ctx.record.inputs.size(), 1);
    Signals out = weighted_vjp(ctx, s, std::vector<double>(n, product ? 1.0 / double(n) : 1.0));
    for (size_t k = 0; k < out.size(); ++k) {
      if (out[k].defined()) out[k] = out[k] * (ctx.record.inputs.empty() ? ctx.record.input : ctx.record.inputs[k]);
    }
    return out;
  });
}

// LayerNorm with its normaliser sd held constant (AttnLRP): a linear map
// of x, y = g (x - mean) / sd + b, under the epsilon rule; b absorbs
// relevance as a bias does.
std::shared_ptr<const Rule> layer_norm_rule(double epsilon) {
  return std::make_shared<FunctionRule>([epsilon](const RuleContext& ctx, const at::Tensor& r) {
    const auto parts = layer_norm_parts(ctx.layer);
    MIPIN_CHECK(parts.has_value(), "node ", ctx.index, " (", ctx.layer.describe(), ") is not a layer_norm");
    const at::Tensor& x = ctx.record.input;
    const std::vector<int64_t> axes = normalised_axes(*parts, x.dim());
    at::Tensor t = fused::stabilised_divide(r, ctx.record.output, epsilon) / layer_norm_sd(*parts, x);
    if (parts->weight.defined()) t = t * parts->weight;
    return Signals(x * (t - t.mean(axes, /*keepdim=*/true)));
  });
}

// Shared by every LRP variant: relevance passes element-wise activations
// and reshapes unchanged, goes to the winner of max pooling, splits at
// concatenations, and goes wholly to the gated value at a gate (the gate
// only scales it).
Composite lrp_base(const std::string& name, double epsilon) {
  Composite c = gradient_composite();
  c.rename(name);
  const auto pass = std::make_shared<FunctionRule>([](const RuleContext&, const at::Tensor& r) { return r; });
  c.with(LayerKind::ReLU, pass).with(LayerKind::Dropout, pass).with(LayerKind::Activation, pass);
  c.with(LayerKind::AvgPool2d, pooling_rule(epsilon)).with(LayerKind::AdaptiveAvgPool2d, pooling_rule(epsilon));
  c.with(LayerKind::BatchNorm2d, batchnorm_rule(epsilon));
  c.with(LayerKind::Add, add_rule(epsilon));
  c.with(LayerKind::Mul, std::make_shared<FunctionRule>([](const RuleContext& ctx, const at::Tensor& r) {
    Signals out(2);
    out[1 - static_cast<const Mul&>(ctx.layer).gate_index(ctx.record)] = r;
    return out;
  }));
  for (const char* op : {"aten::matmul", "aten::bmm", "aten::mul"}) c.with_op(op, linearised_rule(epsilon, true));
  for (const char* op : {"aten::add", "aten::sub", "aten::mean", "aten::sum", "aten::softmax"}) {
    c.with_op(op, linearised_rule(epsilon, false));
  }
  c.with_op("aten::layer_norm", layer_norm_rule(epsilon));
  return c;
}

std::unique_ptr<AttributionMethod> lrp(const std::string& name,
                                       std::function<Composite(const Network&)> composite) {
  return std::make_unique<CompositeMethod>(name, std::move(composite), CompositeMethod::Start::Logit);
}

size_t first_parametric(const Network& net) {
  for (size_t i = 0; i < net.size(); ++i) {
    if (as_affine(net.layer(i))) return i;
  }
  MIPIN_FAIL("the network has no Linear or Conv2d layer to apply LRP to");
}

OptionSpec epsilon_option() {
  return OptionSpec::real("epsilon", 1e-6, "the stabiliser added to each denominator").at_least(0);
}

const RegisterMethod epsilon_method(MethodEntry{
    "lrp-epsilon",
    "LRP with the epsilon rule on every Linear/Conv2d layer",
    {epsilon_option()},
    [](const MethodSettings& s) {
      const double eps = s.options.real("epsilon");
      return lrp("lrp-epsilon", [eps](const Network&) {
        Composite c = lrp_base("lrp-epsilon", eps);
        c.with_affine(epsilon_rule(eps));
        return c;
      });
    },
}.times_input());

const RegisterMethod zplus_method(MethodEntry{
    "lrp-zplus",
    "LRP with the z+ rule (positive contributions only) on every Linear/Conv2d layer",
    {bias_option(), stabilizer_option()},
    [](const MethodSettings& s) {
      const BiasRule bias = parse_bias_rule(s.options.choice("bias"));
      const double stabilizer = s.options.real("stabilizer");
      return lrp("lrp-zplus", [bias, stabilizer](const Network&) {
        Composite c = lrp_base("lrp-zplus", 1e-9);
        c.with_affine(alpha_beta_rule(1, 0, bias, stabilizer));
        return c;
      });
    },
}.times_input());

const RegisterMethod alpha_beta_method(MethodEntry{
    "lrp-alpha-beta",
    "LRP with the alpha-beta rule on every Linear/Conv2d layer",
    {OptionSpec::real("alpha", 1, "weight of the positive contributions (alpha - beta = 1)").at_least(1),
     OptionSpec::real("beta", 0, "weight of the negative contributions (alpha - beta = 1)").at_least(0),
     bias_option(), stabilizer_option()},
    [](const MethodSettings& s) {
      const double alpha = s.options.real("alpha"), beta = s.options.real("beta");
      MIPIN_CHECK(std::abs(alpha - beta - 1) < 1e-9, "lrp-alpha-beta needs alpha - beta = 1, found alpha ", alpha,
                  " and beta ", beta);
      const BiasRule bias = parse_bias_rule(s.options.choice("bias"));
      const double stabilizer = s.options.real("stabilizer");
      return lrp("lrp-alpha-beta", [alpha, beta, bias, stabilizer](const Network&) {
        Composite c = lrp_base("lrp-alpha-beta", 1e-9);
        c.with_affine(alpha_beta_rule(alpha, beta, bias, stabilizer));
        return c;
      });
    },
}.times_input());

const RegisterMethod composite_method(MethodEntry{
    "lrp-composite",
    "LRP as best practice recommends: epsilon on dense layers, alpha1-beta0 on convolutions, "
    "z-box with the data's bounds (from its normalisation) on the first layer",
    {epsilon_option()},
    [](const MethodSettings& s) {
      const double eps = std::max(s.options.real("epsilon"), 1e-9);
      const auto bounds = s.input_bounds;
      return lrp("lrp-composite", [eps, bounds](const Network& net) {
        Composite c = lrp_base("lrp-composite", eps);
        c.with(LayerKind::Linear, epsilon_rule(eps)).with(LayerKind::Conv2d, alpha_beta_rule(1, 0));
        c.with_layer(first_parametric(net), zbox_rule(bounds.first, bounds.second));
        return c;
      });
    },
}.times_input().with_input_bounds());

}  // namespace
}  // namespace mipin
