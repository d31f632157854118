#include "mipin/eval/faithfulness.h"

#include <torch/torch.h>

#include "mipin/attribution/engine.h"
#include "mipin/util/error.h"
#include "mipin/util/progress.h"
#include "mipin/util/r_squared.h"

namespace mipin {
namespace {

int64_t count_equal(const at::Tensor& a, const at::Tensor& b) {
  return a.eq(b).sum().item<int64_t>();
}

}  // namespace

void DecisionCounts::add(const Network& network, const at::Tensor& x, const at::Tensor& s,
                         const at::Tensor& predicted, const at::Tensor& labels, bool completeness,
                         bool minimality) {
  torch::NoGradGuard no_grad;
  examples_ += x.size(0);
  if (completeness) {
    const at::Tensor on_s = network.forward(s).argmax(1);
    complete_agree_ += count_equal(on_s, predicted);
    complete_correct_ += count_equal(on_s, labels);
  }
  if (minimality) {
    const at::Tensor on_rest = network.forward(x - s).argmax(1);
    rest_agree_ += count_equal(on_rest, predicted);
    rest_correct_ += count_equal(on_rest, labels);
  }
}

Completeness DecisionCounts::completeness() const {
  const double n = double(std::max<int64_t>(1, examples_));
  return {double(complete_agree_) / n, double(complete_correct_) / n};
}

Minimality DecisionCounts::minimality(int64_t classes) const {
  const double n = double(std::max<int64_t>(1, examples_));
  return {double(rest_correct_) / n, double(rest_agree_) / n, 1.0 / double(classes)};
}

at::Tensor DecisionCounts::packed() const {
  return torch::tensor({double(examples_), double(complete_agree_), double(complete_correct_), double(rest_agree_),
                        double(rest_correct_)},
                       torch::kDouble);
}

void DecisionCounts::unpack(const at::Tensor& p) {
  MIPIN_CHECK(p.numel() == 5, "decision counts are 5 values, found ", p.numel());
  int64_t* counts[5] = {&examples_, &complete_agree_, &complete_correct_, &rest_agree_, &rest_correct_};
  for (int i = 0; i < 5; ++i) *counts[i] = int64_t(p[i].item<double>());
}

FaithfulnessReport evaluate_inverse(const Network& network, const Inverse& inverse,
                                    const Dataset& data, const EvaluationOptions& o) {
  torch::NoGradGuard no_grad;
  const int64_t n = o.examples > 0 ? std::min(o.examples, data.size()) : data.size();
  MIPIN_CHECK(n > 0, "cannot evaluate on the empty data set '", data.name(), "'");
  FaithfulnessReport report;
  report.examples = n;
  const Composite composite = inverse.composite_for(network);
  std::vector<RSquared> sums(network.size());
  int64_t correct = 0;
  DecisionCounts decisions;
  const int64_t classes = network.num_classes();
  Reducer alone;
  Reducer& reducer = o.reducer ? *o.reducer : alone;
  const int64_t batches = (n + o.batch_size - 1) / o.batch_size;
  check_enough_batches(reducer, batches, o.batch_size);
  ProgressStage bar(o.progress, "evaluating", batches);
  for (int64_t index = 0; index < batches; ++index) {
    if (!reducer.takes(index)) continue;
    const int64_t begin = index * o.batch_size;
    const Batch batch = data.get(begin, std::min(n, begin + o.batch_size));
    ForwardRecord record;
    const at::Tensor logits = network.forward(batch.inputs, &record);
    const at::Tensor predicted = logits.argmax(1);
    correct += count_equal(predicted, batch.labels);
    std::vector<at::Tensor> signals;
    const at::Tensor s = propagate(network, record, composite, inverse.top_signal(logits), 0,
                                   o.reconstruction ? &signals : nullptr);
    if (o.completeness || o.minimality) {
      decisions.add(network, batch.inputs, s, predicted, batch.labels, o.completeness, o.minimality);
    }
    if (o.reconstruction) {
      for (size_t v = 0; v < network.size(); ++v) sums[v].add(record.value(v), signals[v]);
    }
    if (o.additivity && begin == 0) {
      at::Tensor total = torch::zeros_like(s);
      for (int64_t c = 0; c < classes; ++c) {
        total += inverse.explain(network, batch.inputs,
                                 torch::full({batch.inputs.size(0)}, c, torch::kLong));
      }
      const at::Tensor err = (total - s).flatten(1).norm(2, 1) / s.flatten(1).norm(2, 1).clamp_min(1e-30);
      report.additivity_error = err.max().item<double>();
      report.additivity_examples = batch.inputs.size(0);
    }
    bar.advance();
  }
  if (reducer.world_size() > 1) {
    // Every process's counts and sums, in one reduction. The additivity is
    // of the first batch: rank 0's alone (the others add 0).
    at::Tensor counts = decisions.packed();
    at::Tensor scalars = torch::tensor(
        {double(correct), report.additivity_error, double(report.additivity_examples)}, torch::kDouble);
    std::vector<at::Tensor> r2(sums.size());
    std::vector<at::Tensor*> all{&counts, &scalars};
    for (size_t v = 0; o.reconstruction && v < sums.size(); ++v) {
      r2[v] = sums[v].packed();
      all.push_back(&r2[v]);
    }
    sum_each(reducer, all);
    decisions.unpack(counts);
    correct = int64_t(scalars[0].item<double>());
    report.additivity_error = scalars[1].item<double>();
    report.additivity_examples = int64_t(scalars[2].item<double>());
    for (size_t v = 0; o.reconstruction && v < sums.size(); ++v) sums[v] = RSquared::from_packed(r2[v]);
  }
  const double dn = double(n);
  report.model_accuracy = double(correct) / dn;
  report.completeness = decisions.completeness();
  report.minimality = decisions.minimality(classes);
  if (o.reconstruction) {
    // Value v: the input of layer v in a chain; in a graph, of the first
    // layer that reads it.
    for (size_t v = 0; v < network.size(); ++v) {
      report.reconstruction.push_back({v, network.layer(network.reader_nodes(v).at(0)).describe(), sums[v].r2()});
    }
  }
  return report;
}

}  // namespace mipin
