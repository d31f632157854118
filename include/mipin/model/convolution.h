#pragma once
// Convolutions through the fastest CPU kernels available for the shape at
// hand. Ungrouped float layers run on oneDNN with their compiled primitives
// and packed weights kept between calls (and Winograd's algorithm where it
// pays); LibTorch's own kernels take the rest (the map back to an image of
// few channels, groups, other types) and everything autograd must see.
#include <ATen/core/Tensor.h>

#include "mipin/model/layers.h"

namespace mipin {

// What the output of a forward convolution is used for. Outputs that
// decide something (ReLU masks, max-pooling winners) need equal windows, as
// in a flat region of an image, to come out exactly equal, which only the
// direct kernels give; outputs that are only divided by (LRP's
// denominators) may take Winograd's faster kernels, whose rounding differs
// from one position of a tile to the next.
enum class ConvolutionUse { decisions, values_only };

// conv2d(x, weight, bias) with the layer's stride, padding, dilation and
// groups; weight has the layer's weight shape (its own or another, as LRP's
// positive part or a fitted operator). bias may be undefined.
at::Tensor convolve(const Conv2d& layer, const at::Tensor& x, const at::Tensor& weight,
                    const at::Tensor& bias, ConvolutionUse use = ConvolutionUse::decisions);

// The transpose of x -> convolve(x, weight) applied to signal, sized
// input_sizes (the input gradient of the convolution). Returns an undefined
// tensor where the fast kernels do not apply; the caller then takes the
// general path.
at::Tensor convolve_transposed(const Conv2d& layer, const at::Tensor& weight, const at::Tensor& signal,
                               at::IntArrayRef input_sizes);

}  // namespace mipin
