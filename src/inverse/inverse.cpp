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
#include "attribution/op_parts.h"
#include "inverse/normal_equations.h"
#include "model/activations.h"
#include "util/derived_tensor_cache.h"

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
  const AffineLayer* affine = as_affine(layer);
  MIPIN_CHECK(affine != nullptr, "inverse operators belong to Linear or Conv2d layers, found ", layer.describe());
  MIPIN_CHECK(op.sizes() == affine->weight.sizes(), "the inverse operator of ", layer.describe(), " has shape ",
              shape_string(op.sizes().vec()), ", expected its weight's ", shape_string(affine->weight.sizes().vec()));
  return affine->transposed_map(op, signal, layer_input, TransposeKernels::fastest);
}

namespace {
// values [units] shaped to broadcast along the unit axis of a signal of this rank.
at::Tensor along_units(const at::Tensor& values, int64_t rank) {
  std::vector<int64_t> shape(static_cast<size_t>(rank), 1);
  shape[static_cast<size_t>(unit_axis(rank))] = -1;
  return values.view(shape);
}
}  // namespace

bool has_fitted_inverse(const Layer& layer, const InverseOptions& options) {
  switch (layer.kind()) {
    case LayerKind::Linear:
    case LayerKind::Conv2d:
    case LayerKind::BatchNorm2d: return true;
    case LayerKind::Add: return options.add_split == AddSplit::Fitted;
    default: return false;
  }
}

Signals apply_fitted_inverse(const Layer& layer, const at::Tensor& fitted, const at::Tensor& signal,
                             const LayerRecord& record) {
  if (as_affine(layer)) return apply_inverse_operator(layer, fitted, signal, record.input);
  MIPIN_CHECK(layer.kind() == LayerKind::Add || layer.kind() == LayerKind::BatchNorm2d,
              "no fitted inverse belongs to ", layer.describe());
  Signals out;
  const bool add = layer.kind() == LayerKind::Add;
  for (int64_t k = 0; k < fitted.size(0); ++k) {
    out.push_back(signal * (add ? along_units(fitted[k], signal.dim()) : maps::per_channel(fitted[k], signal.dim())));
  }
  return out;
}

at::Tensor combine_fork(const at::Tensor& weights, const std::vector<at::Tensor>& parts) {
  MIPIN_CHECK(weights.size(0) == static_cast<int64_t>(parts.size()), "a fork's weights are for ", weights.size(0),
              " readers, but ", parts.size(), " sent a signal");
  at::Tensor out = parts[0] * along_units(weights[0], parts[0].dim());
  for (size_t k = 1; k < parts.size(); ++k) out += parts[k] * along_units(weights[k], parts[k].dim());
  return out;
}

Composite Inverse::composite() const { return composite_from(operators_, {}); }

// Keyed by the operator below (its identity and version) and the add's
// scales (their identity and version, and which input): the scales live as
// long as this cache, which set_operator replaces, so their address names
// them.
struct Inverse::FoldedOperators {
  struct Tag {
    const void* scales;
    uint32_t version;
    int64_t input;
    bool operator==(const Tag& o) const { return scales == o.scales && version == o.version && input == o.input; }
  };
  DerivedTensorCache<Tag, at::Tensor> cache{512};
};

std::shared_ptr<Inverse::FoldedOperators> Inverse::fresh_folded() { return std::make_shared<FoldedOperators>(); }

void Inverse::set_operator(size_t index, at::Tensor op) {
  operators_[index] = std::move(op);
  folded_ = fresh_folded();
}

void Inverse::set_fork(size_t value, at::Tensor weights) { forks_[value] = std::move(weights); }

Composite Inverse::composite_for(const Network& network) const {
  std::map<size_t, at::Tensor> operators = operators_;
  std::map<size_t, std::vector<bool>> unscaled;
  // An add's scales run along its value's unit axis (channels, or a
  // token's features): they fold into the operator below where that axis
  // holds the operator's output units.
  std::vector<Shape> shapes;
  if (!network.input_shape().empty()) shapes = network.shapes(network.input_shape());
  for (const auto& [i, scales] : operators_) {
    if (i >= network.size() || network.layer(i).kind() != LayerKind::Add) continue;
    const auto& inputs = network.inputs(i);
    for (size_t k = 0; k < inputs.size() && int64_t(k) < scales.size(0); ++k) {
      const size_t v = inputs[k];
      if (v == 0 || network.readers(v) != 1) continue;
      const AffineLayer* below = as_affine(network.layer(v - 1));
      const auto op = operators.find(v - 1);
      if (!below || op == operators.end() || op->second.sizes() != below->weight.sizes()) continue;
      if (below->kind() == LayerKind::Linear && (shapes.size() <= v || shapes[v].size() > 2)) continue;
      const FoldedOperators::Tag tag{scales.unsafeGetTensorImpl(),
                                     scales.unsafeGetTensorImpl()->version_counter().current_version(), int64_t(k)};
      const at::Tensor scale = scales[int64_t(k)];
      op->second = folded_->cache.get(op->second, tag, [&] { return op->second * below->per_unit(scale); });
      unscaled[i].resize(inputs.size(), false);
      unscaled[i][k] = true;
    }
  }
  return composite_from(operators, unscaled);
}

Composite Inverse::composite_from(const std::map<size_t, at::Tensor>& operators,
                                  const std::map<size_t, std::vector<bool>>& unscaled) const {
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
      .with(LayerKind::Dropout, rule([](const RuleContext&, const at::Tensor& s) { return s; }))
      .with(LayerKind::Reshape, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::unflatten(ctx.record, s);
      }))
      // Concatenation: the signal's slices go back to their inputs (exact).
      .with(LayerKind::Concat, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::concat_split(static_cast<const Concat&>(ctx.layer), ctx.record, s);
      }))
      // A gate: the gated value gets g * s, the gate's own branch nothing.
      .with(LayerKind::Mul, rule([](const RuleContext& ctx, const at::Tensor& s) {
        return maps::mul_gated_only(static_cast<const Mul&>(ctx.layer), ctx.record, s);
      }));
  // Other activations: this input's transfer factor (f(z) - f(0)) / z, the
  // forward ReLU's reading for any f, or the tangent f'(z).
  const ActivationGate gate = options_.gate;
  c.with(LayerKind::Activation, rule([gate](const RuleContext& ctx, const at::Tensor& s) {
    const auto& a = static_cast<const Activation&>(ctx.layer);
    const ActivationSpec& spec = activation_spec(a.function);
    return gate == ActivationGate::Transfer
               ? activation_transfer(spec, a.parameters, s, ctx.record.input, ctx.record.output)
               : activation_gradient(spec, a.parameters, s, ctx.record.input, ctx.record.output);
  }));
  // LayerNorm y = g (x - mean) / sd + b: the forward's normaliser is a
  // gate (as a ReLU's switch is), so the signal goes back in x's units,
  // s_x = s * sd / g; where g is 0 the channel carried nothing.
  if (options_.layer_norm == LayerNormReading::Gate) {
    c.with_op("aten::layer_norm", rule([](const RuleContext& ctx, const at::Tensor& s) {
      const auto parts = layer_norm_parts(ctx.layer);
      MIPIN_CHECK(parts.has_value(), "node ", ctx.index, " (", ctx.layer.describe(), ") is not a layer_norm");
      at::Tensor out = s * layer_norm_sd(*parts, ctx.record.input);
      if (parts->weight.defined()) {
        const at::Tensor g = parts->weight;
        out = out * torch::where(g != 0, 1 / g, torch::zeros_like(g));
      }
      return Signals(out);
    }));
  } else if (options_.layer_norm == LayerNormReading::Identity) {
    c.with_op("aten::layer_norm", rule([](const RuleContext&, const at::Tensor& s) { return Signals(s); }));
  }
  // Products of computed tensors: an operand that passed through a softmax
  // or sigmoid is a gate (attention's probabilities: s_V = P^T s, Q and K
  // get none); with no gate, each operand gets an even share of its
  // transpose, the other held at its forward value. A product with a
  // constant is linear and takes its transpose whole.
  if (options_.attention == AttentionReading::Gate) {
    const auto product = rule([](const RuleContext& ctx, const at::Tensor& s) {
      return weighted_vjp(ctx, s, product_shares(ctx));
    });
    c.with_group(OpGroup::product, product);
  }
  // A mean over tokens (or any axes): the signal broadcast back, each
  // position reconstructed as the mean (the gradient's share times their count).
  c.with_op("aten::mean", rule([](const RuleContext& ctx, const at::Tensor& s) {
    Signals out = weighted_vjp(ctx, s, {1.0});
    const double count = double(ctx.record.input.numel()) / double(std::max<int64_t>(1, ctx.record.output.numel()));
    if (!out.empty() && out[0].defined()) out[0] = out[0] * count;
    return out;
  }));
  // A constant added (a positional embedding, a bias): it gets no signal,
  // the computed operand all of it; a difference of computed tensors
  // copies the signal to both, the subtrahend's negated.
  for (const char* op : {"aten::add", "aten::sub"}) {
    c.with_op(op, rule([](const RuleContext& ctx, const at::Tensor& s) {
      return weighted_vjp(ctx, s, std::vector<double>(std::max<size_t>(ctx.record.inputs.size(), 1), 1.0));
    }));
  }
  // Adds whose split is not fitted: the forward share, or an even split.
  if (options_.add_split != AddSplit::Fitted) {
    const AddSplit split = options_.add_split;
    const double eps = options_.share_epsilon;
    c.with(LayerKind::Add, rule([split, eps](const RuleContext& ctx, const at::Tensor& s) {
      Signals out;
      const double k = double(ctx.record.inputs.size());
      const at::Tensor share = split == AddSplit::Even ? at::Tensor() : fused::stabilised_divide(s, ctx.record.output, eps);
      for (const auto& a : ctx.record.inputs) out.push_back(split == AddSplit::Even ? s / k : a * share);
      return out;
    }));
  }
  if (options_.fork == ForkCombine::Mean) {
    c.with_fork([](size_t, const std::vector<at::Tensor>& parts) {
      at::Tensor sum = parts[0] + parts[1];
      for (size_t k = 2; k < parts.size(); ++k) sum += parts[k];
      return sum / double(parts.size());
    });
  } else if (options_.fork == ForkCombine::Fitted) {
    const auto forks = forks_;
    c.with_fork([forks](size_t value, const std::vector<at::Tensor>& parts) {
      const auto it = forks.find(value);
      MIPIN_CHECK(it != forks.end(), "the inverse has no weights for the fork at value ", value);
      return combine_fork(it->second, parts);
    });
  }
  c.with_pair(LayerKind::ReLU, LayerKind::MaxPool2d, relu_under_max_pool(relu));
  // Linear, Conv2d, BatchNorm (and adds, with fitted splits) have no rule
  // by kind: only fitted nodes can be inverted.
  for (const auto& [index, op] : operators) {
    const at::Tensor fitted = op;
    const auto folded = unscaled.find(index);
    if (folded != unscaled.end()) {
      const std::vector<bool> plain = folded->second;
      c.with_layer(index, rule([fitted, plain](const RuleContext&, const at::Tensor& s) {
        Signals out;
        for (size_t k = 0; k < plain.size(); ++k) {
          out.push_back(plain[k] ? s : s * along_units(fitted[int64_t(k)], s.dim()));
        }
        return out;
      }));
      continue;
    }
    c.with_layer(index, rule([fitted](const RuleContext& ctx, const at::Tensor& s) {
      return apply_fitted_inverse(ctx.layer, fitted, s, ctx.record);
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
  return propagate(network, record, composite_for(network), top_signal(logits));
}

at::Tensor Inverse::explain(const Network& network, const at::Tensor& x,
                            const at::Tensor& targets) const {
  const TopSignal top = options_.top;
  return backward_from_targets(network, x, targets, composite_for(network), TopValues::of([top](const at::Tensor& logits) {
                                 return make_top_signal(top, logits);
                               }));
}

at::Tensor Inverse::explain_contrast(const Network& network, const at::Tensor& x, const at::Tensor& targets) const {
  torch::NoGradGuard no_grad;
  ForwardRecord record;
  const at::Tensor logits = network.forward(x, &record);
  const int64_t classes = logits.size(1);
  MIPIN_CHECK(classes >= 2, "a contrast needs at least two classes, the model has ", classes);
  MIPIN_CHECK(targets.numel() == x.size(0), "expected one target per example (", x.size(0), "), found ",
              targets.numel());
  MIPIN_CHECK(targets.min().item<int64_t>() >= 0 && targets.max().item<int64_t>() < classes,
              "expected target classes 0 to ", classes - 1, ", found ", targets.min().item<int64_t>(), " to ",
              targets.max().item<int64_t>());
  const double others = 1.0 / double(classes - 1);
  const at::Tensor weights =
      torch::one_hot(targets.reshape({-1}).to(torch::kLong), classes).to(logits.scalar_type()) * (1 + others) - others;
  return propagate(network, record, composite_for(network), top_signal(logits) * weights);
}

void Inverse::check_compatible(const Network& network, const std::string& model_name) const {
  const std::string fingerprint = network.fingerprint();
  MIPIN_CHECK(fingerprint == model_fingerprint_, "the inverse was fitted for another model (",
              this->model_name.empty() ? std::string() : "'" + this->model_name + "', ",
              "fingerprint ", model_fingerprint_, "), but ",
              model_name.empty() ? std::string("this model") : "'" + model_name + "'",
              " has fingerprint ", fingerprint, ": fit the inverse for this model with `mipin fit`");
  // The fingerprint names the model, not the tensors: a damaged or crafted
  // file may carry any.
  check_tensors(network, /*complete=*/true);
}

void Inverse::check_tensors(const Network& network, bool complete) const {
  // Each tensor must have the shape its node implies before any is used.
  const std::vector<std::vector<int64_t>> shapes =
      network.input_shape().empty() ? std::vector<std::vector<int64_t>>() : network.shapes(network.input_shape());
  // Channels of value v (axis 0 of one example), or -1 when the input shape is unknown.
  // (the features of a token: the last axis of [tokens, F]).
  const auto channels = [&](size_t v) {
    return shapes.empty() || shapes[v].empty() ? int64_t{-1} : shapes[v][size_t(unit_axis(int64_t(shapes[v].size()) + 1) - 1)];
  };
  const auto check = [](const at::Tensor& t, std::vector<int64_t> expected, const std::string& what) {
    MIPIN_CHECK(t.scalar_type() == at::kFloat, "the inverse's ", what, " is ", t.scalar_type(), ", expected float32");
    bool same = t.dim() == int64_t(expected.size());
    for (size_t d = 0; same && d < expected.size(); ++d) same = expected[d] < 0 || t.size(int64_t(d)) == expected[d];
    for (int64_t& e : expected) e = std::max<int64_t>(e, 0);
    MIPIN_CHECK(same, "the inverse's ", what, " has shape ", shape_string(t.sizes().vec()), ", expected ",
                shape_string(expected), "; the file is corrupt");
  };
  for (size_t i = 0; i < network.size(); ++i) {
    const Layer& layer = network.layer(i);
    if (!has_fitted_inverse(layer, options_)) continue;
    const auto op = operators_.find(i);
    if (op == operators_.end() && !complete) continue;
    MIPIN_CHECK(op != operators_.end(), "the inverse has no operator for layer ", i, " (", layer.describe(),
                "); the file is incomplete");
    const std::string what = "operator for layer " + std::to_string(i) + " (" + layer.describe() + ")";
    if (const AffineLayer* affine = as_affine(layer)) {
      check(op->second, affine->weight.sizes().vec(), what);
    } else if (layer.kind() == LayerKind::BatchNorm2d) {
      check(op->second, {1, static_cast<const BatchNorm2d&>(layer).running_mean.size(0)}, what);
    } else {
      check(op->second, {int64_t(network.inputs(i).size()), channels(i + 1)}, what);
    }
  }
  for (const auto& [i, op] : operators_) {
    MIPIN_CHECK(i < network.size() && has_fitted_inverse(network.layer(i), options_), "the inverse holds an operator for ",
                i < network.size() ? "layer " + std::to_string(i) + " (" + network.layer(i).describe() + ")" : "node " + std::to_string(i),
                ", which has none; the file is corrupt");
  }
  for (const auto& [v, weights] : forks_) {
    MIPIN_CHECK(v <= network.size() && network.readers(v) >= 2, "the inverse holds fork weights for value ", v,
                ", which is not read by several nodes; the file is corrupt");
    check(weights, {int64_t(network.readers(v)), channels(v)}, "fork weights for value " + std::to_string(v));
  }
}

std::string to_string(MipInReadout readout) {
  switch (readout) {
    case MipInReadout::signal: return "signal";
    case MipInReadout::contrast: return "contrast";
    case MipInReadout::abs: return "abs";
    case MipInReadout::times_input: return "times-input";
  }
  return "?";
}

namespace {
constexpr MipInReadout kReadouts[] = {MipInReadout::signal, MipInReadout::contrast, MipInReadout::abs,
                                      MipInReadout::times_input};

// The option's words, the default first (a choice's default is its first).
std::vector<std::string> readout_choices() {
  std::vector<std::string> words{to_string(kDefaultMipInReadout)};
  for (MipInReadout r : kReadouts) {
    if (r != kDefaultMipInReadout) words.push_back(to_string(r));
  }
  return words;
}
}  // namespace

MipInReadout parse_mipin_readout(const std::string& text) {
  for (MipInReadout r : kReadouts) {
    if (text == to_string(r)) return r;
  }
  MIPIN_FAIL("unknown MIP-IN readout '", text, "'; expected signal, contrast, abs or times-input");
}

at::Tensor MipIn::attribute(const Network& network, const at::Tensor& x, const at::Tensor& targets) const {
  switch (readout_) {
    case MipInReadout::contrast: return inverse_.explain_contrast(network, x, targets);
    case MipInReadout::abs: return inverse_.explain(network, x, targets).abs();
    case MipInReadout::times_input: return inverse_.explain(network, x, targets) * x;
    case MipInReadout::signal: break;
  }
  return inverse_.explain(network, x, targets);
}

std::vector<size_t> MipIn::fallback_nodes(const Network& network) const {
  // A node the inverse fits has its fitted operator for a rule (an inverse
  // not fitted yet has none to show).
  std::vector<size_t> out;
  for (size_t i : inverse_.composite_for(network).fallback_nodes(network)) {
    if (!has_fitted_inverse(network.layer(i), inverse_.options())) out.push_back(i);
  }
  return out;
}

namespace {
const RegisterMethod registration(MethodEntry{
    "mipin",
    "MIP-IN: the target class's source signal through the fitted inverse, read out times the input by default",
    // The default, times-input, was picked by the rule in docs/cli.md, "MIP-IN's readouts" (best mean
    // rank over ROAD, insertion, the pointing game and the randomization
    // test on three models); `signal` keeps the paper's reading.
    {OptionSpec::choice("readout", readout_choices(),
                        "what the map shows: s_c times the input, the class's source signal s_c (the paper's), "
                        "s_c minus the mean of the other classes' signals, or |s_c|")},
    [](const MethodSettings& s) -> std::unique_ptr<AttributionMethod> {
      MIPIN_CHECK(s.inverse != nullptr, "method 'mipin' needs a fitted inverse (the tool's `mipin fit`, Python's mipin.fit_inverse)");
      return std::make_unique<MipIn>(*s.inverse, parse_mipin_readout(s.options.choice("readout")));
    },
}
                                       .fitted_with(FittedPart::inverse)
                                       // What the default readout makes: s_c times x (`--readout signal`
                                       // is in input units).
                                       .times_input());
}  // namespace

}  // namespace mipin
