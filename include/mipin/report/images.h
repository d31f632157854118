#pragma once
// Pictures of attributions: RGB uint8 tensors [3, H, W], ready for write_png.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace mipin {

// Integer upscaling so that small inputs (28x28) are large enough to look at.
int64_t display_scale(int64_t height, int64_t width);

// The input as a picture: each image min-max scaled; grey inputs stay grey.
// x: [C, H, W] (C = 1 or 3) or [D] (drawn as a 1 x D strip).
at::Tensor input_picture(const at::Tensor& x, int64_t scale);

// The attribution summed over channels, in a diverging blue-white-red map
// centred at zero with a symmetric range (max |value|).
at::Tensor heatmap_picture(const at::Tensor& attribution, int64_t scale);

// The heatmap's colours laid over the input (as input_picture draws it):
// where |value| is below kOverlayThreshold of the largest the input shows
// as it is; above, the colour's opacity rises smoothly to kOverlayOpacity
// at kOverlayFull.
constexpr double kOverlayThreshold = 0.05, kOverlayFull = 0.6, kOverlayOpacity = 0.85;
at::Tensor overlay_picture(const at::Tensor& x, const at::Tensor& attribution, int64_t scale);

// Pictures of equal size in rows, separated by `gap` white pixels.
at::Tensor grid_picture(const std::vector<std::vector<at::Tensor>>& rows, int64_t gap = 4);

}  // namespace mipin
