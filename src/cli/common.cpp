#include "common.h"

#include <torch/torch.h>

#include <iostream>
#include <thread>

#include "mipin/data/npy.h"
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

at::Tensor read_reference(const std::string& text, const std::string& data, const Network& net) {
  if (text == "mean") {
    MIPIN_CHECK(!data.empty(), "--baseline mean needs --data (its training split's mean input)");
    const auto train = open_dataset(data, Split::Train);
    const int64_t n = std::min<int64_t>(train->size(), 10000);
    at::Tensor sum;
    for (int64_t b = 0; b < n; b += 500) {
      const at::Tensor part = train->get(b, std::min(n, b + 500)).inputs.sum(0);
      sum = sum.defined() ? sum + part : part;
    }
    return sum / double(n);
  }
  at::Tensor t = read_npy(text).to(at::kFloat);
  MIPIN_CHECK(t.sizes().vec() == net.input_shape(), "shape mismatch: the baseline '", text,
              "' has shape ", shape_string(t.sizes().vec()), " but the model takes ",
              shape_string(net.input_shape()));
  return t;
}

void print_json(const nlohmann::json& value) { std::cout << value.dump(2) << std::endl; }

ImportedModel load_model(const std::string& path, const std::string& input_shape, bool quiet) {
  ImportOptions options;
  if (!input_shape.empty()) options.with_input_shape(parse_shape(input_shape));
  ImportedModel m = load_torchscript(path, options);
  if (!quiet) {
    for (const auto& notice : m.notices) std::cerr << "note: " << notice << "\n";
  }
  return m;
}

Inverse load_inverse_for(const std::string& path, const Network& network,
                         const std::string& model_path) {
  Inverse inverse = Inverse::load(path);
  try {
    inverse.check_compatible(network, model_path);
  } catch (const Error& e) {
    MIPIN_FAIL("'", path, "': ", e.what());
  }
  return inverse;
}

Patterns load_patterns_for(const std::string& path, const Network& network,
                           const std::string& model_path) {
  Patterns patterns = Patterns::load(path);
  try {
    patterns.check_compatible(network, model_path);
  } catch (const Error& e) {
    MIPIN_FAIL("'", path, "': ", e.what());
  }
  return patterns;
}

void check_data_fits_model(const Dataset& data, const Network& network,
                           const std::string& model_path) {
  const auto shape = data.sample_shape();
  if (!network.input_shape().empty()) {
    MIPIN_CHECK(shape == network.input_shape(), "shape mismatch: the data '", data.name(),
                "' has examples of shape ", shape_string(shape), " but the model '", model_path,
                "' takes ", shape_string(network.input_shape()));
  } else {
    network.shapes(shape);
  }
  const int64_t classes = network.num_classes();
  MIPIN_CHECK(data.num_classes() <= classes, "the data '", data.name(), "' has ",
              data.num_classes(), " classes but the model '", model_path, "' outputs ", classes);
}

nlohmann::json fallback_json(const AttributionMethod& method, const Network& network) {
  nlohmann::json nodes = nlohmann::json::array();
  for (size_t i : method.fallback_nodes(network)) nodes.push_back({{"node", i}, {"layer", network.layer(i).describe()}});
  return nodes;
}

}  // namespace mipin::cli
