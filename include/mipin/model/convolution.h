#pragma once
// Convolutions through the faster of LibTorch's two CPU kernels for the shape
// at hand. LibTorch sends one small image (under 20,480 input values, kernel
// 3x3 or smaller) to its im2col kernel, which on layers with many channels
// takes about 1.4 times as long as oneDNN's; there these call oneDNN
// directly, and leave LibTorch's own choice everywhere else.
#include <ATen/core/Tensor.h>

#include "mipin/model/layers.h"

namespace mipin {

// conv2d(x, weight, bias) with the layer's stride, padding, dilation and
// groups; weight has the layer's weight shape (its own or another, as LRP's
// positive part or a fitted operator). bias may be undefined.
at::Tensor convolve(const Conv2d& layer, const at::Tensor& x, const at::Tensor& weight,
                    const at::Tensor& bias);

// The transpose of x -> convolve(x, weight) applied to s, as a convolution of
// s with the weight flipped in space and with its channel axes swapped,
// which is exact for stride-1 ungrouped layers. Returns an undefined tensor
// where that does not apply or oneDNN would not be faster; the caller then
// takes the general path.
at::Tensor transpose_by_flipped_convolution(const Conv2d& layer, const at::Tensor& weight,
                                            const at::Tensor& signal, at::IntArrayRef input_sizes);

// weight [out, in, kh, kw] -> [in, out, kh, kw], reversed along kh and kw.
at::Tensor flip_and_swap_channels(const at::Tensor& weight);

}  // namespace mipin
