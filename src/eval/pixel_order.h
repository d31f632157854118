#pragma once
// The order in which the perturbation metrics (deletion, insertion, ROAD)
// take pixels away, shared so that they remove the same pixels at each step.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mipin {

// rank[n, h, w]: the position of pixel (h, w) when the channel-summed
// attribution [N, C, H, W] is sorted most relevant first.
at::Tensor relevance_rank(const at::Tensor& attribution);

// How many of `pixels` are removed after step `step` of `steps`.
inline int64_t removed_after(int64_t pixels, int64_t step, int64_t steps) {
  return (pixels * step + steps / 2) / steps;
}

// The trapezoid area over [0, 1] of a curve of equally spaced points.
double curve_area(const at::Tensor& curve);

}  // namespace mipin
