// The least-squares problems of a MIP-IN pass (see normal_equations.h). Each
// accumulates a batch's own products in float32 and adds them in float64.
#include "inverse/normal_equations.h"

#include <torch/torch.h>

#include <algorithm>

#include "mipin/model/layers.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

using Phase = OperatorEquations::Phase;
using Problem = OperatorEquations::Problem;

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
// The patches are of the flipped kernel: forward tap k is patch column
// K - 1 - k, and a phase's taps are listed as patch columns (the same set
// only where the taps are symmetric, as for kernel 3, stride 2).
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
        const int64_t kernel = conv.weight.size(2 + a);
        for (int64_t j = 0; j < kernel; ++j) {
          if (((kernel - 1 - j) * conv.dilation[a]) % s == r[a]) phase.taps[a].push_back(j);
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
  if (layer.kind() == LayerKind::Linear) {  // a row per example (and token, applied per token)
    return {signal.reshape({-1, 1, signal.size(-1)}), target.reshape({-1, 1, target.size(-1)})};
  }
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

void add_problem(Problem& e, const at::Tensor& p, const at::Tensor& x) {
  const auto dbl = torch::TensorOptions().dtype(at::kDouble);
  if (!e.a.defined()) {
    e.a = torch::zeros({p.size(1), p.size(2), p.size(2)}, dbl);
    e.b = torch::zeros({x.size(1), x.size(2), p.size(2)}, dbl);
  }
  // A batch's own products in float32, accumulated in double.
  const at::Tensor pg = p.transpose(0, 1), xg = x.transpose(0, 1);  // [groups, rows, .]
  if (p.size(2) > 0) {
    e.a += pg.transpose(1, 2).bmm(pg).to(at::kDouble);
    e.b += xg.transpose(1, 2).bmm(pg).to(at::kDouble);
  }
  e.spread.add_targets(x);
}

// The ridge solution M = B (A + lambda I)^-1 (lambda per group), and its
// squared error.
at::Tensor solve_problem(const Problem& e, const at::Tensor& lambda, const std::string& what, double& sse) {
  const int64_t width = e.a.size(1);
  const double sum_xx = e.spread.sum_of_squares();
  if (width == 0) {  // a phase no tap reaches: its targets stay unexplained
    sse = sum_xx;
    return e.b;
  }
  const at::Tensor reg = e.a + lambda.view({-1, 1, 1}) * torch::eye(width, e.a.options());
  const auto [chol, info] = torch::linalg_cholesky_ex(reg);
  MIPIN_CHECK(info.eq(0).all().item<bool>(), what, ": its normal equations are singular: fit with a positive alpha");
  const at::Tensor m = torch::cholesky_solve(e.b.transpose(1, 2), chol).transpose(1, 2);
  const double cross = (m * e.b).sum().item<double>();
  const double quad = (m.bmm(e.a) * m).sum().item<double>();
  sse = std::max(0.0, sum_xx - 2 * cross + quad);
  return m;
}

const at::Tensor& sum_named(const Sums& in, const std::string& name) {
  const auto it = in.find(name);
  MIPIN_CHECK(it != in.end(), "the saved sums lack '", name, "'");
  return it->second;
}

void put(Sums& out, const std::string& name, const at::Tensor& t) {
  if (t.defined()) out[name] = t;
}
at::Tensor take(const Sums& in, const std::string& name) {
  const auto it = in.find(name);
  return it == in.end() ? at::Tensor() : it->second;
}

// "operator/00000012/": zero-padded, so that names sort as indices do.
std::string node_prefix(const char* kind, size_t index) {
  char digits[24];
  std::snprintf(digits, sizeof(digits), "%08zu", index);
  return std::string(kind) + "/" + digits + "/";
}

size_t index_in(const std::string& name, size_t kind_length) {
  return size_t(std::stoull(name.substr(kind_length + 1, 8)));
}

}  // namespace

int64_t design_width(const Layer& layer) {
  const AffineLayer& affine = *as_affine(layer);
  return affine.units() / affine.weight_groups() * affine.taps();
}

void OperatorEquations::add(const Layer& layer, const at::Tensor& signal, const at::Tensor& target) {
  if (phases_.empty()) {
    phases_ = phases_of(layer);
    problems_.resize(phases_.size());
  }
  const at::Tensor patches = layer.kind() == LayerKind::Conv2d
                                 ? transposed_patches(static_cast<const Conv2d&>(layer), signal, target.sizes())
                                 : at::Tensor();
  for (size_t r = 0; r < phases_.size(); ++r) {
    const auto [p, x] = design(layer, signal, patches, target, phases_[r]);
    add_problem(problems_[r], p, x);
  }
}

// Ridge least squares with lambda = alpha * trace(A) / dim(A) of the whole
// problem (every phase together), so that phases change nothing but the cost.
at::Tensor OperatorEquations::solve(const Layer& layer, double alpha, LayerFit& fit) const {
  const int64_t width = design_width(layer);
  at::Tensor trace = problems_[0].a.diagonal(0, 1, 2).sum(1);
  for (size_t r = 1; r < problems_.size(); ++r) trace = trace + problems_[r].a.diagonal(0, 1, 2).sum(1);
  // A group that no signal reached (A = 0, B = 0) gets U = 0: any positive
  // lambda gives it.
  const at::Tensor lambda = torch::where(trace > 0, alpha * trace / double(width), torch::ones_like(trace));
  // Per target feature (channel) means, over every row of every phase.
  RSquared total;
  std::vector<at::Tensor> maps;
  for (const auto& e : problems_) {
    double sse = 0;
    maps.push_back(solve_problem(e, lambda, fit.layer, sse));
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
  for (size_t r = 0; r < phases_.size(); ++r) {
    const auto& taps = phases_[r].taps;
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

void OperatorEquations::collect(const std::string& prefix, Sums& out) const {
  for (size_t r = 0; r < problems_.size(); ++r) {
    const std::string p = prefix + "phase" + std::to_string(r) + "/";
    put(out, p + "a", problems_[r].a);
    put(out, p + "b", problems_[r].b);
    out[p + "spread"] = problems_[r].spread.packed();
  }
}

void OperatorEquations::restore(const Layer& layer, const std::string& prefix, const Sums& in) {
  phases_ = phases_of(layer);
  problems_.assign(phases_.size(), Problem{});
  for (size_t r = 0; r < problems_.size(); ++r) {
    const std::string p = prefix + "phase" + std::to_string(r) + "/";
    problems_[r].a = take(in, p + "a");
    problems_[r].b = take(in, p + "b");
    problems_[r].spread = RSquared::from_packed(sum_named(in, p + "spread"));
  }
}

namespace {
at::Tensor per_channel_sum(const at::Tensor& t, int64_t axis) {
  return t.dim() == 2 ? t.sum(0) : t.transpose(0, axis).flatten(1).sum(1);
}
at::Tensor channels_last(const at::Tensor& t, int64_t axis) {
  return t.dim() == 2 ? t.to(at::kDouble) : t.transpose(0, axis).flatten(1).t().to(at::kDouble);  // [rows, C]
}
void accumulate(at::Tensor& acc, const at::Tensor& v) { acc = acc.defined() ? acc + v : v; }
}  // namespace

void ChannelScales::add(const at::Tensor& signal, const std::vector<at::Tensor>& targets, int64_t axis) {
  std::vector<at::Tensor> xs_k, sx_k;
  double xx = 0;
  const at::Tensor s = signal.to(at::kDouble);
  for (const auto& t : targets) {
    const at::Tensor x = t.to(at::kDouble);
    xs_k.push_back(per_channel_sum(x * s, axis));
    sx_k.push_back(per_channel_sum(x, axis));
    xx += x.square().sum().item<double>();
  }
  accumulate(xs_, torch::stack(xs_k));
  accumulate(ss_, per_channel_sum(s * s, axis));
  spread_.add_sums(torch::stack(sx_k), xx, signal.numel() / signal.size(axis));
}

// lambda = alpha * the mean of sum(s s) over channels.
at::Tensor ChannelScales::solve(double alpha, LayerFit& fit) const {
  const double energy = ss_.mean().item<double>();
  // No signal at all: scales 0 (any positive lambda gives them).
  const double lambda = energy > 0 ? alpha * energy : 1.0;
  const at::Tensor d = torch::where(ss_ + lambda > 0, xs_ / (ss_ + lambda), torch::zeros_like(xs_));  // [inputs, C]
  RSquared fitted = spread_;
  fitted.add_squared_error(spread_.sum_of_squares() + (d * d * ss_ - 2 * d * xs_).sum().item<double>());
  fit.mse = fitted.mse();
  fit.r2 = fitted.r2();
  return d.to(at::kFloat);
}

void ChannelScales::collect(const std::string& prefix, Sums& out) const {
  put(out, prefix + "xs", xs_);
  put(out, prefix + "ss", ss_);
  out[prefix + "spread"] = spread_.packed();
}

void ChannelScales::restore(const std::string& prefix, const Sums& in) {
  xs_ = take(in, prefix + "xs");
  ss_ = take(in, prefix + "ss");
  spread_ = RSquared::from_packed(sum_named(in, prefix + "spread"));
}

// Per channel, (G + lambda I) w = b with G_kj = sum s_k s_j, b_k = sum x s_k
// and lambda = alpha * trace(G) / k.
void ForkWeights::add(const std::vector<at::Tensor>& parts, const at::Tensor& value) {
  std::vector<at::Tensor> cols;
  const int64_t axis = unit_axis(value.dim());
  for (const auto& p : parts) cols.push_back(channels_last(p, axis));
  const at::Tensor s = torch::stack(cols, 2);       // [rows, C, k]
  const at::Tensor x = channels_last(value, axis);  // [rows, C]
  const at::Tensor sc = s.transpose(0, 1);     // [C, rows, k]
  accumulate(gram_, sc.transpose(1, 2).bmm(sc));
  accumulate(xs_, (sc * x.t().unsqueeze(2)).sum(1));
  spread_.add_targets(x);
}

at::Tensor ForkWeights::solve(double alpha, LayerFit& fit) const {
  const int64_t k = gram_.size(1);
  const at::Tensor trace = gram_.diagonal(0, 1, 2).sum(1);
  const at::Tensor lambda = torch::where(trace > 0, alpha * trace / double(k), torch::ones_like(trace));
  const at::Tensor reg = gram_ + lambda.view({-1, 1, 1}) * torch::eye(k, gram_.options());
  const at::Tensor w = torch::linalg_solve(reg, xs_.unsqueeze(2)).squeeze(2);  // [C, k]
  const double cross = (w * xs_).sum().item<double>();
  const double quad = (w.unsqueeze(1).bmm(gram_).squeeze(1) * w).sum().item<double>();
  RSquared fitted = spread_;
  fitted.add_squared_error(std::max(0.0, spread_.sum_of_squares() - 2 * cross + quad));
  fit.mse = fitted.mse();
  fit.r2 = fitted.r2();
  return w.t().to(at::kFloat).contiguous();  // [k, C]
}

void ForkWeights::collect(const std::string& prefix, Sums& out) const {
  put(out, prefix + "gram", gram_);
  put(out, prefix + "xs", xs_);
  out[prefix + "spread"] = spread_.packed();
}

void ForkWeights::restore(const std::string& prefix, const Sums& in) {
  gram_ = take(in, prefix + "gram");
  xs_ = take(in, prefix + "xs");
  spread_ = RSquared::from_packed(sum_named(in, prefix + "spread"));
}

Sums PassEquations::sums() const {
  Sums out;
  for (const auto& [i, e] : operators) e.collect(node_prefix("operator", i), out);
  for (const auto& [i, e] : scales) e.collect(node_prefix("scales", i), out);
  for (const auto& [v, e] : forks) e.collect(node_prefix("fork", v), out);
  return out;
}

void PassEquations::restore(const Network& network, const Sums& sums) {
  operators.clear();
  scales.clear();
  forks.clear();
  for (const auto& [name, t] : sums) {
    const std::string kind = name.substr(0, name.find('/'));
    const size_t index = index_in(name, kind.size());
    const std::string prefix = name.substr(0, kind.size() + 10);
    if (kind == "operator" && !operators.count(index)) {
      MIPIN_CHECK(index < network.size(), "saved sums for node ", index, " of a network of ", network.size());
      operators[index].restore(network.layer(index), prefix, sums);
    } else if (kind == "scales" && !scales.count(index)) {
      scales[index].restore(prefix, sums);
    } else if (kind == "fork" && !forks.count(index)) {
      forks[index].restore(prefix, sums);
    }
  }
}

at::Tensor PassEquations::pack() const {
  std::vector<at::Tensor> parts;
  for (const auto& [name, t] : sums()) parts.push_back(t.to(at::kDouble).flatten());
  return parts.empty() ? torch::zeros({0}, torch::kDouble) : torch::cat(parts);
}

void PassEquations::unpack(const Network& network, const at::Tensor& packed) {
  Sums shaped = sums();
  int64_t offset = 0;
  for (auto& [name, t] : shaped) {
    MIPIN_CHECK(offset + t.numel() <= packed.numel(), "packed sums too short for '", name, "'");
    t = packed.slice(0, offset, offset + t.numel()).view(t.sizes()).clone();
    offset += t.numel();
  }
  MIPIN_CHECK(offset == packed.numel(), "packed sums hold ", packed.numel(), " values, the layout ", offset);
  restore(network, shaped);
}

std::string PassEquations::layout() const {
  std::string out;
  for (const auto& [name, t] : sums()) {
    out += name;
    for (const int64_t d : t.sizes()) out += " " + std::to_string(d);
    out += ";";
  }
  return out;
}

}  // namespace mipin
