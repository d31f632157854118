#include "mipin/model/convolution.h"

#include <torch/torch.h>

#include "model/onednn.h"

namespace mipin {
namespace {

// Where oneDNN's kernels with kept primitives and packed weights are at
// least as fast as LibTorch's (2 threads, AVX-512). Forward, an image's
// first layer included (one 28x28 image, 1 to 32 channels: 8 against 12
// us; VGG16's first layer at batch 8: equal). Back to an image of 1 or 3
// channels, LibTorch's conv_transpose2d is faster, by 2 to 4 times.
bool onednn_pays(const at::Tensor& weight, bool transposed) {
  return weight.size(0) >= 8 && (!transposed || weight.size(1) >= 8);
}

bool onednn_applies(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t groups,
                    bool transposed) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat &&
         (!bias.defined() || bias.scalar_type() == at::kFloat) && x.dim() == 4 && weight.dim() == 4 && groups == 1 &&
         onednn_pays(weight, transposed) &&
         // Training never takes this path: autograd stays on LibTorch's own.
         !(at::GradMode::is_enabled() &&
           (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad())));
}

onednn::Geometry geometry(const Conv2d& layer) { return {layer.stride, layer.padding, layer.dilation}; }

thread_local bool module_convolutions = false;

}  // namespace

ModuleConvolutions::ModuleConvolutions() : previous_(module_convolutions) { module_convolutions = true; }
ModuleConvolutions::~ModuleConvolutions() { module_convolutions = previous_; }

at::Tensor convolve(const Conv2d& layer, const at::Tensor& x, const at::Tensor& weight,
                    const at::Tensor& bias) {
  if (!module_convolutions && onednn_applies(x, weight, bias, layer.groups, false)) {
    at::Tensor y = onednn::convolve(x, weight, bias, geometry(layer));
    if (y.defined()) return y;
  }
  return torch::conv2d(x, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups);
}

at::Tensor convolve_transposed(const Conv2d& layer, const at::Tensor& weight, const at::Tensor& signal,
                               at::IntArrayRef input_sizes, TransposeKernels kernels) {
  if (!onednn_applies(signal, weight, at::Tensor(), layer.groups, true)) {
    // Back to 5 to 7 channels from a strided layer (LRP's terms stacked on
    // an image's first layer): by phases (onednn.h). At fewer, LibTorch's
    // transpose is as fast or faster (resnet50's first layer at batch 8: 29
    // to 34 ms against 54 to 64 at 3 channels, equal at 4, 59 to 64 against
    // 68 to 74 at 5).
    if (weight.size(1) >= 5 && weight.size(1) < 8 &&
        onednn_applies(signal, weight, at::Tensor(), layer.groups, false)) {
      return onednn::convolve_transposed_by_phases(signal, weight, input_sizes, geometry(layer));
    }
    return {};
  }
  return onednn::convolve_transposed(signal, weight, input_sizes, geometry(layer),
                                     kernels == TransposeKernels::fastest);
}

}  // namespace mipin
