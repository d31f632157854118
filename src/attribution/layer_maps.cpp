#include "mipin/attribution/layer_maps.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <vector>

#include "mipin/model/convolution.h"
#include "mipin/model/max_pool_2x2.h"
#include "mipin/util/error.h"
#include "util/memory_layout.h"

namespace mipin::maps {

at::Tensor unpool_max(const MaxPool2d& pool, const LayerRecord& record, const at::Tensor& signal) {
  MIPIN_CHECK(record.switches.defined(),
              "max pooling switches were not recorded: run the forward pass with a record");
  if (pool.is_2x2() && signal.scalar_type() == at::kFloat && record.input.dim() == 4) {
    return max_unpool_2x2(signal, record.switches, record.input.sizes());
  }
  // The gradient of max pooling is exactly this scatter (overlapping windows
  // add up), in LibTorch's parallel kernel. The signal goes in the input's
  // layout (channels-last behind a convolution), which the kernel works in.
  const auto layout = layout_of(record.input);
  return at::max_pool2d_with_indices_backward(signal.contiguous(layout), record.input, pool.kernel, pool.stride,
                                              pool.padding, pool.dilation, pool.ceil_mode,
                                              record.switches.contiguous(layout));
}

at::Tensor avg_pool_transpose(const AvgPool2d& pool, const LayerRecord& record,
                              const at::Tensor& signal) {
  return at::avg_pool2d_backward(signal.contiguous(layout_of(record.input)), record.input, pool.kernel,
                                 pool.stride, pool.padding, pool.ceil_mode, pool.count_include_pad, c10::nullopt);
}

at::Tensor adaptive_avg_pool_transpose(const LayerRecord& record, const at::Tensor& signal) {
  return at::_adaptive_avg_pool2d_backward(signal.contiguous(layout_of(record.input)), record.input);
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
