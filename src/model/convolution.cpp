#include "mipin/model/convolution.h"

#include <torch/torch.h>

#include <vector>

namespace mipin {
namespace {

// Where LibTorch (1.13, ConvUtils.h use_mkldnn) picks its im2col kernel for a
// float CPU convolution with groups 1 and a kernel of at most 3x3: a single
// image of under 20,480 values.
bool libtorch_takes_im2col(int64_t batch, int64_t input_values, const at::Tensor& weight) {
  return batch == 1 && input_values <= 20480 && weight.size(2) <= 3 && weight.size(3) <= 3;
}

// The direct kernels pay once both sides have a few channels; with one or
// three (an image's first layer, or a map back to it) im2col stays faster.
bool direct_kernels_pay(const at::Tensor& weight) { return weight.size(0) >= 8 && weight.size(1) >= 8; }

bool direct_kernels_apply(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                          int64_t groups) {
  return at::hasMKLDNN() && x.device().is_cpu() && x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat &&
         (!bias.defined() || bias.scalar_type() == at::kFloat) && x.dim() == 4 && groups == 1 &&
         // Training never takes these paths: autograd stays on LibTorch's own.
         !(at::GradMode::is_enabled() &&
           (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad())));
}

}  // namespace

at::Tensor convolve(const Conv2d& layer, const at::Tensor& x, const at::Tensor& weight,
                    const at::Tensor& bias) {
  if (direct_kernels_apply(x, weight, bias, layer.groups) && libtorch_takes_im2col(x.size(0), x.numel(), weight) &&
      direct_kernels_pay(weight)) {
    return at::mkldnn_convolution(x.contiguous(), weight.contiguous(),
                                  bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt, layer.padding,
                                  layer.stride, layer.dilation, 1);
  }
  return torch::conv2d(x, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups);
}

at::Tensor flip_and_swap_channels(const at::Tensor& weight) {
  const at::Tensor w = weight.contiguous();
  const int64_t out = w.size(0), in = w.size(1), kh = w.size(2), kw = w.size(3);
  at::Tensor flipped = at::empty({in, out, kh, kw}, w.options());
  // LibTorch's flip goes through its general strided iterator and costs as
  // much as a small convolution; this is one pass over the weight.
  const float* src = w.data_ptr<float>();
  float* dst = flipped.data_ptr<float>();
  const int64_t area = kh * kw;
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t i = 0; i < in; ++i) {
      const float* s = src + (o * in + i) * area;
      float* d = dst + (i * out + o) * area;
      for (int64_t k = 0; k < area; ++k) d[k] = s[area - 1 - k];
    }
  }
  return flipped;
}

at::Tensor transpose_by_flipped_convolution(const Conv2d& layer, const at::Tensor& weight,
                                            const at::Tensor& signal, at::IntArrayRef input_sizes) {
  if (!direct_kernels_apply(signal, weight, at::Tensor(), layer.groups) || layer.stride[0] != 1 ||
      layer.stride[1] != 1 || input_sizes.size() != 4 || weight.size(0) != signal.size(1)) {
    return {};
  }
  // The input gradient's kernel is LibTorch's im2col one exactly where its
  // forward kernel is (the same rule applied to the layer's input).
  const int64_t input_values = input_sizes[0] * input_sizes[1] * input_sizes[2] * input_sizes[3];
  if (!libtorch_takes_im2col(signal.size(0), input_values, weight) || !direct_kernels_pay(weight)) return {};
  // Stride 1: the transpose pads by dilation * (k - 1) - padding on each side.
  std::vector<int64_t> padding(2);
  for (int a = 0; a < 2; ++a) {
    padding[a] = layer.dilation[a] * (weight.size(2 + a) - 1) - layer.padding[a];
    if (padding[a] < 0) return {};
    if (signal.size(2 + a) + 2 * padding[a] - layer.dilation[a] * (weight.size(2 + a) - 1) !=
        input_sizes[2 + a]) {
      return {};
    }
  }
  return at::mkldnn_convolution(signal.contiguous(), flip_and_swap_channels(weight), c10::nullopt, padding,
                                layer.stride, layer.dilation, 1);
}

}  // namespace mipin
