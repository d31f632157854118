#pragma once
// Max pooling with a 2x2 window and stride 2 (no padding or dilation, floor
// mode): the pooling of nearly every CNN, in loops that are several times
// faster on CPU than LibTorch's general NCHW kernel. Results, indices
// included, are LibTorch's: an index is the winner's position in its H*W
// plane, the first maximum in row-major order wins, NaN wins.
#include <ATen/core/Tensor.h>

#include <utility>

namespace mipin {

// x: float32 [N, C, H, W]. Returns the pooled values and, when asked, the
// int64 indices (undefined otherwise).
std::pair<at::Tensor, at::Tensor> max_pool_2x2(const at::Tensor& x, bool with_indices);

// The gradient of max_pool_2x2: each pooled value goes back to its winner,
// the rest of the [N, C, H, W] input is zero.
at::Tensor max_unpool_2x2(const at::Tensor& signal, const at::Tensor& indices, at::IntArrayRef input_sizes);

}  // namespace mipin
