#include "attribution/rules.h"

#include <torch/torch.h>

#include "mipin/attribution/fused.h"
#include "mipin/model/layers.h"
#include "mipin/util/error.h"
#include "util/derived_tensor_cache.h"

namespace mipin::rules {
namespace {

const AffineLayer& affine(const Layer& layer) { return static_cast<const AffineLayer&>(layer); }

// What the rules use of a layer's weight: W itself, its positive part W+ =
// max(W, 0), its negative part W- = min(W, 0), or their negatives.
enum class Part { weight, positive, negative, minus_positive, minus_negative, ones, square };
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
      case Part::ones: return torch::ones_like(w);
      case Part::square: return w.square();
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
// A bias part [units] shaped to broadcast against the layer's output z.
at::Tensor bias_like_output(const at::Tensor& part, const at::Tensor& z) {
  std::vector<int64_t> shape(size_t(z.dim()), 1);
  shape[1] = part.numel();
  return part.view(shape);
}

}  // namespace

std::shared_ptr<const Rule> pass() {
  return std::make_shared<FunctionRule>([](const RuleContext&, const at::Tensor& r) { return Signals(r); });
}

std::shared_ptr<const Rule> gradient() { return autograd_rule(); }

// LRP-epsilon: R_in = a * W^T (R / (z + eps sign z)), z the layer's output.
std::shared_ptr<const Rule> epsilon(double epsilon) {
  return std::make_shared<FunctionRule>([epsilon](const RuleContext& ctx, const at::Tensor& r) {
    const at::Tensor& a = ctx.record.input;
    const at::Tensor s = fused::stabilised_divide(r, ctx.record.output, epsilon);
    const AffineLayer& layer = affine(ctx.layer);
    // In place: the transposed map's result is a new tensor, and a
    // network's worth of fresh allocations costs page faults.
    return layer.transposed_map(layer.weight, s, a).mul_(a);
  });
}

std::shared_ptr<const Rule> alpha_beta(double alpha, double beta, BiasRule bias, double stabilizer) {
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

std::shared_ptr<const Rule> zbox(double low, double high) {
  return std::make_shared<FunctionRule>([low, high](const RuleContext& ctx, const at::Tensor& r) {
    const at::Tensor& a = ctx.record.input;
    // z = a w - l w+ - h w-, and the relevance splits the same way.
    const Terms terms(ctx.layer, {a, torch::full_like(a, low), torch::full_like(a, high)},
                      {Part::weight, Part::minus_positive, Part::minus_negative});
    return terms.redistribute(fused::stabilised_divide(r, terms.forward(), 1e-9));
  });
}

std::shared_ptr<const Rule> flat(double stabilizer) {
  return std::make_shared<FunctionRule>([stabilizer](const RuleContext& ctx, const at::Tensor& r) {
    const Terms terms(ctx.layer, {torch::ones_like(ctx.record.input)}, {Part::ones});
    return terms.redistribute(fused::stabilised_divide(r, terms.forward(), stabilizer));
  });
}

std::shared_ptr<const Rule> w_square(double stabilizer) {
  return std::make_shared<FunctionRule>([stabilizer](const RuleContext& ctx, const at::Tensor& r) {
    const Terms terms(ctx.layer, {torch::ones_like(ctx.record.input)}, {Part::square});
    return terms.redistribute(fused::stabilised_divide(r, terms.forward(), stabilizer));
  });
}

std::shared_ptr<const Rule> gamma(double gamma, double stabilizer) {
  return std::make_shared<FunctionRule>([gamma, stabilizer](const RuleContext& ctx, const at::Tensor& r) {
    const at::Tensor& a = ctx.record.input;
    const at::Tensor& z = ctx.record.output;
    // x+ (W + g W+) + x- (W + g W-) = x W + g x+ W+ + g x- W-, and the
    // negative side with the parts swapped.
    const std::vector<at::Tensor> inputs{a, gamma * a.clamp_min(0), gamma * a.clamp_max(0)};
    const Terms positive(ctx.layer, inputs, {Part::weight, Part::positive, Part::negative});
    const Terms negative(ctx.layer, inputs, {Part::weight, Part::negative, Part::positive});
    return positive.redistribute(fused::stabilised_divide(r * (z > 0), positive.forward(), stabilizer))
        .add_(negative.redistribute(fused::stabilised_divide(r * (z < 0), negative.forward(), stabilizer)));
  });
}

}  // namespace mipin::rules
