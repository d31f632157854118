#include "mipin/eval/faithfulness.h"

#include <torch/torch.h>

#include "mipin/attribution/engine.h"
#include "mipin/util/error.h"
#include "mipin/util/progress.h"

namespace mipin {
namespace {

// Streaming sums for R^2 at one layer boundary.
struct R2Sums {
  double sse = 0;
  double sum_sq = 0;
  at::Tensor sum;  // per feature
  int64_t count = 0;

  void add(const at::Tensor& x, const at::Tensor& s) {
    const at::Tensor xd = x.to(at::kDouble);
    sse += (xd - s.to(at::kDouble)).square().sum().item<double>();
    sum_sq += xd.square().sum().item<double>();
    const at::Tensor per_feature = xd.sum(0);
    sum = sum.defined() ? sum + per_feature : per_feature;
    count += x.size(0);
  }
  double r2() const {
    const double sst = sum_sq - (sum * sum).sum().item<double>() / double(count);
    return sst > 0 ? 1 - sse / sst : 0;
  }
};

int64_t count_equal(const at::Tensor& a, const at::Tensor& b) {
  return a.eq(b).sum().item<int64_t>();
}

}  // namespace

FaithfulnessReport evaluate_inverse(const Network& network, const Inverse& inverse,
                                    const Dataset& data, const EvaluationOptions& o) {
  torch::NoGradGuard no_grad;
  const int64_t n = o.examples > 0 ? std::min(o.examples, data.size()) : data.size();
  MIPIN_CHECK(n > 0, "cannot evaluate on the empty data set '", data.name(), "'");
  FaithfulnessReport report;
  report.examples = n;
  const Composite composite = inverse.composite();
  std::vector<R2Sums> sums(network.size());
  int64_t correct = 0, comp_agree = 0, comp_correct = 0, min_agree = 0, min_correct = 0;
  int64_t classes = 0;
  std::unique_ptr<Progress> bar;
  if (o.show_progress) {
    bar = std::make_unique<Progress>("evaluating", (n + o.batch_size - 1) / o.batch_size);
  }
  for (int64_t begin = 0; begin < n; begin += o.batch_size) {
    const Batch batch = data.get(begin, std::min(n, begin + o.batch_size));
    ForwardRecord record;
    const at::Tensor logits = network.forward(batch.inputs, &record);
    classes = logits.size(1);
    const at::Tensor predicted = logits.argmax(1);
    correct += count_equal(predicted, batch.labels);
    std::vector<at::Tensor> signals;
    const at::Tensor s = propagate(network, record, composite, inverse.top_signal(logits), 0,
                                   o.reconstruction ? &signals : nullptr);
    if (o.completeness) {
      const at::Tensor p = network.forward(s).argmax(1);
      comp_agree += count_equal(p, predicted);
      comp_correct += count_equal(p, batch.labels);
    }
    if (o.minimality) {
      const at::Tensor p = network.forward(batch.inputs - s).argmax(1);
      min_agree += count_equal(p, predicted);
      min_correct += count_equal(p, batch.labels);
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
    if (bar) bar->advance();
  }
  const double dn = double(n);
  report.model_accuracy = double(correct) / dn;
  report.completeness = {double(comp_agree) / dn, double(comp_correct) / dn};
  report.minimality = {double(min_correct) / dn, double(min_agree) / dn, 1.0 / double(classes)};
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
