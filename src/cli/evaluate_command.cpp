// mipin evaluate: how faithful each attribution method is, on held-out data.
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "common.h"
#include "job.h"
#include "method_flags.h"
#include "mipin/attribution/patterns.h"
#include "mipin/data/image_folder.h"
#include "mipin/eval/suite.h"
#include "mipin/report/gallery.h"
#include "mipin/report/html_report.h"
#include "mipin/report/images.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"

namespace mipin::cli {
namespace {
namespace fs = std::filesystem;

std::string default_metrics_text() {
  std::string text;
  for (const std::string& m : default_suite_metrics()) text += (text.empty() ? "" : ",") + m;
  return text;
}

struct EvaluateCommandOptions {
  std::string model, inverse, patterns, data = "fashion-mnist", split = "test", input_shape, out, boxes;
  std::string methods = "mipin";
  std::string metrics = default_metrics_text();
  std::string fill = "mean";
  int64_t examples = 0;
  int64_t randomization_examples = 32;
  int64_t refit_examples = 2000;
  int64_t gallery = 8;
  MethodFlags method_flags;
  JobFlags job;
  CommonOptions common;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::set<std::string> parse_metrics(const std::string& text) {
  const auto known = all_suite_metrics();
  std::set<std::string> chosen;
  for (const auto& m : split_list(text)) {
    if (m == "all") return known;
    if (!known.count(m)) {
      std::string names;
      for (const auto& k : known) names += (names.empty() ? "" : ", ") + k;
      MIPIN_FAIL("unknown metric '", m, "'; expected a comma-separated list of ", names, ", or all");
    }
    chosen.insert(m);
  }
  MIPIN_CHECK(!chosen.empty(), "--metrics is empty");
  return chosen;
}

// The boxes of one split, as [N, 4], in the order the data set reads its
// examples: `mipin data clutter`'s by file (the image folder reads sorted
// paths), `mipin data motifs`' by index.
at::Tensor read_boxes(const std::string& path, const std::string& split) {
  const auto j = nlohmann::json::parse(read_file(path));
  const std::string format = j.value("format", "");
  MIPIN_CHECK(format == "mipin-clutter/1" || format == "mipin-motifs/1", "'", path,
              "' is not a boxes file of `mipin data clutter` or `mipin data motifs`");
  MIPIN_CHECK(j.contains(split), "'", path, "' has no boxes for the ", split, " split");
  std::vector<const nlohmann::json*> rows;
  for (const auto& e : j.at(split)) rows.push_back(&e);
  const char* key = format == "mipin-motifs/1" ? "index" : "file";
  std::sort(rows.begin(), rows.end(), [key](const nlohmann::json* a, const nlohmann::json* b) {
    return a->at(key) < b->at(key);
  });
  at::Tensor boxes = torch::empty({int64_t(rows.size()), 4}, torch::kLong);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto box = rows[i]->at("box").get<std::vector<int64_t>>();
    MIPIN_CHECK(box.size() == 4, "'", path, "': a box has 4 numbers, found ", box.size());
    for (int k = 0; k < 4; ++k) boxes[int64_t(i)][k] = box[size_t(k)];
  }
  return boxes;
}

void print_human(const nlohmann::json& j) {
  std::printf("%s (%s split, %lld examples); model accuracy %.4f, chance %.4f\n",
              j["data"].get<std::string>().c_str(), j["split"].get<std::string>().c_str(),
              static_cast<long long>(j["examples"].get<int64_t>()), j["model_accuracy"].get<double>(),
              j["chance"].get<double>());
  for (const auto& [name, m] : j["methods"].items()) {
    std::printf("\n%s\n", name.c_str());
    if (m.contains("completeness")) {
      std::printf("  completeness   f(s) agrees with f(x): %.4f   accuracy of f(s): %.4f\n",
                  m["completeness"]["agreement"].get<double>(), m["completeness"]["accuracy"].get<double>());
    }
    if (m.contains("minimality")) {
      std::printf("  minimality     accuracy of f(x - s): %.4f (chance %.4f)   agreement: %.4f\n",
                  m["minimality"]["accuracy"].get<double>(), m["minimality"]["chance"].get<double>(),
                  m["minimality"]["agreement"].get<double>());
    }
    if (m.contains("additivity")) {
      std::printf("  additivity     sum over classes vs full signal, relative error %.2e\n",
                  m["additivity"]["relative_error"].get<double>());
    }
    if (m.contains("deletion")) {
      std::printf("  deletion       area %.4f (random order %.4f; lower is better)\n",
                  m["deletion"]["area"].get<double>(), m["deletion"]["random_area"].get<double>());
      std::printf("  insertion      area %.4f (random order %.4f; higher is better)\n",
                  m["insertion"]["area"].get<double>(), m["insertion"]["random_area"].get<double>());
    }
    if (m.contains("road_most_relevant_first")) {
      std::printf("  ROAD MoRF      area %.4f (random order %.4f; lower is better)\n",
                  m["road_most_relevant_first"]["area"].get<double>(),
                  m["road_most_relevant_first"]["random_area"].get<double>());
      std::printf("  ROAD LeRF      area %.4f (random order %.4f; higher is better)\n",
                  m["road_least_relevant_first"]["area"].get<double>(),
                  m["road_least_relevant_first"]["random_area"].get<double>());
    }
    if (m.contains("localization")) {
      std::printf("  pointing game  %.4f (box covers %.4f of the image)   positive mass in box %.4f\n",
                  m["localization"]["pointing_game"].get<double>(),
                  m["localization"]["box_area_fraction"].get<double>(),
                  m["localization"]["mass_in_box"].get<double>());
    }
    if (m.contains("ground_truth")) {
      std::printf("  ground truth   cosine with the true signal on the linear toy %.4f\n",
                  m["ground_truth"]["cosine"].get<double>());
    }
    if (m.contains("randomization")) {
      std::printf("  randomization  (layers re-initialised from the top; similarity to the original maps)\n");
      for (const auto& r : m["randomization"]) {
        std::printf("    down to %-48s |spearman| %.3f  spearman %.3f  ssim %.3f\n",
                    r["layer"].get<std::string>().c_str(), r["spearman_abs"].get<double>(),
                    r["spearman_signed"].get<double>(), r["ssim"].get<double>());
      }
    }
    if (m.contains("reconstruction")) {
      std::printf("  reconstruction R^2 at the input of each layer:\n");
      for (const auto& l : m["reconstruction"]["layers"]) {
        std::printf("    %3lld  %-50s %8.4f\n", static_cast<long long>(l["index"].get<int64_t>()),
                    l["layer"].get<std::string>().c_str(), l["r2"].get<double>());
      }
    }
  }
}

void run_evaluate(const EvaluateCommandOptions& o) {
  apply_common_options(o.common);
  Job job(o.job);
  // Rank 0 speaks for the job; the others only report errors.
  const bool quiet = o.common.json || !job.leads();
  SuiteOptions suite;
  suite.reducer = &job.reducer();
  suite.metrics = parse_metrics(o.metrics);
  suite.fill = parse_perturbation_fill(o.fill);
  const ImportedModel m = load_model(o.model, o.input_shape, quiet);
  std::unique_ptr<Inverse> inverse;
  if (!o.inverse.empty()) inverse = std::make_unique<Inverse>(load_inverse_for(o.inverse, m.network, o.model));
  std::unique_ptr<Patterns> patterns;
  if (!o.patterns.empty()) {
    patterns = std::make_unique<Patterns>(load_patterns_for(o.patterns, m.network, o.model));
  }
  // "all" stands for every method that can run; variants and others may
  // follow it (all,mipin:readout=contrast).
  for (const std::string& item : split_list(o.methods)) {
    if (item != "all") {
      suite.methods.push_back(item);
      continue;
    }
    std::vector<std::string> skipped;
    for (const std::string& name : suite_methods(inverse != nullptr, patterns != nullptr, &skipped)) {
      suite.methods.push_back(name);
    }
    for (const std::string& name : skipped) {
      if (quiet) continue;
      std::cerr << "note: skipping " << name << " (no --"
                << (method_entry(name).fitted == FittedPart::inverse ? "inverse" : "patterns") << " given)\n";
    }
  }
  MIPIN_CHECK(!suite.methods.empty(), "--methods is empty");
  const auto data = open_dataset(o.data, parse_split(o.split));
  check_data_fits_model(*data, m.network, o.model);
  std::unique_ptr<Dataset> fit_data;
  if (suite.metrics.count("randomization")) fit_data = open_dataset(o.data, Split::Train);
  suite.fit_data = fit_data.get();
  // Each method takes the options it declares; one that none of them
  // declares is a mistake worth stopping for.
  for (const auto& [option, text] : o.method_flags.given) {
    bool taken = false;
    for (const std::string& name : suite.methods) {
      for (const OptionSpec& spec : method_entry(name).options) taken = taken || spec.name == option;
    }
    MIPIN_CHECK(taken, "no method evaluated here takes the option ", option, " (`mipin methods` says which do)");
  }
  suite.settings.options = method_options(
      o.method_flags, [&](const std::string& text) { return read_reference(text, o.data, m.network); });
  suite.settings.inverse = inverse.get();
  suite.settings.patterns = patterns.get();
  suite.examples = o.examples;
  suite.randomization_examples = o.randomization_examples;
  suite.refit_examples = o.refit_examples;
  suite.progress = quiet ? nullptr : terminal_progress();
  std::string boxes = o.boxes;
  const DataSpec spec = parse_data_spec(o.data);
  if (boxes.empty() && (spec.kind == "folder" || spec.kind == "npy") && fs::exists(spec.path + "/boxes.json")) {
    boxes = spec.path + "/boxes.json";
  }
  if (suite.metrics.count("localization") && boxes.empty() && o.metrics == "all") {
    if (!quiet) std::cerr << "note: skipping localization (the data set has no boxes)\n";
    suite.metrics.erase("localization");
  }
  if (suite.metrics.count("localization")) {
    MIPIN_CHECK(!boxes.empty(), "the localization metric needs boxes: use --data folder:DIR made by "
                "`mipin data clutter`, --data npy:DIR made by `mipin data motifs`, or --boxes FILE");
    suite.boxes = read_boxes(boxes, o.split);
  }

  nlohmann::json j = run_suite(m.network, *data, suite);
  if (!job.leads()) {
    job.finish();
    return;
  }
  j["model"] = o.model;
  j["split"] = o.split;
  for (const std::string& name : suite.methods) {
    if (!inverse || method_entry(name).fitted != FittedPart::inverse) continue;
    j["methods"][name]["inverse"] = {{"file", o.inverse},
                                     {"fit_examples", inverse->examples},
                                     {"relu_mode", to_string(inverse->options().relu_mode)},
                                     {"fit_on", to_string(inverse->options().fit_on)},
                                     {"top", to_string(inverse->options().top)},
                                     {"alpha", inverse->options().alpha}};
  }
  for (auto& [name, entry] : j["methods"].items()) entry["examples"] = j["examples"];
  // Where a method took the gradient's rule for want of its own.
  for (const std::string& name : suite.methods) {
    if (!j["methods"].contains(name)) continue;
    try {
      j["methods"][name]["fallback_nodes"] = fallback_json(*make_method(name, suite.settings, true), m.network);
    } catch (const Error&) {
      // A method that cannot be made here made no row either.
    }
  }
  if (!o.out.empty()) {
    const ReportGallery gallery = make_gallery(m.network, *data, suite.methods, suite.settings, o.gallery);
    fs::create_directories(o.out);
    write_file_atomically((fs::path(o.out) / "metrics.json").string(), j.dump(2));
    write_file_atomically((fs::path(o.out) / "report.html").string(), html_report(j, gallery));
  }
  job.finish();
  if (o.common.json) {
    print_json(j);
    return;
  }
  print_human(j);
  if (!o.out.empty()) {
    std::printf("\nwrote %s/metrics.json and %s/report.html (open it in a browser)\n", o.out.c_str(), o.out.c_str());
  }
}

}  // namespace

void register_evaluate_command(CLI::App& app) {
  auto o = std::make_shared<EvaluateCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "evaluate",
      "Measure how faithful attribution methods are on held-out data (docs/design.md section 3):\n"
      "  completeness   the model on s alone predicts as on x (agreement, accuracy)\n"
      "  minimality     the model on x - s is at chance (accuracy, agreement, chance)\n"
      "  reconstruction R^2 of MIP-IN's signal against the true activation per layer\n"
      "  additivity     MIP-IN's class-wise source signals add up to the full one\n"
      "  randomization  similarity to the original maps as layers are re-initialised from\n"
      "                 the top (Spearman of |map| and of the signed map, SSIM); learned\n"
      "                 methods are refitted on each randomized model\n"
      "  deletion       deletion and insertion curves, their areas, and a random order's;\n"
      "                 removed pixels take --fill (the mean input, zeros or a blurred image)\n"
      "  road           ROAD (Rong et al. 2022): pixels removed most relevant first (MoRF)\n"
      "                 and least relevant first (LeRF), filled from their neighbours by noisy\n"
      "                 linear imputation so that the images stay like the data\n"
      "  localization   pointing game and positive mass in the object's box (cluttered canvas)\n                 or the motif's span (planted motifs)\n"
      "  ground-truth   cosine with the true signal on the linear signal/distractor toy\n"
      "s is MIP-IN's source signal of the full output, or a method's map of the predicted class.\n\n"
      "Example: mipin evaluate --model cnn.pt --inverse cnn.mipin --data fashion-mnist\n"
      "         mipin evaluate --model cnn.pt --inverse cnn.mipin --patterns cnn.patterns \\\n"
      "           --methods all --metrics all --examples 1000 --out report");
  cmd->add_option("--model", o->model, "TorchScript model (.pt)")->required();
  cmd->add_option("--methods", o->methods,
                  "Comma-separated methods, or all (`mipin methods`); a method with options of its own is "
                  "NAME:OPTION=VALUE[:...], e.g. mipin:readout=contrast")
      ->capture_default_str();
  cmd->add_option("--inverse", o->inverse, "MIP-IN inverse made by `mipin fit` (for mipin)");
  cmd->add_option("--patterns", o->patterns, "Patterns made by `mipin fit --method pattern`");
  cmd->add_option("--data", o->data, "Data set (see docs/cli.md, \"Data sets\")")->capture_default_str();
  cmd->add_option("--split", o->split, "train or test")
      ->check(CLI::IsMember({"train", "test"}))
      ->capture_default_str();
  cmd->add_option("--examples", o->examples, "Evaluate the first N examples (default: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--metrics", o->metrics, "Comma-separated metrics, or all")->capture_default_str();
  cmd->add_option("--fill", o->fill,
                  "What deletion and insertion put in removed pixels: mean, zero or blur (occlusion's "
                  "patch fill is set as a variant here: --methods occlusion:fill=X)")
      ->check(CLI::IsMember({"mean", "zero", "blur"}))
      ->capture_default_str();
  cmd->add_option("--randomization-examples", o->randomization_examples,
                  "Examples compared under randomization")->capture_default_str();
  cmd->add_option("--refit-examples", o->refit_examples,
                  "Training examples for refitting learned methods on randomized models")
      ->capture_default_str();
  cmd->add_option("--boxes", o->boxes, "boxes.json of `mipin data clutter` or `mipin data motifs` (default: the data directory's)");
  cmd->add_option("--out", o->out, "Directory for metrics.json and report.html");
  cmd->add_option("--gallery", o->gallery, "Examples in the report's heatmap grid")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--input-shape", o->input_shape, "Shape of one input, e.g. 3,224,224");
  add_method_flags(*cmd, o->method_flags);
  add_job_flags(*cmd, o->job);
  add_common_options(*cmd, o->common);
  cmd->callback([o] { run_evaluate(*o); });
}

}  // namespace mipin::cli
