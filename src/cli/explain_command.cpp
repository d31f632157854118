// mipin explain: attributions for inputs, as .npy arrays, heatmaps and JSON.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>

#include "common.h"
#include "method_flags.h"
#include "mipin/attribution/patterns.h"
#include "mipin/attribution/registry.h"
#include "mipin/data/image_folder.h"
#include "mipin/data/npy.h"
#include "mipin/report/images.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"
#include "mipin/util/progress.h"

namespace mipin::cli {
namespace {
namespace fs = std::filesystem;

struct ExplainCommandOptions {
  std::string model, method = "mipin", inverse, patterns, data, split = "test", index = "0:16", target = "predicted";
  std::vector<std::string> inputs;
  std::string out, input_shape;
  int64_t batch_size = 64;
  MethodFlags method_flags;
  CommonOptions common;
};

// Inputs to explain: a batch of them, with what names and describes each.
struct Inputs {
  at::Tensor x;                     // [N, ...input shape], normalised
  at::Tensor labels;                // [N] or undefined
  std::vector<std::string> names;   // one per example, used for file names
  std::vector<nlohmann::json> origin;
};

// All the inputs of a run, handed out a batch at a time: the files named
// with --input are read at once (the user chose them), a data set's examples
// as they are explained, so that a run over a whole data set keeps flat memory.
struct InputSource {
  int64_t count = 0;
  std::function<Inputs(int64_t begin, int64_t end)> slice;
  // The range inputs take, as far as the data show it (LRP's z-box bounds).
  std::pair<double, double> bounds{0.0, 1.0};  // read only by methods that say so
  std::vector<std::string> class_names;  // the data set's, where it has them
};

std::pair<double, double> value_range(const at::Tensor& x) {
  return {x.min().item<double>(), x.max().item<double>()};
}

std::pair<int64_t, int64_t> parse_range(const std::string& text, int64_t size) {
  if (text == "all" && size > 0) return {0, size};
  const auto colon = text.find(':');
  try {
    size_t used = 0;
    if (colon == std::string::npos) {
      const int64_t a = std::stoll(text, &used);
      if (used == text.size() && a >= 0 && a < size) return {a, a + 1};
    } else {
      const int64_t a = std::stoll(text.substr(0, colon), &used);
      const std::string rest = text.substr(colon + 1);
      size_t used_b = 0;
      const int64_t b = std::stoll(rest, &used_b);
      if (used == colon && used_b == rest.size() && a >= 0 && a < b && b <= size) return {a, b};
    }
  } catch (const std::exception&) {
  }
  MIPIN_FAIL("--index expects A:B with 0 <= A < B <= ", size, ", one index or all, found '", text, "'");
}

// bounds: whether the method reads the data's range (from the first 1000
// examples: decoding them is not free for an image folder).
InputSource inputs_from_data(const ExplainCommandOptions& o, const Network& net, bool bounds) {
  std::shared_ptr<const Dataset> data = open_dataset(o.data, parse_split(o.split));
  check_data_fits_model(*data, net, o.model);
  const auto [a, b] = parse_range(o.index, data->size());
  InputSource source;
  source.count = b - a;
  if (bounds) source.bounds = value_range(data->get(0, std::min<int64_t>(data->size(), 1000)).inputs);
  source.class_names = data->class_names();
  source.slice = [data, first = a, split = o.split](int64_t begin, int64_t end) {
    Inputs in;
    const Batch batch = data->get(first + begin, first + end);
    in.x = batch.inputs;
    in.labels = batch.labels;
    for (int64_t i = first + begin; i < first + end; ++i) {
      char name[64];
      std::snprintf(name, sizeof name, "%s_%05lld", split.c_str(), static_cast<long long>(i));
      in.names.push_back(name);
      in.origin.push_back({{"data", data->name()}, {"split", split}, {"index", i}});
    }
    return in;
  };
  return source;
}

// A model whose input shape neither its file nor --input-shape gives takes
// it from the first .npy input: an image [C, H, W] or a vector [F], or a
// batch of them ([N, C, H, W], [N, F]).
void take_input_shape_from_inputs(const ExplainCommandOptions& o, ImportedModel& m) {
  if (!m.network.input_shape().empty()) return;
  for (const auto& path : o.inputs) {
    if (fs::path(path).extension() != ".npy") continue;
    std::vector<int64_t> shape = read_npy(path).sizes().vec();
    if (shape.size() == 4 || shape.size() == 2) shape.erase(shape.begin());
    try {
      m.network.set_input_shape(shape);
    } catch (const Error& e) {
      MIPIN_FAIL("the model '", o.model, "' cannot take the inputs of '", path, "' (", shape_string(shape),
                 " each): ", e.what());
    }
    if (!o.common.json) std::cerr << "note: input shape " << shape_string(shape) << " taken from " << path << "\n";
    return;
  }
}

InputSource inputs_from_files(const ExplainCommandOptions& o, const Network& net) {
  const auto& shape = net.input_shape();
  MIPIN_CHECK(!shape.empty(), "the model's input shape is unknown: pass --input-shape, or give a .npy input");
  Normalization normalization;
  if (!o.data.empty()) normalization = parse_data_spec(o.data).normalization;
  std::vector<at::Tensor> xs;
  Inputs in;
  for (const auto& path : o.inputs) {
    const std::string stem = fs::path(path).stem().string();
    const std::string ext = fs::path(path).extension().string();
    at::Tensor x;
    if (ext == ".npy") {
      x = read_npy(path).to(at::kFloat);
      const auto dims = x.sizes().vec();
      if (dims == shape) x = x.unsqueeze(0);
      const auto batch_dims = x.sizes().vec();
      const std::vector<int64_t> per(batch_dims.begin() + (batch_dims.empty() ? 0 : 1), batch_dims.end());
      MIPIN_CHECK(per == shape, "shape mismatch: '", path, "' holds an array of shape ",
                  shape_string(dims), "; the model takes ", shape_string(shape), " or a batch [N, ",
                  shape_string(shape).substr(1));
      MIPIN_CHECK(!x.isnan().any().item<bool>(), "'", path, "' contains NaN: the model cannot be explained on it");
      MIPIN_CHECK(x.isfinite().all().item<bool>(), "'", path, "' contains infinite values");
    } else {
      MIPIN_CHECK(shape.size() == 3, "the model takes inputs of shape ", shape_string(shape),
                  ", not images: pass a .npy file");
      const at::Tensor raw = read_image(path, shape[0], std::make_pair(shape[1], shape[2]));
      x = normalize(raw.unsqueeze(0), normalization, 255.0).to(at::kFloat);
    }
    for (int64_t i = 0; i < x.size(0); ++i) {
      in.names.push_back(x.size(0) == 1 ? stem : stem + "_" + std::to_string(i));
      in.origin.push_back({{"input", path}, {"row", i}});
    }
    xs.push_back(x);
  }
  in.x = torch::cat(xs, 0);
  InputSource source;
  source.count = in.x.size(0);
  source.bounds = value_range(in.x);
  source.slice = [all = std::move(in)](int64_t begin, int64_t end) {
    Inputs part;
    part.x = all.x.slice(0, begin, end);
    part.names.assign(all.names.begin() + begin, all.names.begin() + end);
    part.origin.assign(all.origin.begin() + begin, all.origin.begin() + end);
    return part;
  };
  return source;
}

// The inputs the grid and the console show (all are written).
constexpr int64_t kShown = 32;

// What a run has written so far, removed again when the run fails: a refused
// or interrupted run leaves nothing half-written behind (a folder it made
// included).
class WrittenFiles {
 public:
  explicit WrittenFiles(std::string dir) : dir_(std::move(dir)) {
    std::error_code ec;
    made_dir_ = !fs::exists(dir_, ec);
    fs::create_directories(dir_);
  }
  ~WrittenFiles() {
    if (committed_) return;
    std::error_code ec;
    for (const auto& path : paths_) fs::remove(path, ec);
    if (made_dir_ && fs::is_empty(dir_, ec)) fs::remove(dir_, ec);
  }
  WrittenFiles(const WrittenFiles&) = delete;
  WrittenFiles& operator=(const WrittenFiles&) = delete;
  const std::string& add(const std::string& path) { return paths_.emplace_back(path); }
  void commit() { committed_ = true; }

 private:
  std::string dir_;
  bool made_dir_ = false;
  bool committed_ = false;
  std::vector<std::string> paths_;
};

void run_explain(const ExplainCommandOptions& o) {
  apply_common_options(o.common);
  MIPIN_CHECK(!o.inputs.empty() || !o.data.empty(),
              "give the inputs to explain: --input FILE, or --data D [--split test] [--index A:B]");
  ImportedModel m = load_model(o.model, o.input_shape, o.common.json);
  take_input_shape_from_inputs(o, m);
  const Network& net = m.network;
  std::unique_ptr<Inverse> inverse;
  if (method_entry(o.method).fitted == FittedPart::inverse) {
    MIPIN_CHECK(!o.inverse.empty(), "--method ", o.method, " needs --inverse FILE (made by `mipin fit`)");
    inverse = std::make_unique<Inverse>(load_inverse_for(o.inverse, net, o.model));
  }
  std::unique_ptr<Patterns> patterns;
  MIPIN_CHECK(method_entry(o.method).fitted != FittedPart::patterns || !o.patterns.empty(), "--method ", o.method,
              " needs --patterns FILE (made by `mipin fit --method pattern`)");
  if (!o.patterns.empty()) {
    patterns = std::make_unique<Patterns>(load_patterns_for(o.patterns, net, o.model));
  }
  const InputSource source = o.inputs.empty() ? inputs_from_data(o, net, method_entry(o.method).reads_input_bounds)
                                               : inputs_from_files(o, net);
  MethodSettings settings;
  settings.options =
      method_options(o.method_flags, [&](const std::string& text) { return read_reference(text, o.data, net); });
  settings.inverse = inverse.get();
  settings.patterns = patterns.get();
  settings.input_bounds = source.bounds;
  const auto method = make_method(o.method, settings);

  std::optional<int64_t> target_class;
  if (o.target != "predicted") {
    try {
      size_t used = 0;
      target_class = std::stoll(o.target, &used);
      MIPIN_CHECK(used == o.target.size(), "");
    } catch (const std::exception&) {
      MIPIN_FAIL("--target expects 'predicted' or a class index, found '", o.target, "'");
    }
  }
  MIPIN_CHECK(o.batch_size > 0, "--batch-size must be positive, found ", o.batch_size);
  torch::NoGradGuard no_grad;
  const int64_t n = source.count;
  const int64_t batches = (n + o.batch_size - 1) / o.batch_size;
  WrittenFiles written(o.out);
  const std::string summary_path = (fs::path(o.out) / "explanations.json").string();
  const std::string grid = (fs::path(o.out) / "grid.png").string();
  std::vector<at::Tensor> row_inputs, row_heatmaps, row_overlays;
  std::vector<nlohmann::json> shown;
  {
    ProgressStage bar(o.common.json || batches < 2 ? nullptr : terminal_progress(), "explain", batches);
    // explanations.json is written as the maps are made, one explanation a
    // line, and appears complete once they all are.
    write_atomically(summary_path, [&](const std::string& tmp) {
      std::ofstream summary(tmp, std::ios::binary);
      MIPIN_CHECK(summary, "cannot open '", tmp, "' for writing");
      summary << "{\n  \"explanations\": [";
      for (int64_t begin = 0; begin < n; begin += o.batch_size) {
        const Inputs in = source.slice(begin, std::min(n, begin + o.batch_size));
        const at::Tensor logits = net.forward(in.x);
        const at::Tensor targets = resolve_targets(logits, target_class);
        const at::Tensor attribution = method->attribute(net, in.x, targets);
        // Nothing is kept from a map that overflowed: a backward pass through
        // patterns or other fitted maps can grow without bound on a deep network.
        MIPIN_CHECK(attribution.isfinite().all().item<bool>(), "method '", o.method,
                    "' gave non-finite values on this model (it overflowed float32: the maps it multiplies grew "
                    "beyond 3.4e38 along the network); nothing was written");
        const auto sample = in.x[0];
        const int64_t scale = sample.dim() == 3 ? display_scale(sample.size(1), sample.size(2)) : 1;
        for (int64_t i = 0; i < in.x.size(0); ++i) {
          const std::string base = (fs::path(o.out) / in.names[size_t(i)]).string();
          const at::Tensor a = attribution[i].contiguous();
          write_npy(written.add(base + ".npy"), a);
          const at::Tensor heat = heatmap_picture(a, scale);
          const at::Tensor overlay = overlay_picture(in.x[i], a, scale);
          write_png(written.add(base + "_heatmap.png"), heat);
          write_png(written.add(base + "_overlay.png"), overlay);
          nlohmann::json j = in.origin[size_t(i)];
          j["name"] = in.names[size_t(i)];
          j["method"] = o.method;
          j["logits"] = std::vector<float>(logits[i].data_ptr<float>(), logits[i].data_ptr<float>() + logits.size(1));
          j["prediction"] = logits[i].argmax().item<int64_t>();
          j["target"] = targets[i].item<int64_t>();
          if (in.labels.defined()) j["label"] = in.labels[i].item<int64_t>();
          for (const char* key : {"prediction", "target", "label"}) {
            if (!j.contains(key)) continue;
            const int64_t c = j[key].get<int64_t>();
            if (c >= 0 && c < int64_t(source.class_names.size())) {
              j[std::string(key) + "_name"] = source.class_names[size_t(c)];
            }
          }
          j["attribution_sum"] = a.sum().item<double>();
          j["files"] = {{"attribution", base + ".npy"},
                        {"heatmap", base + "_heatmap.png"},
                        {"overlay", base + "_overlay.png"}};
          write_file_atomically(written.add(base + ".json"), j.dump(2));
          summary << (begin + i == 0 ? "\n    " : ",\n    ") << j.dump();
          if (int64_t(shown.size()) < kShown) {
            row_inputs.push_back(input_picture(in.x[i], scale));
            row_heatmaps.push_back(heat);
            row_overlays.push_back(overlay);
            shown.push_back(j);
          }
        }
        bar.advance();
      }
      write_png(written.add(grid), grid_picture({row_inputs, row_heatmaps, row_overlays}));
      nlohmann::json rest = {{"model", o.model},
                             {"method", o.method},
                             {"out", o.out},
                             {"grid", grid},
                             {"fallback_nodes", fallback_json(*method, net)}};
      if (inverse) rest["inverse"] = o.inverse;
      summary << "\n  ]";
      for (const auto& [key, value] : rest.items()) summary << ",\n  \"" << key << "\": " << value.dump();
      summary << "\n}\n";
      summary.close();
      MIPIN_CHECK(summary, "cannot write '", tmp, "' (disk full?)");
    });
  }
  written.commit();
  if (o.common.json) {
    std::cout << std::ifstream(summary_path, std::ios::binary).rdbuf() << std::flush;
    return;
  }
  std::printf("explained %lld input(s) with %s; wrote %s (rows: input, heatmap, overlay%s)\n",
              static_cast<long long>(n), o.method.c_str(), grid.c_str(),
              n > kShown ? (", the first " + std::to_string(kShown)).c_str() : "");
  // "prediction 2 (Pullover)" where the data set names its classes.
  auto named = [](const nlohmann::json& j, const std::string& key) {
    std::string s = key + " " + std::to_string(j[key].get<int64_t>());
    if (j.contains(key + "_name")) s += " (" + j[key + "_name"].get<std::string>() + ")";
    return s;
  };
  for (const auto& j : shown) {
    std::printf("  %-16s %s  %s%s\n", j["name"].get<std::string>().c_str(), named(j, "prediction").c_str(),
                named(j, "target").c_str(), j.contains("label") ? ("  " + named(j, "label")).c_str() : "");
  }
  if (n > kShown) std::printf("  ... and %lld more, every one in %s\n", static_cast<long long>(n - kShown), summary_path.c_str());
}

}  // namespace

void register_explain_command(CLI::App& app) {
  auto o = std::make_shared<ExplainCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "explain",
      "Explain inputs: per input an attribution .npy (same shape as the input), a heatmap\n"
      "PNG (sum over channels, blue negative, red positive, white zero), an overlay on the\n"
      "input and a JSON with logits, prediction and target; plus grid.png (the first 32)\n"
      "and explanations.json (all of them). Inputs are explained --batch-size at a time\n"
      "and written as they are done: --index all explains a whole split in flat memory.\n\n"
      "Example: mipin explain --model cnn.pt --method mipin --inverse cnn.mipin \\\n"
      "           --data fashion-mnist --split test --index 0:16 --out maps\n"
      "         mipin explain --model cnn.pt --method gradient --input shoe.png --out maps");
  cmd->add_option("--model", o->model, "TorchScript model (.pt)")->required();
  cmd->add_option("--method", o->method,
                  "Attribution method: mipin (needs --inverse), gradient, ... (`mipin methods` lists all)")
      ->capture_default_str();
  add_method_flags(*cmd, o->method_flags);
  cmd->add_option("--inverse", o->inverse, "Inverse made by `mipin fit` for this model");
  cmd->add_option("--patterns", o->patterns,
                  "patternnet, patternattribution: patterns made by `mipin fit --method pattern`");
  cmd->add_option("--input", o->inputs,
                  "Input file(s): PNG/JPEG (resized to the model's input, normalised as --data "
                  "says, else scaled to [0, 1]) or .npy (already normalised, one input or a batch)");
  cmd->add_option("--data", o->data, "Data set to take inputs from (see docs/cli.md, \"Data sets\")");
  cmd->add_option("--split", o->split, "train or test")
      ->check(CLI::IsMember({"train", "test"}))
      ->capture_default_str();
  cmd->add_option("--index", o->index, "Examples A:B of the split (B exclusive), one index, or all")
      ->capture_default_str();
  cmd->add_option("--target", o->target, "Class to explain: predicted, or a class index")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "Output directory")->required();
  cmd->add_option("--batch-size", o->batch_size,
                  "Inputs explained at once: memory stays flat however many --index names")
      ->capture_default_str();
  cmd->add_option("--input-shape", o->input_shape, "Shape of one input, e.g. 3,224,224");
  add_common_options(*cmd, o->common);
  cmd->callback([o] { run_explain(*o); });
}

}  // namespace mipin::cli
