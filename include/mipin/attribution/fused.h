#pragma once
// Element-wise steps of the rules done in one pass over memory instead of a
// chain of tensor operations (each of which would read and write the whole
// activation): on large activations the chain, not the convolutions,
// dominated the cost of a backward pass.
#include <ATen/core/Tensor.h>

namespace mipin::fused {

// s where x > 0, else 0: the ReLU gate (the gradient of relu at x).
at::Tensor relu_gate(const at::Tensor& s, const at::Tensor& x);

// r / (z + eps * sign(z)), with sign(0) = +1: LRP's stabilised division.
at::Tensor stabilised_divide(const at::Tensor& r, const at::Tensor& z, double epsilon);

// DeepLIFT's rescale rule at a ReLU: m * (relu(z) - relu(z0)) / (z - z0)
// where |z - z0| > tiny, else m * [z > 0] (the gradient). z0, the reference's
// pre-activation, has batch size 1 (shared by all examples) or z's.
at::Tensor rescale_relu(const at::Tensor& m, const at::Tensor& z, const at::Tensor& z0, double tiny);

// m * dy / dx where |dx| > tiny, else 0 (all of one shape): DeepLIFT's
// multiplier through a max-pooling window.
at::Tensor masked_ratio(const at::Tensor& m, const at::Tensor& dy, const at::Tensor& dx, double tiny);

}  // namespace mipin::fused
