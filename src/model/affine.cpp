// The affine view of Linear and Conv2d: their maps with another weight and
// the transposes of those maps, which every method that swaps the weight
// shares.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <vector>

#include "mipin/model/convolution.h"
#include "mipin/model/layers.h"

namespace mipin {
namespace {

// LibTorch's CPU conv_transpose2d (its im2col kernel) works through a batch
// one image after another on one thread, and through a channels-last signal
// (what convolutions write) at half its speed: split the batch across
// threads (each part then runs single-threaded, as nested parallelism does)
// and hand it the plain layout.
at::Tensor conv_transpose2d_batch_parallel(const at::Tensor& signal, const at::Tensor& weight, const Conv2d& conv,
                                           at::IntArrayRef output_padding) {
  auto run = [&](const at::Tensor& s) {
    return torch::conv_transpose2d(s, weight, {}, conv.stride, conv.padding, output_padding, conv.groups,
                                   conv.dilation);
  };
  const at::Tensor plain = signal.contiguous();
  const int64_t n = plain.size(0);
  if (n < 2 || at::get_num_threads() < 2 || at::in_parallel_region() || plain.dim() != 4 ||
      plain.requires_grad() || weight.requires_grad()) {
    return run(plain);
  }
  std::vector<int64_t> sizes{n, weight.size(1) * conv.groups, 0, 0};
  for (int a = 0; a < 2; ++a) {
    sizes[2 + a] = (plain.size(2 + a) - 1) * conv.stride[a] - 2 * conv.padding[a] +
                   conv.dilation[a] * (weight.size(2 + a) - 1) + 1 + output_padding[a];
  }
  at::Tensor out = at::empty(sizes, plain.options());
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    out.slice(0, begin, end).copy_(run(plain.slice(0, begin, end)));
  });
  return out;
}

}  // namespace

const AffineLayer* as_affine(const Layer& layer) { return dynamic_cast<const AffineLayer*>(&layer); }
AffineLayer* as_affine(Layer& layer) { return dynamic_cast<AffineLayer*>(&layer); }
std::vector<LayerKind> affine_kinds() { return {LayerKind::Linear, LayerKind::Conv2d}; }

at::Tensor AffineLayer::per_unit(const at::Tensor& values) const {
  std::vector<int64_t> shape(weight.dim(), 1);
  shape[0] = -1;
  return values.view(shape);
}

std::vector<NamedTensor> AffineLayer::tensors() const { return {{"weight", weight, true}, {"bias", bias, true}}; }

// ---- Linear ---------------------------------------------------------------
at::Tensor Linear::map(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const {
  return torch::linear(x, w, b);
}

at::Tensor Linear::transposed_map(const at::Tensor& w, const at::Tensor& signal, const at::Tensor&,
                                  TransposeKernels) const {
  // One example: a matrix-vector product (about half the cost of BLAS's
  // matrix path).
  if (signal.dim() == 2 && signal.size(0) == 1) return w.t().mv(signal[0]).unsqueeze(0);
  return signal.matmul(w);
}

// A row per example, or per example and position when applied per token.
at::Tensor Linear::patch_rows(const at::Tensor& input) const { return input.reshape({-1, 1, input.size(-1)}); }

// ---- Conv2d ---------------------------------------------------------------
at::Tensor Conv2d::map(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const {
  return convolve(*this, x, w, b);
}

at::Tensor Conv2d::transposed_map(const at::Tensor& w, const at::Tensor& signal, const at::Tensor& input,
                                  TransposeKernels kernels) const {
  if (input.defined()) {
    at::Tensor fast = convolve_transposed(*this, w, signal, input.sizes(), kernels);
    if (fast.defined()) return fast;
  }
  // Two equal computations whose speed differs: LibTorch's conv_transpose2d
  // on CPU takes a slow path (1.5 to 3 times a forward convolution on layers
  // with many channels) but is the fastest where the layer has very few input
  // channels (an image's first layer); convolution_backward, what autograd
  // runs, keeps to forward speed elsewhere, strides and groups included.
  if (in_channels() >= 8 && input.defined() && input.size(0) == signal.size(0)) {
    return std::get<0>(at::convolution_backward(signal, input, w, c10::nullopt, stride, padding,
                                                dilation, false, at::IntArrayRef{0, 0}, groups,
                                                {true, false, false}));
  }
  // The forward map floors partial windows away; output_padding restores the
  // rows and columns that no window reached so the result matches the input.
  std::vector<int64_t> output_padding(2);
  for (int a = 0; a < 2; ++a) {
    const int64_t k = w.size(2 + a);
    const int64_t reached = (signal.size(2 + a) - 1) * stride[a] - 2 * padding[a] +
                            dilation[a] * (k - 1) + 1;
    output_padding[a] = input.size(2 + a) - reached;
  }
  if (output_padding[0] < std::max(stride[0], dilation[0]) &&
      output_padding[1] < std::max(stride[1], dilation[1])) {
    return conv_transpose2d_batch_parallel(signal, w, *this, output_padding);
  }
  // Rows beyond the reach of any window (e.g. stride 2 with a large remainder)
  // receive nothing: pad explicitly.
  at::Tensor out = conv_transpose2d_batch_parallel(signal, w, *this, at::IntArrayRef{0, 0});
  return torch::constant_pad_nd(out, {0, input.size(3) - out.size(3), 0, input.size(2) - out.size(2)});
}

at::Tensor Conv2d::patch_rows(const at::Tensor& input) const {
  const at::Tensor patches = torch::im2col(input, {weight.size(2), weight.size(3)}, dilation, padding, stride);
  return patches.transpose(1, 2).reshape({-1, groups, patches.size(1) / groups});
}

}  // namespace mipin
