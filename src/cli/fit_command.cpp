// mipin fit: learn the MIP-IN inverse of a model on a data set.
#include <filesystem>
#include <iostream>

#include "common.h"
#include "mipin/inverse/options_json.h"
#include "job.h"
#include "method_flags.h"
#include "mipin/attribution/patterns.h"
#include "mipin/util/error.h"

namespace mipin::cli {
namespace {

struct FitCommandOptions {
  std::string method = "mipin";
  std::string model, data = "fashion-mnist", out, input_shape;
  MethodFlags fit_flags;  // the fit's own options (inverse/options.h declares them)
  std::string checkpoint;
  double checkpoint_every = 60;
  JobFlags job;
  CommonOptions common;
};

// The fit options a fit method declares, by name with the fits that take
// them (for the flags' help).
const OptionDeclarations& fit_declarations() {
  static const OptionDeclarations all = [] {
    OptionDeclarations d;
    for (const OptionSpec& s : inverse_option_specs()) d[s.name].emplace_back("mipin", s);
    for (const OptionSpec& s : pattern_option_specs()) d[s.name].emplace_back("pattern", s);
    return d;
  }();
  return all;
}

// Per pass: what it took, and what crossed between processes.
void print_passes(const Inverse& inverse, int world_size) {
  std::printf("\n%4s %6s %8s %9s %12s %10s\n", "pass", "nodes", "batches", "seconds", "reduced MB", "reduce s");
  for (const PassStats& p : inverse.passes) {
    std::printf("%4d %6zu %8lld %9.1f %12.2f %10.3f\n", p.pass, p.nodes, static_cast<long long>(p.batches),
                p.seconds, double(p.reduced_bytes) / 1e6, p.reduce_seconds);
  }
  std::printf("(batches: this process's share of %d)\n", world_size);
}

nlohmann::json passes_json(const Inverse& inverse) {
  nlohmann::json out = nlohmann::json::array();
  for (const PassStats& p : inverse.passes) {
    out.push_back({{"pass", p.pass}, {"nodes", p.nodes}, {"batches", p.batches}, {"seconds", p.seconds},
                   {"reduced_bytes", p.reduced_bytes}, {"reduce_seconds", p.reduce_seconds}});
  }
  return out;
}

void run_fit(const FitCommandOptions& o) {
  apply_common_options(o.common);
  Job job(o.job);
  // Rank 0 speaks for the job; the others only report errors.
  const bool quiet = o.common.json || !job.leads();
  const ImportedModel m = load_model(o.model, o.input_shape, quiet);
  const auto data = open_dataset(o.data, Split::Train);
  check_data_fits_model(*data, m.network, o.model);
  MethodOptions given;
  for (const auto& [name, text] : o.fit_flags.given) given.set(name, text);
  FitRun run = FitRun{}.with_reducer(&job.reducer()).with_progress(quiet ? nullptr : terminal_progress());
  if (o.method == "pattern") {
    MIPIN_CHECK(o.checkpoint.empty(), "--checkpoint is for MIP-IN fits (a pattern fit is one pass)");
    const MethodOptions checked = check_options("pattern", pattern_option_specs(), given);
    Patterns patterns =
        fit_patterns(m.network, *data, checked.integer("examples"), checked.integer("batch_size"), run);
    patterns.model_name = o.model;
    if (job.leads()) patterns.save(o.out);
    job.finish();
    if (!job.leads()) return;
    if (o.common.json) {
      print_json({{"patterns", o.out}, {"model", o.model}, {"data", data->name()},
                  {"examples", patterns.examples}, {"layers", patterns.patterns.size()},
                  {"model_fingerprint", patterns.model_fingerprint}, {"processes", job.world_size()}});
    } else {
      std::printf("fitted PatternNet patterns for %zu layers of %s on %lld examples of %s\nsaved %s\n",
                  patterns.patterns.size(), o.model.c_str(), static_cast<long long>(patterns.examples),
                  data->name().c_str(), o.out.c_str());
    }
    return;
  }
  const MethodOptions checked = check_options("mipin", inverse_option_specs(), given);
  const InverseOptions options = inverse_options(checked);
  if (!o.checkpoint.empty()) run.with_checkpoint(o.checkpoint, o.checkpoint_every);
  Inverse inverse = fit_inverse(m.network, *data, options, run);
  inverse.model_name = o.model;
  if (job.leads()) {
    inverse.save(o.out);
    // The inverse is safe: a rerun starts afresh.
    if (!o.checkpoint.empty()) std::filesystem::remove(fit_checkpoint_file(o.checkpoint));
  }
  job.finish();
  if (!job.leads()) return;
  if (o.common.json) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& f : inverse.fits()) layers.push_back(layer_fit_json(f, /*with_seconds=*/true));
    print_json({{"inverse", o.out}, {"model", o.model}, {"data", data->name()},
                {"examples", inverse.examples}, {"seconds", inverse.seconds},
                {"model_fingerprint", inverse.model_fingerprint()},
                {"options", inverse_options_json(inverse.options())},
                {"processes", job.world_size()},
                {"passes", passes_json(inverse)},
                {"layers", layers}});
    return;
  }
  std::printf("fitted the MIP-IN inverse of %s on %lld examples of %s in %.1f s%s\n\n",
              o.model.c_str(), static_cast<long long>(inverse.examples), data->name().c_str(),
              inverse.seconds, job.world_size() > 1 ? (" on " + std::to_string(job.world_size()) + " processes").c_str() : "");
  std::printf("%5s  %-52s %4s %-10s %10s %9s\n", "layer", "inverted", "pass", "solver", "R^2", "seconds");
  for (const auto& f : inverse.fits()) {
    std::printf("%5zu  %-52s %4d %-10s %10.4f %9.1f\n", f.index, f.layer.c_str(), f.pass, f.solver.c_str(),
                f.r2, f.seconds);
  }
  if (job.world_size() > 1) print_passes(inverse, job.world_size());
  std::printf("\nsaved %s\n", o.out.c_str());
}

}  // namespace

void register_fit_command(CLI::App& app) {
  auto o = std::make_shared<FitCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "fit",
      "Fit the MIP-IN inverse of a model: each Linear/Conv2d layer, from the top down, gets\n"
      "the least-squares operator that reconstructs its input from the signal the fitted\n"
      "layers above deliver; on a graph each residual add also gets per-channel scales for\n"
      "its inputs and each BatchNorm that could not be folded a per-channel scale. Each pass\n"
      "over the data fits every layer whose fitted layers above are all done, so a residual\n"
      "network takes as many passes as its depth. Streams the training split; memory does\n"
      "not grow with --examples. Prints each layer's reconstruction R^2. With --method\n"
      "pattern it fits PatternNet's signal estimators instead (for --method\n"
      "patternnet/patternattribution of explain).\n\n"
      "Example: mipin fit --model cnn.pt --data fashion-mnist --examples 20000 --out cnn.mipin\n"
      "         mipin fit --method pattern --model cnn.pt --data fashion-mnist --out cnn.patterns");
  cmd->add_option("--method", o->method,
                  "mipin (the MIP-IN inverse) or pattern (PatternNet/PatternAttribution patterns, "
                  "one pass over the data)")
      ->check(CLI::IsMember({"mipin", "pattern"}))
      ->capture_default_str();
  cmd->add_option("--model", o->model, "TorchScript model (.pt)")->required();
  cmd->add_option("--data", o->data, "Data set to fit on (its train split); see docs/cli.md, \"Data sets\"")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "Where to write the inverse (.mipin)")->required();
  add_option_flags(*cmd, fit_declarations(), o->fit_flags, "Fit options");
  cmd->add_option("--input-shape", o->input_shape, "Shape of one input, e.g. 3,224,224");
  cmd->add_option("--checkpoint", o->checkpoint,
                  "Keep the fit's progress in DIR (the nodes fitted and the sums of the pass under way) "
                  "and resume from it when run again; the result is the same bytes as an uninterrupted fit's");
  cmd->add_option("--checkpoint-every", o->checkpoint_every,
                  "Seconds between checkpoints, at most (0: after every batch)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  add_job_flags(*cmd, o->job);
  add_common_options(*cmd, o->common);
  cmd->callback([o] { run_fit(*o); });
}

}  // namespace mipin::cli
