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
//
// Every pass is sums over examples: across the processes of a job each
// streams every world_size-th batch and the sums are added (in rank order,
// double precision) before every process solves the same system. A
// one-process fit can keep checkpoints between batches and resume from them.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "inverse/fit_checkpoint.h"
#include "inverse/normal_equations.h"
#include "mipin/inverse/options_json.h"
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

Solver choose_solver(const Layer& layer, const InverseOptions& o) {
  if (o.solver != Solver::Auto) return o.solver;
  return design_width(layer) <= o.max_exact_dimension ? Solver::Exact : Solver::Iterative;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<size_t> without(const std::vector<size_t>& all, const std::vector<size_t>& a,
                            const std::vector<size_t>& b = {}) {
  std::vector<size_t> out;
  for (size_t i : all) {
    if (std::find(a.begin(), a.end(), i) == a.end() && std::find(b.begin(), b.end(), i) == b.end()) {
      out.push_back(i);
    }
  }
  return out;
}

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
  Fitter(const Network& network, const Dataset& data, const InverseOptions& options, const FitRun& run)
      : net_(network), data_(data), o_(options), run_(run), reducer_(run.reducer ? *run.reducer : alone_) {
    n_ = o_.examples > 0 ? std::min(o_.examples, data.size()) : data.size();
    MIPIN_CHECK(n_ > 0, "cannot fit an inverse on the empty data set '", data.name(), "'");
    MIPIN_CHECK(o_.batch_size > 0, "batch size must be positive, found ", o_.batch_size);
    MIPIN_CHECK(o_.alpha >= 0, "alpha must be non-negative, found ", o_.alpha);
    batches_ = (n_ + o_.batch_size - 1) / o_.batch_size;
    for (int64_t b = 0; b < batches_; ++b) {
      if (reducer_.takes(b)) mine_.push_back(b);
    }
  }

  Inverse run() {
    const auto start = Clock::now();
    // What is fitted, the same in every process and every checkpoint.
    const nlohmann::json identity = {{"model_fingerprint", net_.fingerprint()},
                                     {"data", data_.name()},
                                     {"data_examples", data_.size()},
                                     {"examples", n_},
                                     {"options", inverse_options_json(o_)}};
    check_same_everywhere(reducer_, "model", net_.fingerprint());
    check_same_everywhere(reducer_, "data", identity["data"].dump() + " " + identity["data_examples"].dump());
    check_same_everywhere(reducer_, "fit (examples and options)", identity.dump());
    check_enough_batches(reducer_, batches_, o_.batch_size);
    MIPIN_CHECK(run_.checkpoint.empty() || reducer_.world_size() == 1,
                "checkpoints are kept by one-process fits only; this job has ", reducer_.world_size(), " processes");
    checkpoint_ = run_.checkpoint.empty() ? "" : fit_checkpoint_file(run_.checkpoint);
    identity_ = identity;

    std::optional<FitState> resumed;
    if (!checkpoint_.empty()) resumed = load_fit_checkpoint(checkpoint_, identity, net_, data_.sample_shape());
    FitState s;
    if (resumed) {
      s = std::move(*resumed);
      report_line(run_.progress, "resuming from " + checkpoint_ + ": pass " + std::to_string(s.pass) + ", " +
                                     std::to_string(s.inverse.operators().size()) + " nodes fitted");
    } else {
      s.inverse = Inverse(o_, net_.fingerprint());
      for (size_t i = net_.size(); i-- > 0;) {
        if (has_fitted_inverse(net_.layer(i), o_)) s.unfitted.push_back(i);
      }
      if (o_.fork == ForkCombine::Fitted) {
        for (size_t v = net_.size(); v-- > 0;) {
          if (net_.readers(v) >= 2) s.unfitted_forks.push_back(v);
        }
      }
    }
    s.inverse.data_name = data_.name();
    s.inverse.examples = n_;
    last_save_ = Clock::now();
    const double seconds_before = s.inverse.seconds;
    while (!s.unfitted.empty() || !s.unfitted_forks.empty()) {
      const auto pass_start = Clock::now();
      const ReduceStats reduced_before = reducer_.stats();
      if (!s.in_pass) plan_pass(s);
      Composite composite = s.inverse.composite();
      for (size_t i : s.pass_unfitted) composite.with_layer(i, stop_rule());
      for (size_t i : s.iterative) {
        if (s.inverse.operators().count(i)) continue;  // fitted before the checkpoint
        const auto layer_start = Clock::now();
        LayerFit fit = describe(i, "iterative", s.pass);
        s.inverse.set_operator(i, fit_iterative(i, with_forks(composite, s.inverse, nullptr), fit));
        fit.seconds = seconds_since(layer_start);
        finish(s.inverse, fit);
        save(s, seconds_before, start);
      }
      PassStats stats;
      stats.pass = s.pass;
      stats.nodes = s.iterative.size() + s.exact.size() + s.forks.size();
      if (!s.exact.empty() || !s.forks.empty()) stats.batches = fit_pass(s, composite, seconds_before, start);
      s.unfitted = without(s.unfitted, s.iterative, s.exact);
      s.unfitted_forks = without(s.unfitted_forks, s.forks);
      s.in_pass = false;
      s.pass += 1;
      s.equations = PassEquations{};
      stats.seconds = seconds_since(pass_start);
      stats.reduced_bytes = reducer_.stats().bytes - reduced_before.bytes;
      stats.reduce_seconds = reducer_.stats().seconds - reduced_before.seconds;
      s.inverse.passes.push_back(stats);
      save(s, seconds_before, start, /*now=*/true);
    }
    s.inverse.seconds = seconds_before + seconds_since(start);
    return std::move(s.inverse);
  }

 private:
  // The next pass's frontier: what has nothing unfitted below it.
  void plan_pass(FitState& s) const {
    const auto below = reachability(net_);
    // Whether node j, or the fork at value w, lies strictly below (nearer the
    // output than) node i, or the fork at value v. A fork sits where its
    // value is made: below its producer, above its readers.
    auto node_below_node = [&](size_t i, size_t j) { return below[i][j] != 0; };
    auto fork_below_node = [&](size_t i, size_t w) { return w > 0 && (w - 1 == i || below[i][w - 1]); };
    auto node_below_fork = [&](size_t v, size_t j) { return v == 0 || below[v - 1][j]; };
    auto fork_below_fork = [&](size_t v, size_t w) { return w != v && w > 0 && (v == 0 || below[v - 1][w - 1]); };
    s.iterative.clear();
    s.exact.clear();
    s.forks.clear();
    for (size_t i : s.unfitted) {
      bool clear = true;
      for (size_t j : s.unfitted) clear = clear && !node_below_node(i, j);
      for (size_t w : s.unfitted_forks) clear = clear && !fork_below_node(i, w);
      if (!clear) continue;
      const bool iterative = is_operator(net_.layer(i)) && choose_solver(net_.layer(i), o_) == Solver::Iterative;
      (iterative ? s.iterative : s.exact).push_back(i);
    }
    for (size_t v : s.unfitted_forks) {
      bool clear = true;
      for (size_t j : s.unfitted) clear = clear && !node_below_fork(v, j);
      for (size_t w : s.unfitted_forks) clear = clear && !fork_below_fork(v, w);
      if (clear) s.forks.push_back(v);
    }
    s.pass_unfitted = s.unfitted;
    s.pass_unfitted_forks = s.unfitted_forks;
    s.next_batch = 0;
    s.in_pass = true;
  }

  // Keeps the state in the checkpoint when one is kept and it is time (or
  // `now`: a pass ended).
  void save(FitState& s, double seconds_before, Clock::time_point start, bool now = false) {
    if (checkpoint_.empty()) return;
    if (!now && run_.checkpoint_seconds > 0 && seconds_since(last_save_) < run_.checkpoint_seconds) return;
    s.inverse.seconds = seconds_before + seconds_since(start);
    save_fit_checkpoint(checkpoint_, identity_, s);
    last_save_ = Clock::now();
  }

  LayerFit describe(size_t i, const std::string& solver, int pass) const {
    LayerFit fit;
    fit.pass = pass;
    fit.index = i;
    fit.layer = net_.layer(i).describe();
    fit.solver = solver;
    return fit;
  }

  void finish(Inverse& inverse, const LayerFit& fit) const {
    char line[512];
    std::snprintf(line, sizeof(line), "fitted layer %zu %s: R^2 %.4f (%s, %.1f s)", fit.index, fit.layer.c_str(),
                  fit.r2, fit.solver.c_str(), fit.seconds);
    report_line(run_.progress, line);
    inverse.fits().push_back(fit);
  }

  // One batch's forward record and the signals the fitted nodes deliver to
  // every value at or above `down_to` (or, fitting on activations, none).
  struct BatchSignals {
    ForwardRecord record;
    std::vector<at::Tensor> signals;
  };
  BatchSignals signals_for(const Composite& composite, size_t down_to, int64_t batch) const {
    BatchSignals b;
    const int64_t begin = batch * o_.batch_size;
    const Batch data = data_.get(begin, std::min(n_, begin + o_.batch_size));
    const at::Tensor logits = net_.forward(data.inputs, &b.record);
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

  // The exact stage of a pass: streams this process's batches from where
  // the state stands, accumulating the problems of its nodes and forks,
  // adds them across processes and solves. Returns the batches streamed.
  int64_t fit_pass(FitState& s, const Composite& base, double seconds_before, Clock::time_point start) {
    torch::NoGradGuard no_grad;
    const auto pass_start = Clock::now();
    PassEquations& eq = s.equations;
    Captured captured;
    const Composite composite = with_forks(base, s.inverse, &captured);
    size_t down_to = net_.size();
    for (size_t i : s.exact) down_to = std::min(down_to, i + 1);
    for (size_t v : s.forks) down_to = std::min(down_to, v);
    const int64_t done = std::lower_bound(mine_.begin(), mine_.end(), s.next_batch) - mine_.begin();
    ProgressStage bar(run_.progress,
                      "pass " + std::to_string(s.pass) + " (" + std::to_string(s.exact.size() + s.forks.size()) +
                          " nodes)",
                      int64_t(mine_.size()));
    bar.advance(done);
    int64_t streamed = 0;
    for (size_t k = size_t(done); k < mine_.size(); ++k) {
      captured.clear();
      const BatchSignals b = signals_for(composite, down_to, mine_[k]);
      for (size_t v : s.forks) {
        MIPIN_CHECK(o_.fit_on == FitOn::Signals, "fork weights are fitted on propagated signals only");
        const auto it = captured.find(v);
        if (it != captured.end()) eq.forks[v].add(it->second, b.record.value(v));
      }
      for (size_t i : s.exact) {
        const Layer& layer = net_.layer(i);
        const at::Tensor signal = signal_at(b, i);
        if (!is_operator(layer)) {
          eq.scales[i].add(signal, targets_of(b.record.layers[i]),
                           layer.kind() == LayerKind::Add ? unit_axis(signal.dim()) : 1);
          continue;
        }
        const at::Tensor& target = b.record.layers[i].input;
        // Bound the patch matrix: split the batch into chunks of examples.
        const int64_t rows_per_example = target.dim() == 4 ? target.size(2) * target.size(3) : 1;
        const int64_t width = design_width(layer) * groups_of(layer);
        const int64_t chunk = std::max<int64_t>(1, kMaxPatchFloats / (rows_per_example * width));
        for (int64_t c = 0; c < signal.size(0); c += chunk) {
          const int64_t e = std::min(signal.size(0), c + chunk);
          eq.operators[i].add(layer, signal.slice(0, c, e), target.slice(0, c, e));
        }
      }
      s.next_batch = mine_[k] + 1;
      ++streamed;
      bar.advance();
      save(s, seconds_before, start);
    }
    if (reducer_.world_size() > 1) {
      // Every process must have summed the same problems before adding.
      check_same_everywhere(reducer_, "sums of pass " + std::to_string(s.pass), eq.layout());
      at::Tensor packed = eq.pack();
      reducer_.sum(packed);
      eq.unpack(net_, packed);
    }
    // Each node's time: an even share of the pass, plus its own solve.
    const double share = seconds_since(pass_start) / double(s.exact.size() + s.forks.size());
    for (size_t i : s.exact) {
      MIPIN_CHECK(eq.operators.count(i) || eq.scales.count(i), "pass ", s.pass, " has no sums for node ", i,
                  ": no batch reached it (a checkpoint that resumes past its stream must hold them)");
      const auto solve_start = Clock::now();
      LayerFit fit = describe(i, "exact", s.pass);
      const at::Tensor fitted = is_operator(net_.layer(i)) ? eq.operators.at(i).solve(net_.layer(i), o_.alpha, fit)
                                                           : eq.scales.at(i).solve(o_.alpha, fit);
      s.inverse.set_operator(i, fitted);
      fit.seconds = share + seconds_since(solve_start);
      finish(s.inverse, fit);
    }
    for (size_t v : s.forks) {
      LayerFit fit = describe(v == 0 ? 0 : v - 1, "exact", s.pass);
      fit.index = v;
      fit.layer = "Fork(" + (v == 0 ? std::string("input") : "output of layer " + std::to_string(v - 1)) + ", " +
                  std::to_string(net_.readers(v)) + " readers)";
      const auto it = eq.forks.find(v);
      // A fork whose readers never sent two signals (a gate's branch gets
      // none) combines nothing: it keeps no weights.
      if (it == eq.forks.end()) continue;
      s.inverse.set_fork(v, it->second.solve(o_.alpha, fit));
      fit.seconds = share;
      finish(s.inverse, fit);
    }
    return streamed;
  }

  // Preconditioned conjugate gradient on the same ridge least-squares loss,
  // matrix-free: each iteration is one streamed pass that applies the normal
  // operator (A + lambda I) to the search direction through autograd, so no
  // patch statistics are formed and memory stays flat.
  at::Tensor fit_iterative(size_t l, const Composite& above, LayerFit& fit) {
    const Layer& layer = net_.layer(l);
    const AffineLayer& affine = *as_affine(layer);
    // The solver's state is float64: per batch the gradient is float32, but
    // the sums over batches (and over processes) and the iterations are not,
    // so that how the batches are shared barely moves the result.
    const at::Tensor zero_op = torch::zeros_like(affine.weight, torch::kDouble);
    const int64_t batches = int64_t(mine_.size());  // this process's
    ProgressStage bar(run_.progress, "layer " + std::to_string(l) + " (iterative)",
                      batches * (o_.iterative_iterations + 2));

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
      const BatchSignals b = signals_for(above, l + 1, mine_[size_t(batch_index)]);
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
        at::Tensor leaf = u.detach().to(at::kFloat).set_requires_grad(true);
        at::Tensor out = apply_inverse_operator(layer, leaf, signal, target);
        if (with_targets) out = out - target;
        const at::Tensor loss = 0.5 * out.square().sum();
        result.gradient += torch::autograd::grad({loss}, {leaf})[0].to(at::kDouble);
        if (with_targets) {
          const at::Tensor per_unit = (signal.dim() == 4 ? signal.square().sum({0, 2, 3})
                                                         : signal.square().sum(0)).to(at::kDouble);
          result.column_energy = result.column_energy.defined() ? result.column_energy + per_unit
                                                                : per_unit;
          result.trace += patch_area * signal.square().sum().item<double>();
        }
        bar.advance();
      }
      // The sums of every process.
      if (with_targets) {
        at::Tensor trace = torch::tensor({result.trace}, torch::kDouble);
        sum_each(reducer_, {&result.gradient, &result.column_energy, &trace});
        result.trace = trace.item<double>();
      } else {
        sum_each(reducer_, {&result.gradient});
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
      if (t.dim() == 4) return t.permute({0, 2, 3, 1}).reshape({-1, t.size(1)});
      return t.reshape({-1, t.size(-1)});  // a Linear's rows, per token where it is applied per token
    };
    RSquared score;
    for (int64_t b = 0; b < batches; ++b) {
      const auto [signal, target] = pairs(b);
      score.add(rows_of(target), rows_of(apply_inverse_operator(layer, u.to(at::kFloat), signal, target)));
      bar.advance();
    }
    at::Tensor packed = score.packed();
    sum_each(reducer_, {&packed});
    score = RSquared::from_packed(packed);
    fit.mse = score.mse();
    fit.r2 = score.r2();
    return u.to(at::kFloat);
  }

  const Network& net_;
  const Dataset& data_;
  InverseOptions o_;
  FitRun run_;
  Reducer alone_;
  Reducer& reducer_;
  int64_t n_ = 0;
  int64_t batches_ = 0;
  std::vector<int64_t> mine_;  // the batches this process streams
  std::string checkpoint_;
  nlohmann::json identity_;
  Clock::time_point last_save_;
};

}  // namespace

std::string fit_checkpoint_file(const std::string& directory) { return directory + "/inverse.checkpoint"; }

Inverse fit_inverse(const Network& network, const Dataset& data, const InverseOptions& options, const FitRun& run) {
  return Fitter(network, data, options, run).run();
}

}  // namespace mipin
