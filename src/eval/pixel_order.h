#pragma once
// What the perturbation metrics (deletion, insertion, ROAD) share: the order
// in which they take pixels away, so that they remove the same pixels at each
// step, and how a curve is read.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "mipin/model/network.h"

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

// The mean softmax probability of each example's target class: what the
// perturbation curves plot.
double mean_target_probability(const Network& network, const at::Tensor& x, const at::Tensor& targets);

}  // namespace mipin
