#include "mipin/attribution/patterns.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "mipin/model/layers.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"
#include "mipin/util/progress.h"

namespace mipin {
namespace {

constexpr const char* kFormat = "mipin-patterns/1";

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
                      int64_t batch_size, bool show_progress) {
  torch::NoGradGuard no_grad;
  const int64_t n = examples > 0 ? std::min(examples, data.size()) : data.size();
  MIPIN_CHECK(n > 0, "cannot fit patterns on the empty data set '", data.name(), "'");
  std::map<size_t, Moments> moments;
  std::unique_ptr<Progress> bar;
  if (show_progress) bar = std::make_unique<Progress>("patterns", (n + batch_size - 1) / batch_size);
  for (int64_t begin = 0; begin < n; begin += batch_size) {
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
      auto per_group = [&](const at::Tensor& v) {
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
    if (bar) bar->advance();
  }
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
}

void Patterns::save(const std::string& path) const {
  const nlohmann::json meta = {{"format", kFormat},     {"model_fingerprint", model_fingerprint},
                               {"model", model_name},   {"data", data_name},
                               {"examples", examples}};
  torch::serialize::OutputArchive archive;
  archive.write("metadata", c10::IValue(meta.dump()));
  std::vector<int64_t> layers;
  for (const auto& [i, a] : patterns) {
    archive.write("pattern_" + std::to_string(i), a);
    layers.push_back(static_cast<int64_t>(i));
  }
  archive.write("layers", c10::IValue(layers));
  write_atomically(path, [&](const std::string& tmp) { archive.save_to(tmp); });
}

Patterns Patterns::load(const std::string& path) {
  std::error_code ec;
  MIPIN_CHECK(std::filesystem::exists(path, ec), "patterns file not found: '", path, "'");
  Patterns p;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    c10::IValue text, layers;
    archive.read("metadata", text);
    const auto meta = nlohmann::json::parse(text.toStringRef());
    MIPIN_CHECK(meta.value("format", "") == kFormat, "'", path, "' is not a mipin patterns file");
    p.model_fingerprint = meta.at("model_fingerprint");
    p.model_name = meta.value("model", "");
    p.data_name = meta.value("data", "");
    p.examples = meta.value("examples", int64_t{0});
    archive.read("layers", layers);
    for (const int64_t i : layers.toIntVector()) {
      at::Tensor a;
      archive.read("pattern_" + std::to_string(i), a);
      p.patterns[static_cast<size_t>(i)] = a;
    }
  } catch (const c10::Error& e) {
    MIPIN_FAIL("cannot read the patterns '", path, "': the file is truncated, corrupt or not written by `mipin fit --method pattern` (",
               std::string(e.what_without_backtrace()).substr(0, 160), ")");
  } catch (const nlohmann::json::exception& e) {
    MIPIN_FAIL("cannot read the patterns '", path, "': its metadata is corrupt (", e.what(), ")");
  }
  return p;
}

}  // namespace mipin
