#pragma once
// Pieces shared by the subcommands of the `mipin` tool.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mipin/attribution/method.h"
#include "mipin/attribution/patterns.h"
#include "mipin/data/dataset.h"
#include "mipin/inverse/inverse.h"
#include "mipin/torchscript/model_file.h"

namespace mipin::cli {

// Options every subcommand takes.
struct CommonOptions {
  bool json = false;
  int threads = 0;  // 0: all cores
};

void add_common_options(CLI::App& command, CommonOptions& options);
// Applies --threads; call at the start of every subcommand's action.
void apply_common_options(const CommonOptions& options);

// "1,28,28" or "1x28x28" -> {1, 28, 28}; throws mipin::Error otherwise.
std::vector<int64_t> parse_shape(const std::string& text);

// Prints JSON to stdout (for --json).
void print_json(const nlohmann::json& value);

// Loads a TorchScript model as every command sees it (BatchNorm folded,
// final softmax dropped); prints the import notices unless quiet.
ImportedModel load_model(const std::string& path, const std::string& input_shape, bool quiet);

// Loads an inverse and refuses it unless it was fitted for this model.
Inverse load_inverse_for(const std::string& path, const Network& network,
                         const std::string& model_path);

// Loads PatternNet patterns and refuses them unless fitted for this model.
Patterns load_patterns_for(const std::string& path, const Network& network,
                           const std::string& model_path);

// Refuses a data set whose examples the model cannot take, naming both shapes.
void check_data_fits_model(const Dataset& data, const Network& network,
                           const std::string& model_path);

// A reference input (integrated gradients' baseline, DeepLIFT's reference)
// as --baseline gives it: mean (of `data`'s training split) or a .npy of
// one input of the network's shape.
at::Tensor read_reference(const std::string& text, const std::string& data, const Network& network);

// The nodes where `method` has no rule of its own and took the gradient's
// (autograd's vector-Jacobian product): [{"node": i, "layer": "..."}].
nlohmann::json fallback_json(const AttributionMethod& method, const Network& network);

// Each subcommand registers itself; main() calls these in order.
void register_train_command(CLI::App& app);
void register_info_command(CLI::App& app);
void register_check_command(CLI::App& app);
void register_fit_command(CLI::App& app);
void register_explain_command(CLI::App& app);
void register_evaluate_command(CLI::App& app);
void register_methods_command(CLI::App& app);
void register_data_command(CLI::App& app);

}  // namespace mipin::cli
