#include "mipin/report/images.h"

#include <torch/torch.h>

#include "mipin/util/error.h"

namespace mipin {
namespace {

// [C, H, W] view of a single example; 1-D inputs become a 1 x D strip.
at::Tensor as_image(const at::Tensor& x) {
  if (x.dim() == 3) return x;
  if (x.dim() == 1) return x.view({1, 1, -1});
  if (x.dim() == 2) return x.unsqueeze(0);
  MIPIN_FAIL("cannot draw a tensor of shape ", x.sizes(), " as an image");
}

at::Tensor upscale(const at::Tensor& rgb01, int64_t scale) {
  at::Tensor up = rgb01;
  if (scale > 1) up = up.repeat_interleave(scale, 1).repeat_interleave(scale, 2);
  return (up.clamp(0, 1) * 255).round().to(at::kByte).contiguous();
}

// Diverging colormap: -1 blue, 0 white, +1 red. v in [-1, 1], [H, W] -> [3, H, W].
at::Tensor diverging(const at::Tensor& v) {
  const auto f = torch::TensorOptions().dtype(at::kFloat);
  const at::Tensor blue = torch::tensor({0.13f, 0.40f, 0.67f}, f).view({3, 1, 1});
  const at::Tensor white = torch::tensor({0.97f, 0.97f, 0.97f}, f).view({3, 1, 1});
  const at::Tensor red = torch::tensor({0.70f, 0.09f, 0.17f}, f).view({3, 1, 1});
  const at::Tensor t = v.abs().unsqueeze(0);
  const at::Tensor end = torch::where(v.unsqueeze(0) >= 0, red, blue);
  return white * (1 - t) + end * t;
}

at::Tensor normalised_sum(const at::Tensor& attribution) {
  const at::Tensor a = as_image(attribution.to(at::kFloat)).sum(0);
  const double limit = a.abs().max().item<double>();
  return limit > 0 ? a / limit : a;
}

}  // namespace

int64_t display_scale(int64_t height, int64_t width) {
  const int64_t shorter = std::max<int64_t>(1, std::min(height, width));
  return std::max<int64_t>(1, std::min<int64_t>(8, 112 / shorter));
}

at::Tensor input_picture(const at::Tensor& x, int64_t scale) {
  at::Tensor img = as_image(x.to(at::kFloat));
  const double lo = img.min().item<double>(), hi = img.max().item<double>();
  img = hi > lo ? (img - lo) / (hi - lo) : torch::zeros_like(img);
  if (img.size(0) == 1) img = img.expand({3, -1, -1});
  MIPIN_CHECK(img.size(0) == 3, "cannot draw an input with ", img.size(0), " channels");
  return upscale(img, scale);
}

at::Tensor heatmap_picture(const at::Tensor& attribution, int64_t scale) {
  return upscale(diverging(normalised_sum(attribution)), scale);
}

at::Tensor overlay_picture(const at::Tensor& x, const at::Tensor& attribution, int64_t scale) {
  const at::Tensor input = input_picture(x, 1).to(at::kFloat) / 255;
  const at::Tensor v = normalised_sum(attribution);
  const at::Tensor colour = diverging(v.sign());
  // Opacity 0 up to the overlay threshold, rising smoothly to its maximum:
  // a background of small attribution leaves the input as it is.
  const at::Tensor t = ((v.abs() - kOverlayThreshold) / (kOverlayFull - kOverlayThreshold)).clamp(0, 1);
  const at::Tensor alpha = (kOverlayOpacity * t * t * (3 - 2 * t)).unsqueeze(0);
  return upscale(input * (1 - alpha) + colour * alpha, scale);
}

at::Tensor grid_picture(const std::vector<std::vector<at::Tensor>>& rows, int64_t gap) {
  MIPIN_CHECK(!rows.empty() && !rows[0].empty(), "a grid needs at least one picture");
  const int64_t h = rows[0][0].size(1), w = rows[0][0].size(2);
  size_t columns = 0;
  for (const auto& r : rows) columns = std::max(columns, r.size());
  const int64_t H = int64_t(rows.size()) * (h + gap) + gap;
  const int64_t W = int64_t(columns) * (w + gap) + gap;
  at::Tensor grid = torch::full({3, H, W}, 255, torch::kByte);
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[r].size(); ++c) {
      const at::Tensor& p = rows[r][c];
      MIPIN_CHECK(p.size(1) == h && p.size(2) == w, "grid pictures must share one size");
      const int64_t y = gap + int64_t(r) * (h + gap), x = gap + int64_t(c) * (w + gap);
      grid.slice(1, y, y + h).slice(2, x, x + w).copy_(p);
    }
  }
  return grid;
}

}  // namespace mipin
