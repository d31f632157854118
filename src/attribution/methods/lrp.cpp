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

namespace mipin {
namespace {

// The layer's linear map with another weight (and optional bias).
at::Tensor forward_with(const Layer& layer, const at::Tensor& weight, const at::Tensor& bias,
                        const at::Tensor& a) {
  if (layer.kind() == LayerKind::Linear) return torch::linear(a, weight, bias);
  const auto& conv = static_cast<const Conv2d&>(layer);
  return convolve(conv, a, weight, bias);
}

// Its transpose with another weight.
at::Tensor transpose_with(const Layer& layer, const at::Tensor& weight, const at::Tensor& s,
                          const at::Tensor& input) {
  if (layer.kind() == LayerKind::Linear) return maps::linear_transpose(weight, s);
  return maps::conv_transpose(static_cast<const Conv2d&>(layer), weight, s, input);
}

const at::Tensor& weight_of(const Layer& layer) {
  return layer.kind() == LayerKind::Linear ? static_cast<const Linear&>(layer).weight
                                           : static_cast<const Conv2d&>(layer).weight;
}

// Rules with several terms a_i W_i (signed inputs, z-box's bounds). An
// ungrouped layer takes them as one map, the inputs stacked along the
// feature/channel axis and the weights alike: on an image's first layer (1
// or 3 channels) one such convolution costs about what each of the
// separate ones did. A grouped convolution would mix the stacked channels
// across its groups, so it takes the terms one by one.
class Terms {
 public:
  Terms(const Layer& layer, std::vector<at::Tensor> inputs, std::vector<at::Tensor> weights)
      : layer_(layer), inputs_(std::move(inputs)), weights_(std::move(weights)) {
    stacked_ = layer.kind() == LayerKind::Linear || static_cast<const Conv2d&>(layer).groups == 1;
    if (stacked_) {
      input_ = at::cat(inputs_, 1);
      weight_ = at::cat(weights_, 1);
    }
  }

  // z = sum_i a_i W_i.
  at::Tensor forward() const {
    if (stacked_) return forward_with(layer_, weight_, at::Tensor(), input_);
    at::Tensor z = forward_with(layer_, weights_[0], at::Tensor(), inputs_[0]);
    for (size_t i = 1; i < inputs_.size(); ++i) z += forward_with(layer_, weights_[i], at::Tensor(), inputs_[i]);
    return z;
  }

  // sum_i a_i * (W_i^T s).
  at::Tensor redistribute(const at::Tensor& s) const {
    std::vector<at::Tensor> parts;
    if (stacked_) {
      parts = transpose_with(layer_, weight_, s, input_).chunk(inputs_.size(), 1);
    } else {
      for (size_t i = 0; i < inputs_.size(); ++i) parts.push_back(transpose_with(layer_, weights_[i], s, inputs_[i]));
    }
    at::Tensor out = inputs_[0] * parts[0];
    for (size_t i = 1; i < parts.size(); ++i) out += inputs_[i] * parts[i];
    return out;
  }

 private:
  const Layer& layer_;
  std::vector<at::Tensor> inputs_, weights_;
  bool stacked_;
  at::Tensor input_, weight_;
};


// LRP-epsilon: R_in = a * W^T (R / (z + eps sign z)), z the layer's output.
std::shared_ptr<const Rule> epsilon_rule(double epsilon) {
  return std::make_shared<FunctionRule>([epsilon](const RuleContext& ctx, const at::Tensor& r) {
    const at::Tensor& a = ctx.record.input;
    const at::Tensor s = fused::stabilised_divide(r, ctx.record.output, epsilon);
    return a * transpose_with(ctx.layer, weight_of(ctx.layer), s, a);
  });
}

// LRP-alpha-beta (alpha - beta = 1): positive and negative contributions are
// normalised separately; biases are left out. alpha=1, beta=0 is LRP-z+.
std::shared_ptr<const Rule> alpha_beta_rule(double alpha, double beta) {
  return std::make_shared<FunctionRule>([alpha, beta](const RuleContext& ctx, const at::Tensor& r) {
    const at::Tensor& a = ctx.record.input;
    const at::Tensor& w = weight_of(ctx.layer);
    const at::Tensor wp = w.clamp_min(0), wn = w.clamp_max(0);
    // Behind a ReLU the input has no negative part: its terms are zero, and
    // skipping them halves the convolutions of this rule.
    const bool signed_input = (a < 0).any().item<bool>();
    const at::Tensor ap = signed_input ? a.clamp_min(0) : a, an = signed_input ? a.clamp_max(0) : at::Tensor();
    const at::Tensor undefined;
    auto share = [&](const at::Tensor& w1, const at::Tensor& w2) {
      // Relevance over the contributions a+ w1 + a- w2.
      if (signed_input) {
        const Terms terms(ctx.layer, {ap, an}, {w1, w2});
        return terms.redistribute(fused::stabilised_divide(r, terms.forward(), 1e-9));
      }
      const at::Tensor s = fused::stabilised_divide(r, forward_with(ctx.layer, w1, undefined, ap), 1e-9);
      return ap * transpose_with(ctx.layer, w1, s, a);
    };
    at::Tensor out = share(wp, wn);
    if (alpha != 1) out = alpha * out;
    if (beta != 0) out = out - beta * share(wn, wp);
    return out;
  });
}

// z-box (Montavon et al. 2017) for the first layer, whose inputs lie in
// [low, high] rather than being non-negative activations.
std::shared_ptr<const Rule> zbox_rule(double low, double high) {
  return std::make_shared<FunctionRule>([low, high](const RuleContext& ctx, const at::Tensor& r) {
    const at::Tensor& a = ctx.record.input;
    const at::Tensor& w = weight_of(ctx.layer);
    // z = a w - l w+ - h w-, and the relevance splits the same way.
    const Terms terms(ctx.layer, {a, torch::full_like(a, low), torch::full_like(a, high)},
                      {w, -w.clamp_min(0), -w.clamp_max(0)});
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

// Shared by every LRP variant: relevance passes ReLU and reshapes unchanged
// and goes to the winner of max pooling.
Composite lrp_base(const std::string& name, double epsilon) {
  Composite c = gradient_composite();
  c.rename(name);
  const auto pass = std::make_shared<FunctionRule>([](const RuleContext&, const at::Tensor& r) { return r; });
  c.with(LayerKind::ReLU, pass).with(LayerKind::Dropout, pass);
  c.with(LayerKind::AvgPool2d, pooling_rule(epsilon)).with(LayerKind::AdaptiveAvgPool2d, pooling_rule(epsilon));
  c.with(LayerKind::BatchNorm2d, std::make_shared<FunctionRule>([](const RuleContext& ctx, const at::Tensor&) -> at::Tensor {
    MIPIN_FAIL("LRP needs BatchNorm folded into the convolution before it (layer ", ctx.index, ")");
  }));
  return c;
}

std::unique_ptr<AttributionMethod> lrp(const std::string& name,
                                       std::function<Composite(const Network&)> composite) {
  return std::make_unique<CompositeMethod>(name, std::move(composite), CompositeMethod::Start::Logit);
}

size_t first_parametric(const Network& net) {
  for (size_t i = 0; i < net.size(); ++i) {
    const LayerKind k = net.layer(i).kind();
    if (k == LayerKind::Linear || k == LayerKind::Conv2d) return i;
  }
  MIPIN_FAIL("the network has no Linear or Conv2d layer to apply LRP to");
}

const RegisterMethod epsilon_method({
    "lrp-epsilon",
    "LRP with the epsilon rule on every Linear/Conv2d layer",
    "--epsilon E (default 1e-6)",
    [](const MethodSettings& s) {
      const double eps = s.epsilon;
      return lrp("lrp-epsilon", [eps](const Network&) {
        Composite c = lrp_base("lrp-epsilon", eps);
        c.with(LayerKind::Linear, epsilon_rule(eps)).with(LayerKind::Conv2d, epsilon_rule(eps));
        return c;
      });
    },
});

const RegisterMethod zplus_method({
    "lrp-zplus",
    "LRP with the z+ rule (positive contributions only) on every Linear/Conv2d layer",
    "",
    [](const MethodSettings&) {
      return lrp("lrp-zplus", [](const Network&) {
        Composite c = lrp_base("lrp-zplus", 1e-9);
        c.with(LayerKind::Linear, alpha_beta_rule(1, 0)).with(LayerKind::Conv2d, alpha_beta_rule(1, 0));
        return c;
      });
    },
});

const RegisterMethod alpha_beta_method({
    "lrp-alpha-beta",
    "LRP with the alpha-beta rule on every Linear/Conv2d layer",
    "--alpha A --beta B (alpha - beta = 1; default 1 and 0)",
    [](const MethodSettings& s) {
      MIPIN_CHECK(std::abs(s.alpha - s.beta - 1) < 1e-9, "lrp-alpha-beta needs alpha - beta = 1, found alpha ",
                  s.alpha, " and beta ", s.beta);
      const double alpha = s.alpha, beta = s.beta;
      return lrp("lrp-alpha-beta", [alpha, beta](const Network&) {
        Composite c = lrp_base("lrp-alpha-beta", 1e-9);
        c.with(LayerKind::Linear, alpha_beta_rule(alpha, beta))
            .with(LayerKind::Conv2d, alpha_beta_rule(alpha, beta));
        return c;
      });
    },
});

const RegisterMethod composite_method({
    "lrp-composite",
    "LRP as best practice recommends: epsilon on dense layers, alpha1-beta0 on convolutions, "
    "z-box with the data's bounds on the first layer",
    "--epsilon E (default 1e-6); bounds from the data's normalisation",
    [](const MethodSettings& s) {
      const double eps = std::max(s.epsilon, 1e-9);
      const auto bounds = s.input_bounds;
      return lrp("lrp-composite", [eps, bounds](const Network& net) {
        Composite c = lrp_base("lrp-composite", eps);
        c.with(LayerKind::Linear, epsilon_rule(eps)).with(LayerKind::Conv2d, alpha_beta_rule(1, 0));
        c.with_layer(first_parametric(net), zbox_rule(bounds.first, bounds.second));
        return c;
      });
    },
});

}  // namespace
}  // namespace mipin
