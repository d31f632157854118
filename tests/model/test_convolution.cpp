// The convolution paths of model/convolution.h (oneDNN with kept primitives
// and packed weights) against LibTorch's conv2d and its autograd input
// gradient.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

#include "mipin/model/convolution.h"
#include "model/onednn.h"

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
  torch::AutoGradMode grad(true);
  const at::Tensor xi = x.detach().requires_grad_(true);
  const at::Tensor y = torch::conv2d(xi, c.weight, c.bias, c.stride, c.padding, c.dilation, c.groups);
  return torch::autograd::grad({y}, {xi}, {s})[0];
}

// Winograd's transforms round differently from a direct sum: compare
// relative to the size of the values.
void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double scale = want.abs().max().item<double>();
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-5 * scale + 1e-6) << what;
}

TEST(Convolution, OneDnnMatchesLibTorchBothWays) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  // Paddings 0..2, a dilation, a 1x1 kernel, strides with and without a
  // remainder row, with and without bias; one image and a batch, small and
  // large enough for Winograd in both directions.
  std::vector<Conv2d> layers{layer(32, 64, 3, {1, 1}, {1, 1}), layer(16, 8, 3, {0, 0}, {1, 1}),
                             layer(8, 16, 3, {2, 2}, {2, 2}), layer(8, 8, 1, {0, 0}, {1, 1}),
                             layer(16, 16, 3, {1, 1}, {1, 1}, {2, 2}), layer(8, 12, 5, {2, 2}, {1, 1}, {2, 2}),
                             // padded past the kernel: no flipped-kernel transpose
                             layer(8, 8, 3, {3, 3}, {1, 1}),
                             // a strided 1x1 projection: spread over zeros at size 30,
                             // backward-data kernels at 13 (not a whole number of strides)
                             layer(16, 24, 1, {0, 0}, {2, 2})};
  // An image's first layer: oneDNN forward, LibTorch back.
  for (int64_t channels : {1, 3}) {
    const Conv2d first = layer(channels, 32, 3, {1, 1}, {1, 1});
    for (int64_t batch : {1, 4}) {
      const at::Tensor x = torch::randn({batch, channels, 28, 28});
      const at::Tensor y = onednn::convolve(x, first.weight, first.bias, {first.stride, first.padding, first.dilation});
      ASSERT_TRUE(y.defined());
      expect_close(y, torch::conv2d(x, first.weight, first.bias, 1, 1), first.describe());
    }
  }
  layers[1].bias = at::Tensor();
  for (const Conv2d& c : layers) {
    for (int64_t batch : {1, 3}) {
      for (int64_t size : {13, 30}) {
        const std::string what = c.describe() + " batch " + std::to_string(batch) + " size " + std::to_string(size);
        const at::Tensor x = torch::randn({batch, c.in_channels(), size, size});
        // Through oneDNN itself (convolve would quietly fall back to LibTorch).
        const at::Tensor y = onednn::convolve(x, c.weight, c.bias, {c.stride, c.padding, c.dilation});
        ASSERT_TRUE(y.defined()) << what;
        expect_close(y, torch::conv2d(x, c.weight, c.bias, c.stride, c.padding, c.dilation), what);
        const at::Tensor s = torch::randn(y.sizes());
        const at::Tensor want = autograd_input_gradient(c, x, s);
        for (TransposeKernels kernels : {TransposeKernels::direct_only, TransposeKernels::fastest}) {
          const at::Tensor g = convolve_transposed(c, c.weight, s, x.sizes(), kernels);
          ASSERT_TRUE(g.defined()) << what;
          expect_close(g, want, what);
        }
      }
    }
  }
}

// Results are channels-last, whatever the input's layout, so that the next
// convolution reads them with no reorder; every layout gives the same
// values.
// Back to few channels from a strided layer, by phases of the strided grid:
// kernels larger and smaller than the stride (phases no tap reaches),
// strides and paddings unequal between the axes, sizes with and without a
// remainder, channels-last and plain signals.
TEST(Convolution, StridedTransposeToFewChannelsByPhases) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  struct Case {
    int64_t in, k;
    Pair stride, padding;
  };
  for (const Case& c : {Case{3, 7, {2, 2}, {3, 3}}, Case{6, 7, {2, 2}, {3, 3}}, Case{1, 3, {2, 2}, {1, 1}},
                        Case{2, 1, {2, 2}, {0, 0}}, Case{5, 4, {3, 2}, {0, 1}}, Case{4, 5, {2, 3}, {2, 1}}}) {
    Conv2d conv = layer(c.in, 16, c.k, c.padding, {1, 1}, c.stride);
    for (int64_t size : {23, 30}) {
      for (bool channels_last : {false, true}) {
        const std::string what = conv.describe() + " size " + std::to_string(size) +
                                 (channels_last ? " channels-last" : " plain");
        const at::Tensor x = torch::randn({2, c.in, size, size});
        at::Tensor s = torch::randn(torch::conv2d(x, conv.weight, {}, conv.stride, conv.padding).sizes());
        if (channels_last) s = s.contiguous(at::MemoryFormat::ChannelsLast);
        const at::Tensor got = onednn::convolve_transposed_by_phases(
            s, conv.weight, x.sizes(), {conv.stride, conv.padding, conv.dilation});
        ASSERT_TRUE(got.defined()) << what;
        expect_close(got, autograd_input_gradient(conv, x, s), what);
        // The layer's transpose (by phases from 5 channels) agrees.
        expect_close(conv.transposed_map(conv.weight, s, x), got, what + " (transposed_map)");
      }
    }
  }
  // Not for 8 channels or more, stride 1 or dilation.
  const at::Tensor s = torch::randn({1, 16, 8, 8});
  EXPECT_FALSE(onednn::convolve_transposed_by_phases(s, torch::randn({16, 8, 3, 3}), {1, 8, 16, 16},
                                                     {Pair{2, 2}, Pair{1, 1}, Pair{1, 1}})
                   .defined());
  EXPECT_FALSE(onednn::convolve_transposed_by_phases(s, torch::randn({16, 3, 3, 3}), {1, 3, 8, 8},
                                                     {Pair{1, 1}, Pair{1, 1}, Pair{1, 1}})
                   .defined());
  EXPECT_FALSE(onednn::convolve_transposed_by_phases(s, torch::randn({16, 3, 3, 3}), {1, 3, 18, 18},
                                                     {Pair{2, 2}, Pair{1, 1}, Pair{2, 2}})
                   .defined());
}

TEST(Convolution, ChannelsLastInAndOut) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  for (const Conv2d& c : {layer(16, 32, 3, {1, 1}, {1, 1}), layer(32, 16, 1, {0, 0}, {1, 1}),
                          layer(16, 16, 3, {1, 1}, {1, 1}, {2, 2})}) {
    const at::Tensor x = torch::randn({2, c.in_channels(), 20, 20});
    const at::Tensor want = torch::conv2d(x, c.weight, c.bias, c.stride, c.padding, c.dilation);
    const at::Tensor s = torch::randn(want.sizes());
    const at::Tensor want_back = autograd_input_gradient(c, x, s);
    for (bool channels_last : {false, true}) {
      const auto layout = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
      const std::string what = c.describe() + (channels_last ? " from channels-last" : " from NCHW");
      const at::Tensor y = convolve(c, x.contiguous(layout), c.weight, c.bias);
      EXPECT_TRUE(y.is_contiguous(at::MemoryFormat::ChannelsLast)) << what;
      expect_close(y, want, what);
      for (TransposeKernels kernels : {TransposeKernels::direct_only, TransposeKernels::fastest}) {
        const at::Tensor g = convolve_transposed(c, c.weight, s.contiguous(layout), x.sizes(), kernels);
        ASSERT_TRUE(g.defined()) << what;
        EXPECT_TRUE(g.is_contiguous(at::MemoryFormat::ChannelsLast)) << what;
        expect_close(g, want_back, what);
      }
    }
  }
}

// Forward outputs decide ReLU masks and max-pooling winners: equal windows
// (a flat region of an image) must give exactly equal outputs, at any batch
// size, or ties are broken by rounding. (oneDNN 2.6 has Winograd kernels for
// AVX-512 only: elsewhere nothing here could break it.)
TEST(Convolution, EqualWindowsGiveEqualOutputs) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  const Conv2d c = layer(32, 64, 3, {1, 1}, {1, 1});
  for (int64_t batch : {1, 16}) {
    const at::Tensor x = torch::randn({1, 32, 1, 1}).expand({batch, 32, 28, 28}).contiguous();
    const at::Tensor inner = convolve(c, x, c.weight, c.bias).slice(2, 1, 27).slice(3, 1, 27);
    EXPECT_TRUE(torch::equal(inner, inner.slice(2, 0, 1).slice(3, 0, 1).expand_as(inner))) << "batch " << batch;
  }
}

TEST(Convolution, FastTransposeDeclinesWhatItCannotDo) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(1);
  const Conv2d grouped = layer(16, 16, 3, {1, 1}, {1, 1}, {1, 1}, 2);
  const Conv2d first = layer(1, 32, 3, {1, 1}, {1, 1});  // back to 1 channel: LibTorch's is faster
  for (const Conv2d* c : {&grouped, &first}) {
    const at::Tensor x = torch::randn({1, c->in_channels(), 12, 12});
    const at::Tensor y = convolve(*c, x, c->weight, c->bias);
    expect_close(y, torch::conv2d(x, c->weight, c->bias, c->stride, c->padding, c->dilation, c->groups),
                 c->describe());
    EXPECT_FALSE(convolve_transposed(*c, c->weight, torch::randn(y.sizes()), x.sizes(), TransposeKernels::fastest)
                     .defined())
        << c->describe();
  }
  // A signal of the wrong size for the input asked for.
  const Conv2d c = layer(16, 16, 3, {1, 1}, {1, 1});
  for (const auto& [signal, input] : std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>>{
           {{1, 16, 11, 11}, {1, 16, 12, 12}}, {{2, 16, 12, 12}, {1, 16, 12, 12}}}) {
    EXPECT_FALSE(convolve_transposed(c, c.weight, torch::randn(signal), input, TransposeKernels::fastest).defined());
  }
  // A kernel larger than the padded input, or a zero stride: LibTorch's
  // error, not a made-up result.
  const at::Tensor small = torch::randn({1, 16, 2, 2});
  EXPECT_FALSE(onednn::convolve(small, torch::randn({16, 16, 5, 5}), {}, {c.stride, c.padding, c.dilation}).defined());
  const Pair zero{0, 0};
  EXPECT_FALSE(onednn::convolve(small, c.weight, {}, {zero, c.padding, c.dilation}).defined());
}

// Direct kernels keep each output's rounding to its own terms: a huge value
// in the signal (an LRP quotient over a near-zero denominator) reaches only
// the positions its nonzero taps connect it to. (Winograd's kernels spread
// a rounding error of about 1e-7 of it, here over 100, across its tile.)
TEST(Convolution, DirectTransposeKeepsAHugeValueToItsTaps) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(6);
  Conv2d c = layer(16, 16, 3, {1, 1}, {1, 1});
  at::Tensor centre_only = torch::zeros_like(c.weight);
  centre_only.select(2, 1).select(2, 1).copy_(c.weight.select(2, 1).select(2, 1));
  at::Tensor s = torch::randn({1, 16, 32, 32});
  s[0][3][9][9] = 1e9;
  const at::Tensor got = convolve_transposed(c, centre_only, s, {1, 16, 32, 32}, TransposeKernels::direct_only);
  ASSERT_TRUE(got.defined());
  const at::Tensor want = torch::conv_transpose2d(s, centre_only, {}, 1, 1);
  at::Tensor elsewhere = torch::ones({1, 16, 32, 32}, torch::kBool);
  elsewhere.select(2, 9).select(2, 9).fill_(false);  // where the huge value lands
  EXPECT_LT((got - want).masked_select(elsewhere).abs().max().item<double>(), 1e-4);
}

TEST(Convolution, PackedWeightsFollowTheWeight) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  Conv2d c = layer(16, 16, 3, {1, 1}, {1, 1});
  const at::Tensor x = torch::randn({2, 16, 10, 10});
  const at::Tensor before = convolve(c, x, c.weight, at::Tensor());
  // An in-place change of the same tensor is seen (its version moves on).
  c.weight.mul_(-2);
  expect_close(convolve(c, x, c.weight, at::Tensor()), before * -2, "after mul_");
  // A new weight of the same shape.
  c.weight = torch::randn({16, 16, 3, 3});
  expect_close(convolve(c, x, c.weight, at::Tensor()), torch::conv2d(x, c.weight, {}, 1, 1), "new weight");
  // It was packed: one entry more (dead entries were dropped by the call before).
  const at::Tensor other = torch::randn({16, 16, 3, 3});
  convolve(c, x, other, at::Tensor());
  const size_t entries = onednn::packed_weights_cached();
  Conv2d d = layer(16, 16, 3, {1, 1}, {1, 1});
  convolve(d, x, d.weight, at::Tensor());
  EXPECT_EQ(onednn::packed_weights_cached(), entries + 1);
  // Weights used once (LRP's positive parts) do not pile up: an entry goes
  // with its weight.
  const size_t kept = onednn::packed_weights_cached();
  for (int i = 0; i < 20; ++i) {
    const at::Tensor once = c.weight.clamp_min(0);
    convolve(c, x, once, at::Tensor());
  }
  EXPECT_LE(onednn::packed_weights_cached(), kept + 1);
}

// One compiled primitive serves several threads at once (each call brings
// its own scratchpad): the same results as one after the other.
TEST(Convolution, ThreadsShareCompiledPrimitives) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(8);
  const Conv2d c = layer(32, 32, 3, {1, 1}, {1, 1});
  std::vector<at::Tensor> inputs, forward, transposed;
  for (int i = 0; i < 4; ++i) {
    inputs.push_back(torch::randn({2, 32, 24, 24}));
    forward.push_back(convolve(c, inputs[i], c.weight, c.bias));
    transposed.push_back(convolve_transposed(c, c.weight, inputs[i], inputs[i].sizes(), TransposeKernels::fastest));
  }
  std::vector<at::Tensor> forward_threaded(4), transposed_threaded(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      torch::NoGradGuard inner;
      // A shape no thread has met yet: all four compile it at once.
      const at::Tensor fresh = torch::ones({1, 32, 21, 21});
      EXPECT_TRUE(torch::allclose(convolve(c, fresh, c.weight, c.bias),
                                  torch::conv2d(fresh, c.weight, c.bias, 1, 1), 1e-4, 1e-4));
      for (int rep = 0; rep < 20; ++rep) {
        forward_threaded[i] = convolve(c, inputs[i], c.weight, c.bias);
        transposed_threaded[i] =
            convolve_transposed(c, c.weight, inputs[i], inputs[i].sizes(), TransposeKernels::fastest);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(torch::equal(forward_threaded[i], forward[i])) << i;
    EXPECT_TRUE(torch::equal(transposed_threaded[i], transposed[i])) << i;
  }
}

TEST(Convolution, TrainingKeepsAutograd) {
  torch::manual_seed(3);
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
