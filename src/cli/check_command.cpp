// mipin check: mipin's forward pass and gradient against autograd, per node.
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "common.h"
#include "mipin/torchscript/model_check.h"
#include "mipin/util/error.h"

namespace mipin::cli {
namespace {

struct CheckOptions {
  std::string model;
  std::string input_shape;
  int64_t examples = 2;
  uint64_t seed = 0;
  CommonOptions common;
};

// In float64 rounding stays far below this on any network; above it a node
// is mapped or differentiated wrongly.
constexpr double kFloat64Tolerance = 1e-6;

// What a float32 gradient may be from float64 autograd: three times what
// float32 autograd itself is, and never less than 1e-4.
double float32_allowance(double autograd_float32) { return std::max(3 * autograd_float32, 1e-4); }

std::string value_name(const ValueCheck& c) {
  return c.value == 0 ? c.layer : std::to_string(c.value - 1) + " " + c.layer;
}

void run_check(const CheckOptions& o) {
  apply_common_options(o.common);
  ImportOptions import;
  if (!o.input_shape.empty()) import.with_input_shape(parse_shape(o.input_shape));
  const ModelCheck check = check_model(o.model, import, o.examples, o.seed);
  if (!o.common.json) {
    for (const auto& notice : check.notices) std::cerr << "note: " << notice << "\n";
  }

  size_t worst64 = 0;
  size_t worst32 = 0;  // largest float32 gradient error over its allowance
  for (const ValueCheck& c : check.values) {
    if (c.gradient_float64 > check.values[worst64].gradient_float64) worst64 = c.value;
    const auto& w = check.values[worst32];
    if (c.gradient_float32 / float32_allowance(c.autograd_float32) >
        w.gradient_float32 / float32_allowance(w.autograd_float32)) {
      worst32 = c.value;
    }
  }
  const ValueCheck& bad64 = check.values[worst64];
  const ValueCheck& bad32 = check.values[worst32];
  const bool float64_ok =
      bad64.gradient_float64 <= kFloat64Tolerance && check.module_gradient_float64 <= kFloat64Tolerance;
  const bool float32_ok = bad32.gradient_float32 <= float32_allowance(bad32.autograd_float32) &&
                          (check.module_gradient_float32 < 0 ||
                           check.module_gradient_float32 <= float32_allowance(check.module_autograd_float32));

  if (o.common.json) {
    nlohmann::json values = nlohmann::json::array();
    for (const ValueCheck& c : check.values) {
      values.push_back({{"node", c.value == 0 ? nlohmann::json(nullptr) : nlohmann::json(c.value - 1)},
                        {"layer", c.layer},
                        {"forward_float32", c.forward_float32},
                        {"gradient_float64", c.gradient_float64},
                        {"gradient_float32", c.gradient_float32},
                        {"autograd_float32", c.autograd_float32}});
    }
    auto maybe = [](double v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v); };
    print_json({{"model", o.model},
                {"examples", o.examples},
                {"seed", o.seed},
                {"targets", check.targets},
                {"values", values},
                {"module",
                 {{"gradient_float64", maybe(check.module_gradient_float64)},
                  {"gradient_float32", maybe(check.module_gradient_float32)},
                  {"autograd_float32", maybe(check.module_autograd_float32)}}},
                {"folded",
                 {{"gradient_float64", maybe(check.folded_gradient_float64)},
                  {"gradient_float32", maybe(check.folded_gradient_float32)}}},
                {"float64_agrees", float64_ok},
                {"float32_within_allowance", float32_ok}});
  } else {
    std::cout << o.model << ": " << check.values.size() - 1 << " nodes; the gradient of the predicted class at " << o.examples
              << " random inputs (seed " << o.seed << "),\n"
              << "each column the largest difference from autograd in float64 through the same nodes, relative\n"
              << "to the largest reference value (forward: the node's output; the others: the gradient there)\n\n";
    char line[256];
    std::snprintf(line, sizeof line, "%-60s %11s %11s %11s %11s\n", "node", "forward f32", "mipin f64", "mipin f32",
                  "autograd f32");
    std::cout << line;
    for (const ValueCheck& c : check.values) {
      std::string name = value_name(c);
      if (name.size() > 60) name = name.substr(0, 57) + "...";
      std::snprintf(line, sizeof line, "%-60s %11.2e %11.2e %11.2e %11.2e\n", name.c_str(), c.forward_float32,
                    c.gradient_float64, c.gradient_float32, c.autograd_float32);
      std::cout << line;
    }
    std::cout << "\nAt the input, against the TorchScript module's own autograd in float64: ";
    if (check.module_gradient_float64 < 0) {
      std::cout << "not compared (the module does not run in float64: its trace fixed a dtype)\n";
    } else {
      std::snprintf(line, sizeof line, "mipin %.2e (float64), %.2e (float32); the module's float32 autograd %.2e\n",
                    check.module_gradient_float64, check.module_gradient_float32, check.module_autograd_float32);
      std::cout << line;
    }
    if (check.folded_gradient_float64 >= 0) {
      std::snprintf(line, sizeof line,
                    "With BatchNorm folded (the network rule-based methods explain): %.2e (float64), %.2e (float32)\n",
                    check.folded_gradient_float64, check.folded_gradient_float32);
      std::cout << line;
    }
    std::snprintf(line, sizeof line, "float32: %s (largest: %.2e at %s, where float32 autograd is %.2e)\n",
                  float32_ok ? "every gradient within max(3 x float32 autograd's error, 1e-4)"
                             : "outside max(3 x float32 autograd's error, 1e-4)",
                  bad32.gradient_float32, value_name(bad32).c_str(), bad32.autograd_float32);
    std::cout << line;
    if (float64_ok) std::cout << "float64: every node agrees with autograd (within 1e-6)\n";
  }
  MIPIN_CHECK(bad64.gradient_float64 <= kFloat64Tolerance, "mipin's gradient differs from autograd in float64 at ",
              value_name(bad64), ": ", bad64.gradient_float64,
              " relative. This is a defect of mipin: please report it with the model");
  MIPIN_CHECK(check.module_gradient_float64 <= kFloat64Tolerance,
              "mipin's gradient at the input differs from the TorchScript module's autograd in float64: ",
              check.module_gradient_float64, " relative. This is a defect of mipin: please report it with the model");
}

}  // namespace

void register_check_command(CLI::App& app) {
  auto options = std::make_shared<CheckOptions>();
  CLI::App* cmd = app.add_subcommand(
      "check",
      "Check mipin's reading of a model against autograd: on random inputs, the forward\n"
      "pass and the gradient of the predicted class at every node, in float32 (the\n"
      "precision explanations run in) and in float64, each against autograd in float64\n"
      "through the same nodes, and at the input against the TorchScript module itself.\n"
      "In float64 every difference must be rounding (exit status 1 otherwise: a defect\n"
      "to report); in float32 the line to compare with is float32 autograd's own error.\n\n"
      "Example: mipin check cnn.pt\n"
      "         mipin check resnet50.pt --input-shape 3,224,224 --json");
  cmd->add_option("model", options->model, "TorchScript file (torch.jit.trace/script + save)")->required();
  cmd->add_option("--input-shape", options->input_shape,
                  "Shape of one input, e.g. 3,224,224 (default: stored in the file)");
  cmd->add_option("--examples", options->examples, "Random inputs to check on")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--seed", options->seed, "Seed of the random inputs")->capture_default_str();
  add_common_options(*cmd, options->common);
  cmd->callback([options] { run_check(*options); });
}

}  // namespace mipin::cli
