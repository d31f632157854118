#include "mipin/eval/map_metrics.h"

#include <torch/torch.h>

#include "eval/pixel_order.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

// Average ranks along dim 1 of [N, D] (ties share the mean of their ranks).
at::Tensor ranks(const at::Tensor& v) {
  const at::Tensor sorted_idx = std::get<1>(v.sort(1));
  const at::Tensor sorted = v.gather(1, sorted_idx);
  const int64_t n = v.size(0), d = v.size(1);
  at::Tensor r = torch::empty({n, d}, torch::kDouble);
  auto s = sorted.to(torch::kDouble).contiguous();
  auto idx = sorted_idx.contiguous();
  auto sa = s.accessor<double, 2>();
  auto ia = idx.accessor<int64_t, 2>();
  auto ra = r.accessor<double, 2>();
  for (int64_t row = 0; row < n; ++row) {
    int64_t i = 0;
    while (i < d) {
      int64_t j = i;
      while (j + 1 < d && sa[row][j + 1] == sa[row][i]) ++j;
      const double average = 0.5 * double(i + j);
      for (int64_t k = i; k <= j; ++k) ra[row][ia[row][k]] = average;
      i = j + 1;
    }
  }
  return r;
}

at::Tensor channel_sum(const at::Tensor& a) {
  MIPIN_CHECK(a.dim() == 4, "expected maps [N, C, H, W], found ", a.sizes());
  return a.sum(1);
}

}  // namespace

at::Tensor spearman(const at::Tensor& a, const at::Tensor& b) {
  MIPIN_CHECK(a.sizes() == b.sizes(), "spearman: shapes differ, ", a.sizes(), " vs ", b.sizes());
  const at::Tensor ra = ranks(a.flatten(1)), rb = ranks(b.flatten(1));
  const at::Tensor ca = ra - ra.mean(1, true), cb = rb - rb.mean(1, true);
  const at::Tensor denom = (ca.square().sum(1) * cb.square().sum(1)).sqrt();
  return torch::where(denom > 0, (ca * cb).sum(1) / denom.clamp_min(1e-300), torch::zeros_like(denom))
      .to(torch::kFloat);
}

at::Tensor ssim(const at::Tensor& a, const at::Tensor& b) {
  MIPIN_CHECK(a.sizes() == b.sizes(), "ssim: shapes differ, ", a.sizes(), " vs ", b.sizes());
  auto unit = [](const at::Tensor& m) {
    const at::Tensor flat = m.flatten(1).to(torch::kDouble);
    const at::Tensor lo = std::get<0>(flat.min(1)).view({-1, 1, 1});
    const at::Tensor hi = std::get<0>(flat.max(1)).view({-1, 1, 1});
    return ((m.to(torch::kDouble) - lo) / (hi - lo).clamp_min(1e-12)).unsqueeze(1);
  };
  const at::Tensor x = unit(channel_sum(a)), y = unit(channel_sum(b));
  const int64_t k = std::min<int64_t>({7, x.size(2), x.size(3)});
  auto mean = [k](const at::Tensor& t) { return torch::avg_pool2d(t, {k, k}, {1, 1}); };
  const at::Tensor mx = mean(x), my = mean(y);
  const at::Tensor vx = mean(x * x) - mx * mx, vy = mean(y * y) - my * my, cxy = mean(x * y) - mx * my;
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  const at::Tensor map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
  return map.flatten(1).mean(1).to(torch::kFloat);
}

PerturbationCurves perturbation_curves(const Network& network, const at::Tensor& x,
                                       const at::Tensor& targets, const at::Tensor& attribution,
                                       const at::Tensor& fill, int64_t steps) {
  torch::NoGradGuard no_grad;
  MIPIN_CHECK(steps >= 1, "perturbation curves need at least one step");
  const int64_t n = x.size(0), pixels = x.size(2) * x.size(3);
  const at::Tensor rank = relevance_rank(attribution).view({n, 1, x.size(2), x.size(3)});
  const at::Tensor filled = fill.expand_as(x);
  std::vector<double> del, ins;
  for (int64_t s = 0; s <= steps; ++s) {
    const at::Tensor chosen = (rank < removed_after(pixels, s, steps)).expand_as(x);
    del.push_back(mean_target_probability(network, torch::where(chosen, filled, x), targets));
    ins.push_back(mean_target_probability(network, torch::where(chosen, x, filled), targets));
  }
  PerturbationCurves c;
  c.deletion = torch::tensor(del, torch::kDouble);
  c.insertion = torch::tensor(ins, torch::kDouble);
  c.deletion_area = curve_area(c.deletion);
  c.insertion_area = curve_area(c.insertion);
  return c;
}

at::Tensor relevance_rank(const at::Tensor& attribution) {
  const at::Tensor relevance = channel_sum(attribution);  // [N, H, W]
  const int64_t n = relevance.size(0), pixels = relevance.size(1) * relevance.size(2);
  const at::Tensor order = std::get<1>(relevance.flatten(1).sort(1, /*descending=*/true));
  return torch::empty_like(order)
      .scatter_(1, order, torch::arange(pixels, torch::kLong).expand({n, pixels}).contiguous())
      .view(relevance.sizes());
}

double curve_area(const at::Tensor& curve) {
  return ((curve.slice(0, 1) + curve.slice(0, 0, -1)) / 2).mean().item<double>();
}

double mean_target_probability(const Network& network, const at::Tensor& x, const at::Tensor& targets) {
  return torch::softmax(network.forward(x), 1).gather(1, targets.view({-1, 1})).mean().item<double>();
}

at::Tensor gaussian_blur(const at::Tensor& x, int64_t kernel, double sigma) {
  MIPIN_CHECK(x.dim() == 4 && kernel >= 1 && kernel % 2 == 1 && sigma > 0,
              "gaussian_blur: expected images [N, C, H, W], an odd kernel and sigma > 0, found ", x.sizes(),
              ", ", kernel, " and ", sigma);
  const at::Tensor offsets = torch::arange(kernel, torch::kDouble) - double(kernel - 1) / 2;
  at::Tensor g = torch::exp(-offsets.pow(2) / (2 * sigma * sigma));
  g = (g / g.sum()).to(x.scalar_type());
  const int64_t c = x.size(1), pad = kernel / 2;
  namespace F = torch::nn::functional;
  const at::Tensor padded = F::pad(x, F::PadFuncOptions({pad, pad, pad, pad}).mode(torch::kReplicate));
  const std::vector<int64_t> one{1}, none{0};
  const at::Tensor rows = torch::conv2d(padded, g.view({1, 1, kernel, 1}).expand({c, 1, kernel, 1}), {}, one, none, one, c);
  return torch::conv2d(rows, g.view({1, 1, 1, kernel}).expand({c, 1, 1, kernel}), {}, one, none, one, c);
}

Localization localization(const at::Tensor& attribution, const at::Tensor& boxes) {
  const at::Tensor m = channel_sum(attribution);  // [N, H, W]
  const int64_t n = m.size(0), h = m.size(1), w = m.size(2);
  MIPIN_CHECK(boxes.sizes() == (at::IntArrayRef{n, 4}), "expected boxes [", n, ", 4], found ", boxes.sizes());
  const at::Tensor rows = torch::arange(h, torch::kLong).view({1, h, 1});
  const at::Tensor cols = torch::arange(w, torch::kLong).view({1, 1, w});
  const auto b = boxes.to(torch::kLong);
  const at::Tensor inside = (rows >= b.select(1, 0).view({n, 1, 1})) & (rows < b.select(1, 2).view({n, 1, 1})) &
                            (cols >= b.select(1, 1).view({n, 1, 1})) & (cols < b.select(1, 3).view({n, 1, 1}));
  const at::Tensor argmax = m.flatten(1).argmax(1);
  Localization l;
  l.hits = inside.flatten(1).gather(1, argmax.unsqueeze(1)).squeeze(1).to(torch::kFloat);
  const at::Tensor positive = m.clamp_min(0);
  const at::Tensor total = positive.flatten(1).sum(1);
  l.mass_in_box = torch::where(total > 0, (positive * inside).flatten(1).sum(1) / total.clamp_min(1e-30),
                               torch::zeros_like(total));
  return l;
}

double mean_cosine(const at::Tensor& attribution, const at::Tensor& signal) {
  return torch::cosine_similarity(attribution.flatten(1), signal.flatten(1), 1).mean().item<double>();
}

}  // namespace mipin
