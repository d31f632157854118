#include "inverse/fit_checkpoint.h"

#include <torch/torch.h>

#include <filesystem>

#include "mipin/inverse/options_json.h"
#include "mipin/util/error.h"
#include "util/artifact_file.h"

namespace mipin {
namespace {

const ArtifactFormat& checkpoint_format() {
  static const ArtifactFormat format{"fit checkpoint", "mipin-fit-checkpoint/1", "mipin fit --checkpoint", {}};
  return format;
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
                                            const Network& network) {
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
    s.equations.restore(network, sums);
  });
  return s;
}

}  // namespace mipin
