#pragma once
// What the method tests share: running a method by name, and the sums and
// logits its conservation laws compare.
#include <torch/torch.h>

#include <string>

#include "mipin/attribution/registry.h"
#include "mipin/model/network.h"
#include "mipin/torchscript/model_file.h"
#include "support/test_support.h"

namespace mipin::test {

inline Network load(const std::string& file) { return load_torchscript(test_model(file)).network; }

inline at::Tensor attribute(const std::string& method, const Network& net, const at::Tensor& x,
                            const at::Tensor& targets, MethodSettings settings = {}) {
  return make_method(method, settings)->attribute(net, x, targets);
}

// f(x)[target] per example.
inline at::Tensor target_logits(const Network& net, const at::Tensor& x, const at::Tensor& targets) {
  torch::NoGradGuard no_grad;
  return net.forward(x).gather(1, targets.unsqueeze(1)).squeeze(1);
}

inline double max_relative(const at::Tensor& got, const at::Tensor& expected) {
  return ((got - expected).abs() / expected.abs().clamp_min(1e-6)).max().item<double>();
}

inline at::Tensor per_example_sum(const at::Tensor& a) { return a.flatten(1).sum(1); }

}  // namespace mipin::test
