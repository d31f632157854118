// The one-pass loops of attribution/fused.h against the chains of LibTorch
// operations they replace.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mipin/attribution/fused.h"

namespace mipin {
namespace {

constexpr double kTiny = 1e-7;

// DeepLIFT through max pooling as tensor operations: gather at the winners,
// divide where the denominator is large enough, scatter back with LibTorch's
// max-pooling gradient (which adds overlapping windows up).
at::Tensor deeplift_unpool_reference(const at::Tensor& m, const at::Tensor& x, const at::Tensor& x0,
                                     at::IntArrayRef kernel, at::IntArrayRef stride, double* fallback_mass) {
  auto [y, sw] = torch::max_pool2d_with_indices(x, kernel, stride);
  auto [y0, sw0] = torch::max_pool2d_with_indices(x0, kernel, stride);
  auto at = [](const at::Tensor& t, const at::Tensor& s) { return t.flatten(2).gather(2, s.flatten(2)).view_as(s); };
  auto unpool = [&](const at::Tensor& v, const at::Tensor& s) {
    return at::max_pool2d_with_indices_backward(v, x, kernel, stride, {0, 0}, {1, 1}, false, s);
  };
  const at::Tensor dy = y - y0;
  const at::Tensor dx_win = y - at(x0.expand_as(x), sw);
  const at::Tensor moved = dx_win.abs() > kTiny;
  const at::Tensor first = torch::where(moved, m * dy / dx_win, torch::zeros_like(m));
  const at::Tensor sw0n = sw0.expand_as(sw).contiguous();
  const at::Tensor dx_ref = at(x, sw0n) - y0;
  const at::Tensor second = torch::where(~moved & (dx_ref.abs() > kTiny), m * dy / dx_ref, torch::zeros_like(m));
  *fallback_mass = second.abs().sum().item<double>();
  return unpool(first, sw) + unpool(second, sw0n);
}

at::Tensor deeplift_unpool_ours(const at::Tensor& m, const at::Tensor& x, const at::Tensor& x0,
                                at::IntArrayRef kernel, at::IntArrayRef stride) {
  auto [y, sw] = torch::max_pool2d_with_indices(x, kernel, stride);
  auto [y0, sw0] = torch::max_pool2d_with_indices(x0, kernel, stride);
  return fused::deeplift_unpool_max(m, x, y, sw, x0, y0, sw0, kTiny);
}

TEST(Fused, DeepLiftUnpoolMatchesTheTensorFormulation) {
  torch::manual_seed(0);
  for (auto [kernel, stride] : {std::pair<int64_t, int64_t>{2, 2}, {3, 2}, {3, 1}}) {
    const at::Tensor x = torch::randn({3, 4, 9, 9});
    // The reference is example 1 with every other cell raised: where x's
    // winner is not a raised cell it did not move, and the difference goes
    // to the reference's winner (the fallback branch).
    at::Tensor x0 = x[1].clone().unsqueeze(0);
    x0.index({torch::indexing::Slice(), torch::indexing::Slice(), torch::indexing::Slice(0, 9, 2),
              torch::indexing::Slice(0, 9, 2)}) += 10;
    const at::Tensor m = torch::randn(torch::max_pool2d(x, kernel, stride).sizes());
    double fallback_mass = 0;
    const at::Tensor ours = deeplift_unpool_ours(m, x, x0, {kernel, kernel}, {stride, stride});
    const at::Tensor theirs =
        deeplift_unpool_reference(m, x, x0, {kernel, kernel}, {stride, stride}, &fallback_mass);
    EXPECT_TRUE(torch::allclose(ours, theirs, 1e-5, 1e-6)) << "kernel " << kernel << " stride " << stride;
    EXPECT_GT(fallback_mass, 0.0) << "the fallback branch was not exercised";
  }
}

TEST(Fused, DeepLiftUnpoolRejectsARecordOfAnotherShape) {
  const at::Tensor x = torch::randn({2, 3, 8, 8});
  auto [y, sw] = torch::max_pool2d_with_indices(x, {2, 2}, {2, 2});
  const at::Tensor x0 = torch::randn({1, 3, 6, 6});
  auto [y0, sw0] = torch::max_pool2d_with_indices(x0, {2, 2}, {2, 2});
  EXPECT_THROW(fused::deeplift_unpool_max(torch::ones_like(y), x, y, sw, x0, y0, sw0, kTiny), std::exception);
}

TEST(Fused, ElementwiseLoopsMatchTensorOperations) {
  torch::manual_seed(1);
  // Large enough to be split across threads.
  const at::Tensor s = torch::randn({4, 8, 64, 64}), x = torch::randn({4, 8, 64, 64});
  const at::Tensor zero = torch::zeros_like(s);
  EXPECT_TRUE(torch::equal(fused::relu_gate(s, x), torch::where(x > 0, s, zero)));
  EXPECT_TRUE(torch::equal(fused::relu_backward(s, x, fused::ReluBackward::gate), torch::where(x > 0, s, zero)));
  EXPECT_TRUE(torch::equal(fused::relu_backward(s, x, fused::ReluBackward::gate_and_rectify),
                           torch::where(x > 0, torch::relu(s), zero)));
  EXPECT_TRUE(torch::equal(fused::relu_backward(s, x, fused::ReluBackward::rectify), torch::relu(s)));
  const at::Tensor z = x * 1e-3;
  const at::Tensor eps = torch::where(z >= 0, torch::full_like(z, 0.01), torch::full_like(z, -0.01));
  EXPECT_TRUE(torch::allclose(fused::stabilised_divide(s, z, 0.01), s / (z + eps), 1e-5, 1e-6));
  const at::Tensor z0 = torch::randn({1, 8, 64, 64});
  const at::Tensor d = x - z0;
  const at::Tensor rescale = torch::where(d.abs() > kTiny, (torch::relu(x) - torch::relu(z0)) / d, (x > 0).to(at::kFloat));
  EXPECT_TRUE(torch::allclose(fused::rescale_relu(s, x, z0, kTiny), s * rescale, 1e-5, 1e-6));
}

// Convolutions write channels-last: the loops read operands in whatever
// layouts they come, and answer in the first one's.
TEST(Fused, ElementwiseLoopsTakeMixedLayouts) {
  torch::manual_seed(3);
  const auto last = at::MemoryFormat::ChannelsLast;
  const at::Tensor s = torch::randn({4, 8, 16, 16}), x = torch::randn({4, 8, 16, 16});
  const at::Tensor gate = fused::relu_gate(s.contiguous(last), x);
  EXPECT_TRUE(gate.is_contiguous(last));
  EXPECT_TRUE(torch::equal(gate, torch::where(x > 0, s, torch::zeros_like(s))));
  EXPECT_TRUE(torch::equal(fused::relu_gate(s, x.contiguous(last)), gate));
  const at::Tensor z0 = torch::randn({1, 8, 16, 16});
  const at::Tensor d = x - z0;
  const at::Tensor want = s * torch::where(d.abs() > kTiny, (torch::relu(x) - torch::relu(z0)) / d, (x > 0).to(at::kFloat));
  const at::Tensor got = fused::rescale_relu(s.contiguous(last), x.contiguous(last), z0, kTiny);
  EXPECT_TRUE(got.is_contiguous(last));
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(fused::rescale_relu(s, x, z0.contiguous(last), kTiny), want, 1e-5, 1e-6));
}

// Unpooling fused with each ReLU rule below it against the two steps one
// after the other (LibTorch's max-pooling gradient, then relu_backward), on
// 2x2 windows and on overlapping 3x3 windows of stride 2, whose sums the
// rectifying rules must see whole.
// LRP's split at a residual add in one pass: to the bit what the division
// and the products give, in either layout, with zeros and negative sums,
// and through the general path for three parts or float64.
TEST(Fused, ProportionalSplitMatchesTheTwoSteps) {
  torch::manual_seed(11);
  const double eps = 1e-3;
  auto reference = [&](const at::Tensor& r, const at::Tensor& z, const std::vector<at::Tensor>& parts) {
    const at::Tensor s = r / (z + eps * (2 * (z >= 0).to(z.scalar_type()) - 1));
    std::vector<at::Tensor> out;
    for (const auto& a : parts) out.push_back(a * s);
    return out;
  };
  for (bool channels_last : {false, true}) {
    const auto layout = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    const at::Tensor a = torch::randn({2, 5, 7, 9}).contiguous(layout), b = torch::randn({2, 5, 7, 9});
    at::Tensor z = (a + b).contiguous(layout);
    z.select(1, 0).select(1, 0).zero_();  // sign(0) = +1
    const at::Tensor r = torch::randn({2, 5, 7, 9});
    const auto ours = fused::proportional_split(r, z, {a, b}, eps);
    const auto want = reference(r, z, {a, b});
    ASSERT_EQ(ours.size(), 2u);
    for (int k = 0; k < 2; ++k) {
      EXPECT_TRUE(ours[k].equal(want[k])) << "part " << k << (channels_last ? ", channels-last" : "");
      EXPECT_EQ(ours[k].is_contiguous(layout), true) << "part " << k << " keeps the sum's layout";
    }
    // The shares add up to r (a + b) / (z + eps sign z): r where z = a + b,
    // but for the stabiliser.
    const at::Tensor stabilised = z + eps * (2 * (z >= 0).to(z.scalar_type()) - 1);
    EXPECT_TRUE(torch::allclose(ours[0] + ours[1], r * (a + b) / stabilised, 1e-4, 1e-5));
  }
  const at::Tensor a = torch::randn({3, 4}, torch::kDouble), b = torch::randn({3, 4}, torch::kDouble),
                   c = torch::randn({3, 4}, torch::kDouble), r = torch::randn({3, 4}, torch::kDouble);
  const auto three = fused::proportional_split(r.to(torch::kFloat), (a + b + c).to(torch::kFloat),
                                               {a.to(torch::kFloat), b.to(torch::kFloat), c.to(torch::kFloat)}, eps);
  ASSERT_EQ(three.size(), 3u);
  const auto want3 = reference(r.to(torch::kFloat), (a + b + c).to(torch::kFloat),
                               {a.to(torch::kFloat), b.to(torch::kFloat), c.to(torch::kFloat)});
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(torch::allclose(three[k], want3[k], 1e-6, 1e-7)) << k;
  const auto doubles = fused::proportional_split(r, a + b, {a, b}, eps);
  const auto want2 = reference(r, a + b, {a, b});
  for (int k = 0; k < 2; ++k) EXPECT_TRUE(torch::allclose(doubles[k], want2[k], 1e-12, 1e-14)) << k;
}

// Both layouts (a convolution's output is channels-last), with channels
// that do not fill the last block of the channels-last loop (8 and 37).
TEST(Fused, UnpoolingWithEachReluRuleMatchesTheTwoSteps) {
  torch::manual_seed(2);
  for (int64_t channels : {8, 37}) {
    for (bool channels_last : {false, true}) {
      at::Tensor x = torch::randn({3, channels, 33, 33});
      if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
      for (int64_t kernel : {2, 3}) {
        auto [y, switches] = torch::max_pool2d_with_indices(x, {kernel, kernel}, {2, 2});
        const at::Tensor s = torch::randn(y.sizes());
        const at::Tensor unpooled =
            at::max_pool2d_with_indices_backward(s, x, {kernel, kernel}, {2, 2}, {0, 0}, {1, 1}, false, switches);
        for (auto relu :
             {fused::ReluBackward::gate, fused::ReluBackward::gate_and_rectify, fused::ReluBackward::rectify}) {
          const at::Tensor want = fused::relu_backward(unpooled, x, relu);
          const at::Tensor got = fused::unpool_max_relu(s, switches, x, relu);
          EXPECT_TRUE(torch::allclose(got, want, 1e-6, 1e-6))
              << "kernel " << kernel << " rule " << int(relu) << " channels " << channels
              << (channels_last ? " channels-last" : " plain");
          EXPECT_EQ(got.is_contiguous(at::MemoryFormat::ChannelsLast), channels_last) << "keeps the layout";
        }
      }
    }
  }
}

}  // namespace
}  // namespace mipin
