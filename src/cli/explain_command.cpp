// mipin explain: attributions for inputs, as .npy arrays, heatmaps and JSON.
#include <torch/torch.h>

#include <filesystem>
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

namespace mipin::cli {
namespace {
namespace fs = std::filesystem;

struct ExplainCommandOptions {
  std::string model, method = "mipin", inverse, patterns, data, split = "test", index = "0:16", target = "predicted";
  std::vector<std::string> inputs;
  std::string out, input_shape;
  MethodFlags method_flags;
  CommonOptions common;
};

struct Inputs {
  at::Tensor x;                     // [N, ...input shape], normalised
  at::Tensor labels;                // [N] or undefined
  std::vector<std::string> names;   // one per example, used for file names
  std::vector<nlohmann::json> origin;
  // The range inputs take, as far as the data show it (LRP's z-box bounds).
  std::pair<double, double> bounds;
  std::vector<std::string> class_names;  // the data set's, where it has them
};

std::pair<double, double> value_range(const at::Tensor& x) {
  return {x.min().item<double>(), x.max().item<double>()};
}

std::pair<int64_t, int64_t> parse_range(const std::string& text, int64_t size) {
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
  MIPIN_FAIL("--index expects A:B with 0 <= A < B <= ", size, " (or one index), found '", text, "'");
}

Inputs inputs_from_data(const ExplainCommandOptions& o, const Network& net) {
  const auto data = open_dataset(o.data, parse_split(o.split));
  check_data_fits_model(*data, net, o.model);
  const auto [a, b] = parse_range(o.index, data->size());
  Inputs in;
  const Batch batch = data->get(a, b);
  in.x = batch.inputs;
  in.labels = batch.labels;
  in.bounds = value_range(data->get(0, std::min<int64_t>(data->size(), 1000)).inputs);
  in.class_names = data->class_names();
  for (int64_t i = a; i < b; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "%s_%05lld", o.split.c_str(), static_cast<long long>(i));
    in.names.push_back(name);
    in.origin.push_back({{"data", data->name()}, {"split", o.split}, {"index", i}});
  }
  return in;
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

Inputs inputs_from_files(const ExplainCommandOptions& o, const Network& net) {
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
  in.bounds = value_range(in.x);
  return in;
}

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
  if (!o.patterns.empty()) {
    patterns = std::make_unique<Patterns>(load_patterns_for(o.patterns, net, o.model));
  }
  const Inputs in = o.inputs.empty() ? inputs_from_data(o, net) : inputs_from_files(o, net);
  MethodSettings settings;
  settings.options =
      method_options(o.method_flags, [&](const std::string& text) { return read_reference(text, o.data, net); });
  settings.inverse = inverse.get();
  settings.patterns = patterns.get();
  settings.input_bounds = in.bounds;
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
  torch::NoGradGuard no_grad;
  const at::Tensor logits = net.forward(in.x);
  const at::Tensor targets = resolve_targets(logits, target_class);
  const at::Tensor attribution = method->attribute(net, in.x, targets);
  // Nothing is written from a map that overflowed: a backward pass through
  // patterns or other fitted maps can grow without bound on a deep network.
  MIPIN_CHECK(attribution.isfinite().all().item<bool>(), "method '", o.method,
              "' gave non-finite values on this model (it overflowed float32: the maps it multiplies grew beyond ",
              "3.4e38 along the network); nothing was written");

  fs::create_directories(o.out);
  const int64_t n = in.x.size(0);
  const auto sample = in.x[0];
  const int64_t scale =
      sample.dim() == 3 ? display_scale(sample.size(1), sample.size(2)) : 1;
  std::vector<at::Tensor> row_inputs, row_heatmaps, row_overlays;
  nlohmann::json summary = {{"model", o.model}, {"method", o.method}, {"out", o.out}};
  if (inverse) summary["inverse"] = o.inverse;
  summary["explanations"] = nlohmann::json::array();
  for (int64_t i = 0; i < n; ++i) {
    const std::string base = (fs::path(o.out) / in.names[i]).string();
    const at::Tensor a = attribution[i].contiguous();
    write_npy(base + ".npy", a);
    const at::Tensor input_pic = input_picture(in.x[i], scale);
    const at::Tensor heat = heatmap_picture(a, scale);
    const at::Tensor overlay = overlay_picture(in.x[i], a, scale);
    write_png(base + "_heatmap.png", heat);
    write_png(base + "_overlay.png", overlay);
    row_inputs.push_back(input_pic);
    row_heatmaps.push_back(heat);
    row_overlays.push_back(overlay);
    nlohmann::json j = in.origin[i];
    j["name"] = in.names[i];
    j["method"] = o.method;
    j["logits"] = std::vector<float>(logits[i].data_ptr<float>(),
                                     logits[i].data_ptr<float>() + logits.size(1));
    j["prediction"] = logits[i].argmax().item<int64_t>();
    j["target"] = targets[i].item<int64_t>();
    if (in.labels.defined()) j["label"] = in.labels[i].item<int64_t>();
    for (const char* key : {"prediction", "target", "label"}) {
      if (!j.contains(key)) continue;
      const int64_t c = j[key].get<int64_t>();
      if (c >= 0 && c < int64_t(in.class_names.size())) j[std::string(key) + "_name"] = in.class_names[size_t(c)];
    }
    j["attribution_sum"] = a.sum().item<double>();
    j["files"] = {{"attribution", base + ".npy"},
                  {"heatmap", base + "_heatmap.png"},
                  {"overlay", base + "_overlay.png"}};
    write_file_atomically(base + ".json", j.dump(2));
    summary["explanations"].push_back(j);
  }
  const std::string grid = (fs::path(o.out) / "grid.png").string();
  write_png(grid, grid_picture({row_inputs, row_heatmaps, row_overlays}));
  summary["grid"] = grid;
  write_file_atomically((fs::path(o.out) / "explanations.json").string(), summary.dump(2));
  if (o.common.json) {
    print_json(summary);
    return;
  }
  std::printf("explained %lld input(s) with %s; wrote %s (rows: input, heatmap, overlay)\n",
              static_cast<long long>(n), o.method.c_str(), grid.c_str());
  // "prediction 2 (Pullover)" where the data set names its classes.
  auto named = [](const nlohmann::json& j, const std::string& key) {
    std::string s = key + " " + std::to_string(j[key].get<int64_t>());
    if (j.contains(key + "_name")) s += " (" + j[key + "_name"].get<std::string>() + ")";
    return s;
  };
  for (const auto& j : summary["explanations"]) {
    std::printf("  %-16s %s  %s%s\n", j["name"].get<std::string>().c_str(), named(j, "prediction").c_str(),
                named(j, "target").c_str(), j.contains("label") ? ("  " + named(j, "label")).c_str() : "");
  }
}

}  // namespace

void register_explain_command(CLI::App& app) {
  auto o = std::make_shared<ExplainCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "explain",
      "Explain inputs: per input an attribution .npy (same shape as the input), a heatmap\n"
      "PNG (sum over channels, blue negative, red positive, white zero), an overlay on the\n"
      "input and a JSON with logits, prediction and target; plus grid.png for the batch.\n\n"
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
  cmd->add_option("--data", o->data, "Data set to take inputs from (see README)");
  cmd->add_option("--split", o->split, "train or test")
      ->check(CLI::IsMember({"train", "test"}))
      ->capture_default_str();
  cmd->add_option("--index", o->index, "Examples A:B of the split (B exclusive), or one index")
      ->capture_default_str();
  cmd->add_option("--target", o->target, "Class to explain: predicted, or a class index")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "Output directory")->required();
  cmd->add_option("--input-shape", o->input_shape, "Shape of one input, e.g. 3,224,224");
  add_common_options(*cmd, o->common);
  cmd->callback([o] { run_explain(*o); });
}

}  // namespace mipin::cli
