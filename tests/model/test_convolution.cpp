// The convolution paths of model/convolution.h against LibTorch's conv2d and
// its autograd input gradient.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mipin/model/convolution.h"

namespace mipin {
namespace {

Conv2d layer(int64_t in, int64_t out, int64_t k, Pair padding, Pair dilation, Pair stride = {1, 1},
             int64_t groups = 1) {
  Conv2d c;
  c.weight = torch::randn({out, in / groups, k, k});
  c.bias = torch::randn({out});
  c.padding = padding;
  c.dilation = dilation;
  c.stride = stride;
  c.groups = groups;
  return c;
}

at::Tensor autograd_input_gradient(const Conv2d& c, const at::Tensor& x, const at::Tensor& s) {
  const at::Tensor xi = x.detach().requires_grad_(true);
  const at::Tensor y = torch::conv2d(xi, c.weight, c.bias, c.stride, c.padding, c.dilation, c.groups);
  return torch::autograd::grad({y}, {xi}, {s})[0];
}

TEST(Convolution, OneSmallImageMatchesLibTorch) {
  torch::manual_seed(0);
  // One image of under 20,480 values with >= 8 channels each side: the
  // direct paths. Paddings 0..2 and a dilation cover the flipped padding.
  for (const Conv2d& c : {layer(32, 64, 3, {1, 1}, {1, 1}), layer(16, 8, 3, {0, 0}, {1, 1}),
                          layer(8, 16, 3, {2, 2}, {2, 2}), layer(8, 8, 1, {0, 0}, {1, 1})}) {
    const at::Tensor x = torch::randn({1, c.in_channels(), 14, 14});
    const at::Tensor y = convolve(c, x, c.weight, c.bias);
    EXPECT_TRUE(torch::allclose(y, torch::conv2d(x, c.weight, c.bias, c.stride, c.padding, c.dilation), 1e-4, 1e-4));
    const at::Tensor s = torch::randn(y.sizes());
    const at::Tensor g = transpose_by_flipped_convolution(c, c.weight, s, x.sizes());
    ASSERT_TRUE(g.defined()) << c.describe();
    EXPECT_TRUE(torch::allclose(g, autograd_input_gradient(c, x, s), 1e-4, 1e-4)) << c.describe();
  }
}

TEST(Convolution, FlippedTransposeDeclinesWhatItCannotDo) {
  torch::manual_seed(1);
  const Conv2d strided = layer(16, 16, 3, {1, 1}, {1, 1}, {2, 2});
  const Conv2d grouped = layer(16, 16, 3, {1, 1}, {1, 1}, {1, 1}, 2);
  const Conv2d first = layer(1, 32, 3, {1, 1}, {1, 1});  // few channels: im2col is faster
  for (const Conv2d* c : {&strided, &grouped, &first}) {
    const at::Tensor x = torch::randn({1, c->in_channels(), 12, 12});
    const at::Tensor y = convolve(*c, x, c->weight, c->bias);
    EXPECT_TRUE(torch::allclose(y, torch::conv2d(x, c->weight, c->bias, c->stride, c->padding, c->dilation, c->groups),
                                1e-4, 1e-4));
    EXPECT_FALSE(transpose_by_flipped_convolution(*c, c->weight, torch::randn(y.sizes()), x.sizes()).defined())
        << c->describe();
  }
  // Several images, or a large one: LibTorch's own choice is already the fast one.
  const Conv2d c = layer(16, 16, 3, {1, 1}, {1, 1});
  EXPECT_FALSE(transpose_by_flipped_convolution(c, c.weight, torch::randn({2, 16, 12, 12}), {2, 16, 12, 12}).defined());
  EXPECT_FALSE(transpose_by_flipped_convolution(c, c.weight, torch::randn({1, 16, 40, 40}), {1, 16, 40, 40}).defined());
}

TEST(Convolution, FlipAndSwapChannels) {
  const at::Tensor w = torch::randn({4, 3, 3, 2});
  EXPECT_TRUE(torch::equal(flip_and_swap_channels(w), w.transpose(0, 1).flip({2, 3})));
}

TEST(Convolution, TrainingKeepsAutograd) {
  torch::manual_seed(2);
  Conv2d c = layer(16, 16, 3, {1, 1}, {1, 1});
  c.weight.set_requires_grad(true);
  const at::Tensor x = torch::randn({1, 16, 10, 10});
  const at::Tensor y = convolve(c, x, c.weight, c.bias);
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_TRUE(c.weight.grad().defined());
}

}  // namespace
}  // namespace mipin
