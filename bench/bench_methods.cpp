// mipin_bench: what each attribution method costs, as a ratio to the forward
// pass of the same model and batch measured in the same process, next to
// Python PyTorch's forward and autograd gradient on the same TorchScript file.
//
// Each (model, batch, method) runs in a child process of its own (this
// program again, with --case), so that its peak memory is its own; inside the
// child, forward passes and method calls alternate and the medians are
// compared, which keeps the ratio honest on a noisy machine.
#include <sys/resource.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

#include "mipin/attribution/fused.h"
#include "mipin/attribution/layer_maps.h"
#include "mipin/attribution/patterns.h"
#include "mipin/attribution/registry.h"
#include "mipin/inverse/inverse.h"
#include "mipin/model/convolution.h"
#include "mipin/model/layers.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"
#include "mipin/util/memory.h"
#include "mipin/zoo/architectures.h"

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace mipin;

namespace {

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

template <typename F>
double milliseconds(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// An operator per Linear/Conv2d layer with the shape a fitted one has (the
// layer's own weight, which is the shape MIP-IN's U and PatternNet's A
// take), and even channel scales at every other node the fit gives
// parameters (adds, unfolded BatchNorms). The cost of explaining depends on
// those shapes only, so the timing needs no fit; fitting is timed on its own
// (bench/fit_bench.py).
void timing_inverse_and_patterns(const Network& net, const at::Tensor& x, Inverse& inverse, Patterns& patterns) {
  ForwardRecord record;
  net.forward(x.slice(0, 0, 1), &record);
  for (size_t i = 0; i < net.size(); ++i) {
    const Layer& layer = net.layer(i);
    if (const AffineLayer* affine = as_affine(layer)) {
      inverse.set_operator(i, affine->weight.clone());
      patterns.patterns[i] = affine->weight.clone();
    } else if (has_fitted_inverse(layer, inverse.options())) {
      const int64_t parts = layer.kind() == LayerKind::BatchNorm2d ? 1 : int64_t(net.inputs(i).size());
      // One scale per unit: a channel of [C, H, W] or [F], a feature of a
      // token's [tokens, F].
      const at::Tensor& out = record.layers[i].output;
      const int64_t units = out.size(out.dim() == 3 ? 2 : 1);
      inverse.set_operator(i, torch::full({parts, units}, 1.0 / double(parts)));
    }
  }
  patterns.model_fingerprint = net.fingerprint();
}

// One child: the forward pass and one method on one model and batch.
// "3,224,224" -> {3, 224, 224}; empty -> {} (the shape stored in the file).
std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> shape;
  std::stringstream in(text);
  for (std::string d; std::getline(in, d, ',');) shape.push_back(std::stoll(d));
  return shape;
}

// A child's model and its batch of standard normal inputs.
struct CaseInput {
  ImportedModel model;
  at::Tensor x;
};

CaseInput load_case(const std::string& model_path, const std::string& example_shape, int64_t batch, int threads) {
  torch::set_num_threads(threads);
  CaseInput c{load_torchscript(model_path, ImportOptions{}.with_input_shape(parse_shape(example_shape))), {}};
  std::vector<int64_t> shape{batch};
  for (int64_t d : c.model.network.input_shape()) shape.push_back(d);
  torch::manual_seed(0);
  c.x = torch::randn(shape);
  return c;
}

Json run_case(const std::string& model_path, const std::string& example_shape, int64_t batch, const std::string& method_name,
              int reps, int threads) {
  torch::NoGradGuard no_grad;
  const CaseInput input = load_case(model_path, example_shape, batch, threads);
  const Network& net = input.model.network;
  const at::Tensor& x = input.x;
  const at::Tensor targets = net.forward(x).argmax(1);

  Inverse inverse(InverseOptions{}, net.fingerprint());
  Patterns patterns;
  timing_inverse_and_patterns(net, x, inverse, patterns);
  MethodSettings settings;
  settings.inverse = &inverse;
  settings.patterns = &patterns;
  const auto method = make_method(method_name, settings);

  // Warm-up: first calls allocate and pick kernels.
  for (int i = 0; i < 2; ++i) {
    net.forward(x);
    method->attribute(net, x, targets);
  }
  const double rss_forward_before = peak_rss_mib();
  std::vector<double> forward_ms, method_ms;
  for (int r = 0; r < reps; ++r) {
    forward_ms.push_back(milliseconds([&] { net.forward(x); }));
    method_ms.push_back(milliseconds([&] { method->attribute(net, x, targets); }));
  }
  return {{"forward_ms", median(forward_ms)},
          {"method_ms", median(method_ms)},
          {"forward_samples", forward_ms},
          {"method_samples", method_ms},
          {"peak_rss_mib", peak_rss_mib()},
          {"peak_rss_after_warmup_mib", rss_forward_before}};
}

// What exact LRP-z+ cannot go below. Its backward pass maps each layer's
// input through the layer with the positive weights (z+ = a W+) and maps
// the quotients back through the transpose, on direct kernels (Winograd's
// tile-wise rounding is no place for LRP's quotients; model/convolution.h).
// Those maps alone, with nothing else of the method, set its floor:
// (forward + maps with W+ + their transposes) / forward. Each layer takes
// one term (a signed input to the first layer takes two in the rule), so
// this is a lower bound. The forward passes alternate with the maps, as in
// run_case. The rule's element-wise steps (a division at each layer's
// output, a product at its input) are not part of the floor; they are
// timed alone as well, so that a report can say how much of the gap
// between a method and its floor they are.
Json run_floor(const std::string& model_path, const std::string& example_shape, int64_t batch, int reps,
               int threads) {
  torch::NoGradGuard no_grad;
  const CaseInput input = load_case(model_path, example_shape, batch, threads);
  const Network& net = input.model.network;
  const at::Tensor& x = input.x;
  ForwardRecord record;
  net.forward(x, &record);
  struct Map {
    std::function<at::Tensor()> forward, transposed, elementwise;
  };
  std::vector<Map> positive;
  for (size_t i = 0; i < net.size(); ++i) {
    const Layer& layer = net.layer(i);
    const at::Tensor a = record.layers[i].input.clamp_min(0);
    const at::Tensor s = torch::rand_like(record.layers[i].output);
    if (const AffineLayer* affine = as_affine(layer)) {
      const at::Tensor wp = affine->weight.clamp_min(0);
      const at::Tensor z = affine->map(a, wp), c = affine->transposed_map(wp, s, a, TransposeKernels::direct_only);
      positive.push_back({[affine, a, wp] { return affine->map(a, wp); },
                          [affine, a, wp, s] { return affine->transposed_map(wp, s, a, TransposeKernels::direct_only); },
                          [a, s, z, c] {
                            fused::stabilised_divide(s, z, 1e-9);
                            return c * a;
                          }});
    }
  }
  auto all = [&](bool transposed) {
    for (const Map& m : positive) (transposed ? m.transposed : m.forward)();
  };
  auto elementwise = [&] {
    for (const Map& m : positive) m.elementwise();
  };
  for (int i = 0; i < 2; ++i) {
    net.forward(x);
    all(false);
    all(true);
  }
  elementwise();
  std::vector<double> forward_ms, zplus_ms, transposed_ms, elementwise_ms;
  for (int r = 0; r < reps; ++r) {
    forward_ms.push_back(milliseconds([&] { net.forward(x); }));
    zplus_ms.push_back(milliseconds([&] { all(false); }));
    transposed_ms.push_back(milliseconds([&] { all(true); }));
    elementwise_ms.push_back(milliseconds(elementwise));
  }
  const double f = median(forward_ms), z = median(zplus_ms), t = median(transposed_ms);
  return {{"forward_ms", f},
          {"positive_maps_ms", z},
          {"transposed_direct_ms", t},
          {"floor_ratio", (f + z + t) / f},
          {"division_and_product_ms", median(elementwise_ms)},
          {"forward_samples", forward_ms},
          {"positive_maps_samples", zplus_ms},
          {"transposed_direct_samples", transposed_ms},
          {"division_and_product_samples", elementwise_ms}};
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

Json run_json_command(const std::string& command) {
  std::string text;
  FILE* pipe = popen(command.c_str(), "r");
  MIPIN_CHECK(pipe != nullptr, "cannot run: ", command);
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) text.append(buffer, n);
  const int status = pclose(pipe);
  MIPIN_CHECK(status == 0, "benchmark step failed (status ", status, "): ", command, "\n", text);
  const auto last = text.rfind("\n{");
  return Json::parse(last == std::string::npos ? text : text.substr(last + 1));
}

// Several processes' results as one: every "<key>_samples" list joined and
// "<key>_ms" its median; peak memory the largest.
Json pooled(const Json& rounds, const std::vector<std::string>& keys) {
  Json out = rounds.at(0);
  for (const std::string& key : keys) {
    std::vector<double> all;
    for (const Json& r : rounds) {
      for (double v : r.at(key + "_samples")) all.push_back(v);
    }
    out[key + "_samples"] = all;
    out[key + "_ms"] = median(all);
  }
  for (const char* rss : {"peak_rss_mib", "peak_rss_after_warmup_mib"}) {
    for (const Json& r : rounds) {
      if (r.contains(rss)) out[rss] = std::max(out[rss].get<double>(), r[rss].get<double>());
    }
  }
  out["rounds"] = rounds.size();
  return out;
}

struct ModelCase {
  std::string name, path, shape;  // shape: per example, "" for the one stored in the file
  std::vector<int64_t> batches;
  int reps_small, reps_large;  // repetitions at the first and second batch size
  int rounds;                  // processes per method, spread over the run
  std::vector<std::string> skipped;  // methods left out for this model, with why below
  std::vector<std::string> only;     // if not empty, the methods run for this model
};

std::string shape_arg(const Network& net) {
  std::string s;
  for (int64_t d : net.input_shape()) s += (s.empty() ? "" : ",") + std::to_string(d);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  reuse_freed_memory();
  CLI::App app{
      "What each attribution method costs against the forward pass, and our gradient against Python "
      "PyTorch's autograd. Writes JSON under --out and prints a table.\n\n"
      "Example: build/mipin_bench --vgg16 bench/models/vgg16.pt --resnet50 bench/models/resnet50.pt "
      "--mobilenet-v2 bench/models/mobilenet_v2.pt --out bench/results   (bash bench/run.sh does it all)\n\n"
      "A run restricted with --models keeps the other models' results already in --out."};
  std::string out = "bench/results", vgg16, resnet50, mobilenet_v2, vit_b_16, models_dir = "bench/models", python = "/usr/bin/python3";
  std::string only_methods, only_models;
  int threads = 0;
  bool quick = false;
  std::string case_model, case_method, case_shape;
  int64_t case_batch = 1;
  int case_reps = 10;
  app.add_option("--out", out, "Directory for the results JSON")->capture_default_str();
  app.add_option("--vgg16", vgg16, "TorchScript VGG16 at 3x224x224 (bench/run.sh exports it); none: skip VGG16");
  app.add_option("--models-dir", models_dir, "Where the MLP and CNN are written for both sides")->capture_default_str();
  app.add_option("--python", python, "Python with torch for the PyTorch side")->capture_default_str();
  app.add_option("--methods", only_methods, "Comma-separated methods (default: all)");
  app.add_option("--resnet50", resnet50, "TorchScript resnet50 at 3x224x224 (bench/run.sh exports it); none: skip it");
  app.add_option("--mobilenet-v2", mobilenet_v2,
                 "TorchScript mobilenet_v2 at 3x224x224 (bench/run.sh exports it); none: skip it");
  app.add_option("--vit-b-16", vit_b_16,
                 "TorchScript vit_b_16 at 3x224x224 (bench/run.sh exports it); none: skip it");
  app.add_option("--models", only_models,
                 "Comma-separated of mlp,cnn,vgg16,resnet50,mobilenet_v2,vit_b_16 (default: all)");
  app.add_option("--threads", threads, "CPU threads for both sides (default: all cores)");
  app.add_flag("--quick", quick, "Fewer repetitions (a smoke run)");
  auto* c = app.add_option("--case", case_model, "(internal) run one model file in this process");
  app.add_option("--case-method", case_method)->needs(c);
  app.add_option("--case-shape", case_shape)->needs(c);
  app.add_option("--case-batch", case_batch)->needs(c);
  app.add_option("--case-reps", case_reps)->needs(c);
  bool case_floor = false;
  app.add_flag("--case-floor", case_floor, "(internal) time LRP-z+'s floor instead of a method")->needs(c);
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads <= 0) threads = int(std::max<unsigned>(1, std::thread::hardware_concurrency()));
    if (!case_model.empty()) {
      const Json r = case_floor ? run_floor(case_model, case_shape, case_batch, case_reps, threads)
                                : run_case(case_model, case_shape, case_batch, case_method, case_reps, threads);
      std::cout << "\n" << r.dump() << std::endl;
      return 0;
    }
    fs::create_directories(out);
    fs::create_directories(models_dir);
    std::vector<ModelCase> models;
    auto wanted = [&](const std::string& m) { return only_models.empty() || ("," + only_models + ",").find("," + m + ",") != std::string::npos; };
    for (const std::string arch : {"mlp", "cnn"}) {
      if (!wanted(arch)) continue;
      torch::manual_seed(0);
      const std::string path = models_dir + "/" + arch + ".pt";
      ModelMetadata metadata;
      metadata.input_shape = {1, 28, 28};
      metadata.architecture = arch;
      save_torchscript(make_architecture(arch, {1, 28, 28}, 10), path, metadata);
      models.push_back({arch, path, "", {1, 64}, quick ? 5 : 200, quick ? 3 : 20, quick ? 1 : 5, {}});
    }
    // Sampling methods cost their sample count times the gradient; on the
    // torchvision models at 224x224 they would take the whole run
    // (occlusion: 3,136 forwards).
    const std::vector<std::string> sampling = {"smoothgrad", "integrated-gradients", "occlusion"};
    for (const auto& [name, path] : {std::pair<std::string, std::string>{"vgg16", vgg16},
                                     {"resnet50", resnet50},
                                     {"mobilenet_v2", mobilenet_v2}}) {
      if (path.empty() || !wanted(name)) continue;
      models.push_back({name, path, "3,224,224", {1, 8}, quick ? 2 : 7, quick ? 2 : 5, quick ? 1 : 3, sampling});
    }
    // The transformer at batch 8, with the methods its targets name: the
    // gradient family, and the rule-based methods whose attention rules
    // (products, softmax, layer norm) the convolutional models do not use.
    if (!vit_b_16.empty() && wanted("vit_b_16")) {
      models.push_back({"vit_b_16", vit_b_16, "3,224,224", {8}, quick ? 2 : 6, quick ? 2 : 6, quick ? 1 : 3, sampling,
                        {"gradient", "input-x-gradient", "guided-backprop", "deeplift", "lrp-epsilon", "mipin"}});
    }
    std::vector<std::string> methods;
    for (const auto& e : registered_methods()) {
      if (only_methods.empty() || ("," + only_methods + ",").find("," + e.name + ",") != std::string::npos) {
        methods.push_back(e.name);
      }
    }
    const std::string self = fs::read_symlink("/proc/self/exe").string();
    Json results = {{"threads", threads}, {"torch_threads", threads}, {"models", Json::object()}};
    {
      std::ifstream cpu("/proc/cpuinfo");
      for (std::string line; std::getline(cpu, line);) {
        if (line.rfind("model name", 0) == 0) {
          results["cpu"] = line.substr(line.find(':') + 2);
          break;
        }
      }
    }
    std::printf("%-12s %5s  %-20s %10s %10s %7s %9s\n", "model", "batch", "method", "fwd ms", "method ms",
                "x fwd", "peak MiB");
    for (const ModelCase& m : models) {
      const ImportedModel imported =
          load_torchscript(m.path, ImportOptions{}.with_input_shape(parse_shape(m.shape)));
      Json jm = {{"path", m.path}, {"input_shape", imported.network.input_shape()}, {"batches", Json::object()},
                 {"skipped_methods", m.skipped}};
      for (size_t b = 0; b < m.batches.size(); ++b) {
        const int64_t batch = m.batches[b];
        const int reps = b == 0 ? m.reps_small : m.reps_large;
        // The shared machine has slow spells that last minutes. Each method
        // runs in m.rounds processes spread over this batch's run (every
        // round visits every method once), so that a spell falls on one
        // round of many methods rather than on every sample of one; each
        // method's samples are pooled. Python PyTorch and our gradient run
        // back to back in each round, so that their comparison sees the same
        // machine.
        const int reps_per_round = std::max(1, (reps + m.rounds - 1) / m.rounds);
        Json jb = {{"repetitions", reps_per_round * m.rounds}, {"rounds", m.rounds}, {"methods", Json::object()}};
        auto run_ours = [&](const std::string& name) {
          return run_json_command(shell_quote(self) + " --case " + shell_quote(m.path) +
                                  (name == "floor" ? " --case-floor" : " --case-method " + name) +
                                  (m.shape.empty() ? "" : " --case-shape " + m.shape) + " --case-batch " +
                                  std::to_string(batch) + " --case-reps " + std::to_string(reps_per_round) +
                                  " --threads " + std::to_string(threads));
        };
        std::vector<std::string> order;  // the gradient first, right after Python
        for (const std::string& name : methods) {
          if (std::find(m.skipped.begin(), m.skipped.end(), name) != m.skipped.end()) continue;
          if (!m.only.empty() && std::find(m.only.begin(), m.only.end(), name) == m.only.end()) continue;
          order.insert(name == "gradient" ? order.begin() : order.end(), name);
        }
        const bool floor_wanted = std::find(methods.begin(), methods.end(), "lrp-zplus") != methods.end();
        if (floor_wanted) order.push_back("floor");
        Json py_rounds = Json::array();
        std::map<std::string, Json> rounds_of;
        std::map<std::string, std::string> failed;
        for (const std::string& name : order) rounds_of[name] = Json::array();
        for (int round = 0; round < m.rounds; ++round) {
          std::printf("%-12s %5lld  round %d of %d\n", m.name.c_str(), static_cast<long long>(batch), round + 1,
                      m.rounds);
          std::fflush(stdout);
          py_rounds.push_back(run_json_command(
              shell_quote(python) + " " +
              shell_quote((fs::path(MIPIN_SOURCE_DIR) / "bench/time_pytorch.py").string()) + " --model " +
              shell_quote(m.path) + " --input-shape " + shape_arg(imported.network) + " --batch " +
              std::to_string(batch) + " --reps " + std::to_string(reps_per_round) + " --threads " +
              std::to_string(threads)));
          for (const std::string& name : order) {
            if (failed.count(name)) continue;
            try {
              rounds_of[name].push_back(run_ours(name));
            } catch (const Error& e) {
              // A method that does not apply to this model (grad-cam without a
              // convolution) is recorded as such; the rest goes on.
              std::printf("%-12s %5lld  %-20s   does not run here (see the error above)\n", m.name.c_str(),
                          static_cast<long long>(batch), name.c_str());
              failed[name] = e.what();
            }
          }
        }
        const Json py = pooled(py_rounds, {"forward", "gradient"});
        jb["pytorch"] = py;
        for (const std::string& name : order) {
          if (name == "floor") continue;
          if (failed.count(name)) {
            jb["methods"][name] = {{"error", failed[name]}};
            continue;
          }
          const Json r = pooled(rounds_of[name], {"forward", "method"});
          Json entry = {{"forward_ms", r["forward_ms"]},
                        {"method_ms", r["method_ms"]},
                        {"ratio_to_forward", r["method_ms"].get<double>() / r["forward_ms"].get<double>()},
                        {"peak_rss_mib", r["peak_rss_mib"]},
                        {"forward_samples", r["forward_samples"]},
                        {"method_samples", r["method_samples"]}};
          if (name == "gradient") {
            entry["pytorch_gradient_ms"] = py["gradient_ms"];
            entry["ours_over_pytorch"] = r["method_ms"].get<double>() / py["gradient_ms"].get<double>();
            entry["pytorch_forward_ms"] = py["forward_ms"];
            entry["forward_over_pytorch"] = r["forward_ms"].get<double>() / py["forward_ms"].get<double>();
          }
          std::printf("%-12s %5lld  %-20s %10.3f %10.3f %7.2f %9.0f%s\n", m.name.c_str(),
                      static_cast<long long>(batch), name.c_str(), r["forward_ms"].get<double>(),
                      r["method_ms"].get<double>(), entry["ratio_to_forward"].get<double>(),
                      r["peak_rss_mib"].get<double>(),
                      name == "gradient" ? ("   PyTorch autograd " + std::to_string(py["gradient_ms"].get<double>()) +
                                            " ms, ours/PyTorch " + std::to_string(entry["ours_over_pytorch"].get<double>()) +
                                            ", forward ours/PyTorch " +
                                            std::to_string(entry["forward_over_pytorch"].get<double>()))
                                               .c_str()
                                         : "");
          jb["methods"][name] = entry;
        }
        if (floor_wanted && !failed.count("floor")) {
          Json floor =
              pooled(rounds_of["floor"], {"forward", "positive_maps", "transposed_direct", "division_and_product"});
          const double f = floor["forward_ms"], z = floor["positive_maps_ms"], t = floor["transposed_direct_ms"];
          floor["floor_ratio"] = (f + z + t) / f;
          std::printf(
              "%-12s %5lld  %-20s %10.3f %10.3f %7.2f   (forward + maps with W+ %.3f + transposed %.3f ms; the "
              "rule's divisions and products alone %.3f ms)\n",
              m.name.c_str(), static_cast<long long>(batch), "lrp-zplus floor", f, f + z + t, (f + z + t) / f, z, t,
              floor["division_and_product_ms"].get<double>());
          jb["lrp_zplus_floor"] = floor;
        }
        std::fflush(stdout);
        jm["batches"][std::to_string(batch)] = jb;
      }
      results["models"][m.name] = jm;
    }
    const std::string file = (fs::path(out) / "methods.json").string();
    // Models not run this time keep their earlier results (each model's
    // ratios are measured within its own run).
    if (fs::exists(file)) {
      std::ifstream earlier_in(file);
      const Json earlier = Json::parse(earlier_in, nullptr, /*allow_exceptions=*/false);
      if (earlier.is_object() && earlier.contains("models")) {
        for (const auto& [name, entry] : earlier["models"].items()) {
          if (!results["models"].contains(name)) results["models"][name] = entry;
        }
      }
    }
    write_file_atomically(file, results.dump(2));
    std::printf("wrote %s\n", file.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
