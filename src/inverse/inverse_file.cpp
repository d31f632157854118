// The fitted inverse as a file: the operators, the options, the model's
// fingerprint, the data it was fitted on and the per-layer fit quality.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "mipin/inverse/inverse.h"
#include "mipin/util/error.h"
#include "mipin/inverse/options_json.h"
#include "util/artifact_file.h"

namespace mipin {
namespace {

// Format 2 stores every affine layer's operator in its weight's shape
// (format 1 kept a Linear layer's U as [in, out]).
const ArtifactFormat& inverse_format() {
  static const ArtifactFormat format{"inverse",
                                     "mipin-inverse/2",
                                     "mipin fit",
                                     {{"mipin-inverse/1", "fit it again with `mipin fit`"}}};
  return format;
}

}  // namespace

nlohmann::json inverse_options_json(const InverseOptions& o) {
  return {{"solver", to_string(o.solver)},
          {"alpha", o.alpha},
          {"relu_mode", to_string(o.relu_mode)},
          {"fit_on", to_string(o.fit_on)},
          {"top", to_string(o.top)},
          {"add_split", to_string(o.add_split)},
          {"share_epsilon", o.share_epsilon},
          {"gate", to_string(o.gate)},
          {"layer_norm", to_string(o.layer_norm)},
          {"attention", to_string(o.attention)},
          {"fork", to_string(o.fork)},
          {"batch_size", o.batch_size},
          {"max_exact_dimension", o.max_exact_dimension},
          {"iterative_iterations", o.iterative_iterations}};
}

InverseOptions inverse_options_from_json(const nlohmann::json& j) {
  InverseOptions o;
  o.solver = parse_solver(j.at("solver"));
  o.alpha = j.at("alpha");
  o.relu_mode = parse_relu_mode(j.at("relu_mode"));
  o.fit_on = parse_fit_on(j.at("fit_on"));
  o.top = parse_top_signal(j.at("top"));
  // Files written before graphs had no add or activation options: the defaults.
  o.add_split = parse_add_split(j.value("add_split", "fitted"));
  o.share_epsilon = j.value("share_epsilon", o.share_epsilon);
  o.gate = parse_activation_gate(j.value("gate", "transfer"));
  // Files from before the transformer reading took the gradient at both.
  o.layer_norm = parse_layer_norm_reading(j.value("layer_norm", "gradient"));
  o.attention = parse_attention_reading(j.value("attention", "gradient"));
  o.fork = parse_fork_combine(j.value("fork", "sum"));
  o.batch_size = j.at("batch_size");
  o.max_exact_dimension = j.at("max_exact_dimension");
  o.iterative_iterations = j.at("iterative_iterations");
  return o;
}

// The file holds what was fitted and on what, not how long it took: the same
// fit gives the same bytes, a resumed one included.
nlohmann::json layer_fit_json(const LayerFit& f, bool with_seconds) {
  nlohmann::json j = {{"index", f.index}, {"layer", f.layer}, {"solver", f.solver},
                      {"r2", f.r2},       {"mse", f.mse},     {"pass", f.pass}};
  if (with_seconds) j["seconds"] = f.seconds;
  return j;
}

LayerFit layer_fit_from_json(const nlohmann::json& l) {
  LayerFit f;
  f.index = l.at("index");
  f.layer = l.at("layer");
  f.solver = l.at("solver");
  f.r2 = l.at("r2");
  f.mse = l.at("mse");
  f.seconds = l.value("seconds", 0.0);
  f.pass = l.value("pass", 0);
  return f;
}

void Inverse::save(const std::string& path) const {
  nlohmann::json meta = {{"model_fingerprint", model_fingerprint_},
                         {"model", model_name},
                         {"data", data_name},
                         {"examples", examples},
                         {"options", inverse_options_json(options_)}};
  meta["layers"] = nlohmann::json::array();
  for (const auto& f : fits_) meta["layers"].push_back(layer_fit_json(f, /*with_seconds=*/false));
  meta["forks"] = nlohmann::json::array();
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [index, op] : operators_) tensors["operator_" + std::to_string(index)] = op;
  for (const auto& [value, weights] : forks_) {
    meta["forks"].push_back(value);
    tensors["fork_" + std::to_string(value)] = weights;
  }
  write_artifact(path, inverse_format(), meta, tensors);
}

Inverse Inverse::load(const std::string& path) {
  Inverse inverse;
  read_artifact(path, inverse_format(), [&](const ArtifactReader& file) {
    const nlohmann::json& meta = file.metadata();
    inverse = Inverse(inverse_options_from_json(meta.at("options")), meta.at("model_fingerprint"));
    inverse.model_name = meta.value("model", "");
    inverse.data_name = meta.value("data", "");
    inverse.examples = meta.value("examples", int64_t{0});
    for (const auto& l : meta.at("layers")) {
      const LayerFit f = layer_fit_from_json(l);
      // A fork's fit is indexed by its value, and its weights are read below.
      if (f.layer.rfind("Fork(", 0) != 0) {
        inverse.set_operator(f.index, file.tensor("operator_" + std::to_string(f.index)));
      }
      inverse.fits().push_back(f);
    }
    for (const size_t value : meta.value("forks", std::vector<size_t>{})) {
      inverse.set_fork(value, file.tensor("fork_" + std::to_string(value)));
    }
  });
  return inverse;
}

}  // namespace mipin
