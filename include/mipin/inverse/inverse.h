#pragma once
// MIP-IN: an inverse network, fitted node by node from the top, that maps a
// network's output back to the part of the input the output carries (the
// source signal). docs/design.md (sections 1.2 and 1.4) gives the reading
// implemented, on chains and on graphs.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mipin/attribution/method.h"
#include "mipin/attribution/rule.h"
#include "mipin/data/dataset.h"
#include "mipin/distributed/fit_run.h"
#include "mipin/inverse/options.h"
#include "mipin/model/network.h"

namespace mipin {

// How well one node's inverse reconstructs that node's input(s).
struct LayerFit {
  size_t index = 0;
  std::string layer;   // description
  std::string solver;  // "exact" | "iterative"
  double r2 = 0;       // 1 - SSE / SST over the fitting data
  double mse = 0;      // mean squared reconstruction error per value
  double seconds = 0;
  int pass = 0;        // the pass over the data that fitted it (1 = the first)
};

// What one pass over the data of a fit took (kept in memory, not in the
// file: it describes the run, not the inverse).
struct PassStats {
  int pass = 0;
  size_t nodes = 0;            // nodes and forks the pass fitted
  int64_t batches = 0;         // batches this process streamed
  double seconds = 0;          // the pass, its reductions and solves included
  int64_t reduced_bytes = 0;   // summed across processes (per process)
  double reduce_seconds = 0;
};

class Inverse {
 public:
  Inverse() = default;
  Inverse(InverseOptions options, std::string model_fingerprint)
      : options_(options), model_fingerprint_(std::move(model_fingerprint)) {}

  // What was fitted for node `index`: an affine layer's operator in the
  // shape of its weight, applied by the layer's transposed map (a Linear
  // layer's U [in, out] is stored as its transpose, the shape of W); an
  // add's per-input channel scales [inputs, C]; an unfolded BatchNorm's
  // channel scale [1, C].
  void set_operator(size_t index, at::Tensor op);
  const std::map<size_t, at::Tensor>& operators() const { return operators_; }
  // With ForkCombine::Fitted: per value read by several nodes, the weights
  // [readers, C] of the signals its readers send back, in the order they
  // arrive (readers from the last node down).
  void set_fork(size_t value, at::Tensor weights);
  const std::map<size_t, at::Tensor>& forks() const { return forks_; }

  // MIP-IN's rules: learned operators for Linear/Conv2d and scales for adds
  // and BatchNorms, forward ReLU gates (per relu mode) and transfer factors
  // of other activations, unpooling to switches, pooling pseudo-inverses,
  // reshapes, exact splits at concatenations, the gate's own value at a gate.
  Composite composite() const;
  // The same rules for explaining `network`, the model the inverse was
  // fitted for, with less work: an add's scale for an input that an affine
  // layer computes for the add alone is applied inside that layer's
  // operator (U diag(d) s = U (d * s)), which saves a pass over the add's
  // output. The file keeps the scales as fitted.
  Composite composite_for(const Network& network) const;
  // s^L for the whole output: the logits or their softmax, per options.
  at::Tensor top_signal(const at::Tensor& logits) const;

  // Source signal of the full top signal, [N, ...input shape].
  at::Tensor source_signal(const Network& network, const at::Tensor& x) const;
  // Class-wise source signal: s^L = top[target] e_target.
  at::Tensor explain(const Network& network, const at::Tensor& x, const at::Tensor& targets) const;
  // The target's source signal against the others': the source signal of
  // s^L = top * (e_target - (1 - e_target) / (K - 1)), which is s_target
  // minus the mean of the other classes' signals wherever the inverse is
  // linear in its top signal (every ReLU mode but backward and both).
  at::Tensor explain_contrast(const Network& network, const at::Tensor& x, const at::Tensor& targets) const;

  // Refuses a network other than the one the inverse was fitted for.
  void check_compatible(const Network& network, const std::string& model_name = "") const;
  // Refuses tensors of another type or shape than their nodes imply, or for
  // nodes that have none; `complete` also wants one for every fitted node
  // (an inverse file), not only some (a fit's checkpoint).
  void check_tensors(const Network& network, bool complete) const;

  void save(const std::string& path) const;
  // Throws mipin::Error for a missing, truncated or corrupt file.
  static Inverse load(const std::string& path);

  const InverseOptions& options() const { return options_; }
  const std::string& model_fingerprint() const { return model_fingerprint_; }
  std::vector<LayerFit>& fits() { return fits_; }
  const std::vector<LayerFit>& fits() const { return fits_; }
  std::string data_name;
  std::string model_name;
  int64_t examples = 0;
  double seconds = 0;  // of the fit that made it (not saved)
  std::vector<PassStats> passes;  // of the fit that made it (not saved)

 private:
  // The rules with these fitted tensors; `unscaled` lists, per add, the
  // inputs whose scale lives in the operator below (composite_for).
  Composite composite_from(const std::map<size_t, at::Tensor>& operators,
                           const std::map<size_t, std::vector<bool>>& unscaled) const;
  InverseOptions options_;
  std::string model_fingerprint_;
  std::map<size_t, at::Tensor> operators_;
  std::map<size_t, at::Tensor> forks_;
  std::vector<LayerFit> fits_;  // top layer first
  // composite_for's operators with the add scales folded in, kept between
  // calls (a fresh tensor each call would be flipped and packed again by
  // the convolutions). A copy of the inverse shares them until either side
  // changes an operator.
  struct FoldedOperators;
  std::shared_ptr<FoldedOperators> folded_ = fresh_folded();
  static std::shared_ptr<FoldedOperators> fresh_folded();
};

// s^L for the whole output: the logits themselves or their softmax.
at::Tensor make_top_signal(TopSignal top, const at::Tensor& logits);

// A fitted layer's inverse applied to the signal at its output: U s, the
// layer's transposed map with the operator in its weight's place (for
// Conv2d, conv_transpose2d(s, U) with the layer's geometry).
// layer_input is the recorded input (it fixes the output size).
at::Tensor apply_inverse_operator(const Layer& layer, const at::Tensor& op,
                                  const at::Tensor& signal, const at::Tensor& layer_input);
// Any fitted node's inverse: the operator above, or per-channel scales of
// the signal, one per input (an add) or one (a BatchNorm).
Signals apply_fitted_inverse(const Layer& layer, const at::Tensor& fitted, const at::Tensor& signal,
                             const LayerRecord& record);
// Whether the inverse fits parameters for this node under these options.
bool has_fitted_inverse(const Layer& layer, const InverseOptions& options);
// A fork's signals combined by per-channel weights [parts, C].
at::Tensor combine_fork(const at::Tensor& weights, const std::vector<at::Tensor>& parts);

// Fits the inverse on up to options.examples examples of `data`, streaming
// batches so memory does not grow with the number of examples.
Inverse fit_inverse(const Network& network, const Dataset& data, const InverseOptions& options = {},
                    const FitRun& run = {});
// The file a fit keeps in its checkpoint directory (remove it once the
// inverse is saved, or a rerun returns the finished fit at once).
std::string fit_checkpoint_file(const std::string& directory);

// What MIP-IN's map for class c shows (the method's --readout):
//   signal       s_c, the class's source signal (the paper's reading), in
//                input units
//   contrast     s_c minus the mean of the other classes' signals: what in x
//                speaks for c rather than for the others (they all share the
//                part of x every class reconstructs)
//   abs          |s_c|
//   times-input  s_c * x
// signal, contrast and times-input are linear in the top signal: the maps
// of all classes add up to the map of the whole output (for contrast, to 0).
// abs is not.
enum class MipInReadout { signal, contrast, abs, times_input };
// What a MipIn (and the registered `mipin` method) reads out unless told:
// docs/cli.md ("MIP-IN's readouts") says how it was chosen; signal is the paper's reading.
inline constexpr MipInReadout kDefaultMipInReadout = MipInReadout::times_input;
std::string to_string(MipInReadout readout);
MipInReadout parse_mipin_readout(const std::string& text);

// MIP-IN as an AttributionMethod (the inverse must outlive it).
class MipIn final : public AttributionMethod {
 public:
  explicit MipIn(const Inverse& inverse, MipInReadout readout = kDefaultMipInReadout)
      : inverse_(inverse), readout_(readout) {}
  std::string name() const override { return "mipin"; }
  at::Tensor attribute(const Network& network, const at::Tensor& x, const at::Tensor& targets) const override;
  std::vector<size_t> fallback_nodes(const Network& network) const override;
  // Completeness and minimality read the source signal of the whole output
  // whatever the readout: it is the part of x the output carries.
  at::Tensor evidence(const Network& network, const at::Tensor& x, const at::Tensor&) const override {
    return inverse_.source_signal(network, x);
  }
  MipInReadout readout() const { return readout_; }

 private:
  const Inverse& inverse_;
  MipInReadout readout_;
};

}  // namespace mipin
