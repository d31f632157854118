#pragma once
// Convolutions through the fastest CPU kernels available for the shape at
// hand. Ungrouped float layers run on oneDNN with their compiled primitives
// and packed weights kept between calls; LibTorch's own kernels take the
// rest (the map back to an image of few channels, groups, other types) and
// everything autograd must see.
#include <ATen/core/Tensor.h>

#include "mipin/model/layers.h"

namespace mipin {

// conv2d(x, weight, bias) with the layer's stride, padding, dilation and
// groups; weight has the layer's weight shape (its own or another, as LRP's
// positive part or a fitted operator). bias may be undefined. Direct kernels
// only: forward outputs decide ReLU masks and max-pooling winners, and
// equal windows (a flat region of an image) must come out exactly equal,
// at any batch size.
at::Tensor convolve(const Conv2d& layer, const at::Tensor& x, const at::Tensor& weight,
                    const at::Tensor& bias);

// While one is alive on this thread, convolve() runs LibTorch's conv2d,
// the kernels a TorchScript module's forward pass runs: a module form's
// forward pass (Network::as_module) is then the module's to the bit.
class ModuleConvolutions {
 public:
  ModuleConvolutions();
  ~ModuleConvolutions();
  ModuleConvolutions(const ModuleConvolutions&) = delete;
  ModuleConvolutions& operator=(const ModuleConvolutions&) = delete;

 private:
  bool previous_;
};

// The transpose of x -> convolve(x, weight) applied to signal, sized
// input_sizes (the input gradient of the convolution). Returns an undefined
// tensor where the fast kernels do not apply; the caller then takes the
// general path.
at::Tensor convolve_transposed(const Conv2d& layer, const at::Tensor& weight, const at::Tensor& signal,
                               at::IntArrayRef input_sizes, TransposeKernels kernels);

}  // namespace mipin
