#pragma once
// Where a fit stands, as a file: a fit killed at any moment resumes from the
// last one saved and ends with the same bytes as one never stopped.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "inverse/normal_equations.h"
#include "mipin/inverse/inverse.h"

namespace mipin {

struct FitState {
  Inverse inverse;  // what is fitted so far
  int pass = 1;     // the pass under way, or the next one
  std::vector<size_t> unfitted, unfitted_forks;

  // The pass under way (when `in_pass`): what was unfitted as it began
  // (those pass nothing on), what it fits, and how far its stream got.
  bool in_pass = false;
  std::vector<size_t> pass_unfitted, pass_unfitted_forks;
  std::vector<size_t> iterative, exact, forks;
  int64_t next_batch = 0;
  PassEquations equations;
};

// Saves atomically. `identity` says what is fitted (model, data, options):
// a checkpoint of anything else is refused on loading.
void save_fit_checkpoint(const std::string& path, const nlohmann::json& identity, const FitState& state);
// Nothing when there is no file; throws mipin::Error for another fit's file
// or a damaged one, or one whose nodes, tensors or sums do not fit `network`
// fitted on examples of `sample_shape`.
std::optional<FitState> load_fit_checkpoint(const std::string& path, const nlohmann::json& identity,
                                            const Network& network, const std::vector<int64_t>& sample_shape);

}  // namespace mipin
