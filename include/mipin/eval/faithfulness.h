#pragma once
// Faithfulness of a source signal (docs/design.md section 3, items 1-3):
// completeness (s alone carries the decision), minimality (x - s carries
// none of it) and per-layer reconstruction R^2.
#include <cstdint>
#include <string>
#include <vector>

#include "mipin/data/dataset.h"
#include "mipin/distributed/reducer.h"
#include "mipin/util/progress.h"
#include "mipin/inverse/inverse.h"
#include "mipin/model/network.h"

namespace mipin {

struct Completeness {
  double agreement = 0;  // argmax f(s) == argmax f(x)
  double accuracy = 0;   // argmax f(s) == label
};

struct Minimality {
  double accuracy = 0;   // argmax f(x - s) == label
  double agreement = 0;  // argmax f(x - s) == argmax f(x)
  double chance = 0;     // 1 / number of classes
};

// Completeness and minimality over a stream of batches: the network's
// decision on s alone and on x - s, against its decision on x and the
// label. Every method's evaluation counts them here.
class DecisionCounts {
 public:
  // s: the evidence (AttributionMethod::evidence); predicted: argmax f(x).
  void add(const Network& network, const at::Tensor& x, const at::Tensor& s, const at::Tensor& predicted,
           const at::Tensor& labels, bool completeness = true, bool minimality = true);
  Completeness completeness() const;
  Minimality minimality(int64_t classes) const;
  // The counts as float64 values (exact), to add across processes; and back.
  at::Tensor packed() const;
  void unpack(const at::Tensor& packed);

 private:
  int64_t examples_ = 0, complete_agree_ = 0, complete_correct_ = 0, rest_agree_ = 0, rest_correct_ = 0;
};

// R^2 = 1 - ||x^l - s^l||^2 / ||x^l - mean(x^l)||^2 at the input of layer l
// (l = 0 is the network input), over the evaluation set. In a graph, l
// numbers values: the output of layer l - 1, which `layer` reads.
struct LayerReconstruction {
  size_t index = 0;
  std::string layer;
  double r2 = 0;
};

struct FaithfulnessReport {
  int64_t examples = 0;
  double model_accuracy = 0;
  Completeness completeness;
  Minimality minimality;
  std::vector<LayerReconstruction> reconstruction;
  // max over examples of ||sum_c s_c - s|| / ||s|| on the first batch:
  // class-wise source signals add up to the full one.
  double additivity_error = 0;
  int64_t additivity_examples = 0;
};

struct EvaluationOptions {
  int64_t examples = 0;  // 0: the whole split
  int64_t batch_size = 250;
  bool completeness = true;
  bool minimality = true;
  bool reconstruction = true;
  bool additivity = true;
  ProgressCallback progress;  // null: silent
  // Across the processes of a job, each takes every world_size-th batch and
  // the counts and sums are added; null: this process alone.
  Reducer* reducer = nullptr;
};

FaithfulnessReport evaluate_inverse(const Network& network, const Inverse& inverse,
                                    const Dataset& data, const EvaluationOptions& options = {});

}  // namespace mipin
