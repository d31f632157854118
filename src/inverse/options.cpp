#include "mipin/inverse/options.h"

#include <vector>

#include "mipin/util/error.h"

namespace mipin {

std::string to_string(Solver v) {
  switch (v) {
    case Solver::Auto: return "auto";
    case Solver::Exact: return "exact";
    case Solver::Iterative: return "iterative";
  }
  return "?";
}
std::string to_string(ReluMode v) {
  switch (v) {
    case ReluMode::Forward: return "forward";
    case ReluMode::Backward: return "backward";
    case ReluMode::Both: return "both";
  }
  return "?";
}
std::string to_string(FitOn v) { return v == FitOn::Signals ? "signals" : "activations"; }
std::string to_string(TopSignal v) { return v == TopSignal::Logits ? "logits" : "softmax"; }
std::string to_string(AddSplit v) {
  switch (v) {
    case AddSplit::Fitted: return "fitted";
    case AddSplit::ForwardShare: return "share";
    case AddSplit::Even: return "even";
  }
  return "?";
}
std::string to_string(ForkCombine v) {
  switch (v) {
    case ForkCombine::Sum: return "sum";
    case ForkCombine::Fitted: return "fitted";
    case ForkCombine::Mean: return "mean";
  }
  return "?";
}
std::string to_string(ActivationGate v) { return v == ActivationGate::Transfer ? "transfer" : "tangent"; }
std::string to_string(LayerNormReading v) {
  switch (v) {
    case LayerNormReading::Gate: return "gate";
    case LayerNormReading::Identity: return "identity";
    case LayerNormReading::Gradient: return "gradient";
  }
  return "?";
}
std::string to_string(AttentionReading v) { return v == AttentionReading::Gate ? "gate" : "gradient"; }

Solver parse_solver(const std::string& t) {
  if (t == "auto") return Solver::Auto;
  if (t == "exact") return Solver::Exact;
  if (t == "iterative") return Solver::Iterative;
  MIPIN_FAIL("unknown solver '", t, "'; expected auto, exact or iterative");
}
ReluMode parse_relu_mode(const std::string& t) {
  if (t == "forward") return ReluMode::Forward;
  if (t == "backward") return ReluMode::Backward;
  if (t == "both") return ReluMode::Both;
  MIPIN_FAIL("unknown relu mode '", t, "'; expected forward, backward or both");
}
FitOn parse_fit_on(const std::string& t) {
  if (t == "signals") return FitOn::Signals;
  if (t == "activations") return FitOn::Activations;
  MIPIN_FAIL("unknown fit_on '", t, "'; expected signals or activations");
}
TopSignal parse_top_signal(const std::string& t) {
  if (t == "logits") return TopSignal::Logits;
  if (t == "softmax") return TopSignal::Softmax;
  MIPIN_FAIL("unknown top signal '", t, "'; expected logits or softmax");
}

AddSplit parse_add_split(const std::string& t) {
  if (t == "fitted") return AddSplit::Fitted;
  if (t == "share") return AddSplit::ForwardShare;
  if (t == "even") return AddSplit::Even;
  MIPIN_FAIL("unknown add split '", t, "'; expected fitted, share or even");
}
ForkCombine parse_fork_combine(const std::string& t) {
  if (t == "sum") return ForkCombine::Sum;
  if (t == "fitted") return ForkCombine::Fitted;
  if (t == "mean") return ForkCombine::Mean;
  MIPIN_FAIL("unknown fork rule '", t, "'; expected sum, fitted or mean");
}
ActivationGate parse_activation_gate(const std::string& t) {
  if (t == "transfer") return ActivationGate::Transfer;
  if (t == "tangent") return ActivationGate::Tangent;
  MIPIN_FAIL("unknown activation gate '", t, "'; expected transfer or tangent");
}
LayerNormReading parse_layer_norm_reading(const std::string& t) {
  if (t == "gate") return LayerNormReading::Gate;
  if (t == "identity") return LayerNormReading::Identity;
  if (t == "gradient") return LayerNormReading::Gradient;
  MIPIN_FAIL("unknown layer_norm reading '", t, "'; expected gate, identity or gradient");
}
AttentionReading parse_attention_reading(const std::string& t) {
  if (t == "gate") return AttentionReading::Gate;
  if (t == "gradient") return AttentionReading::Gradient;
  MIPIN_FAIL("unknown attention reading '", t, "'; expected gate or gradient");
}

}  // namespace mipin

namespace mipin {

const std::vector<OptionSpec>& inverse_option_specs() {
  static const std::vector<OptionSpec> specs = {
      OptionSpec::integer("examples", 0, "fit on the first N examples (0: all of them)").at_least(0),
      OptionSpec::integer("batch_size", 128, "examples per batch").at_least(1),
      OptionSpec::choice("solver", {"auto", "exact", "iterative"},
                         "exact (normal equations, Cholesky), iterative (conjugate gradient on the same loss, one "
                         "pass per iteration) or auto (iterative only where the normal equations would be very "
                         "large)"),
      OptionSpec::real("alpha", 1e-3, "ridge strength: lambda = alpha * trace(A) / dim(A)").at_least(0),
      OptionSpec::choice("relu_mode", {"forward", "backward", "both"},
                         "ReLU inverse: forward (this input's gates, MIP-IN), backward (rectify the signal), both"),
      OptionSpec::choice("fit_on", {"signals", "activations"},
                         "fit each layer on the propagated signals (the paper's recursion) or on true activations "
                         "(ablation)"),
      OptionSpec::choice("top", {"logits", "softmax"}, "top signal: the logits or the softmax probabilities"),
      OptionSpec::choice("add_split", {"fitted", "share", "even"},
                         "how a residual add hands the signal to its inputs: fitted (per-channel scales that "
                         "reconstruct each input), share (s * a / (a + b), stabilised by share_epsilon) or even "
                         "(s / inputs)"),
      OptionSpec::real("share_epsilon", 0.1, "stabiliser of a + b for add_split share").at_least(1e-12),
      OptionSpec::choice("fork", {"sum", "fitted", "mean"},
                         "how a value read by several layers combines the signals they send back: sum (the "
                         "gradient's rule), fitted (per-channel weights that reconstruct the value) or mean"),
      OptionSpec::choice("gate", {"transfer", "tangent"},
                         "inverse of activations other than ReLU: transfer ((f(z) - f(0)) / z of this input, the "
                         "forward ReLU's reading) or tangent (f'(z))"),
      OptionSpec::choice("layer_norm", {"gate", "identity", "gradient"},
                         "inverse of a LayerNorm y = g (x - mean) / sd + b: gate (s * sd / g, the forward's "
                         "normaliser undone), identity (s, AttnLRP's rule) or gradient (g / sd, centred)"),
      OptionSpec::choice("attention", {"gate", "gradient"},
                         "products in attention: gate (the softmax's probabilities gate V, s_V = P^T s; Q and K "
                         "get none; a product with no gate splits evenly) or gradient (every operand)"),
      OptionSpec::integer("iterations", 100,
                          "conjugate-gradient iterations of the iterative solver (one pass over the examples each)")
          .at_least(1),
  };
  return specs;
}

InverseOptions inverse_options(const MethodOptions& checked) {
  return InverseOptions{}
      .with_examples(checked.integer("examples"))
      .with_batch_size(checked.integer("batch_size"))
      .with_solver(parse_solver(checked.choice("solver")))
      .with_alpha(checked.real("alpha"))
      .with_relu_mode(parse_relu_mode(checked.choice("relu_mode")))
      .with_fit_on(parse_fit_on(checked.choice("fit_on")))
      .with_top(parse_top_signal(checked.choice("top")))
      .with_add_split(parse_add_split(checked.choice("add_split")))
      .with_share_epsilon(checked.real("share_epsilon"))
      .with_fork(parse_fork_combine(checked.choice("fork")))
      .with_gate(parse_activation_gate(checked.choice("gate")))
      .with_layer_norm(parse_layer_norm_reading(checked.choice("layer_norm")))
      .with_attention(parse_attention_reading(checked.choice("attention")))
      .with_iterative_iterations(checked.integer("iterations"));
}

const std::vector<OptionSpec>& pattern_option_specs() {
  static const std::vector<OptionSpec> specs(inverse_option_specs().begin(), inverse_option_specs().begin() + 2);
  return specs;
}

}  // namespace mipin
