#include "mipin/inverse/options.h"

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
  MIPIN_FAIL("unknown --fit-on '", t, "'; expected signals or activations");
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

}  // namespace mipin
