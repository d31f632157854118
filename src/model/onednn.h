#pragma once
// Convolutions on oneDNN's own API, with what LibTorch rebuilds on every call
// kept between calls: the compiled primitive for each shape, and each weight
// reordered once into the blocked layout the primitive reads. Transposed
// convolutions, and forward ones whose output decides nothing, take oneDNN's
// Winograd algorithm where it pays, which needs about half the
// multiplications of a direct 3x3 one (see winograd_first in onednn.cpp).
//
// Private to the library; model/convolution.h decides when to come here.
#include <ATen/core/Tensor.h>

namespace mipin::onednn {

struct Geometry {
  at::IntArrayRef stride, padding, dilation;  // two values each
};

// conv2d(x, weight, bias) for float NCHW x, OIHW weight, ungrouped; bias may
// be undefined. Undefined where oneDNN has no primitive for the shape.
// winograd_allowed: the output decides nothing (no ReLU mask, no max-pooling
// winner), so Winograd's position-dependent rounding is harmless.
at::Tensor convolve(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, Geometry g,
                    bool winograd_allowed = false);

// The transpose of x -> conv2d(x, weight) (its input gradient) applied to
// signal, with the result sized input_sizes. Undefined where oneDNN has no
// primitive for the shape.
at::Tensor convolve_transposed(const at::Tensor& signal, const at::Tensor& weight, at::IntArrayRef input_sizes,
                               Geometry g);

// Packed weights are found again by the weight tensor's identity and version
// counter: an in-place tensor operation on a weight is seen, a write through
// its raw data pointer is not. A weight's packed copy goes when the weight's
// last reference does (at the next call).
size_t packed_weights_cached();

}  // namespace mipin::onednn
