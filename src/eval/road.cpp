#include "mipin/eval/road.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <vector>

#include "eval/pixel_order.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

// The neighbour weights of ROAD's imputation; the centre is the pixel itself.
at::Tensor neighbour_stencil() {
  const double d = 1.0 / 12, e = 1.0 / 6;
  return torch::tensor({d, e, d, e, 0.0, e, d, e, d}, torch::kDouble).view({1, 1, 3, 3});
}

// Per system (dim 0) sums over the pixels of a [B, 1, H, W] field.
at::Tensor per_system(const at::Tensor& v) { return v.flatten(1).sum(1).view({-1, 1, 1, 1}); }

}  // namespace

at::Tensor noisy_linear_imputation(const at::Tensor& x, const at::Tensor& removed, const at::Tensor& fallback,
                                   double noise, uint64_t seed) {
  torch::NoGradGuard no_grad;
  MIPIN_CHECK(x.dim() == 4, "noisy linear imputation: expected images [N, C, H, W], found ", x.sizes());
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const at::Tensor mask = removed.dim() == 3 ? removed.unsqueeze(1) : removed;
  MIPIN_CHECK(mask.sizes() == (at::IntArrayRef{n, 1, h, w}), "noisy linear imputation: expected a mask [", n,
              ", ", h, ", ", w, "] for images ", x.sizes(), ", found ", removed.sizes());
  if (!mask.any().item<bool>()) return x.clone();
  // One system per image and channel, in double precision: the imputed
  // values are meant to be exact, the noise is added on purpose afterwards.
  const at::Tensor m = mask.expand({n, c, h, w}).reshape({n * c, 1, h, w}).to(torch::kDouble);
  const at::Tensor kept = 1 - m;
  const at::Tensor image = x.reshape({n * c, 1, h, w}).to(torch::kDouble);
  const at::Tensor stencil = neighbour_stencil();
  auto neighbours = [&](const at::Tensor& v) { return torch::conv2d(v, stencil, {}, 1, 1); };
  // The weight of each pixel's neighbours inside the image.
  const at::Tensor weight_sum = neighbours(torch::ones({1, 1, h, w}, torch::kDouble));
  // A u = m (D u - K (m u)) on the removed pixels: symmetric, and positive
  // definite on every region that touches a kept pixel.
  auto apply = [&](const at::Tensor& u) { return m * (weight_sum * u - neighbours(m * u)); };
  const at::Tensor b = m * neighbours(kept * image);
  // Start from the fallback: conjugate gradients leave a start's component
  // along a region's constant (the null space of a region with no kept
  // neighbour) as it is, so such a region keeps the fallback's mean.
  const at::Tensor start = fallback.to(torch::kDouble).expand({n, c, h, w}).reshape({n * c, 1, h, w});
  at::Tensor u = m * start;
  at::Tensor r = b - apply(u);
  at::Tensor p = r.clone();
  at::Tensor rr = per_system(r * r);
  const at::Tensor stop = (per_system(b * b) * 1e-24).clamp_min(1e-20);
  // Conjugate gradients take at most as many steps as there are unknowns;
  // on these smooth systems far fewer (about the image's side, measured).
  const int64_t most_steps = std::min<int64_t>(h * w, 20 * (h + w) + 100);
  for (int64_t step = 0; step < most_steps; ++step) {
    if ((rr <= stop).all().item<bool>()) break;
    const at::Tensor ap = apply(p);
    const at::Tensor pap = per_system(p * ap);
    const at::Tensor alpha = torch::where(pap > 0, rr / pap.clamp_min(1e-300), torch::zeros_like(pap));
    u = u + alpha * p;
    r = r - alpha * ap;
    const at::Tensor next = per_system(r * r);
    const at::Tensor beta = torch::where(rr > 0, next / rr.clamp_min(1e-300), torch::zeros_like(rr));
    p = r + beta * p;
    rr = next;
  }
  at::Tensor imputed = u.view({n, c, h, w}).to(x.scalar_type());
  if (noise > 0) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    imputed = imputed + at::randn({n, c, h, w}, gen, x.options()) * noise;
  }
  return torch::where(mask.expand({n, c, h, w}), imputed, x);
}

RoadCurves road_curves(const Network& network, const at::Tensor& x, const at::Tensor& targets,
                       const at::Tensor& attribution, const at::Tensor& fallback, int64_t steps, double noise,
                       uint64_t seed) {
  torch::NoGradGuard no_grad;
  MIPIN_CHECK(steps >= 1, "ROAD needs at least one step");
  const int64_t n = x.size(0), pixels = x.size(2) * x.size(3);
  const at::Tensor rank = relevance_rank(attribution).view({n, 1, x.size(2), x.size(3)});
  std::vector<double> morf, lerf;
  for (int64_t s = 0; s <= steps; ++s) {
    const int64_t count = removed_after(pixels, s, steps);
    // Each step's noise from its own seed: the two orders see the same noise.
    const uint64_t step_seed = seed + uint64_t(s);
    for (auto [curve, removed] : {std::make_pair(&morf, rank < count), std::make_pair(&lerf, rank >= pixels - count)}) {
      curve->push_back(
          mean_target_probability(network, noisy_linear_imputation(x, removed, fallback, noise, step_seed), targets));
    }
  }
  RoadCurves c;
  c.most_relevant_first = torch::tensor(morf, torch::kDouble);
  c.least_relevant_first = torch::tensor(lerf, torch::kDouble);
  c.most_relevant_first_area = curve_area(c.most_relevant_first);
  c.least_relevant_first_area = curve_area(c.least_relevant_first);
  return c;
}

}  // namespace mipin
