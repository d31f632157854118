// The 2x2 max-pooling loops against LibTorch's own kernels.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "mipin/model/max_pool_2x2.h"

namespace mipin {
namespace {

void expect_same_as_libtorch(const at::Tensor& x) {
  auto [values, indices] = max_pool_2x2(x, true);
  auto [ref_values, ref_indices] = torch::max_pool2d_with_indices(x, {2, 2}, {2, 2});
  EXPECT_TRUE(torch::equal(values.isnan(), ref_values.isnan()));
  EXPECT_TRUE(torch::equal(values.nan_to_num(), ref_values.nan_to_num()));
  EXPECT_TRUE(torch::equal(indices, ref_indices));
  EXPECT_FALSE(max_pool_2x2(x, false).second.defined());

  const at::Tensor s = torch::randn(values.sizes());
  const at::Tensor ours = max_unpool_2x2(s, indices, x.sizes());
  const at::Tensor theirs =
      at::max_pool2d_with_indices_backward(s, x, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, ref_indices);
  EXPECT_TRUE(torch::equal(ours, theirs));
}

TEST(MaxPool2x2, MatchesLibTorchOnRandomAndOddSizedInputs) {
  torch::manual_seed(0);
  expect_same_as_libtorch(torch::randn({3, 5, 8, 8}));
  expect_same_as_libtorch(torch::randn({2, 3, 7, 9}));  // the last row and column are dropped
  expect_same_as_libtorch(torch::randn({64, 32, 28, 28}));
}

TEST(MaxPool2x2, BreaksTiesAndNaNLikeLibTorch) {
  // Small integers: many windows hold equal maxima.
  expect_same_as_libtorch(torch::randint(0, 3, {4, 2, 6, 6}).to(torch::kFloat));
  at::Tensor x = torch::randn({1, 2, 4, 4});
  x[0][0][0][1] = std::numeric_limits<float>::quiet_NaN();
  x[0][1][1][0] = std::numeric_limits<float>::quiet_NaN();
  x[0][1][1][1] = std::numeric_limits<float>::quiet_NaN();
  expect_same_as_libtorch(x);
}

}  // namespace
}  // namespace mipin
