// Fitting MIP-IN top-down: each Linear/Conv2d layer's inverse is the ridge
// least-squares map from the signal the fitted layers above deliver to the
// layer's true input. The exact solver accumulates the normal equations in
// double precision over one streamed pass; the iterative one runs Adam on the
// same loss for layers where that is impractical.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "mipin/attribution/engine.h"
#include "mipin/inverse/inverse.h"
#include "mipin/model/layers.h"
#include "mipin/util/error.h"
#include "mipin/util/progress.h"

namespace mipin {
namespace {

using Clock = std::chrono::steady_clock;

// Largest design matrix (in floats) materialised at once.
constexpr int64_t kMaxPatchFloats = int64_t{64} << 20;
// Signals the iterative solver may keep between its passes.
constexpr int64_t kIterativeCacheBytes = int64_t{512} << 20;

bool is_fittable(const Layer& layer) {
  return layer.kind() == LayerKind::Linear || layer.kind() == LayerKind::Conv2d;
}

// Columns of the least-squares problem: the output width for Linear, the
// transposed-convolution patch size for Conv2d.
int64_t design_width(const Layer& layer) {
  if (layer.kind() == LayerKind::Linear) return static_cast<const Linear&>(layer).out_features();
  const auto& conv = static_cast<const Conv2d&>(layer);
  return conv.out_channels() * conv.weight.size(2) * conv.weight.size(3);
}

// A stride-1, ungrouped convolution's inverse (a transposed convolution) is
// an ordinary convolution of the signal with the flipped operator, so its
// least-squares problem is one over unfolded patches.
bool exact_geometry(const Layer& layer) {
  if (layer.kind() == LayerKind::Linear) return true;
  const auto& conv = static_cast<const Conv2d&>(layer);
  for (int a = 0; a < 2; ++a) {
    const int64_t reach = conv.dilation[a] * (conv.weight.size(2 + a) - 1);
    if (conv.stride[a] != 1 || conv.padding[a] > reach) return false;
  }
  return conv.groups == 1;
}

Solver choose_solver(const Layer& layer, const InverseOptions& o) {
  if (o.solver != Solver::Auto) {
    MIPIN_CHECK(o.solver == Solver::Iterative || exact_geometry(layer),
                "the exact solver cannot fit ", layer.describe(),
                " (strided, grouped or over-padded convolution): use --solver iterative or auto");
    return o.solver;
  }
  return exact_geometry(layer) && design_width(layer) <= o.max_exact_dimension ? Solver::Exact
                                                                                : Solver::Iterative;
}

// Rows of (patch, target) pairs: P [rows, width], X [rows, target features].
std::pair<at::Tensor, at::Tensor> design(const Layer& layer, const at::Tensor& signal,
                                         const at::Tensor& target) {
  if (layer.kind() == LayerKind::Linear) return {signal, target};
  const auto& conv = static_cast<const Conv2d&>(layer);
  const int64_t kh = conv.weight.size(2), kw = conv.weight.size(3);
  const at::Tensor patches = torch::im2col(
      signal, {kh, kw}, conv.dilation,
      {conv.dilation[0] * (kh - 1) - conv.padding[0], conv.dilation[1] * (kw - 1) - conv.padding[1]},
      {1, 1});
  const int64_t width = patches.size(1);
  return {patches.transpose(1, 2).reshape({-1, width}),
          target.permute({0, 2, 3, 1}).reshape({-1, target.size(1)})};
}

// The operator U stored for a layer, from the least-squares map M [q, width].
at::Tensor operator_from_map(const Layer& layer, const at::Tensor& m) {
  if (layer.kind() == LayerKind::Linear) return m.to(at::kFloat).contiguous();
  const auto& conv = static_cast<const Conv2d&>(layer);
  const int64_t kh = conv.weight.size(2), kw = conv.weight.size(3);
  return m.to(at::kFloat)
      .view({conv.in_channels(), conv.out_channels(), kh, kw})
      .flip({2, 3})
      .transpose(0, 1)
      .contiguous();
}

// Sufficient statistics of one layer's least-squares problem.
struct NormalEquations {
  at::Tensor a;      // sum p p^T  [width, width]
  at::Tensor b;      // sum x p^T  [q, width]
  at::Tensor sum_x;  // [q]
  double sum_xx = 0;
  int64_t rows = 0;
};

// Reconstruction quality of targets X from M P, from the statistics alone.
void score(const NormalEquations& ne, const at::Tensor& m, LayerFit& fit) {
  const double cross = (m * ne.b).sum().item<double>();
  const double quad = (m.matmul(ne.a) * m).sum().item<double>();
  const double sse = std::max(0.0, ne.sum_xx - 2 * cross + quad);
  const double sst = ne.sum_xx - (ne.sum_x * ne.sum_x).sum().item<double>() / double(ne.rows);
  fit.mse = sse / (double(ne.rows) * double(ne.b.size(0)));
  fit.r2 = sst > 0 ? 1 - sse / sst : 0;
}

class Fitter {
 public:
  Fitter(const Network& network, const Dataset& data, const InverseOptions& options)
      : net_(network), data_(data), o_(options) {
    n_ = o_.examples > 0 ? std::min(o_.examples, data.size()) : data.size();
    MIPIN_CHECK(n_ > 0, "cannot fit an inverse on the empty data set '", data.name(), "'");
    MIPIN_CHECK(o_.batch_size > 0, "batch size must be positive, found ", o_.batch_size);
    MIPIN_CHECK(o_.alpha >= 0, "alpha must be non-negative, found ", o_.alpha);
    for (size_t i = 0; i < net_.size(); ++i) {
      MIPIN_CHECK(net_.layer(i).kind() != LayerKind::BatchNorm2d, "layer ", i,
                  " is BatchNorm2d: fold it into the convolution before fitting (fold_batchnorm)");
    }
  }

  Inverse run() {
    const auto start = Clock::now();
    Inverse inverse(o_, net_.fingerprint());
    inverse.data_name = data_.name();
    inverse.examples = n_;
    for (size_t l = net_.size(); l-- > 0;) {
      const Layer& layer = net_.layer(l);
      if (!is_fittable(layer)) continue;
      const auto layer_start = Clock::now();
      LayerFit fit;
      fit.index = l;
      fit.layer = layer.describe();
      const Solver solver = choose_solver(layer, o_);
      fit.solver = to_string(solver);
      const Composite above = inverse.composite();
      at::Tensor op = solver == Solver::Exact ? fit_exact(l, above, fit) : fit_iterative(l, above, fit);
      inverse.set_operator(l, op);
      fit.seconds = std::chrono::duration<double>(Clock::now() - layer_start).count();
      if (o_.show_progress && !Progress::drawing()) {
        // Logs and pipes get one line per layer instead of a bar.
        std::fprintf(stderr, "fitted layer %zu %s: R^2 %.4f (%s, %.1f s)\n", l, fit.layer.c_str(),
                     fit.r2, fit.solver.c_str(), fit.seconds);
      }
      inverse.fits().push_back(fit);
    }
    inverse.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return inverse;
  }

 private:
  // For one batch: the signal arriving at layer l's output and the layer's
  // true input.
  std::pair<at::Tensor, at::Tensor> pair_for(size_t l, const Composite& above, int64_t begin,
                                             int64_t end) const {
    const Batch batch = data_.get(begin, end);
    ForwardRecord record;
    const at::Tensor logits = net_.forward(batch.inputs, &record);
    at::Tensor signal = o_.fit_on == FitOn::Activations
                            ? record.layers[l].output
                            : propagate(net_, record, above, make_top_signal(o_.top, logits), l + 1);
    return {signal, record.layers[l].input};
  }

  std::unique_ptr<Progress> progress(size_t l, const std::string& what, int64_t steps) const {
    if (!o_.show_progress) return nullptr;
    return std::make_unique<Progress>("layer " + std::to_string(l) + " " + what, steps);
  }

  at::Tensor fit_exact(size_t l, const Composite& above, LayerFit& fit) {
    torch::NoGradGuard no_grad;
    const Layer& layer = net_.layer(l);
    const int64_t width = design_width(layer);
    NormalEquations ne;
    const auto dbl = torch::TensorOptions().dtype(at::kDouble);
    ne.a = torch::zeros({width, width}, dbl);
    const int64_t batches = (n_ + o_.batch_size - 1) / o_.batch_size;
    auto bar = progress(l, "(exact)", batches);
    for (int64_t begin = 0; begin < n_; begin += o_.batch_size) {
      const auto [signal, target] = pair_for(l, above, begin, std::min(n_, begin + o_.batch_size));
      // Bound the patch matrix: split the batch into chunks of examples.
      const int64_t rows_per_example = target.dim() == 4 ? target.size(2) * target.size(3) : 1;
      const int64_t chunk = std::max<int64_t>(1, kMaxPatchFloats / (rows_per_example * width));
      for (int64_t i = 0; i < signal.size(0); i += chunk) {
        const int64_t j = std::min(signal.size(0), i + chunk);
        const auto [p, x] = design(layer, signal.slice(0, i, j), target.slice(0, i, j));
        if (!ne.b.defined()) {
          ne.b = torch::zeros({x.size(1), width}, dbl);
          ne.sum_x = torch::zeros({x.size(1)}, dbl);
        }
        // A batch's own products in float32, accumulated in double.
        ne.a += p.t().matmul(p).to(at::kDouble);
        ne.b += x.t().matmul(p).to(at::kDouble);
        ne.sum_x += x.sum(0).to(at::kDouble);
        ne.sum_xx += x.to(at::kDouble).square().sum().item<double>();
        ne.rows += x.size(0);
      }
      if (bar) bar->advance();
    }
    const double lambda = o_.alpha * ne.a.trace().item<double>() / double(width);
    const at::Tensor reg = ne.a + lambda * torch::eye(width, dbl);
    const at::Tensor chol = torch::linalg_cholesky(reg);
    const at::Tensor m = torch::cholesky_solve(ne.b.t(), chol).t();
    score(ne, m, fit);
    return operator_from_map(layer, m);
  }

  // Preconditioned conjugate gradient on the same ridge least-squares loss,
  // matrix-free: each iteration is one streamed pass that applies the normal
  // operator (A + lambda I) to the search direction through autograd, so no
  // patch statistics are formed and memory stays flat.
  at::Tensor fit_iterative(size_t l, const Composite& above, LayerFit& fit) {
    const Layer& layer = net_.layer(l);
    const at::Tensor zero_op =
        layer.kind() == LayerKind::Linear
            ? torch::zeros({static_cast<const Linear&>(layer).in_features(),
                            static_cast<const Linear&>(layer).out_features()})
            : torch::zeros_like(static_cast<const Conv2d&>(layer).weight);
    const int64_t batches = (n_ + o_.batch_size - 1) / o_.batch_size;
    auto bar = progress(l, "(iterative)", batches * (o_.iterative_iterations + 2));

    // One pass: sum over the data of d/dU 0.5 ||inv(s; U) - t||^2 with t the
    // true input (or zero), plus the per-column scale used as preconditioner.
    struct PassResult {
      at::Tensor gradient;
      at::Tensor column_energy;  // sum of squared signal per output unit
      double trace = 0;          // trace of A: sum of squared design entries
    };
    const double patch_area = layer.kind() == LayerKind::Conv2d
                                  ? double(zero_op.size(2) * zero_op.size(3))
                                  : 1.0;
    // Each iteration needs the same (signal, target) pairs again. They are
    // kept while they fit a fixed memory budget and recomputed otherwise, so
    // memory never grows with the number of examples.
    std::vector<std::pair<at::Tensor, at::Tensor>> cache;
    int64_t cached_bytes = 0;
    bool caching = true;
    auto pairs = [&](int64_t batch_index) -> std::pair<at::Tensor, at::Tensor> {
      if (caching && batch_index < static_cast<int64_t>(cache.size())) return cache[batch_index];
      torch::NoGradGuard no_grad;
      const int64_t begin = batch_index * o_.batch_size;
      auto p = pair_for(l, above, begin, std::min(n_, begin + o_.batch_size));
      if (caching) {
        cached_bytes += int64_t(p.first.numel() + p.second.numel()) * int64_t(sizeof(float));
        if (cached_bytes <= kIterativeCacheBytes) {
          cache.emplace_back(p.first.clone(), p.second.clone());
        } else {
          caching = false;
          cache.clear();
        }
      }
      return p;
    };
    auto pass = [&](const at::Tensor& u, bool with_targets) {
      PassResult result;
      result.gradient = torch::zeros_like(u);
      for (int64_t b = 0; b < batches; ++b) {
        const auto [signal, target] = pairs(b);
        at::Tensor leaf = u.detach().clone().set_requires_grad(true);
        at::Tensor out = apply_inverse_operator(layer, leaf, signal, target);
        if (with_targets) out = out - target;
        const at::Tensor loss = 0.5 * out.square().sum();
        result.gradient += torch::autograd::grad({loss}, {leaf})[0];
        if (with_targets) {
          const at::Tensor per_unit = signal.dim() == 4 ? signal.square().sum({0, 2, 3})
                                                        : signal.square().sum(0);
          result.column_energy = result.column_energy.defined() ? result.column_energy + per_unit
                                                                : per_unit;
          result.trace += patch_area * signal.square().sum().item<double>();
        }
        if (bar) bar->advance();
      }
      return result;
    };
    // Broadcasts a per-output-unit value to the operator's shape.
    auto per_unit = [&](const at::Tensor& v) {
      return layer.kind() == LayerKind::Linear ? v.view({1, -1}) : v.view({-1, 1, 1, 1});
    };

    const PassResult first = pass(zero_op, true);
    const int64_t width = design_width(layer);
    const double lambda = o_.alpha * first.trace / double(width);
    const at::Tensor scale = (per_unit(first.column_energy) + lambda).clamp_min(1e-12);
    at::Tensor u = zero_op.clone();
    at::Tensor r = -first.gradient;  // residual of (A + lambda I) U = B at U = 0
    at::Tensor z = r / scale;
    at::Tensor d = z.clone();
    double rz = (r * z).sum().item<double>();
    const double r0 = r.norm().item<double>();
    for (int64_t it = 0; it < o_.iterative_iterations && r0 > 0; ++it) {
      const at::Tensor hd = pass(d, false).gradient + lambda * d;
      const double step = rz / (d * hd).sum().item<double>();
      u += step * d;
      r -= step * hd;
      if (r.norm().item<double>() <= 1e-6 * r0) break;
      z = r / scale;
      const double rz_next = (r * z).sum().item<double>();
      d = z + (rz_next / rz) * d;
      rz = rz_next;
    }

    // Score the final operator over the data, as the exact solver does.
    torch::NoGradGuard no_grad;
    double sse = 0, sum_xx = 0;
    at::Tensor sum_x;
    int64_t rows = 0;
    for (int64_t b = 0; b < batches; ++b) {
      const auto [signal, target] = pairs(b);
      const at::Tensor x = target.dim() == 4 ? target.permute({0, 2, 3, 1}).reshape({-1, target.size(1)})
                                             : target;
      const at::Tensor residual = apply_inverse_operator(layer, u, signal, target) - target;
      sse += residual.to(at::kDouble).square().sum().item<double>();
      sum_xx += x.to(at::kDouble).square().sum().item<double>();
      const at::Tensor sx = x.to(at::kDouble).sum(0);
      sum_x = sum_x.defined() ? sum_x + sx : sx;
      rows += x.size(0);
      if (bar) bar->advance();
    }
    const double sst = sum_xx - (sum_x * sum_x).sum().item<double>() / double(rows);
    fit.mse = sse / (double(rows) * double(sum_x.size(0)));
    fit.r2 = sst > 0 ? 1 - sse / sst : 0;
    return u;
  }

  const Network& net_;
  const Dataset& data_;
  InverseOptions o_;
  int64_t n_ = 0;
};

}  // namespace

Inverse fit_inverse(const Network& network, const Dataset& data, const InverseOptions& options) {
  return Fitter(network, data, options).run();
}

}  // namespace mipin
