#pragma once
// The linear maps that several rule sets share: transposes (gradients) of
// the forward maps of layers that are not affine (an affine layer's are
// its own: AffineLayer in model/layers.h), and the unpooling/reshaping
// steps that move a signal from a layer's output back to its input geometry.
#include <ATen/core/Tensor.h>

#include "mipin/attribution/rule.h"
#include "mipin/model/convolution.h"
#include "mipin/model/layers.h"

namespace mipin::maps {

// Scatters s to the recorded argmax positions (overlapping windows add up).
at::Tensor unpool_max(const MaxPool2d& pool, const LayerRecord& record, const at::Tensor& signal);
// Transpose of average pooling (the gradient): each cell gets s / window size.
at::Tensor avg_pool_transpose(const AvgPool2d& pool, const LayerRecord& record,
                              const at::Tensor& signal);
at::Tensor adaptive_avg_pool_transpose(const LayerRecord& record, const at::Tensor& signal);
// Pseudo-inverse reading of pooling: every cell of a window gets the pooled value.
at::Tensor avg_pool_spread(const AvgPool2d& pool, const LayerRecord& record,
                           const at::Tensor& signal);
at::Tensor adaptive_avg_pool_spread(const LayerRecord& record, const at::Tensor& signal);
// A flatten's or reshape's transpose: back to the recorded input's shape.
at::Tensor unflatten(const LayerRecord& record, const at::Tensor& signal);
// Transpose of an (eval-mode) batch norm: per-channel scale.
at::Tensor batchnorm_transpose(const BatchNorm2d& bn, const at::Tensor& signal);
// A per-channel vector shaped to broadcast over a [N, C, ...] tensor of `rank` axes.
at::Tensor per_channel(const at::Tensor& values, int64_t rank);

// Graph nodes. An add's transpose copies the signal into every input.
Signals add_copy(const LayerRecord& record, const at::Tensor& signal);
// A concatenation's transpose: the signal's slices along its axis, one per input.
Signals concat_split(const Concat& cat, const LayerRecord& record, const at::Tensor& signal);
// The gradient of v = a * g: s * g to a, and s * a summed over the axes g
// broadcasts along to g.
Signals mul_transpose(const Mul& mul, const LayerRecord& record, const at::Tensor& signal);
// A gated value's share alone: s * g to a, nothing to the gate's branch.
Signals mul_gated_only(const Mul& mul, const LayerRecord& record, const at::Tensor& signal);

}  // namespace mipin::maps
