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
#include "attribution/rules.h"

namespace mipin {
namespace {

using rules::BiasRule;

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
// The softmax's linearisation is not conservative: sum_i x_i (R_i - s_i
// sum_j R_j) is not sum_j R_j, the rest being its bias, so relevance is
// lost at every softmax even in a bias-free model. Holding the attention
// weights constant instead (CP-LRP, Ali et al. 2022: relevance into P V
// goes wholly to V, none through the softmax) conserves it.
enum class AttentionRule { attnlrp, value_path };

std::shared_ptr<const Rule> linearised_rule(double epsilon, bool product,
                                            AttentionRule attention = AttentionRule::attnlrp) {
  return std::make_shared<FunctionRule>([epsilon, product, attention](const RuleContext& ctx, const at::Tensor& r) {
    const at::Tensor s = fused::stabilised_divide(r, ctx.record.output, epsilon);
    const size_t n = std::max<size_t>(ctx.record.inputs.size(), 1);
    const std::vector<double> shares = !product                                ? std::vector<double>(n, 1.0)
                                       : attention == AttentionRule::value_path ? product_shares(ctx)
                                                                                : std::vector<double>(n, 1.0 / double(n));
    Signals out = weighted_vjp(ctx, s, shares);
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

// Shared by every LRP variant, on the gradient's rules (max pooling to
// the winner, reshapes, concatenations): relevance passes activations
// unchanged and goes wholly to the gated value at a gate (the gate only
// scales it); every other op takes the epsilon rule of its linearisation
// (AttnLRP), LayerNorm with its sd held constant. Each variant adds its
// rule for Linear and Conv2d.
Composite lrp_base(const std::string& name, double epsilon, AttentionRule attention) {
  Composite c(name);
  c.fallback(gradient_composite());
  const auto pass = rules::pass();
  c.with(LayerKind::ReLU, pass).with(LayerKind::Activation, pass).with_group(OpGroup::activation, pass);
  c.with(LayerKind::AvgPool2d, pooling_rule(epsilon)).with(LayerKind::AdaptiveAvgPool2d, pooling_rule(epsilon));
  c.with(LayerKind::BatchNorm2d, batchnorm_rule(epsilon));
  c.with(LayerKind::Add, add_rule(epsilon));
  c.with(LayerKind::Mul, std::make_shared<FunctionRule>([](const RuleContext& ctx, const at::Tensor& r) {
    Signals out(2);
    out[1 - static_cast<const Mul&>(ctx.layer).gate_index(ctx.record)] = r;
    return out;
  }));
  c.with_group(OpGroup::product, linearised_rule(epsilon, true, attention));
  const auto linearised = linearised_rule(epsilon, false);
  c.with_group(OpGroup::affine, linearised).with_group(OpGroup::normalization, linearised);
  c.with_group(OpGroup::pooling, linearised);
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

OptionSpec attention_option() {
  return OptionSpec::choice("attention", {"attnlrp", "value-path"},
                            "relevance at attention's products: attnlrp (split evenly, the softmax linearised; "
                            "loses what the softmax's bias absorbs) or value-path (the attention weights held "
                            "constant, all of it to the values; conserved)");
}

AttentionRule parse_attention_rule(const MethodSettings& s) {
  return s.options.choice("attention") == "value-path" ? AttentionRule::value_path : AttentionRule::attnlrp;
}

OptionSpec epsilon_option() {
  return OptionSpec::real("epsilon", 1e-6, "the stabiliser added to each denominator").at_least(0);
}

const RegisterMethod epsilon_method(MethodEntry{
    "lrp-epsilon",
    "LRP with the epsilon rule on every Linear/Conv2d layer",
    {epsilon_option(), attention_option()},
    [](const MethodSettings& s) {
      const double eps = s.options.real("epsilon");
      const AttentionRule attention = parse_attention_rule(s);
      return lrp("lrp-epsilon", [eps, attention](const Network&) {
        Composite c = lrp_base("lrp-epsilon", eps, attention);
        c.with_affine(rules::epsilon(eps));
        return c;
      });
    },
}.times_input());

const RegisterMethod zplus_method(MethodEntry{
    "lrp-zplus",
    "LRP with the z+ rule (positive contributions only) on every Linear/Conv2d layer",
    {bias_option(), stabilizer_option(), attention_option()},
    [](const MethodSettings& s) {
      const BiasRule bias = parse_bias_rule(s.options.choice("bias"));
      const double stabilizer = s.options.real("stabilizer");
      const AttentionRule attention = parse_attention_rule(s);
      return lrp("lrp-zplus", [bias, stabilizer, attention](const Network&) {
        Composite c = lrp_base("lrp-zplus", 1e-9, attention);
        c.with_affine(rules::alpha_beta(1, 0, bias, stabilizer));
        return c;
      });
    },
}.times_input());

const RegisterMethod alpha_beta_method(MethodEntry{
    "lrp-alpha-beta",
    "LRP with the alpha-beta rule on every Linear/Conv2d layer",
    {OptionSpec::real("alpha", 1, "weight of the positive contributions (alpha - beta = 1)").at_least(1),
     OptionSpec::real("beta", 0, "weight of the negative contributions (alpha - beta = 1)").at_least(0),
     bias_option(), stabilizer_option(), attention_option()},
    [](const MethodSettings& s) {
      const double alpha = s.options.real("alpha"), beta = s.options.real("beta");
      MIPIN_CHECK(std::abs(alpha - beta - 1) < 1e-9, "lrp-alpha-beta needs alpha - beta = 1, found alpha ", alpha,
                  " and beta ", beta);
      const BiasRule bias = parse_bias_rule(s.options.choice("bias"));
      const double stabilizer = s.options.real("stabilizer");
      const AttentionRule attention = parse_attention_rule(s);
      return lrp("lrp-alpha-beta", [alpha, beta, bias, stabilizer, attention](const Network&) {
        Composite c = lrp_base("lrp-alpha-beta", 1e-9, attention);
        c.with_affine(rules::alpha_beta(alpha, beta, bias, stabilizer));
        return c;
      });
    },
}.times_input());

const RegisterMethod composite_method(MethodEntry{
    "lrp-composite",
    "LRP as best practice recommends: epsilon on dense layers, alpha1-beta0 on convolutions, "
    "z-box with the data's bounds (from its normalisation) on the first layer; the first layer's and the "
    "convolutions' rules can be chosen (Zennit's EpsilonPlusFlat is first=flat, EpsilonGammaBox conv=gamma)",
    {epsilon_option(), attention_option(),
     OptionSpec::choice("first", {"zbox", "flat", "wsquare"},
                        "the first layer's rule: zbox (the data's bounds), flat (relevance spread evenly over "
                        "its receptive field) or wsquare (in proportion to the squared weights)"),
     OptionSpec::choice("conv", {"zplus", "gamma"},
                        "the convolutions' rule: zplus (alpha1-beta0) or gamma (positive contributions "
                        "favoured by the factor gamma)"),
     OptionSpec::real("gamma", 0.25, "gamma's weight of the positive contributions (conv=gamma)").at_least(0)},
    [](const MethodSettings& s) {
      const double eps = std::max(s.options.real("epsilon"), 1e-9);
      const auto bounds = s.input_bounds;
      const AttentionRule attention = parse_attention_rule(s);
      const std::string first = s.options.choice("first");
      const auto conv = s.options.choice("conv") == "gamma" ? rules::gamma(s.options.real("gamma"))
                                                            : rules::alpha_beta(1, 0);
      const auto first_rule = first == "flat"      ? rules::flat()
                              : first == "wsquare" ? rules::w_square()
                                                   : rules::zbox(bounds.first, bounds.second);
      return lrp("lrp-composite", [eps, attention, conv, first_rule](const Network& net) {
        Composite c = lrp_base("lrp-composite", eps, attention);
        c.with(LayerKind::Linear, rules::epsilon(eps)).with(LayerKind::Conv2d, conv);
        c.with_layer(first_parametric(net), first_rule);
        return c;
      });
    },
}.times_input().with_input_bounds());

}  // namespace
}  // namespace mipin
