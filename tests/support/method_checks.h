#pragma once
// What the method tests share: running a method by name, and the sums and
// logits its conservation laws compare.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "mipin/attribution/registry.h"
#include "mipin/model/canonize.h"
#include "mipin/model/layers.h"
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

// The same network without biases: the setting where LRP conserves
// relevance. BatchNorm is folded first, so that its shift becomes a bias.
inline Network without_biases(Network net) {
  fold_batchnorm(net);
  for (size_t i = 0; i < net.size(); ++i) {
    const LayerKind kind = net.layer(i).kind();
    if (kind == LayerKind::Linear) static_cast<Linear&>(net.layer(i)).bias = at::Tensor();
    if (kind == LayerKind::Conv2d) static_cast<Conv2d&>(net.layer(i)).bias = at::Tensor();
    if (kind == LayerKind::BatchNorm2d) {
      auto& bn = static_cast<BatchNorm2d&>(net.layer(i));
      // An unfolded BatchNorm keeps its scale and loses its shift (new
      // tensors: the copy may share them with the original).
      bn.running_mean = torch::zeros_like(bn.running_mean);
      if (bn.bias.defined()) bn.bias = torch::zeros_like(bn.bias);
    }
  }
  return net;
}

// A grouped convolution written as the same map ungrouped: each group's
// block on the diagonal, zero weights off it.
inline Conv2d ungrouped(const Conv2d& grouped) {
  Conv2d dense = grouped;
  const int64_t g = grouped.groups, out = grouped.weight.size(0) / g, in = grouped.weight.size(1);
  dense.groups = 1;
  dense.weight = torch::zeros({grouped.weight.size(0), in * g, grouped.weight.size(2), grouped.weight.size(3)});
  for (int64_t j = 0; j < g; ++j) {
    dense.weight.slice(0, j * out, (j + 1) * out)
        .slice(1, j * in, (j + 1) * in)
        .copy_(grouped.weight.slice(0, j * out, (j + 1) * out));
  }
  return dense;
}

// LRP-epsilon (with a tiny epsilon) and LRP-z+ conserve relevance on a
// bias-free network: each example's map sums to its target logit.
inline void expect_lrp_conserves(const Network& bias_free, const at::Tensor& x, const at::Tensor& targets) {
  const at::Tensor logit = target_logits(bias_free, x, targets);
  ASSERT_GT(logit.abs().min().item<double>(), 1e-2) << "logits too small to measure conservation";
  MethodSettings tiny;
  tiny.options.set("epsilon", double(1e-9));
  const double epsilon = max_relative(per_example_sum(attribute("lrp-epsilon", bias_free, x, targets, tiny)), logit);
  const double zplus = max_relative(per_example_sum(attribute("lrp-zplus", bias_free, x, targets)), logit);
  EXPECT_LE(epsilon, 1e-4);
  EXPECT_LE(zplus, 1e-4);
  std::printf("LRP conservation, largest relative error: epsilon %.1e, z+ %.1e\n", epsilon, zplus);
}

}  // namespace mipin::test
