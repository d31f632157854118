// mipin evaluate: how faithful MIP-IN's source signal is (completeness,
// minimality, per-layer reconstruction).
#include <iostream>
#include <set>
#include <sstream>

#include "common.h"
#include "mipin/eval/faithfulness.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"

namespace mipin::cli {
namespace {

const std::set<std::string> kMetrics = {"completeness", "minimality", "reconstruction", "additivity"};

struct EvaluateCommandOptions {
  std::string model, inverse, data = "fashion-mnist", split = "test", input_shape, out;
  std::string metrics = "completeness,minimality,reconstruction,additivity";
  int64_t examples = 0;
  CommonOptions common;
};

std::set<std::string> parse_metrics(const std::string& text) {
  std::set<std::string> chosen;
  std::stringstream in(text);
  std::string m;
  while (std::getline(in, m, ',')) {
    if (m == "all") return kMetrics;
    MIPIN_CHECK(kMetrics.count(m), "unknown metric '", m,
                "'; expected a comma-separated list of completeness, minimality, reconstruction, "
                "additivity, or all");
    chosen.insert(m);
  }
  MIPIN_CHECK(!chosen.empty(), "--metrics is empty");
  return chosen;
}

nlohmann::json to_json(const FaithfulnessReport& r, const std::set<std::string>& metrics) {
  nlohmann::json j;
  j["examples"] = r.examples;
  if (metrics.count("completeness")) {
    j["completeness"] = {{"agreement", r.completeness.agreement}, {"accuracy", r.completeness.accuracy}};
  }
  if (metrics.count("minimality")) {
    j["minimality"] = {{"accuracy", r.minimality.accuracy},
                       {"agreement", r.minimality.agreement},
                       {"chance", r.minimality.chance}};
  }
  if (metrics.count("reconstruction")) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : r.reconstruction) {
      layers.push_back({{"index", l.index}, {"layer", l.layer}, {"r2", l.r2}});
    }
    j["reconstruction"] = {{"input_r2", r.reconstruction.empty() ? 0.0 : r.reconstruction[0].r2},
                           {"layers", layers}};
  }
  if (metrics.count("additivity")) {
    j["additivity"] = {{"relative_error", r.additivity_error}, {"examples", r.additivity_examples}};
  }
  return j;
}

void run_evaluate(const EvaluateCommandOptions& o) {
  apply_common_options(o.common);
  const auto metrics = parse_metrics(o.metrics);
  const ImportedModel m = load_model(o.model, o.input_shape, o.common.json);
  const Inverse inverse = load_inverse_for(o.inverse, m.network, o.model);
  const auto data = open_dataset(o.data, parse_split(o.split));
  check_data_fits_model(*data, m.network, o.model);
  EvaluationOptions eval;
  eval.examples = o.examples;
  eval.completeness = metrics.count("completeness") > 0;
  eval.minimality = metrics.count("minimality") > 0;
  eval.reconstruction = metrics.count("reconstruction") > 0;
  eval.additivity = metrics.count("additivity") > 0;
  const FaithfulnessReport r = evaluate_inverse(m.network, inverse, *data, eval);

  nlohmann::json j = {{"model", o.model},
                      {"data", data->name()},
                      {"split", o.split},
                      {"examples", r.examples},
                      {"model_accuracy", r.model_accuracy}};
  j["methods"]["mipin"] = to_json(r, metrics);
  j["methods"]["mipin"]["inverse"] = {{"file", o.inverse},
                                      {"fit_examples", inverse.examples},
                                      {"relu_mode", to_string(inverse.options().relu_mode)},
                                      {"fit_on", to_string(inverse.options().fit_on)},
                                      {"top", to_string(inverse.options().top)},
                                      {"alpha", inverse.options().alpha}};
  if (!o.out.empty()) write_file_atomically(o.out, j.dump(2));
  if (o.common.json) {
    print_json(j);
    return;
  }
  std::printf("MIP-IN on %s (%s split, %lld examples); model accuracy %.4f\n", data->name().c_str(),
              o.split.c_str(), static_cast<long long>(r.examples), r.model_accuracy);
  if (eval.completeness) {
    std::printf("  completeness   f(s) agrees with f(x): %.4f   accuracy of f(s): %.4f\n",
                r.completeness.agreement, r.completeness.accuracy);
  }
  if (eval.minimality) {
    std::printf("  minimality     accuracy of f(x - s): %.4f (chance %.4f)   agreement: %.4f\n",
                r.minimality.accuracy, r.minimality.chance, r.minimality.agreement);
  }
  if (eval.additivity) {
    std::printf("  additivity     sum over classes vs full signal, relative error %.2e\n",
                r.additivity_error);
  }
  if (eval.reconstruction) {
    std::printf("  reconstruction R^2 at the input of each layer:\n");
    for (const auto& l : r.reconstruction) {
      std::printf("    %3zu  %-50s %8.4f\n", l.index, l.layer.c_str(), l.r2);
    }
  }
  if (!o.out.empty()) std::printf("wrote %s\n", o.out.c_str());
}

}  // namespace

void register_evaluate_command(CLI::App& app) {
  auto o = std::make_shared<EvaluateCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "evaluate",
      "Measure how faithful MIP-IN's source signal s is on held-out data:\n"
      "  completeness   the model on s alone predicts as on x (agreement, accuracy)\n"
      "  minimality     the model on x - s is at chance (accuracy, agreement, chance)\n"
      "  reconstruction R^2 of the inverse's signal against the true activation per layer\n"
      "  additivity     class-wise source signals add up to the full one\n\n"
      "Example: mipin evaluate --model cnn.pt --inverse cnn.mipin --data fashion-mnist --json");
  cmd->add_option("--model", o->model, "TorchScript model (.pt)")->required();
  cmd->add_option("--inverse", o->inverse, "Inverse made by `mipin fit` for this model")->required();
  cmd->add_option("--data", o->data, "Data set (see README)")->capture_default_str();
  cmd->add_option("--split", o->split, "train or test")
      ->check(CLI::IsMember({"train", "test"}))
      ->capture_default_str();
  cmd->add_option("--examples", o->examples, "Evaluate the first N examples (default: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--metrics", o->metrics, "Comma-separated metrics, or all")->capture_default_str();
  cmd->add_option("--out", o->out, "Also write the JSON to this file");
  cmd->add_option("--input-shape", o->input_shape, "Shape of one input, e.g. 3,224,224");
  add_common_options(*cmd, o->common);
  cmd->callback([o] { run_evaluate(*o); });
}

}  // namespace mipin::cli
