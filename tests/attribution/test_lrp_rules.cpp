// LRP's rules for inputs of either sign (alpha-beta on a signed input, z-box
// on the first layer) against their textbook formulas, written out term by
// term on a single layer; a convolution whose kernel covers its whole input
// is the same linear map and must give the same relevance.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <optional>

#include "mipin/attribution/registry.h"
#include "mipin/model/layers.h"
#include "support/method_checks.h"

namespace mipin {
namespace {

constexpr int64_t kIn = 12, kOut = 9, kBatch = 4;

// R_i = sum_j c_ij / (sum_i' c_i'j) R_j with R_j the target logit (one-hot).
at::Tensor share(const at::Tensor& contributions, const at::Tensor& logits, const at::Tensor& targets) {
  // contributions: [N, in, out]
  const at::Tensor rows = torch::arange(contributions.size(0));
  const at::Tensor c = contributions.index({rows, torch::indexing::Slice(), targets});  // [N, in]
  const at::Tensor r = logits.index({rows, targets});                                      // [N]
  return c / c.sum(1, true) * r.unsqueeze(1);
}

struct Case {
  at::Tensor x, w, targets;
  Network linear, conv;
};

Case make_case() {
  torch::manual_seed(5);
  Case k;
  k.x = torch::rand({kBatch, kIn}) * 2 - 1;  // signed, within the z-box bounds [-1, 1]
  k.w = torch::randn({kOut, kIn});
  k.targets = torch::tensor({0, 3, 5, 8}, torch::kLong);
  Linear l;
  l.weight = k.w;
  k.linear.add(l);
  // The same map as a convolution: [N, 3, 2, 2] inputs, a 2x2 kernel, one output position.
  Conv2d c;
  c.weight = k.w.reshape({kOut, 3, 2, 2});
  k.conv.add(c);
  k.conv.add(Flatten{});
  return k;
}

void expect_rule(const char* method, MethodSettings settings, const at::Tensor& expected, const Case& k) {
  torch::NoGradGuard no_grad;
  const at::Tensor from_linear = make_method(method, settings)->attribute(k.linear, k.x, k.targets);
  EXPECT_TRUE(torch::allclose(from_linear, expected, 1e-4, 1e-5)) << method << "\n" << from_linear << "\n" << expected;
  const at::Tensor from_conv =
      make_method(method, settings)->attribute(k.conv, k.x.reshape({kBatch, 3, 2, 2}), k.targets);
  EXPECT_TRUE(torch::allclose(from_conv.reshape({kBatch, kIn}), expected, 1e-4, 1e-5)) << method << " (conv)";
}

TEST(LrpRules, AlphaBetaOnASignedInput) {
  const Case k = make_case();
  const at::Tensor c = k.x.unsqueeze(2) * k.w.t().unsqueeze(0);  // a_i w_ij
  const at::Tensor logits = k.x.matmul(k.w.t());
  const at::Tensor zplus = share(c.clamp_min(0), logits, k.targets);
  expect_rule("lrp-zplus", {}, zplus, k);
  MethodSettings s;
  s.options.set("alpha", double(2));
  s.options.set("beta", double(1));
  expect_rule("lrp-alpha-beta", s, 2 * zplus - share(c.clamp_max(0), logits, k.targets), k);
}

TEST(LrpRules, ZBoxOnTheFirstLayer) {
  const Case k = make_case();
  const double low = -1, high = 1;
  const at::Tensor wt = k.w.t().unsqueeze(0);  // [1, in, out]
  const at::Tensor c = k.x.unsqueeze(2) * wt - low * wt.clamp_min(0) - high * wt.clamp_max(0);
  MethodSettings s;
  s.input_bounds = {low, high};
  expect_rule("lrp-composite", s, share(c, k.x.matmul(k.w.t()), k.targets), k);
}

// The rules keep the weight's positive and negative parts between calls;
// a weight changed in place must give the relevance of the changed weight.
TEST(LrpRules, AWeightChangedInPlaceIsSeen) {
  Case k = make_case();
  auto expected = [&] {
    const at::Tensor c = k.x.unsqueeze(2) * k.w.t().unsqueeze(0);
    return share(c.clamp_min(0), k.x.matmul(k.w.t()), k.targets);
  };
  expect_rule("lrp-zplus", {}, expected(), k);
  {
    torch::NoGradGuard no_grad;
    k.w.mul_(-0.5).add_(0.1);  // both networks' weights are views of it
  }
  expect_rule("lrp-zplus", {}, expected(), k);
}

// LRP-z+ at a dead patch (zero input) under a positive bias: at its centre
// z+ is 0 while the ReLU output is not, so the quotient s = R / (z+ + eps)
// is about 1e9 R. Only zero weights or zero inputs meet it, and the
// relevance must be what LibTorch's (direct) kernels give for the textbook
// rule. On a layer large enough for Winograd's kernels (16 channels, 32x32)
// those would spread that value's rounding error over its tile (measured:
// an error of 0.44 against relevance of at most 3e-7).
TEST(LrpRules, ZPlusKeepsHugeQuotientsOfDeadRegionsToThemselves) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(8);
  Conv2d conv;
  conv.weight = torch::randn({16, 16, 3, 3});
  conv.bias = torch::rand({16}) + 0.5;
  conv.padding = {1, 1};
  Linear dense;
  dense.weight = torch::randn({4, 16 * 32 * 32}) * 0.01;
  Network net;
  net.add(conv);
  net.add(ReLU{});
  net.add(Flatten{});
  net.add(dense);
  at::Tensor x = torch::rand({2, 16, 32, 32});
  x.slice(2, 9, 12).slice(3, 9, 12).zero_();  // a dead 3x3 patch: one huge quotient at its centre
  const at::Tensor t = torch::tensor({1, 2}, torch::kLong);
  // The rule by hand, on LibTorch's kernels.
  auto divide = [](const at::Tensor& r, const at::Tensor& z) { return r / (z + torch::where(z >= 0, 1e-9, -1e-9)); };
  const at::Tensor a = torch::relu(torch::conv2d(x, conv.weight, conv.bias, 1, 1)).flatten(1);
  const at::Tensor logits = a.matmul(dense.weight.t());
  const at::Tensor top = torch::zeros_like(logits).scatter_(1, t.unsqueeze(1), logits.gather(1, t.unsqueeze(1)));
  const at::Tensor wp = dense.weight.clamp_min(0);
  const at::Tensor r1 = (a * divide(top, a.matmul(wp.t())).matmul(wp)).reshape({2, 16, 32, 32});
  const at::Tensor cp = conv.weight.clamp_min(0);
  const at::Tensor s0 = divide(r1, torch::conv2d(x, cp, {}, 1, 1));
  const at::Tensor want = x * torch::conv_transpose2d(s0, cp, {}, 1, 1);
  ASSERT_GT(s0.abs().max().item<double>(), 1e6 * s0.abs().median().item<double>()) << "no huge quotient";
  const at::Tensor got = make_method("lrp-zplus", {})->attribute(net, x, t);
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-4 * want.abs().max().item<double>());
}

// A grouped convolution takes the terms of a signed input one by one; the
// same map as an ungrouped convolution (zero weights off the diagonal
// blocks) stacks them: the relevance must agree.
TEST(LrpRules, GroupedConvolutionMatchesItsUngroupedForm) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(7);
  Conv2d grouped;
  grouped.weight = torch::randn({4, 2, 3, 3});
  grouped.padding = {1, 1};
  grouped.groups = 2;
  const Conv2d dense = test::ungrouped(grouped);
  Network a, b;
  a.add(grouped);
  a.add(Flatten{});
  b.add(dense);
  b.add(Flatten{});
  const at::Tensor x = torch::randn({3, 4, 5, 5});
  const at::Tensor t = torch::tensor({0, 40, 99}, torch::kLong);
  for (const char* method : {"lrp-zplus", "lrp-composite"}) {
    MethodSettings s;
    s.input_bounds = {-4, 4};
    const at::Tensor from_grouped = make_method(method, s)->attribute(a, x, t);
    const at::Tensor from_dense = make_method(method, s)->attribute(b, x, t);
    EXPECT_TRUE(torch::allclose(from_grouped, from_dense, 1e-4, 1e-5)) << method;
  }
}

// What the rules keep of a weight must not keep the weight itself alive:
// once the model goes, its weights go (a grouped layer's z-box uses the
// weight as one of its parts).
TEST(LrpRules, WhatTheyKeepOfAWeightLetsTheModelGo) {
  torch::NoGradGuard no_grad;
  std::optional<c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>> weight;
  {
    Conv2d grouped;
    grouped.weight = torch::randn({4, 2, 3, 3});
    grouped.groups = 2;
    Network net;
    net.add(grouped);
    net.add(Flatten{});
    weight.emplace(grouped.weight.getIntrusivePtr());
    grouped = Conv2d{};
    MethodSettings s;
    s.input_bounds = {-4, 4};
    for (const char* method : {"lrp-zplus", "lrp-composite", "lrp-alpha-beta"}) {
      make_method(method, s)->attribute(net, torch::randn({2, 4, 5, 5}), torch::tensor({0, 7}, torch::kLong));
    }
    ASSERT_FALSE(weight->expired());
  }
  EXPECT_TRUE(weight->expired());
}

}  // namespace
}  // namespace mipin
