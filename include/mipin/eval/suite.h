#pragma once
// The faithfulness suite: every requested method, every metric of docs/design.md
// section 3, on one model and data set, as one JSON document.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "mipin/attribution/registry.h"
#include "mipin/data/dataset.h"
#include "mipin/distributed/reducer.h"
#include "mipin/util/progress.h"
#include "mipin/model/network.h"

namespace mipin {

// What deletion and insertion put where pixels are taken away: the mean
// input of the evaluated examples, zeros, or the image itself blurred
// (Gaussian, sigma 5 over 11 pixels, as Petsiuk et al.'s insertion).
enum class PerturbationFill { mean, zero, blur };
std::string to_string(PerturbationFill fill);
PerturbationFill parse_perturbation_fill(const std::string& text);

struct SuiteOptions {
  std::vector<std::string> methods;
  // completeness, minimality, reconstruction, additivity, randomization,
  // deletion, road, localization, ground-truth (all_suite_metrics)
  std::set<std::string> metrics;
  int64_t examples = 1000;               // evaluated test examples
  int64_t randomization_examples = 32;   // examples compared under randomization
  int64_t deletion_steps = 20;           // 5% steps, for deletion, insertion and ROAD
  PerturbationFill fill = PerturbationFill::mean;
  double road_noise = 0.01;              // ROAD's imputation noise, in input units
  int64_t refit_examples = 2000;         // MIP-IN / patterns refits on randomized models
  // Refits are the same for every method that needs them (MIP-IN's readouts,
  // PatternNet and PatternAttribution): kept for the next such method up to
  // this many bytes (0: every method refits its own).
  int64_t shared_refit_bytes = int64_t(1) << 30;
  int64_t batch_size = 100;
  // Method options (each method takes those it declares), inverse and
  // patterns of the original model.
  MethodSettings settings;
  const Dataset* fit_data = nullptr;     // for refits (the training split)
  at::Tensor boxes;                      // [N, 4] for localization, or undefined
  uint64_t seed = 0;
  ProgressCallback progress;  // null: silent
  // Across the processes of a job, each evaluates every world_size-th batch
  // and the counts and curves are added; randomization and the ground truth
  // (a few examples, refits) run on rank 0, whose result is the job's.
  Reducer* reducer = nullptr;
};

std::set<std::string> all_suite_metrics();
// What an evaluation measures unless told: the metrics that take seconds.
std::vector<std::string> default_suite_metrics();
// Every registered method that can run with what was fitted (an inverse,
// patterns), in the report's order: the methods fitted with an inverse
// (MIP-IN) first, the floor last. `skipped` receives the others.
std::vector<std::string> suite_methods(bool have_inverse, bool have_patterns,
                                       std::vector<std::string>* skipped = nullptr);

// Copies the network and re-initialises its Linear/Conv2d layers from the top,
// `layers` of them (Adebayo et al. 2018's cascading randomization).
Network randomize_top_layers(const Network& network, size_t layers, uint64_t seed);

nlohmann::json run_suite(const Network& network, const Dataset& data, const SuiteOptions& options);

}  // namespace mipin
