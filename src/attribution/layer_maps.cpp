#include "mipin/attribution/layer_maps.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <vector>

#include "mipin/model/convolution.h"
#include "mipin/model/max_pool_2x2.h"
#include "mipin/util/error.h"

namespace mipin::maps {
namespace {

// LibTorch's CPU conv_transpose2d (its im2col kernel) works through a batch
// one image after another on one thread; split the batch across threads
// (each part then runs single-threaded, as nested parallelism does).
at::Tensor conv_transpose2d_batch_parallel(const at::Tensor& signal, const at::Tensor& weight, const Conv2d& conv,
                                           at::IntArrayRef output_padding) {
  auto run = [&](const at::Tensor& s) {
    return torch::conv_transpose2d(s, weight, {}, conv.stride, conv.padding, output_padding, conv.groups,
                                   conv.dilation);
  };
  const int64_t n = signal.size(0);
  if (n < 2 || at::get_num_threads() < 2 || at::in_parallel_region() || signal.requires_grad() ||
      weight.requires_grad()) {
    return run(signal);
  }
  const at::Tensor first = run(signal.slice(0, 0, 1));
  std::vector<int64_t> sizes = first.sizes().vec();
  sizes[0] = n;
  at::Tensor out = at::empty(sizes, first.options());
  out.slice(0, 0, 1).copy_(first);
  at::parallel_for(1, n, 1, [&](int64_t begin, int64_t end) {
    out.slice(0, begin, end).copy_(run(signal.slice(0, begin, end)));
  });
  return out;
}

}  // namespace

at::Tensor linear_transpose(const at::Tensor& weight, const at::Tensor& signal) {
  // One example: a matrix-vector product (about half the cost of BLAS's
  // matrix path).
  if (signal.dim() == 2 && signal.size(0) == 1) return weight.t().mv(signal[0]).unsqueeze(0);
  return signal.matmul(weight);
}

at::Tensor conv_transpose(const Conv2d& conv, const at::Tensor& weight, const at::Tensor& signal,
                          const at::Tensor& input, TransposeKernels kernels) {
  if (input.defined()) {
    at::Tensor fast = convolve_transposed(conv, weight, signal, input.sizes(), kernels);
    if (fast.defined()) return fast;
  }
  // Two equal computations whose speed differs: LibTorch's conv_transpose2d
  // on CPU takes a slow path (1.5 to 3 times a forward convolution on layers
  // with many channels) but is the fastest where the layer has very few input
  // channels (an image's first layer); convolution_backward, what autograd
  // runs, keeps to forward speed elsewhere, strides and groups included.
  if (conv.in_channels() >= 8 && input.defined() && input.size(0) == signal.size(0)) {
    return std::get<0>(at::convolution_backward(signal, input, weight, c10::nullopt, conv.stride, conv.padding,
                                                conv.dilation, false, at::IntArrayRef{0, 0}, conv.groups,
                                                {true, false, false}));
  }
  // The forward map floors partial windows away; output_padding restores the
  // rows and columns that no window reached so the result matches the input.
  std::vector<int64_t> output_padding(2);
  for (int a = 0; a < 2; ++a) {
    const int64_t k = weight.size(2 + a);
    const int64_t reached = (signal.size(2 + a) - 1) * conv.stride[a] - 2 * conv.padding[a] +
                            conv.dilation[a] * (k - 1) + 1;
    output_padding[a] = input.size(2 + a) - reached;
  }
  if (output_padding[0] < std::max(conv.stride[0], conv.dilation[0]) &&
      output_padding[1] < std::max(conv.stride[1], conv.dilation[1])) {
    return conv_transpose2d_batch_parallel(signal, weight, conv, output_padding);
  }
  // Rows beyond the reach of any window (e.g. stride 2 with a large remainder)
  // receive nothing: pad explicitly.
  at::Tensor out = conv_transpose2d_batch_parallel(signal, weight, conv, at::IntArrayRef{0, 0});
  return torch::constant_pad_nd(out, {0, input.size(3) - out.size(3), 0, input.size(2) - out.size(2)});
}

at::Tensor unpool_max(const MaxPool2d& pool, const LayerRecord& record, const at::Tensor& signal) {
  MIPIN_CHECK(record.switches.defined(),
              "max pooling switches were not recorded: run the forward pass with a record");
  if (pool.is_2x2() && signal.scalar_type() == at::kFloat && record.input.dim() == 4) {
    return max_unpool_2x2(signal, record.switches, record.input.sizes());
  }
  // The gradient of max pooling is exactly this scatter (overlapping windows
  // add up), in LibTorch's parallel kernel.
  return at::max_pool2d_with_indices_backward(signal.contiguous(), record.input, pool.kernel, pool.stride,
                                              pool.padding, pool.dilation, pool.ceil_mode,
                                              record.switches.contiguous());
}

at::Tensor avg_pool_transpose(const AvgPool2d& pool, const LayerRecord& record,
                              const at::Tensor& signal) {
  return at::avg_pool2d_backward(signal.contiguous(), record.input, pool.kernel, pool.stride,
                                 pool.padding, pool.ceil_mode, pool.count_include_pad,
                                 c10::nullopt);
}

at::Tensor adaptive_avg_pool_transpose(const LayerRecord& record, const at::Tensor& signal) {
  return at::_adaptive_avg_pool2d_backward(signal.contiguous(), record.input);
}

at::Tensor avg_pool_spread(const AvgPool2d& pool, const LayerRecord& record,
                           const at::Tensor& signal) {
  // The transpose hands each cell s / divisor. Scaling s by each window's own
  // divisor first undoes that division. Without count_include_pad the divisor
  // is the number of real (unpadded) cells, which pooling a ones image counts.
  const at::Tensor ones = torch::ones_like(record.input.select(0, 0).unsqueeze(0));
  const int64_t area = pool.kernel[0] * pool.kernel[1];
  at::Tensor divisor = pool.count_include_pad
                           ? torch::full_like(signal.select(0, 0).unsqueeze(0), double(area))
                           : torch::avg_pool2d(ones, pool.kernel, pool.stride, pool.padding,
                                               pool.ceil_mode, true) *
                                 double(area);
  return avg_pool_transpose(pool, record, signal * divisor);
}

at::Tensor adaptive_avg_pool_spread(const LayerRecord& record, const at::Tensor& signal) {
  // Window sizes of adaptive pooling vary per output cell: count them.
  const at::Tensor& input = record.input;
  const int64_t out_h = signal.size(2), out_w = signal.size(3);
  const int64_t in_h = input.size(2), in_w = input.size(3);
  auto extent = [](int64_t i, int64_t out, int64_t in) {
    const int64_t start = (i * in) / out;
    const int64_t end = ((i + 1) * in + out - 1) / out;
    return end - start;
  };
  at::Tensor area = torch::empty({1, 1, out_h, out_w}, signal.options());
  auto a = area.accessor<float, 4>();
  for (int64_t i = 0; i < out_h; ++i) {
    for (int64_t j = 0; j < out_w; ++j) {
      a[0][0][i][j] = static_cast<float>(extent(i, out_h, in_h) * extent(j, out_w, in_w));
    }
  }
  return adaptive_avg_pool_transpose(record, signal * area);
}

at::Tensor unflatten(const LayerRecord& record, const at::Tensor& signal) {
  return signal.reshape(record.input.sizes());
}

at::Tensor per_channel(const at::Tensor& values, int64_t rank) {
  std::vector<int64_t> shape(static_cast<size_t>(rank), 1);
  shape[1] = -1;
  return values.view(shape);
}

at::Tensor batchnorm_transpose(const BatchNorm2d& bn, const at::Tensor& signal) {
  const at::Tensor scale = bn.weight / torch::sqrt(bn.running_var + bn.eps);
  return signal * per_channel(scale, signal.dim());
}

Signals add_copy(const LayerRecord& record, const at::Tensor& signal) {
  return Signals(std::max<size_t>(record.inputs.size(), 1), signal);
}

Signals concat_split(const Concat& cat, const LayerRecord& record, const at::Tensor& signal) {
  std::vector<int64_t> sizes;
  const int64_t axis = cat.axis(signal.dim());
  for (const auto& input : record.inputs) sizes.push_back(input.size(axis));
  Signals out;
  for (auto& part : signal.split_with_sizes(sizes, axis)) out.push_back(part);
  return out;
}

namespace {
// s * a summed to the gate's shape (its broadcast axes).
at::Tensor gate_share(const at::Tensor& signal, const at::Tensor& value, const at::Tensor& gate) {
  const at::Tensor product = signal * value;
  return product.sizes() == gate.sizes() ? product : product.sum_to_size(gate.sizes());
}
}  // namespace

Signals mul_transpose(const Mul& mul, const LayerRecord& record, const at::Tensor& signal) {
  const size_t g = mul.gate_index(record);
  const at::Tensor& gate = record.inputs[g];
  const at::Tensor& value = record.inputs[1 - g];
  Signals out(2);
  out[1 - g] = signal * gate;
  out[g] = gate_share(signal, value, gate);
  return out;
}

Signals mul_gated_only(const Mul& mul, const LayerRecord& record, const at::Tensor& signal) {
  const size_t g = mul.gate_index(record);
  Signals out(2);
  out[1 - g] = signal * record.inputs[g];
  return out;
}

}  // namespace mipin::maps
