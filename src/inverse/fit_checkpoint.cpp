#include "inverse/fit_checkpoint.h"

#include <torch/torch.h>

#include <filesystem>

#include "mipin/inverse/options_json.h"
#include "mipin/model/layers.h"
#include "mipin/util/error.h"
#include "util/artifact_file.h"
#include "util/text.h"

namespace mipin {
namespace {

const ArtifactFormat& checkpoint_format() {
  static const ArtifactFormat format{"fit checkpoint", "mipin-fit-checkpoint/1", "mipin fit --checkpoint", {}};
  return format;
}

// The sums one example of this network adds for the nodes the pass fits:
// their names and shapes are what a checkpoint's sums must have.
Sums expected_sums(const Network& network, const std::vector<int64_t>& sample_shape, const FitState& s) {
  const auto shapes = network.shapes(sample_shape);
  auto zeros_of = [&](size_t v) {
    std::vector<int64_t> shape{1};
    shape.insert(shape.end(), shapes.at(v).begin(), shapes.at(v).end());
    return torch::zeros(shape);
  };
  PassEquations one;
  for (size_t i : s.exact) {
    const Layer& layer = network.layer(i);
    if (as_affine(layer)) {
      one.operators[i].add(layer, zeros_of(i + 1), zeros_of(network.inputs(i).at(0)));
    } else {
      std::vector<at::Tensor> targets;
      for (size_t v : network.inputs(i)) targets.push_back(zeros_of(v));
      one.scales[i].add(zeros_of(i + 1), targets);
    }
  }
  for (size_t v : s.forks) {
    one.forks[v].add(std::vector<at::Tensor>(network.readers(v), zeros_of(v)), zeros_of(v));
  }
  return one.sums();
}

// What a checkpoint says must fit the network before the fit uses any of
// it: its node lists name nodes that are fitted, its tensors have the types
// and shapes the model implies, and its sums are those of the nodes the pass
// fits (a file may say anything; the fit indexes and multiplies by them).
void check_state(const FitState& s, const Sums& sums, const Network& network,
                 const std::vector<int64_t>& sample_shape) {
  const InverseOptions& options = s.inverse.options();
  for (const auto* nodes : {&s.unfitted, &s.pass_unfitted, &s.iterative, &s.exact}) {
    for (size_t i : *nodes) {
      MIPIN_CHECK(i < network.size() && has_fitted_inverse(network.layer(i), options), "it lists node ", i,
                  ", which this model does not fit");
    }
  }
  for (const auto* values : {&s.unfitted_forks, &s.pass_unfitted_forks, &s.forks}) {
    for (size_t v : *values) {
      MIPIN_CHECK(v <= network.size() && network.readers(v) >= 2, "it lists a fork at value ", v,
                  ", which this model does not have");
    }
  }
  MIPIN_CHECK(s.next_batch >= 0, "its next batch is ", s.next_batch);
  s.inverse.check_tensors(network, /*complete=*/false);
  const Sums expected = expected_sums(network, sample_shape, s);
  for (const auto& [name, t] : sums) {
    const auto it = expected.find(name);
    MIPIN_CHECK(it != expected.end(), "it holds sums '", name, "', which the pass under way does not make");
    bool fits = t.scalar_type() == at::kDouble && t.sizes() == it->second.sizes();
    // A spread with no rows yet has only its three totals.
    const bool spread = ends_with(name, "spread");
    if (spread && t.scalar_type() == at::kDouble && t.dim() == 1 && t.size(0) == 3) fits = true;
    MIPIN_CHECK(fits, "its sums '", name, "' are ", t.scalar_type(), " ", t.sizes(), ", expected ",
                it->second.scalar_type(), " ", it->second.sizes());
    MIPIN_CHECK(t.isfinite().all().item<bool>(), "its sums '", name, "' hold NaN or infinite values");
  }
}

}  // namespace

void save_fit_checkpoint(const std::string& path, const nlohmann::json& identity, const FitState& s) {
  nlohmann::json meta = {{"identity", identity},
                         {"pass", s.pass},
                         {"unfitted", s.unfitted},
                         {"unfitted_forks", s.unfitted_forks},
                         {"in_pass", s.in_pass},
                         {"pass_unfitted", s.pass_unfitted},
                         {"pass_unfitted_forks", s.pass_unfitted_forks},
                         {"iterative", s.iterative},
                         {"exact", s.exact},
                         {"forks", s.forks},
                         {"next_batch", s.next_batch},
                         {"seconds", s.inverse.seconds}};
  std::map<std::string, at::Tensor> tensors;
  meta["fits"] = nlohmann::json::array();
  for (const LayerFit& f : s.inverse.fits()) meta["fits"].push_back(layer_fit_json(f, /*with_seconds=*/true));
  meta["operators"] = nlohmann::json::array();
  for (const auto& [i, op] : s.inverse.operators()) {
    meta["operators"].push_back(i);
    tensors["operator_" + std::to_string(i)] = op;
  }
  meta["fork_weights"] = nlohmann::json::array();
  for (const auto& [v, w] : s.inverse.forks()) {
    meta["fork_weights"].push_back(v);
    tensors["fork_" + std::to_string(v)] = w;
  }
  meta["sums"] = nlohmann::json::array();
  if (s.in_pass) {
    for (const auto& [name, t] : s.equations.sums()) {
      meta["sums"].push_back(name);
      tensors["sums/" + name] = t;
    }
  }
  write_artifact(path, checkpoint_format(), meta, tensors);
}

std::optional<FitState> load_fit_checkpoint(const std::string& path, const nlohmann::json& identity,
                                            const Network& network, const std::vector<int64_t>& sample_shape) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  FitState s;
  read_artifact(path, checkpoint_format(), [&](const ArtifactReader& file) {
    const nlohmann::json& meta = file.metadata();
    const nlohmann::json& saved = meta.at("identity");
    for (const auto& [key, value] : identity.items()) {
      const nlohmann::json was = saved.value(key, nlohmann::json());
      MIPIN_CHECK(was == value, "it belongs to another fit: its ", key, " is ", was.dump(),
                  ", this fit's ", value.dump(), " (remove it, or choose another --checkpoint directory)");
    }
    s.inverse = Inverse(inverse_options_from_json(identity.at("options")), identity.at("model_fingerprint"));
    s.inverse.seconds = meta.at("seconds");
    for (const size_t i : meta.at("operators")) s.inverse.set_operator(i, file.tensor("operator_" + std::to_string(i)));
    for (const size_t v : meta.at("fork_weights")) s.inverse.set_fork(v, file.tensor("fork_" + std::to_string(v)));
    for (const auto& l : meta.at("fits")) s.inverse.fits().push_back(layer_fit_from_json(l));
    s.pass = meta.at("pass");
    s.unfitted = meta.at("unfitted").get<std::vector<size_t>>();
    s.unfitted_forks = meta.at("unfitted_forks").get<std::vector<size_t>>();
    s.in_pass = meta.at("in_pass");
    s.pass_unfitted = meta.at("pass_unfitted").get<std::vector<size_t>>();
    s.pass_unfitted_forks = meta.at("pass_unfitted_forks").get<std::vector<size_t>>();
    s.iterative = meta.at("iterative").get<std::vector<size_t>>();
    s.exact = meta.at("exact").get<std::vector<size_t>>();
    s.forks = meta.at("forks").get<std::vector<size_t>>();
    s.next_batch = meta.at("next_batch");
    Sums sums;
    for (const std::string name : meta.at("sums")) sums[name] = file.tensor("sums/" + name);
    check_state(s, sums, network, sample_shape);
    s.equations.restore(network, sums);
  });
  return s;
}

}  // namespace mipin
