#pragma once
// PatternNet / PatternAttribution signal estimators (Kindermans et al. 2018):
// per Linear/Conv2d layer a pattern A with the weight's shape, estimated from
// data so that A y recovers the part of the input that y carries.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>

#include "mipin/data/dataset.h"
#include "mipin/distributed/fit_run.h"
#include "mipin/model/network.h"

namespace mipin {

struct Patterns {
  // a_j = cov(x, y_j) / (w_j^T cov(x, y_j)), x the layer's input (patches for
  // convolutions) and y_j = w_j^T x. Layers followed by a ReLU use only the
  // examples where y_j > 0 (the two-regime estimator's positive part); the
  // others use all of them (the linear estimator).
  std::map<size_t, at::Tensor> patterns;
  std::string model_fingerprint;
  std::string model_name;
  std::string data_name;
  int64_t examples = 0;

  void check_compatible(const Network& network, const std::string& model_name = "") const;
  void save(const std::string& path) const;
  static Patterns load(const std::string& path);
};

// One streamed pass over up to `examples` examples (0: all); across the
// processes of a job (run.reducer) each takes its share of the batches.
Patterns fit_patterns(const Network& network, const Dataset& data, int64_t examples = 0,
                      int64_t batch_size = 128, const FitRun& run = {});

}  // namespace mipin
