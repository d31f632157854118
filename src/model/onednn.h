#pragma once
// Convolutions on oneDNN's own API, with what LibTorch rebuilds on every call
// kept between calls: the compiled primitive for each shape, and each weight
// reordered once into the blocked layout the primitive reads. Results are
// channels-last (NHWC in memory, NCHW in shape), which oneDNN's direct
// kernels read and write as it is: a network's activations pass from one
// convolution to the next with no reorder. Transposed convolutions may take
// oneDNN's Winograd algorithm, F(4x4, 3x3), which needs a quarter of the
// multiplications of a direct 3x3 one (see winograd_first in onednn.cpp for
// where it pays and why forward ones never take it), and stride-1 ones
// otherwise run as forward convolutions with the kernel flipped.
//
// Private to the library; model/convolution.h decides when to come here.
// Thread-safe: primitives run with a scratchpad of each call's own.
#include <ATen/core/Tensor.h>

namespace mipin::onednn {

struct Geometry {
  at::IntArrayRef stride, padding, dilation;  // two values each
};

// conv2d(x, weight, bias) for float x (NCHW or channels-last), OIHW weight, ungrouped; bias may
// be undefined. Direct kernels only. Undefined where oneDNN has no
// primitive for the shape or the geometry is not a valid one.
at::Tensor convolve(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, Geometry g);

// The transpose of x -> conv2d(x, weight) (its input gradient) applied to
// signal, with the result sized input_sizes; Winograd's kernels where they
// pay if winograd_allowed. Undefined where oneDNN has no primitive for the
// shape or the sizes do not belong together.
at::Tensor convolve_transposed(const at::Tensor& signal, const at::Tensor& weight, at::IntArrayRef input_sizes,
                               Geometry g, bool winograd_allowed);

// The same transpose for a strided, undilated convolution from fewer than 8
// channels (an image's first layer, or LRP's terms stacked on it), as one
// forward convolution per phase of the strided grid (stride^2 of them),
// each with the kernel's taps that reach its positions, interleaved.
// oneDNN's backward-data kernels are slow at so few channels and LibTorch's
// transpose spends much of its time scattering columns back (resnet50's
// first layer at batch 8, back to 6 channels: 52 to 70 ms against 68 to
// 100); its cost hardly depends on the channels (padded to 8), LibTorch's
// grows with them. Undefined where it does not apply.
at::Tensor convolve_transposed_by_phases(const at::Tensor& signal, const at::Tensor& weight,
                                        at::IntArrayRef input_sizes, Geometry g);

// Packed weights are found again by the weight tensor's identity and version
// counter: an in-place tensor operation on a weight is seen; a write that
// bypasses the version counter (through data_ptr(), .data() or set_data())
// is not. A dead weight's packed copy is dropped at the next look-up.
size_t packed_weights_cached();

}  // namespace mipin::onednn
