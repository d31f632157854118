#pragma once
// PyTorch's default initialisation, shared by the zoo's models.
#include <torch/torch.h>

#include <cmath>
#include <vector>

namespace mipin {

// A Linear or Conv2d's default: kaiming_uniform(a=sqrt(5)) for weights,
// which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for
// biases. Drawn from LibTorch's global generator.
inline at::Tensor default_uniform(std::vector<int64_t> shape, int64_t fan_in) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return (torch::rand(shape) * 2 - 1) * bound;
}

}  // namespace mipin
