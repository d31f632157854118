// mipin fit: learn the MIP-IN inverse of a model on a data set.
#include <iostream>

#include "common.h"
#include "mipin/attribution/patterns.h"
#include "mipin/util/error.h"

namespace mipin::cli {
namespace {

struct FitCommandOptions {
  std::string method = "mipin";
  std::string model, data = "fashion-mnist", out, input_shape;
  std::string solver = "auto", relu_mode = "forward", fit_on = "signals", top = "logits";
  std::string add_split = "fitted", gate = "transfer", fork = "sum";
  double share_epsilon = 0.1;
  int64_t examples = 0;
  int64_t batch_size = 128;
  double alpha = 1e-3;
  int64_t iterative_iterations = 100;
  CommonOptions common;
};

void run_fit(const FitCommandOptions& o) {
  apply_common_options(o.common);
  const ImportedModel m = load_model(o.model, o.input_shape, o.common.json);
  const auto data = open_dataset(o.data, Split::Train);
  check_data_fits_model(*data, m.network, o.model);
  if (o.method == "pattern") {
    Patterns patterns = fit_patterns(m.network, *data, o.examples, o.batch_size, true);
    patterns.model_name = o.model;
    patterns.save(o.out);
    if (o.common.json) {
      print_json({{"patterns", o.out}, {"model", o.model}, {"data", data->name()},
                  {"examples", patterns.examples}, {"layers", patterns.patterns.size()},
                  {"model_fingerprint", patterns.model_fingerprint}});
    } else {
      std::printf("fitted PatternNet patterns for %zu layers of %s on %lld examples of %s\nsaved %s\n",
                  patterns.patterns.size(), o.model.c_str(), static_cast<long long>(patterns.examples),
                  data->name().c_str(), o.out.c_str());
    }
    return;
  }
  const InverseOptions options = InverseOptions{}
                                     .with_solver(parse_solver(o.solver))
                                     .with_alpha(o.alpha)
                                     .with_relu_mode(parse_relu_mode(o.relu_mode))
                                     .with_fit_on(parse_fit_on(o.fit_on))
                                     .with_top(parse_top_signal(o.top))
                                     .with_add_split(parse_add_split(o.add_split))
                                     .with_share_epsilon(o.share_epsilon)
                                     .with_gate(parse_activation_gate(o.gate))
                                     .with_fork(parse_fork_combine(o.fork))
                                     .with_examples(o.examples)
                                     .with_batch_size(o.batch_size)
                                     .with_iterative_iterations(o.iterative_iterations);
  Inverse inverse = fit_inverse(m.network, *data, options);
  inverse.model_name = o.model;
  inverse.save(o.out);
  if (o.common.json) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& f : inverse.fits()) {
      layers.push_back({{"index", f.index}, {"layer", f.layer}, {"solver", f.solver},
                        {"r2", f.r2}, {"mse", f.mse}, {"seconds", f.seconds}, {"pass", f.pass}});
    }
    print_json({{"inverse", o.out}, {"model", o.model}, {"data", data->name()},
                {"examples", inverse.examples}, {"seconds", inverse.seconds},
                {"model_fingerprint", inverse.model_fingerprint()},
                {"options", {{"solver", o.solver}, {"alpha", o.alpha}, {"relu_mode", o.relu_mode},
                             {"fit_on", o.fit_on}, {"top", o.top}, {"add_split", o.add_split},
                             {"share_epsilon", o.share_epsilon}, {"gate", o.gate}, {"fork", o.fork}}},
                {"layers", layers}});
    return;
  }
  std::printf("fitted the MIP-IN inverse of %s on %lld examples of %s in %.1f s\n\n",
              o.model.c_str(), static_cast<long long>(inverse.examples), data->name().c_str(),
              inverse.seconds);
  std::printf("%5s  %-52s %4s %-10s %10s %9s\n", "layer", "inverted", "pass", "solver", "R^2", "seconds");
  for (const auto& f : inverse.fits()) {
    std::printf("%5zu  %-52s %4d %-10s %10.4f %9.1f\n", f.index, f.layer.c_str(), f.pass, f.solver.c_str(),
                f.r2, f.seconds);
  }
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
  cmd->add_option("--data", o->data, "Data set to fit on (its train split); see README")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "Where to write the inverse (.mipin)")->required();
  cmd->add_option("--examples", o->examples, "Fit on the first N examples (default: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--solver", o->solver,
                  "exact (normal equations, Cholesky; any stride, groups or dilation), iterative "
                  "(conjugate gradient on the same loss, one pass per iteration), or auto "
                  "(iterative only where the normal equations would be very large)")
      ->check(CLI::IsMember({"auto", "exact", "iterative"}))
      ->capture_default_str();
  cmd->add_option("--alpha", o->alpha, "Ridge strength: lambda = alpha * trace(A) / dim(A)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--relu-mode", o->relu_mode,
                  "ReLU inverse: forward (this input's gates, MIP-IN), backward (rectify the "
                  "signal), both")
      ->check(CLI::IsMember({"forward", "backward", "both"}))
      ->capture_default_str();
  cmd->add_option("--fit-on", o->fit_on,
                  "Fit each layer on the propagated signals (the paper's recursion) or on true "
                  "activations (ablation)")
      ->check(CLI::IsMember({"signals", "activations"}))
      ->capture_default_str();
  cmd->add_option("--top", o->top, "Top signal: the logits or softmax probabilities")
      ->check(CLI::IsMember({"logits", "softmax"}))
      ->capture_default_str();
  cmd->add_option("--add-split", o->add_split,
                  "How a residual add hands the signal to its inputs: fitted (per-channel scales "
                  "that reconstruct each input), share (s * a / (a + b), stabilised by "
                  "--share-epsilon) or even (s / inputs)")
      ->check(CLI::IsMember({"fitted", "share", "even"}))
      ->capture_default_str();
  cmd->add_option("--share-epsilon", o->share_epsilon, "Stabiliser of a + b for --add-split share")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--fork", o->fork,
                  "How a value read by several layers combines the signals they send back: sum "
                  "(the gradient's rule), fitted (per-channel weights that reconstruct the value) "
                  "or mean")
      ->check(CLI::IsMember({"sum", "fitted", "mean"}))
      ->capture_default_str();
  cmd->add_option("--gate", o->gate,
                  "Inverse of activations other than ReLU: transfer ((f(z) - f(0)) / z of this "
                  "input, the forward ReLU's reading) or tangent (f'(z))")
      ->check(CLI::IsMember({"transfer", "tangent"}))
      ->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "Examples per batch")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--iterations", o->iterative_iterations, "Conjugate-gradient iterations of the iterative solver (one pass over the examples each)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--input-shape", o->input_shape, "Shape of one input, e.g. 3,224,224");
  add_common_options(*cmd, o->common);
  cmd->callback([o] { run_fit(*o); });
}

}  // namespace mipin::cli
