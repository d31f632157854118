#include "common.h"

#include <torch/torch.h>

#include <iostream>
#include <thread>

#include "mipin/util/error.h"

namespace mipin::cli {

void add_common_options(CLI::App& command, CommonOptions& options) {
  command.add_flag("--json", options.json, "Print machine-readable JSON on stdout");
  command.add_option("--threads", options.threads, "CPU threads to use (default: all cores)")
      ->check(CLI::NonNegativeNumber);
}

void apply_common_options(const CommonOptions& options) {
  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
}

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> shape;
  std::string part;
  auto flush = [&] {
    MIPIN_CHECK(!part.empty(), "expected a shape like 1,28,28, found '", text, "'");
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    MIPIN_CHECK(used == part.size() && v > 0, "expected a shape like 1,28,28 of positive sizes, found '",
                text, "'");
    shape.push_back(v);
    part.clear();
  };
  for (char c : text) {
    if (c == ',' || c == 'x') {
      flush();
    } else {
      part += c;
    }
  }
  flush();
  return shape;
}

void print_json(const nlohmann::json& value) { std::cout << value.dump(2) << std::endl; }

}  // namespace mipin::cli
