#pragma once
// Steps of the rules done in one pass over memory instead of a chain of
// tensor operations (each of which would read and write the whole
// activation): element-wise gates and ratios, and unpooling fused with what
// follows it. On large activations the chain, not the convolutions,
// dominated the cost of a backward pass.
#include <ATen/core/Tensor.h>

#include <vector>

namespace mipin::fused {

// s where x > 0, else 0: the ReLU gate (the gradient of relu at x).
at::Tensor relu_gate(const at::Tensor& s, const at::Tensor& x);

// What a ReLU's backward rule does with the signal s at its output, x being
// its input: the gradient's gate (s where x > 0), guided backprop's gate of
// the rectified signal (s where s > 0 and x > 0), deconvnet's rectification
// (s where s > 0).
enum class ReluBackward { gate, gate_and_rectify, rectify };

// s through a ReLU's backward rule, in one pass.
at::Tensor relu_backward(const at::Tensor& s, const at::Tensor& x, ReluBackward relu);

// r / (z + eps * sign(z)), with sign(0) = +1: LRP's stabilised division.
at::Tensor stabilised_divide(const at::Tensor& r, const at::Tensor& z, double epsilon);

// a_k * stabilised_divide(r, z, epsilon) for each part a_k: LRP's split of
// relevance at a sum z = sum_k a_k (a residual add). Two float32 parts of
// z's shape take one pass that writes both shares; anything else takes the
// tensor operations, with the same result.
std::vector<at::Tensor> proportional_split(const at::Tensor& r, const at::Tensor& z,
                                           const std::vector<at::Tensor>& parts, double epsilon);

// DeepLIFT's rescale rule at a ReLU: m * (relu(z) - relu(z0)) / (z - z0)
// where |z - z0| > tiny, else m * [z > 0] (the gradient). z0, the reference's
// pre-activation, has batch size 1 (shared by all examples) or z's.
at::Tensor rescale_relu(const at::Tensor& m, const at::Tensor& z, const at::Tensor& z0, double tiny);

// An activation's transfer factor applied to s: s * (y - f0) / z where
// |z| > 1e-6, else s * d0 (f0 = f(0), d0 = f'(0), its limit), with z the
// activation's input and y = f(z) its output.
at::Tensor transfer(const at::Tensor& s, const at::Tensor& z, const at::Tensor& y, double f0, double d0);

// DeepLIFT's rescale rule at any activation: m * (y - y0) / (z - z0) where
// |z - z0| > tiny, else `slope`, which holds m * f'(z). z0 and y0, the
// reference's record, have batch size 1 (shared by all examples) or z's.
at::Tensor rescale(const at::Tensor& m, const at::Tensor& z, const at::Tensor& y, const at::Tensor& z0,
                   const at::Tensor& y0, const at::Tensor& slope, double tiny);

// Max unpooling followed by the backward rule of the ReLU below it
// (unpool_max, then relu_backward with x), one plane at a time while it is
// in cache: each cell's signal goes to its winner's position (int64
// positions within each H*W plane of x, overlapping windows adding up). The
// gate alone is applied at the winners only. x: the ReLU's input,
// [N, C, H, W], which is also the pooling's input shape.
at::Tensor unpool_max_relu(const at::Tensor& signal, const at::Tensor& switches, const at::Tensor& x,
                           ReluBackward relu);

// DeepLIFT's rescale rule through max pooling, in one pass over the pooled
// cells. For each cell with multiplier m, output y and the reference's y0:
// the input that won at x gets m * (y - y0) / (y - x0[winner]) where that
// denominator exceeds tiny; otherwise the input that won at the reference
// gets m * (y - y0) / (x[winner0] - y0) where that one does. Everything else
// is 0; overlapping windows add up. x, y, switches: the pooling's record at
// the input ([N, C, H, W], [N, C, h, w], int64 positions within each H*W
// plane); x0, y0, switches0: the reference's record, batch size 1.
at::Tensor deeplift_unpool_max(const at::Tensor& m, const at::Tensor& x, const at::Tensor& y,
                               const at::Tensor& switches, const at::Tensor& x0, const at::Tensor& y0,
                               const at::Tensor& switches0, double tiny);

}  // namespace mipin::fused
