#include "mipin/attribution/patterns.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "mipin/model/layers.h"
#include "mipin/util/error.h"
#include "mipin/util/progress.h"
#include "util/artifact_file.h"

namespace mipin {
namespace {

// Format 2 lists the layers in the metadata (format 1 kept the list apart).
const ArtifactFormat& patterns_format() {
  static const ArtifactFormat format{"patterns",
                                     "mipin-patterns/2",
                                     "mipin fit --method pattern",
                                     {{"mipin-patterns/1", "fit them again with `mipin fit --method pattern`"}}};
  return format;
}

// Moments of (x, y) per output unit, in double precision.
struct Moments {
  at::Tensor sum_x;   // [in, out]: sum of x over the examples counted for unit j
  at::Tensor sum_y;   // [out]
  at::Tensor sum_xy;  // [in, out]
  at::Tensor count;   // [out]
};

// Rows of an affine layer's input (patches for convolutions), per group:
// x [rows, groups, inputs per group], and the bias-free outputs y [rows,
// out], whose unit j reads group j / (out / groups).
std::pair<at::Tensor, at::Tensor> rows(const AffineLayer& layer, const at::Tensor& input) {
  const at::Tensor x = layer.patch_rows(input);
  const int64_t g = x.size(1);
  const at::Tensor w = layer.weight.flatten(1).view({g, -1, x.size(2)});  // [groups, out / groups, in]
  return {x, x.transpose(0, 1).bmm(w.transpose(1, 2)).transpose(0, 1).reshape({x.size(0), -1})};
}

// The layer's output is read by a ReLU alone.
bool followed_by_relu(const Network& net, size_t i) {
  const auto readers = net.reader_nodes(i + 1);
  return readers.size() == 1 && i + 1 < net.size() && net.layer(readers[0]).kind() == LayerKind::ReLU;
}

}  // namespace

Patterns fit_patterns(const Network& network, const Dataset& data, int64_t examples,
                      int64_t batch_size, const FitRun& run) {
  torch::NoGradGuard no_grad;
  const int64_t n = examples > 0 ? std::min(examples, data.size()) : data.size();
  MIPIN_CHECK(n > 0, "cannot fit patterns on the empty data set '", data.name(), "'");
  MIPIN_CHECK(batch_size > 0, "batch size must be positive, found ", batch_size);
  MIPIN_CHECK(run.checkpoint.empty(), "pattern fits keep no checkpoints (one pass over the data)");
  Reducer alone;
  Reducer& reducer = run.reducer ? *run.reducer : alone;
  const int64_t batches = (n + batch_size - 1) / batch_size;
  check_same_everywhere(reducer, "model", network.fingerprint());
  check_same_everywhere(reducer, "data and examples",
                        data.name() + " " + std::to_string(data.size()) + " " + std::to_string(n) + " " +
                            std::to_string(batch_size));
  check_enough_batches(reducer, batches, batch_size);
  std::map<size_t, Moments> moments;
  int64_t mine = 0;
  for (int64_t b = 0; b < batches; ++b) mine += reducer.takes(b) ? 1 : 0;
  ProgressStage bar(run.progress, "patterns", mine);
  for (int64_t index = 0; index < batches; ++index) {
    if (!reducer.takes(index)) continue;
    const int64_t begin = index * batch_size;
    const Batch batch = data.get(begin, std::min(n, begin + batch_size));
    ForwardRecord record;
    network.forward(batch.inputs, &record);
    for (size_t i = 0; i < network.size(); ++i) {
      const AffineLayer* layer = as_affine(network.layer(i));
      if (!layer) continue;
      const auto [x, y] = rows(*layer, record.layers[i].input);
      const at::Tensor mask = followed_by_relu(network, i) ? y.gt(0).to(x.scalar_type())
                                                           : torch::ones_like(y);
      const at::Tensor ym = y * mask;
      Moments& m = moments[i];
      // Each unit's sums over its own group's inputs: [in per group, out].
      const int64_t groups = x.size(1);
      auto per_group = [&, x = x](const at::Tensor& v) {
        const at::Tensor vg = v.view({v.size(0), groups, -1}).transpose(0, 1);  // [groups, rows, out / groups]
        return x.transpose(0, 1).transpose(1, 2).bmm(vg).transpose(0, 1).reshape({x.size(2), -1}).to(at::kDouble);
      };
      const at::Tensor sx = per_group(mask);
      const at::Tensor sxy = per_group(ym);
      const at::Tensor sy = ym.sum(0).to(at::kDouble);
      const at::Tensor c = mask.sum(0).to(at::kDouble);
      if (!m.sum_x.defined()) {
        m = {sx, sy, sxy, c};
      } else {
        m.sum_x += sx;
        m.sum_y += sy;
        m.sum_xy += sxy;
        m.count += c;
      }
    }
    bar.advance();
  }
  // Every process's moments, added in rank order.
  std::vector<at::Tensor*> sums;
  for (auto& [i, m] : moments) {
    for (at::Tensor* t : {&m.sum_x, &m.sum_y, &m.sum_xy, &m.count}) sums.push_back(t);
  }
  sum_each(reducer, sums);
  Patterns p;
  p.model_fingerprint = network.fingerprint();
  p.data_name = data.name();
  p.examples = n;
  for (auto& [i, m] : moments) {
    const at::Tensor& weight = as_affine(network.layer(i))->weight;
    const at::Tensor w = weight.flatten(1).to(at::kDouble);  // [out, in]
    const at::Tensor count = m.count.clamp_min(1);
    const at::Tensor cov = m.sum_xy / count - (m.sum_x / count) * (m.sum_y / count);  // [in, out]
    const at::Tensor denom = (w.t() * cov).sum(0);                                 // [out]
    const at::Tensor safe = torch::where(denom.abs() > 1e-12, denom, torch::ones_like(denom));
    const at::Tensor a = torch::where(denom.abs() > 1e-12, cov / safe, torch::zeros_like(cov));
    p.patterns[i] = a.t().to(at::kFloat).reshape(weight.sizes()).contiguous();
  }
  return p;
}

void Patterns::check_compatible(const Network& network, const std::string& model) const {
  const std::string fingerprint = network.fingerprint();
  MIPIN_CHECK(fingerprint == model_fingerprint, "the patterns were fitted for another model (",
              model_name.empty() ? std::string() : "'" + model_name + "', ", "fingerprint ",
              model_fingerprint, "), but ", model.empty() ? std::string("this model") : "'" + model + "'",
              " has fingerprint ", fingerprint, ": fit them for this model with `mipin fit --method pattern`");
  // The fingerprint names the model, not the tensors: one pattern per
  // Linear/Conv2d layer, in the shape of its weight.
  for (size_t i = 0; i < network.size(); ++i) {
    const AffineLayer* affine = as_affine(network.layer(i));
    if (!affine) continue;
    const auto it = patterns.find(i);
    MIPIN_CHECK(it != patterns.end(), "the patterns have none for layer ", i, " (", network.layer(i).describe(),
                "); the file is incomplete");
    MIPIN_CHECK(it->second.scalar_type() == at::kFloat && it->second.sizes() == affine->weight.sizes(),
                "the pattern for layer ", i, " (", network.layer(i).describe(), ") is ", it->second.scalar_type(), " ",
                shape_string(it->second.sizes().vec()), ", expected float32 ", shape_string(affine->weight.sizes().vec()),
                "; the file is corrupt");
  }
  for (const auto& [i, pattern] : patterns) {
    MIPIN_CHECK(i < network.size() && as_affine(network.layer(i)), "the patterns hold one for node ", i,
                ", which is not a Linear or Conv2d layer; the file is corrupt");
  }
}

void Patterns::save(const std::string& path) const {
  std::map<std::string, at::Tensor> tensors;
  std::vector<int64_t> layers;
  for (const auto& [i, a] : patterns) {
    tensors["pattern_" + std::to_string(i)] = a;
    layers.push_back(static_cast<int64_t>(i));
  }
  const nlohmann::json meta = {{"model_fingerprint", model_fingerprint},
                               {"model", model_name},
                               {"data", data_name},
                               {"examples", examples},
                               {"layers", layers}};
  write_artifact(path, patterns_format(), meta, tensors);
}

Patterns Patterns::load(const std::string& path) {
  Patterns p;
  read_artifact(path, patterns_format(), [&](const ArtifactReader& file) {
    const nlohmann::json& meta = file.metadata();
    p.model_fingerprint = meta.at("model_fingerprint");
    p.model_name = meta.value("model", "");
    p.data_name = meta.value("data", "");
    p.examples = meta.value("examples", int64_t{0});
    for (const int64_t i : meta.at("layers").get<std::vector<int64_t>>()) {
      p.patterns[static_cast<size_t>(i)] = file.tensor("pattern_" + std::to_string(i));
    }
  });
  return p;
}

}  // namespace mipin
