#include "mipin/eval/suite.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <type_traits>
#include <variant>

#include "attribution/resolved_options.h"
#include "eval/pixel_order.h"
#include "mipin/attribution/patterns.h"
#include "mipin/data/synthetic.h"
#include "mipin/eval/faithfulness.h"
#include "mipin/eval/map_metrics.h"
#include "mipin/eval/road.h"
#include "mipin/inverse/inverse.h"
#include "mipin/model/layers.h"
#include "mipin/util/error.h"
#include "mipin/util/progress.h"
#include "mipin/zoo/trainer.h"

namespace mipin {
namespace {

std::vector<size_t> parametric_layers_top_down(const Network& net) {
  std::vector<size_t> out;
  for (size_t i = net.size(); i-- > 0;) {
    if (as_affine(net.layer(i))) out.push_back(i);
  }
  return out;
}

// Methods whose attributions come from parts fitted to the model.
bool needs_inverse(const std::string& m) { return method_entry(m).fitted == FittedPart::inverse; }
bool needs_patterns(const std::string& m) { return method_entry(m).fitted == FittedPart::patterns; }

// Settings whose fitted parts belong to `network` (refitted when the caller's
// belong to another model).
struct FittedSettings {
  MethodSettings settings;
  std::shared_ptr<const Inverse> inverse;
  std::shared_ptr<const Patterns> patterns;
};

// What `kept` holds at `key`, made by `make` the first time it is asked for.
template <class Key, class Value, class Make>
const Value& kept(std::map<Key, Value>& kept, const Key& key, Make&& make) {
  auto found = kept.find(key);
  if (found == kept.end()) found = kept.emplace(key, make()).first;
  return found->second;
}

// The options a method (or variant) runs with, its defaults where none was
// given, so that a reader of metrics.json knows what a row measured (the
// readout behind "mipin", say).
nlohmann::json options_ran_with(const std::string& name, const MethodSettings& settings) {
  const MethodOptions options = resolved_options(name, settings, /*ignore_undeclared=*/true);
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [option, value] : options.values()) {
    std::visit(
        [&, key = option](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, at::Tensor>) {
            // A reference: zero (held as no tensor) or a given input.
            j[key] = v.defined() ? "a tensor of shape " + c10::str(v.sizes()) : "zero";
          } else if constexpr (std::is_same_v<V, std::string>) {
            // An option without a default that was not given ("the method decides").
            j[key] = v.empty() ? nlohmann::json(nullptr) : nlohmann::json(v);
          } else {
            j[key] = v;
          }
        },
        value);
  }
  return j;
}

int64_t tensor_bytes(const std::map<size_t, at::Tensor>& tensors) {
  int64_t bytes = 0;
  for (const auto& [index, t] : tensors) bytes += int64_t(t.nbytes());
  return bytes;
}

// The parts refitted on each randomized model are the same for every method
// that needs them: kept after the first such method, by what was
// randomized, up to a budget (a large model's refits are not worth their
// memory).
class RefitCache {
 public:
  explicit RefitCache(int64_t budget_bytes) : budget_bytes_(budget_bytes) {}
  std::shared_ptr<const Inverse> inverse(size_t key, const std::function<Inverse()>& fit) {
    return find_or_fit(inverses_, key, fit, [](const Inverse& i) {
      return tensor_bytes(i.operators()) + tensor_bytes(i.forks());
    });
  }
  std::shared_ptr<const Patterns> patterns(size_t key, const std::function<Patterns()>& fit) {
    return find_or_fit(patterns_, key, fit, [](const Patterns& p) { return tensor_bytes(p.patterns); });
  }

 private:
  template <class T, class Bytes>
  std::shared_ptr<const T> find_or_fit(std::map<size_t, std::shared_ptr<const T>>& kept, size_t key,
                                       const std::function<T()>& fit, Bytes bytes) {
    if (auto found = kept.find(key); found != kept.end()) return found->second;
    auto fitted = std::make_shared<const T>(fit());
    const int64_t size = bytes(*fitted);
    if (held_bytes_ + size <= budget_bytes_) {
      held_bytes_ += size;
      kept.emplace(key, fitted);
    }
    return fitted;
  }
  std::map<size_t, std::shared_ptr<const Inverse>> inverses_;
  std::map<size_t, std::shared_ptr<const Patterns>> patterns_;
  int64_t budget_bytes_;
  int64_t held_bytes_ = 0;
};

// The linear signal/distractor toy: a linear model trained on it, and test
// examples whose true signal is known.
struct GroundTruthToy {
  LinearToy train = make_linear_toy(4000);
  LinearToy test = make_linear_toy(500, [] {
    LinearToyOptions o;
    o.sample_seed = 2;
    return o;
  }());
  Network model = train_linear_classifier(*train.data);
};

// `key` names the randomized model among those the cache has seen.
FittedSettings refit(const Network& network, const std::string& method, const SuiteOptions& o,
                     RefitCache& cache, size_t key) {
  FittedSettings f;
  f.settings = o.settings;
  if (needs_inverse(method)) {
    MIPIN_CHECK(o.fit_data != nullptr, "refitting MIP-IN needs training data");
    f.inverse = cache.inverse(key, [&] {
      return fit_inverse(network, *o.fit_data, InverseOptions{}.with_examples(o.refit_examples));
    });
    f.settings.inverse = f.inverse.get();
  }
  if (needs_patterns(method)) {
    MIPIN_CHECK(o.fit_data != nullptr, "refitting patterns needs training data");
    f.patterns = cache.patterns(key, [&] { return fit_patterns(network, *o.fit_data, o.refit_examples, 128); });
    f.settings.patterns = f.patterns.get();
  }
  return f;
}

nlohmann::json curve_json(const at::Tensor& c) {
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// A perturbation curve of a method beside the random order's, summed over
// batches weighted by their share of the examples.
struct CurvePair {
  at::Tensor method, random;
  void add(const at::Tensor& m, const at::Tensor& r, double weight) {
    method = method.defined() ? method + weight * m : weight * m;
    random = random.defined() ? random + weight * r : weight * r;
  }
  nlohmann::json json() const {
    return {{"area", curve_area(method)}, {"curve", curve_json(method)},
            {"random_area", curve_area(random)}, {"random_curve", curve_json(random)}};
  }
};


}  // namespace

std::vector<std::string> suite_methods(bool have_inverse, bool have_patterns, std::vector<std::string>* skipped) {
  std::vector<std::string> methods;
  std::vector<int> ranks;
  for (const MethodEntry& entry : registered_methods()) {
    const bool missing = (entry.fitted == FittedPart::inverse && !have_inverse) ||
                         (entry.fitted == FittedPart::patterns && !have_patterns);
    if (missing) {
      if (skipped) skipped->push_back(entry.name);
      continue;
    }
    methods.push_back(entry.name);
  }
  auto rank = [](const std::string& name) {
    const MethodEntry& e = method_entry(name);
    return e.fitted == FittedPart::inverse ? 0 : e.floor ? 2 : 1;
  };
  std::stable_sort(methods.begin(), methods.end(),
                   [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
  return methods;
}

std::string to_string(PerturbationFill fill) {
  switch (fill) {
    case PerturbationFill::mean: return "mean";
    case PerturbationFill::zero: return "zero";
    case PerturbationFill::blur: return "blur";
  }
  return "?";
}

PerturbationFill parse_perturbation_fill(const std::string& text) {
  for (PerturbationFill f : {PerturbationFill::mean, PerturbationFill::zero, PerturbationFill::blur}) {
    if (text == to_string(f)) return f;
  }
  MIPIN_FAIL("unknown fill '", text, "'; expected mean, zero or blur");
}

std::vector<std::string> default_suite_metrics() {
  return {"completeness", "minimality", "reconstruction", "additivity"};
}

std::set<std::string> all_suite_metrics() {
  return {"completeness", "minimality",   "reconstruction", "additivity",
          "randomization", "deletion",    "road",           "localization",   "ground-truth"};
}

Network randomize_top_layers(const Network& network, size_t layers, uint64_t seed) {
  Network out = network;
  auto gen = at::detail::createCPUGenerator(seed);
  const auto order = parametric_layers_top_down(out);
  for (size_t k = 0; k < std::min(layers, order.size()); ++k) {
    AffineLayer& layer = *as_affine(out.layer(order[k]));
    at::Tensor& w = layer.weight;
    at::Tensor& b = layer.bias;
    // PyTorch's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    const double bound = 1.0 / std::sqrt(double(w[0].numel()));
    w = (torch::rand(w.sizes(), gen) * 2 - 1) * bound;
    if (b.defined()) b = (torch::rand(b.sizes(), gen) * 2 - 1) * bound;
  }
  return out;
}

nlohmann::json run_suite(const Network& network, const Dataset& data, const SuiteOptions& o) {
  torch::NoGradGuard no_grad;
  const int64_t n = std::min(o.examples > 0 ? o.examples : data.size(), data.size());
  MIPIN_CHECK(n > 0, "nothing to evaluate in '", data.name(), "'");
  MIPIN_CHECK(!o.boxes.defined() || o.boxes.size(0) >= n, "localization needs a box for each of the ",
              n, " examples, found ", o.boxes.defined() ? o.boxes.size(0) : 0);
  const double classes = double(network.num_classes());
  auto has = [&](const char* m) { return o.metrics.count(m) > 0; };
  Reducer alone;
  Reducer& reducer = o.reducer ? *o.reducer : alone;
  const bool lead = reducer.rank() == 0;
  check_enough_batches(reducer, (n + o.batch_size - 1) / o.batch_size, o.batch_size);
  // This process's share of the batches.
  auto batches = [&](const std::function<void(const Batch&, const at::Tensor&, int64_t)>& f) {
    for (int64_t index = 0; index * o.batch_size < n; ++index) {
      if (!reducer.takes(index)) continue;
      const int64_t b = index * o.batch_size;
      const Batch batch = data.get(b, std::min(n, b + o.batch_size));
      f(batch, network.forward(batch.inputs).argmax(1), b);
    }
  };
  // The mean input of the evaluated examples: deletion's fill by default,
  // and what ROAD imputes where nothing around is kept.
  at::Tensor fill;
  at::Tensor correct = torch::zeros({1}, torch::kDouble);
  batches([&](const Batch& batch, const at::Tensor& predicted, int64_t) {
    const at::Tensor sum = batch.inputs.sum(0, true);
    fill = fill.defined() ? fill + sum : sum;
    correct += predicted.eq(batch.labels).sum().item<double>();
  });
  sum_each(reducer, {&fill, &correct});
  fill = fill / double(n);

  nlohmann::json result = {{"data", data.name()},
                           {"examples", n},
                           {"model_accuracy", correct.item<double>() / double(n)},
                           {"chance", 1.0 / classes}};
  auto fill_for = [&](const at::Tensor& x) {
    switch (o.fill) {
      case PerturbationFill::zero: return torch::zeros_like(x);
      case PerturbationFill::blur: return gaussian_blur(x, 11, 5.0);
      case PerturbationFill::mean: break;
    }
    return fill.expand_as(x);
  };
  // The random order's curves, the same for every method: computed with the
  // first and kept, per batch.
  std::map<int64_t, PerturbationCurves> perturbation_of_random_order;
  std::map<int64_t, RoadCurves> road_of_random_order;
  // Keys: k for the model with its top k parametric layers re-initialised;
  // the linear toy's is 0.
  RefitCache refits(o.shared_refit_bytes);
  std::unique_ptr<GroundTruthToy> toy;
  for (const std::string& name : o.methods) {
    ProgressStage bar(o.progress, name, 4);
    nlohmann::json m;
    const auto method = make_method(name, o.settings, /*ignore_undeclared=*/true);
    // The random pixel order: noise from its own seed, so that it differs from
    // the `random` method's maps (whose areas are read against it).
    MethodSettings order_settings;
    order_settings.options.set("seed", int64_t((o.seed + 0x5eed) & 0x7fffffffffffffff));
    const auto random = make_method("random", order_settings);
    auto stage = [&](const std::string& what) {
      bar.status(what);
      report_line(o.progress, "evaluate " + name + ": " + what);
    };
    stage("maps of " + std::to_string(n) + " examples and the metrics on them");
    DecisionCounts decisions;
    CurvePair del, ins, morf, lerf;
    // Localization: sums over examples of the pointing game's hits and the
    // mass in the box.
    at::Tensor located = torch::zeros({2}, torch::kDouble);
    at::Tensor first_maps;  // the first batch, kept for randomization
    batches([&](const Batch& batch, const at::Tensor& predicted, int64_t begin) {
      const at::Tensor maps = method->attribute(network, batch.inputs, predicted);
      if (begin == 0) first_maps = maps;
      const double w = double(batch.inputs.size(0)) / double(n);
      if (has("completeness") || has("minimality")) {
        decisions.add(network, batch.inputs, method->evidence(network, batch.inputs, maps), predicted,
                      batch.labels, has("completeness"), has("minimality"));
      }
      // The random order's maps, drawn only by the method that fills the caches.
      at::Tensor random_order;
      auto random_maps = [&] {
        if (!random_order.defined()) random_order = random->attribute(network, batch.inputs, predicted);
        return random_order;
      };
      if (has("deletion")) {
        const at::Tensor filled = fill_for(batch.inputs);
        const PerturbationCurves c =
            perturbation_curves(network, batch.inputs, predicted, maps, filled, o.deletion_steps);
        const PerturbationCurves& r = kept(perturbation_of_random_order, begin, [&] {
          return perturbation_curves(network, batch.inputs, predicted, random_maps(), filled, o.deletion_steps);
        });
        del.add(c.deletion, r.deletion, w);
        ins.add(c.insertion, r.insertion, w);
      }
      if (has("road")) {
        // The noise is seeded per batch, so every method's maps meet the same noise.
        const uint64_t seed = o.seed + 0x20ad + uint64_t(begin);
        const RoadCurves c =
            road_curves(network, batch.inputs, predicted, maps, fill, o.deletion_steps, o.road_noise, seed);
        const RoadCurves& r = kept(road_of_random_order, begin, [&] {
          return road_curves(network, batch.inputs, predicted, random_maps(), fill, o.deletion_steps,
                             o.road_noise, seed);
        });
        morf.add(c.most_relevant_first, r.most_relevant_first, w);
        lerf.add(c.least_relevant_first, r.least_relevant_first, w);
      }
      if (has("localization") && o.boxes.defined()) {
        const Localization l = localization(maps, o.boxes.slice(0, begin, begin + batch.inputs.size(0)));
        located[0] += l.hits.to(torch::kDouble).sum().item<double>();
        located[1] += l.mass_in_box.to(torch::kDouble).sum().item<double>();
      }
    });
    {
      at::Tensor counts = decisions.packed();
      std::vector<at::Tensor*> sums{&counts, &located};
      for (CurvePair* pair : {&del, &ins, &morf, &lerf}) {
        for (at::Tensor* curve : {&pair->method, &pair->random}) {
          if (curve->defined()) sums.push_back(curve);
        }
      }
      sum_each(reducer, sums);
      decisions.unpack(counts);
    }
    bar.advance();
    if ((has("reconstruction") || has("additivity")) && needs_inverse(name) && o.settings.inverse) {
      stage("reconstruction and additivity");
    }
    if (has("completeness")) {
      const Completeness c = decisions.completeness();
      m["completeness"] = {{"agreement", c.agreement}, {"accuracy", c.accuracy}};
    }
    if (has("minimality")) {
      const Minimality r = decisions.minimality(int64_t(classes));
      m["minimality"] = {{"accuracy", r.accuracy}, {"agreement", r.agreement}, {"chance", r.chance}};
    }
    if (has("deletion")) {
      m["deletion"] = del.json();
      m["deletion"]["fill"] = to_string(o.fill);
      m["insertion"] = ins.json();
      m["insertion"]["fill"] = to_string(o.fill);
    }
    if (has("road")) {
      m["road_most_relevant_first"] = morf.json();
      m["road_least_relevant_first"] = lerf.json();
      for (const char* key : {"road_most_relevant_first", "road_least_relevant_first"}) {
        m[key]["noise"] = o.road_noise;
      }
    }
    if (has("localization") && o.boxes.defined()) {
      const at::Tensor boxes = o.boxes.slice(0, 0, n);
      const at::Tensor box_area = ((boxes.select(1, 2) - boxes.select(1, 0)) *
                                   (boxes.select(1, 3) - boxes.select(1, 1))).to(torch::kDouble);
      const at::Tensor shape = data.get(0, 1).inputs;
      m["localization"] = {{"pointing_game", located[0].item<double>() / double(n)},
                           {"mass_in_box", located[1].item<double>() / double(n)},
                           {"box_area_fraction", (box_area / double(shape.size(2) * shape.size(3))).mean().item<double>()}};
    }
    if ((has("reconstruction") || has("additivity")) && needs_inverse(name) && o.settings.inverse) {
      EvaluationOptions eval;
      eval.examples = n;
      eval.completeness = eval.minimality = false;
      eval.reconstruction = has("reconstruction");
      eval.additivity = has("additivity");
      eval.reducer = o.reducer;
      eval.batch_size = o.batch_size;
      const FaithfulnessReport report = evaluate_inverse(network, *o.settings.inverse, data, eval);
      if (eval.reconstruction) {
        nlohmann::json layers = nlohmann::json::array();
        for (const auto& l : report.reconstruction) {
          layers.push_back({{"index", l.index}, {"layer", l.layer}, {"r2", l.r2}});
        }
        m["reconstruction"] = {{"input_r2", report.reconstruction.empty() ? 0.0 : report.reconstruction[0].r2},
                               {"layers", layers}};
      }
      if (eval.additivity) {
        m["additivity"] = {{"relative_error", report.additivity_error}, {"examples", report.additivity_examples}};
      }
    }
    bar.advance();
    if (has("randomization") && lead) {
      const int64_t r = std::min({o.randomization_examples, n, first_maps.size(0)});
      const at::Tensor x = data.get(0, r).inputs;
      const at::Tensor t = network.forward(x).argmax(1);
      const at::Tensor original = first_maps.slice(0, 0, r);
      nlohmann::json steps = nlohmann::json::array();
      const auto order = parametric_layers_top_down(network);
      for (size_t k = 1; k <= order.size(); ++k) {
        stage("randomization: " + std::to_string(k) + " of " + std::to_string(order.size()) +
              " layers re-initialised");
        const Network randomized = randomize_top_layers(network, k, o.seed + 17);
        const FittedSettings f = refit(randomized, name, o, refits, k);
        const at::Tensor a =
            make_method(name, f.settings, /*ignore_undeclared=*/true)->attribute(randomized, x, t);
        steps.push_back({{"randomized_down_to", order[k - 1]},
                         {"layer", network.layer(order[k - 1]).describe()},
                         {"spearman_abs", spearman(original.abs(), a.abs()).mean().item<double>()},
                         {"spearman_signed", spearman(original, a).mean().item<double>()},
                         {"ssim", ssim(original, a).mean().item<double>()}});
      }
      m["randomization"] = steps;
    }
    bar.advance();
    if (has("ground-truth") && lead) {
      stage("ground truth on the linear toy");
      // The method (refitted where it learns) against the toy's true signal;
      // the toy is made once and shared by every method, as the refits on it are.
      if (!toy) toy = std::make_unique<GroundTruthToy>();
      SuiteOptions toy_options = o;
      toy_options.fit_data = toy->train.data.get();
      const FittedSettings f = refit(toy->model, name, toy_options, refits, 0);
      const Batch b = toy->test.data->get(0, 500);
      // The toy's inputs are vectors, not images.
      if (!method_entry(name).images_only) {
        const at::Tensor a = make_method(name, f.settings, /*ignore_undeclared=*/true)
                                 ->attribute(toy->model, b.inputs, toy->model.forward(b.inputs).argmax(1));
        m["ground_truth"] = {{"cosine", mean_cosine(a, toy->test.signal)}};
      }
    }
    bar.advance();
    m["options"] = options_ran_with(name, o.settings);
    result["methods"][name] = m;
  }
  return result;
}

}  // namespace mipin
