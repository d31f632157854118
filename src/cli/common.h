#pragma once
// Pieces shared by the subcommands of the `mipin` tool.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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

// Each subcommand registers itself; main() calls these in order.
void register_train_command(CLI::App& app);
void register_info_command(CLI::App& app);

}  // namespace mipin::cli
