#pragma once
// How a MIP-IN inverse is fitted; every ablation of the design is an option.
#include <cstdint>
#include <string>
#include <vector>

#include "mipin/attribution/method_options.h"

namespace mipin {

enum class Solver { Auto, Exact, Iterative };
// How the inverse of a ReLU treats the signal: gate it with this input's
// forward activation pattern (MIP-IN), rectify it (deconvnet-like), or both.
enum class ReluMode { Forward, Backward, Both };
// What each layer's inverse is fitted on: the signal the fitted layers above
// produce (the paper's recursion), or the true activations.
enum class FitOn { Signals, Activations };
// The top signal s^L: the logits, or the softmax probabilities.
enum class TopSignal { Logits, Softmax };
// How a residual add v = a + b hands the signal to its inputs: each input a
// per-channel scale fitted so that d_a * s reconstructs a (MIP-IN on
// graphs), the forward share s * a / (a + b) (stabilised), or s / k.
enum class AddSplit { Fitted, ForwardShare, Even };
// How a value read by several nodes (a fork) combines the signals its
// readers send back: their sum (the gradient's rule, MIP-IN on graphs),
// per-channel weights fitted jointly so that the combination reconstructs
// the value, or their mean.
enum class ForkCombine { Sum, Fitted, Mean };
// The inverse of an element-wise activation f: this input's transfer
// factor (f(z) - f(0)) / z (for ReLU the forward gate), or the tangent f'(z).
enum class ActivationGate { Transfer, Tangent };
// The inverse of a LayerNorm y = g (x - mean) / sd + b: the forward's
// normaliser as a gate, s_x = sd / g * s (Gate); s_x = s (Identity,
// AttnLRP's rule); or its gradient (Gradient, the fallback's).
enum class LayerNormReading { Gate, Identity, Gradient };
// Products in attention: the softmax's probabilities are a gate, so only V
// gets a signal (Gate), or every operand gets the gradient (Gradient).
enum class AttentionReading { Gate, Gradient };

std::string to_string(Solver v);
std::string to_string(ReluMode v);
std::string to_string(FitOn v);
std::string to_string(TopSignal v);
std::string to_string(AddSplit v);
std::string to_string(ActivationGate v);
std::string to_string(LayerNormReading v);
std::string to_string(AttentionReading v);
std::string to_string(ForkCombine v);
Solver parse_solver(const std::string& text);
ReluMode parse_relu_mode(const std::string& text);
FitOn parse_fit_on(const std::string& text);
TopSignal parse_top_signal(const std::string& text);
AddSplit parse_add_split(const std::string& text);
ActivationGate parse_activation_gate(const std::string& text);
LayerNormReading parse_layer_norm_reading(const std::string& text);
AttentionReading parse_attention_reading(const std::string& text);
ForkCombine parse_fork_combine(const std::string& text);

struct InverseOptions {
  Solver solver = Solver::Auto;
  double alpha = 1e-3;  // ridge: lambda = alpha * trace(A) / dim(A)
  ReluMode relu_mode = ReluMode::Forward;
  FitOn fit_on = FitOn::Signals;
  TopSignal top = TopSignal::Logits;
  AddSplit add_split = AddSplit::Fitted;
  double share_epsilon = 0.1;  // AddSplit::ForwardShare: stabiliser of a + b
  ActivationGate gate = ActivationGate::Transfer;
  LayerNormReading layer_norm = LayerNormReading::Gate;
  AttentionReading attention = AttentionReading::Gate;
  ForkCombine fork = ForkCombine::Sum;
  int64_t examples = 0;     // 0: the whole data set
  int64_t batch_size = 128;
  // Auto picks the iterative solver where the normal equations would exceed
  // this dimension (per group of a grouped convolution).
  int64_t max_exact_dimension = 6000;
  // Iterative solver: preconditioned conjugate gradient on the same
  // per-layer loss; each iteration is one pass over the examples.
  int64_t iterative_iterations = 100;

  InverseOptions& with_solver(Solver v) { solver = v; return *this; }
  InverseOptions& with_alpha(double v) { alpha = v; return *this; }
  InverseOptions& with_relu_mode(ReluMode v) { relu_mode = v; return *this; }
  InverseOptions& with_fit_on(FitOn v) { fit_on = v; return *this; }
  InverseOptions& with_top(TopSignal v) { top = v; return *this; }
  InverseOptions& with_add_split(AddSplit v) { add_split = v; return *this; }
  InverseOptions& with_share_epsilon(double v) { share_epsilon = v; return *this; }
  InverseOptions& with_gate(ActivationGate v) { gate = v; return *this; }
  InverseOptions& with_layer_norm(LayerNormReading v) { layer_norm = v; return *this; }
  InverseOptions& with_attention(AttentionReading v) { attention = v; return *this; }
  InverseOptions& with_fork(ForkCombine v) { fork = v; return *this; }
  InverseOptions& with_examples(int64_t v) { examples = v; return *this; }
  InverseOptions& with_batch_size(int64_t v) { batch_size = v; return *this; }
  InverseOptions& with_max_exact_dimension(int64_t v) { max_exact_dimension = v; return *this; }
  InverseOptions& with_iterative_iterations(int64_t v) { iterative_iterations = v; return *this; }
};

// What a caller may choose of a fit, declared once: `mipin fit`'s flags and
// the Python module's fit_inverse keywords are made from these.
const std::vector<OptionSpec>& inverse_option_specs();
// The options of a fit from values checked against inverse_option_specs().
InverseOptions inverse_options(const MethodOptions& checked);
// Of those, what a PatternNet fit takes: the examples and the batch size.
const std::vector<OptionSpec>& pattern_option_specs();

}  // namespace mipin
