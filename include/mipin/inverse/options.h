#pragma once
// How a MIP-IN inverse is fitted; every ablation of the design is an option.
#include <cstdint>
#include <string>

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

std::string to_string(Solver v);
std::string to_string(ReluMode v);
std::string to_string(FitOn v);
std::string to_string(TopSignal v);
Solver parse_solver(const std::string& text);
ReluMode parse_relu_mode(const std::string& text);
FitOn parse_fit_on(const std::string& text);
TopSignal parse_top_signal(const std::string& text);

struct InverseOptions {
  Solver solver = Solver::Auto;
  double alpha = 1e-3;  // ridge: lambda = alpha * trace(A) / dim(A)
  ReluMode relu_mode = ReluMode::Forward;
  FitOn fit_on = FitOn::Signals;
  TopSignal top = TopSignal::Logits;
  int64_t examples = 0;     // 0: the whole data set
  int64_t batch_size = 128;
  // Auto picks the iterative solver for strided or grouped convolutions and
  // where the normal equations would exceed this dimension.
  int64_t max_exact_dimension = 6000;
  // Iterative solver: preconditioned conjugate gradient on the same
  // per-layer loss; each iteration is one pass over the examples.
  int64_t iterative_iterations = 100;
  bool show_progress = true;

  InverseOptions& with_solver(Solver v) { solver = v; return *this; }
  InverseOptions& with_alpha(double v) { alpha = v; return *this; }
  InverseOptions& with_relu_mode(ReluMode v) { relu_mode = v; return *this; }
  InverseOptions& with_fit_on(FitOn v) { fit_on = v; return *this; }
  InverseOptions& with_top(TopSignal v) { top = v; return *this; }
  InverseOptions& with_examples(int64_t v) { examples = v; return *this; }
  InverseOptions& with_batch_size(int64_t v) { batch_size = v; return *this; }
  InverseOptions& with_max_exact_dimension(int64_t v) { max_exact_dimension = v; return *this; }
  InverseOptions& with_iterative_iterations(int64_t v) { iterative_iterations = v; return *this; }
  InverseOptions& with_progress(bool v) { show_progress = v; return *this; }
};

}  // namespace mipin
