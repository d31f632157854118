// Fitting MIP-IN from the top. Every node with fitted parameters (a Linear
// or Conv2d layer's operator U, an add's per-input channel scales, an
// unfolded BatchNorm's channel scale) is fitted by ridge least squares to
// reconstruct its forward input(s) from the signal the fitted nodes above
// it deliver. A node is ready once every fitted node between it and the
// output is fitted; each pass streams the data once and fits every ready
// node (a frontier), so a chain takes one pass per layer and a residual
// network one per depth of its fitted nodes, not their count.
//
// The exact solver accumulates normal equations in double precision over a
// pass and solves by Cholesky; the iterative one runs preconditioned
// conjugate gradient on the same loss, one pass per iteration, for layers
// whose normal equations would be too large.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "mipin/attribution/engine.h"
#include "mipin/attribution/layer_maps.h"
#include "mipin/inverse/inverse.h"
#include "mipin/model/layers.h"
#include "mipin/util/error.h"
#include "mipin/util/progress.h"
#include "mipin/util/r_squared.h"

namespace mipin {
namespace {

using Clock = std::chrono::steady_clock;

// Largest design matrix (in floats) materialised at once.
constexpr int64_t kMaxPatchFloats = int64_t{64} << 20;
// Signals the iterative solver may keep between its passes.
constexpr int64_t kIterativeCacheBytes = int64_t{512} << 20;

bool is_operator(const Layer& layer) { return as_affine(layer) != nullptr; }

int64_t groups_of(const Layer& layer) { return as_affine(layer)->weight_groups(); }

// Columns of one group's least-squares problem: the units of a group times
// the taps each reads (the output width for Linear, the transposed
// convolution's patch size for Conv2d).
int64_t design_width(const Layer& layer) {
  const AffineLayer& affine = *as_affine(layer);
  return affine.units() / affine.weight_groups() * affine.taps();
}

Solver choose_solver(const Layer& layer, const InverseOptions& o) {
  if (o.solver != Solver::Auto) return o.solver;
  return design_width(layer) <= o.max_exact_dimension ? Solver::Exact : Solver::Iterative;
}

// The patches a transposed convolution reads, one row per output position.
// conv_transpose2d(s, U) is a stride-1 convolution, with the flipped kernel,
// of s stuffed with stride - 1 zeros between its entries and padded by
// dilation * (k - 1) - padding before each axis (and what reaches the
// forward input's size after it): its patches are im2col of that. The
// zeros of the stuffing give each output phase of a strided layer its own
// taps.
at::Tensor transposed_patches(const Conv2d& conv, const at::Tensor& signal, at::IntArrayRef input_sizes) {
  const int64_t kh = conv.weight.size(2), kw = conv.weight.size(3);
  at::Tensor stuffed = signal;
  if (conv.stride[0] > 1 || conv.stride[1] > 1) {
    stuffed = torch::zeros({signal.size(0), signal.size(1), (signal.size(2) - 1) * conv.stride[0] + 1,
                            (signal.size(3) - 1) * conv.stride[1] + 1},
                           signal.options());
    stuffed.slice(2, 0, c10::nullopt, conv.stride[0]).slice(3, 0, c10::nullopt, conv.stride[1]).copy_(signal);
  }
  std::vector<int64_t> pad(4);
  const int64_t k[2] = {kh, kw};
  for (int a = 0; a < 2; ++a) {
    const int64_t reach = conv.dilation[a] * (k[a] - 1);
    const int64_t before = reach - conv.padding[a];
    const int64_t after = input_sizes[2 + a] + reach - stuffed.size(2 + a) - before;
    pad[2 - 2 * a] = before;  // constant_pad_nd lists the last axis first
    pad[3 - 2 * a] = after;
  }
  const at::Tensor padded = torch::constant_pad_nd(stuffed, pad);
  return torch::im2col(padded, {kh, kw}, conv.dilation, {0, 0}, {1, 1});
}

// The output phases of a layer's inverse. Along an axis with stride s, the
// positions p with (p + padding) % s == r read exactly the kernel taps k
// with (k * dilation) % s == r: on a phase's rows every other tap's column
// is zero (the stuffing), so each phase is a least-squares problem of its
// own, over its taps, and together they cost about 1 / s^2 of one problem
// over every tap. A unit-stride layer (and a Linear one) has one phase.
struct Phase {
  int64_t first[2] = {0, 0};       // its first position on each axis (then every stride-th)
  std::vector<int64_t> taps[2];    // the taps it reads on each axis
};

std::vector<Phase> phases_of(const Layer& layer) {
  if (layer.kind() == LayerKind::Linear) return {Phase{}};
  const auto& conv = static_cast<const Conv2d&>(layer);
  std::vector<Phase> out;
  for (int64_t rh = 0; rh < conv.stride[0]; ++rh) {
    for (int64_t rw = 0; rw < conv.stride[1]; ++rw) {
      Phase phase;
      const int64_t r[2] = {rh, rw};
      for (int a = 0; a < 2; ++a) {
        const int64_t s = conv.stride[a];
        phase.first[a] = ((r[a] - conv.padding[a]) % s + s) % s;
        for (int64_t k = 0; k < conv.weight.size(2 + a); ++k) {
          if ((k * conv.dilation[a]) % s == r[a]) phase.taps[a].push_back(k);
        }
      }
      out.push_back(std::move(phase));
    }
  }
  return out;
}

// Rows of (patch, target) pairs of one phase, per group: P [rows, groups,
// width], X [rows, groups, target features per group]. patches: the
// layer's transposed_patches of the signal (computed once for all phases).
std::pair<at::Tensor, at::Tensor> design(const Layer& layer, const at::Tensor& signal, const at::Tensor& patches,
                                         const at::Tensor& target, const Phase& phase) {
  if (layer.kind() == LayerKind::Linear) return {signal.unsqueeze(1), target.unsqueeze(1)};
  const auto& conv = static_cast<const Conv2d&>(layer);
  const int64_t g = conv.groups, n = target.size(0), h = target.size(2), w = target.size(3);
  const auto taps = [](const std::vector<int64_t>& k) { return torch::tensor(k, torch::kLong); };
  const at::Tensor p = patches.view({n, conv.out_channels(), conv.weight.size(2), conv.weight.size(3), h, w})
                           .index_select(2, taps(phase.taps[0]))
                           .index_select(3, taps(phase.taps[1]))
                           .slice(4, phase.first[0], h, conv.stride[0])
                           .slice(5, phase.first[1], w, conv.stride[1]);
  const at::Tensor x = target.slice(2, phase.first[0], h, conv.stride[0]).slice(3, phase.first[1], w, conv.stride[1]);
  const int64_t width = conv.out_channels() / g * int64_t(phase.taps[0].size() * phase.taps[1].size());
  const int64_t rows = n * x.size(2) * x.size(3);
  return {p.permute({0, 4, 5, 1, 2, 3}).reshape({rows, g, width}),
          x.permute({0, 2, 3, 1}).reshape({rows, g, target.size(1) / g})};
}

// The operator stored for a layer, in its weight's shape, from the
// least-squares maps M [groups, q, width] of its whole kernel (q inputs
// per group, width = units per group times taps): the transposed
// convolution's kernel is the flipped, transposed map; a Linear layer's
// (one tap) is M^T.
at::Tensor operator_from_map(const AffineLayer& layer, const at::Tensor& m) {
  const int64_t g = layer.weight_groups(), q = layer.weight.size(1);
  const int64_t kh = layer.weight.dim() > 2 ? layer.weight.size(2) : 1;
  const int64_t kw = layer.weight.dim() > 2 ? layer.weight.size(3) : 1;
  return m.to(at::kFloat)
      .view({g, q, layer.units() / g, kh, kw})
      .flip({3, 4})
      .transpose(1, 2)
      .reshape(layer.weight.sizes())
      .contiguous();
}

// Sufficient statistics of one least-squares problem, per group.
struct NormalEquations {
  at::Tensor a;      // sum p p^T  [groups, width, width]
  at::Tensor b;      // sum x p^T  [groups, q, width]
  RSquared spread;   // of the targets x, per (group, feature)

  void add(const at::Tensor& p, const at::Tensor& x) {
    const auto dbl = torch::TensorOptions().dtype(at::kDouble);
    if (!a.defined()) {
      a = torch::zeros({p.size(1), p.size(2), p.size(2)}, dbl);
      b = torch::zeros({x.size(1), x.size(2), p.size(2)}, dbl);
    }
    // A batch's own products in float32, accumulated in double.
    const at::Tensor pg = p.transpose(0, 1), xg = x.transpose(0, 1);  // [groups, rows, .]
    if (p.size(2) > 0) {
      a += pg.transpose(1, 2).bmm(pg).to(at::kDouble);
      b += xg.transpose(1, 2).bmm(pg).to(at::kDouble);
    }
    spread.add_targets(x);
  }

  at::Tensor trace() const { return a.diagonal(0, 1, 2).sum(1); }  // [groups]

  // The ridge solution M = B (A + lambda I)^-1 (lambda per group), and its
  // squared error.
  at::Tensor solve(const at::Tensor& lambda, const std::string& what, double& sse) const {
    const int64_t width = a.size(1);
    const double sum_xx = spread.sum_of_squares();
    if (width == 0) {  // a phase no tap reaches: its targets stay unexplained
      sse = sum_xx;
      return b;
    }
    const at::Tensor reg = a + lambda.view({-1, 1, 1}) * torch::eye(width, a.options());
    const auto [chol, info] = torch::linalg_cholesky_ex(reg);
    MIPIN_CHECK(info.eq(0).all().item<bool>(), what, ": its normal equations are singular: fit with a positive --alpha");
    const at::Tensor m = torch::cholesky_solve(b.transpose(1, 2), chol).transpose(1, 2);
    const double cross = (m * b).sum().item<double>();
    const double quad = (m.bmm(a) * m).sum().item<double>();
    sse = std::max(0.0, sum_xx - 2 * cross + quad);
    return m;
  }
};

// A Linear or Conv2d layer's problem: one NormalEquations per phase.
struct OperatorEquations {
  std::vector<Phase> phases;
  std::vector<NormalEquations> per_phase;

  void add(const Layer& layer, const at::Tensor& signal, const at::Tensor& target) {
    if (phases.empty()) {
      phases = phases_of(layer);
      per_phase.resize(phases.size());
    }
    const at::Tensor patches = layer.kind() == LayerKind::Conv2d
                                   ? transposed_patches(static_cast<const Conv2d&>(layer), signal, target.sizes())
                                   : at::Tensor();
    for (size_t r = 0; r < phases.size(); ++r) {
      const auto [p, x] = design(layer, signal, patches, target, phases[r]);
      per_phase[r].add(p, x);
    }
  }

  // Ridge least squares with lambda = alpha * trace(A) / dim(A) of the whole
  // problem (every phase together), so that phases change nothing but the cost.
  at::Tensor solve(const Layer& layer, int64_t width, double alpha, LayerFit& fit) const {
    at::Tensor trace = per_phase[0].trace();
    for (size_t r = 1; r < per_phase.size(); ++r) trace = trace + per_phase[r].trace();
    // A group that no signal reached (A = 0, B = 0) gets U = 0: any positive
    // lambda gives it.
    const at::Tensor lambda = torch::where(trace > 0, alpha * trace / double(width), torch::ones_like(trace));
    // Per target feature (channel) means, over every row of every phase.
    RSquared total;
    std::vector<at::Tensor> maps;
    for (const auto& e : per_phase) {
      double sse = 0;
      maps.push_back(e.solve(lambda, fit.layer, sse));
      total.merge(e.spread);
      total.add_squared_error(sse);
    }
    fit.mse = total.mse();
    fit.r2 = total.r2();
    if (layer.kind() == LayerKind::Linear) return operator_from_map(*as_affine(layer), maps[0]);
    // Each phase's taps back into the full kernel.
    const auto& conv = static_cast<const Conv2d&>(layer);
    const int64_t g = conv.groups, q = conv.in_channels() / g, c = conv.out_channels() / g;
    at::Tensor m = torch::zeros({g, q, c, conv.weight.size(2), conv.weight.size(3)}, torch::kDouble);
    for (size_t r = 0; r < phases.size(); ++r) {
      const auto& taps = phases[r].taps;
      if (taps[0].empty() || taps[1].empty()) continue;
      const at::Tensor part = maps[r].view({g, q, c, int64_t(taps[0].size()), int64_t(taps[1].size())});
      for (size_t i = 0; i < taps[0].size(); ++i) {
        for (size_t j = 0; j < taps[1].size(); ++j) {
          m.select(3, taps[0][i]).select(3, taps[1][j]).copy_(part.select(3, int64_t(i)).select(3, int64_t(j)));
        }
      }
    }
    return operator_from_map(conv, m.view({g, q, -1}));
  }
};

// Per-channel scales d_k = sum(x_k s) / (sum(s s) + lambda), one per input k
// of an add (or the one input of a BatchNorm), with lambda = alpha * the
// mean of sum(s s) over channels.
struct ChannelScales {
  at::Tensor xs, ss;  // [inputs, C], [C]
  RSquared spread;    // of the targets, per (input, channel); a row is a position

  static at::Tensor per_channel_sum(const at::Tensor& t) {
    return t.dim() == 2 ? t.sum(0) : t.transpose(0, 1).flatten(1).sum(1);
  }

  void add(const at::Tensor& signal, const std::vector<at::Tensor>& targets) {
    std::vector<at::Tensor> xs_k, sx_k;
    double xx = 0;
    const at::Tensor s = signal.to(at::kDouble);
    for (const auto& t : targets) {
      const at::Tensor x = t.to(at::kDouble);
      xs_k.push_back(per_channel_sum(x * s));
      sx_k.push_back(per_channel_sum(x));
      xx += x.square().sum().item<double>();
    }
    const at::Tensor batch_ss = per_channel_sum(s * s);
    auto accumulate = [](at::Tensor& acc, const at::Tensor& v) { acc = acc.defined() ? acc + v : v; };
    accumulate(xs, torch::stack(xs_k));
    accumulate(ss, batch_ss);
    spread.add_sums(torch::stack(sx_k), xx, signal.numel() / signal.size(1));
  }

  at::Tensor solve(double alpha, LayerFit& fit) const {
    const double energy = ss.mean().item<double>();
    // No signal at all: scales 0 (any positive lambda gives them).
    const double lambda = energy > 0 ? alpha * energy : 1.0;
    const at::Tensor d = torch::where(ss + lambda > 0, xs / (ss + lambda), torch::zeros_like(xs));  // [inputs, C]
    RSquared fitted = spread;
    fitted.add_squared_error(spread.sum_of_squares() + (d * d * ss - 2 * d * xs).sum().item<double>());
    fit.mse = fitted.mse();
    fit.r2 = fitted.r2();
    return d.to(at::kFloat);
  }
};

// Per-channel weights w_k of the signals s_k a fork's readers send back,
// fitted jointly so that sum_k w_k s_k reconstructs the forked value x:
// per channel, (G + lambda I) w = b with G_kj = sum s_k s_j, b_k = sum x s_k
// and lambda = alpha * trace(G) / k.
struct ForkWeights {
  at::Tensor gram, xs;  // [C, k, k], [C, k]
  RSquared spread;      // of the forked value, per channel

  static at::Tensor channels_last(const at::Tensor& t) {
    return t.dim() == 2 ? t.to(at::kDouble) : t.transpose(0, 1).flatten(1).t().to(at::kDouble);  // [rows, C]
  }

  void add(const std::vector<at::Tensor>& parts, const at::Tensor& value) {
    std::vector<at::Tensor> cols;
    for (const auto& p : parts) cols.push_back(channels_last(p));
    const at::Tensor s = torch::stack(cols, 2);  // [rows, C, k]
    const at::Tensor x = channels_last(value);   // [rows, C]
    const at::Tensor sc = s.transpose(0, 1);     // [C, rows, k]
    const at::Tensor g = sc.transpose(1, 2).bmm(sc);
    const at::Tensor b = (sc * x.t().unsqueeze(2)).sum(1);
    gram = gram.defined() ? gram + g : g;
    xs = xs.defined() ? xs + b : b;
    spread.add_targets(x);
  }

  at::Tensor solve(double alpha, LayerFit& fit) const {
    const int64_t k = gram.size(1);
    const at::Tensor trace = gram.diagonal(0, 1, 2).sum(1);
    const at::Tensor lambda = torch::where(trace > 0, alpha * trace / double(k), torch::ones_like(trace));
    const at::Tensor reg = gram + lambda.view({-1, 1, 1}) * torch::eye(k, gram.options());
    const at::Tensor w = torch::linalg_solve(reg, xs.unsqueeze(2)).squeeze(2);  // [C, k]
    const double cross = (w * xs).sum().item<double>();
    const double quad = (w.unsqueeze(1).bmm(gram).squeeze(1) * w).sum().item<double>();
    RSquared fitted = spread;
    fitted.add_squared_error(std::max(0.0, spread.sum_of_squares() - 2 * cross + quad));
    fit.mse = fitted.mse();
    fit.r2 = fitted.r2();
    return w.t().to(at::kFloat).contiguous();  // [k, C]
  }
};

// Which nodes lie below which: below[i][j] is true where node j reads,
// directly or through other nodes, the output of node i.
std::vector<std::vector<char>> reachability(const Network& net) {
  const size_t n = net.size();
  std::vector<std::vector<char>> below(n, std::vector<char>(n, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t r : net.reader_nodes(i + 1)) {
      below[i][r] = 1;
      for (size_t j = 0; j < n; ++j) below[i][j] |= below[r][j];
    }
  }
  return below;
}

// A fitted node not fitted yet passes nothing on: what lies below it waits
// for a later pass.
std::shared_ptr<const Rule> stop_rule() {
  return std::make_shared<FunctionRule>([](const RuleContext& ctx, const at::Tensor&) {
    return Signals(std::max<size_t>(ctx.layer.arity(), ctx.record.inputs.size()));
  });
}

class Fitter {
 public:
  Fitter(const Network& network, const Dataset& data, const InverseOptions& options)
      : net_(network), data_(data), o_(options) {
    n_ = o_.examples > 0 ? std::min(o_.examples, data.size()) : data.size();
    MIPIN_CHECK(n_ > 0, "cannot fit an inverse on the empty data set '", data.name(), "'");
    MIPIN_CHECK(o_.batch_size > 0, "batch size must be positive, found ", o_.batch_size);
    MIPIN_CHECK(o_.alpha >= 0, "alpha must be non-negative, found ", o_.alpha);
  }

  Inverse run() {
    const auto start = Clock::now();
    Inverse inverse(o_, net_.fingerprint());
    inverse.data_name = data_.name();
    inverse.examples = n_;
    const auto below = reachability(net_);
    std::vector<size_t> unfitted, unfitted_forks;
    for (size_t i = net_.size(); i-- > 0;) {
      if (has_fitted_inverse(net_.layer(i), o_)) unfitted.push_back(i);
    }
    if (o_.fork == ForkCombine::Fitted) {
      for (size_t v = net_.size(); v-- > 0;) {
        if (net_.readers(v) >= 2) unfitted_forks.push_back(v);
      }
    }
    // Whether node j, or the fork at value w, lies strictly below (nearer the
    // output than) node i, or the fork at value v. A fork sits where its
    // value is made: below its producer, above its readers.
    auto node_below_node = [&](size_t i, size_t j) { return below[i][j] != 0; };
    auto fork_below_node = [&](size_t i, size_t w) { return w > 0 && (w - 1 == i || below[i][w - 1]); };
    auto node_below_fork = [&](size_t v, size_t j) { return v == 0 || below[v - 1][j]; };
    auto fork_below_fork = [&](size_t v, size_t w) { return w != v && w > 0 && (v == 0 || below[v - 1][w - 1]); };
    for (int pass = 1; !unfitted.empty() || !unfitted_forks.empty(); ++pass) {
      // The frontier: what has nothing unfitted below it.
      std::vector<size_t> ready, waiting, ready_forks, waiting_forks;
      for (size_t i : unfitted) {
        bool clear = true;
        for (size_t j : unfitted) clear = clear && !node_below_node(i, j);
        for (size_t w : unfitted_forks) clear = clear && !fork_below_node(i, w);
        (clear ? ready : waiting).push_back(i);
      }
      for (size_t v : unfitted_forks) {
        bool clear = true;
        for (size_t j : unfitted) clear = clear && !node_below_fork(v, j);
        for (size_t w : unfitted_forks) clear = clear && !fork_below_fork(v, w);
        (clear ? ready_forks : waiting_forks).push_back(v);
      }
      Composite composite = inverse.composite();
      for (size_t i : unfitted) composite.with_layer(i, stop_rule());
      std::vector<size_t> exact;
      for (size_t i : ready) {
        if (is_operator(net_.layer(i)) && choose_solver(net_.layer(i), o_) == Solver::Iterative) {
          const auto layer_start = Clock::now();
          LayerFit fit = describe(i, "iterative", pass);
          inverse.set_operator(i, fit_iterative(i, with_forks(composite, inverse, nullptr), fit));
          fit.seconds = std::chrono::duration<double>(Clock::now() - layer_start).count();
          finish(inverse, fit);
        } else {
          exact.push_back(i);
        }
      }
      if (!exact.empty() || !ready_forks.empty()) fit_pass(pass, exact, ready_forks, composite, inverse);
      unfitted = waiting;
      unfitted_forks = waiting_forks;
    }
    inverse.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return inverse;
  }

 private:
  LayerFit describe(size_t i, const std::string& solver, int pass) const {
    LayerFit fit;
    fit.pass = pass;
    fit.index = i;
    fit.layer = net_.layer(i).describe();
    fit.solver = solver;
    return fit;
  }

  void finish(Inverse& inverse, const LayerFit& fit) const {
    if (o_.show_progress && !Progress::drawing()) {
      // Logs and pipes get one line per node instead of a bar.
      std::fprintf(stderr, "fitted layer %zu %s: R^2 %.4f (%s, %.1f s)\n", fit.index, fit.layer.c_str(), fit.r2,
                   fit.solver.c_str(), fit.seconds);
    }
    inverse.fits().push_back(fit);
  }

  // One batch's forward record and the signals the fitted nodes deliver to
  // every value at or above `down_to` (or, fitting on activations, none).
  struct BatchSignals {
    ForwardRecord record;
    std::vector<at::Tensor> signals;
  };
  BatchSignals signals_for(const Composite& composite, size_t down_to, int64_t begin, int64_t end) const {
    BatchSignals b;
    const Batch batch = data_.get(begin, end);
    const at::Tensor logits = net_.forward(batch.inputs, &b.record);
    if (o_.fit_on == FitOn::Signals) {
      propagate(net_, b.record, composite, make_top_signal(o_.top, logits), down_to, &b.signals);
    }
    return b;
  }
  // The signal arriving at node i's output.
  at::Tensor signal_at(const BatchSignals& b, size_t i) const {
    return o_.fit_on == FitOn::Activations ? b.record.layers[i].output : b.signals[i + 1];
  }
  static std::vector<at::Tensor> targets_of(const LayerRecord& record) {
    return record.inputs.empty() ? std::vector<at::Tensor>{record.input} : record.inputs;
  }

  // Fitted forks: the composite combines the signals at a fork by its
  // weights once they are fitted; an unfitted fork passes nothing on (what
  // lies above it waits), and hands its parts to `captured` when asked.
  using Captured = std::map<size_t, std::vector<at::Tensor>>;
  Composite with_forks(Composite composite, const Inverse& inverse, Captured* captured) const {
    if (o_.fork != ForkCombine::Fitted) return composite;
    const auto forks = inverse.forks();
    composite.with_fork([forks, captured](size_t value, const std::vector<at::Tensor>& parts) -> at::Tensor {
      const auto it = forks.find(value);
      if (it != forks.end()) return combine_fork(it->second, parts);
      if (captured) (*captured)[value] = parts;
      return at::Tensor();
    });
    return composite;
  }

  std::unique_ptr<Progress> progress(const std::string& what, int64_t steps) const {
    if (!o_.show_progress) return nullptr;
    return std::make_unique<Progress>(what, steps);
  }

  // One streamed pass that accumulates the statistics of every node in
  // `nodes` and every fork in `forks` (values), and solves them.
  void fit_pass(int pass, const std::vector<size_t>& nodes, const std::vector<size_t>& forks,
                const Composite& base, Inverse& inverse) {
    torch::NoGradGuard no_grad;
    const auto pass_start = Clock::now();
    std::map<size_t, OperatorEquations> equations;
    std::map<size_t, ChannelScales> scales;
    std::map<size_t, ForkWeights> fork_weights;
    Captured captured;
    const Composite composite = with_forks(base, inverse, &captured);
    size_t down_to = net_.size();
    for (size_t i : nodes) down_to = std::min(down_to, i + 1);
    for (size_t v : forks) down_to = std::min(down_to, v);
    const int64_t batches = (n_ + o_.batch_size - 1) / o_.batch_size;
    auto bar = progress("pass " + std::to_string(pass) + " (" + std::to_string(nodes.size() + forks.size()) + " nodes)",
                        batches);
    for (int64_t begin = 0; begin < n_; begin += o_.batch_size) {
      captured.clear();
      const BatchSignals b = signals_for(composite, down_to, begin, std::min(n_, begin + o_.batch_size));
      for (size_t v : forks) {
        MIPIN_CHECK(o_.fit_on == FitOn::Signals, "fork weights are fitted on propagated signals only");
        const auto it = captured.find(v);
        if (it != captured.end()) fork_weights[v].add(it->second, b.record.value(v));
      }
      for (size_t i : nodes) {
        const Layer& layer = net_.layer(i);
        const at::Tensor signal = signal_at(b, i);
        if (!is_operator(layer)) {
          scales[i].add(signal, targets_of(b.record.layers[i]));
          continue;
        }
        const at::Tensor& target = b.record.layers[i].input;
        // Bound the patch matrix: split the batch into chunks of examples.
        const int64_t rows_per_example = target.dim() == 4 ? target.size(2) * target.size(3) : 1;
        const int64_t width = design_width(layer) * groups_of(layer);
        const int64_t chunk = std::max<int64_t>(1, kMaxPatchFloats / (rows_per_example * width));
        for (int64_t s = 0; s < signal.size(0); s += chunk) {
          const int64_t e = std::min(signal.size(0), s + chunk);
          equations[i].add(layer, signal.slice(0, s, e), target.slice(0, s, e));
        }
      }
      if (bar) bar->advance();
    }
    // Each node's time: an even share of the pass, plus its own solve.
    const double share =
        std::chrono::duration<double>(Clock::now() - pass_start).count() / double(nodes.size() + forks.size());
    for (size_t i : nodes) {
      const auto solve_start = Clock::now();
      LayerFit fit = describe(i, "exact", pass);
      const at::Tensor fitted = is_operator(net_.layer(i))
                                    ? equations.at(i).solve(net_.layer(i), design_width(net_.layer(i)), o_.alpha, fit)
                                    : scales.at(i).solve(o_.alpha, fit);
      inverse.set_operator(i, fitted);
      fit.seconds = share + std::chrono::duration<double>(Clock::now() - solve_start).count();
      finish(inverse, fit);
    }
    for (size_t v : forks) {
      LayerFit fit = describe(v == 0 ? 0 : v - 1, "exact", pass);
      fit.index = v;
      fit.layer = "Fork(" + (v == 0 ? std::string("input") : "output of layer " + std::to_string(v - 1)) + ", " +
                  std::to_string(net_.readers(v)) + " readers)";
      const auto it = fork_weights.find(v);
      // A fork whose readers never sent two signals (a gate's branch gets
      // none) combines nothing: it keeps no weights.
      if (it == fork_weights.end()) continue;
      inverse.set_fork(v, it->second.solve(o_.alpha, fit));
      fit.seconds = share;
      finish(inverse, fit);
    }
  }

  // Preconditioned conjugate gradient on the same ridge least-squares loss,
  // matrix-free: each iteration is one streamed pass that applies the normal
  // operator (A + lambda I) to the search direction through autograd, so no
  // patch statistics are formed and memory stays flat.
  at::Tensor fit_iterative(size_t l, const Composite& above, LayerFit& fit) {
    const Layer& layer = net_.layer(l);
    const AffineLayer& affine = *as_affine(layer);
    const at::Tensor zero_op = torch::zeros_like(affine.weight);
    const int64_t batches = (n_ + o_.batch_size - 1) / o_.batch_size;
    auto bar = progress("layer " + std::to_string(l) + " (iterative)", batches * (o_.iterative_iterations + 2));

    // One pass: sum over the data of d/dU 0.5 ||inv(s; U) - t||^2 with t the
    // true input (or zero), plus the per-column scale used as preconditioner.
    struct PassResult {
      at::Tensor gradient;
      at::Tensor column_energy;  // sum of squared signal per output unit
      double trace = 0;          // trace of A: sum of squared design entries
    };
    // A grouped layer's output unit reaches in_channels / groups inputs.
    const double patch_area = double(affine.taps());
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
      const BatchSignals b = signals_for(above, l + 1, begin, std::min(n_, begin + o_.batch_size));
      std::pair<at::Tensor, at::Tensor> p{signal_at(b, l), b.record.layers[l].input};
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
    auto per_unit = [&](const at::Tensor& v) { return affine.per_unit(v); };

    const PassResult first = pass(zero_op, true);
    const int64_t width = design_width(layer) * groups_of(layer);
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
    // Per channel means: a row is a position of an example.
    auto rows_of = [](const at::Tensor& t) {
      return t.dim() == 4 ? t.permute({0, 2, 3, 1}).reshape({-1, t.size(1)}) : t;
    };
    RSquared score;
    for (int64_t b = 0; b < batches; ++b) {
      const auto [signal, target] = pairs(b);
      score.add(rows_of(target), rows_of(apply_inverse_operator(layer, u, signal, target)));
      if (bar) bar->advance();
    }
    fit.mse = score.mse();
    fit.r2 = score.r2();
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
