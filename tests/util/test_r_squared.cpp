// R^2 sums travel packed (across processes, into checkpoints): unpacking
// takes back what packing gave and refuses what no packing gives.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "mipin/util/error.h"
#include "mipin/util/r_squared.h"

namespace mipin {
namespace {

TEST(RSquared, UnpackingTakesBackWhatPackingGave) {
  RSquared r;
  r.add(torch::tensor({{1.0, 2.0}, {3.0, 5.0}}), torch::tensor({{1.0, 2.5}, {2.0, 5.0}}));
  const RSquared back = RSquared::from_packed(r.packed());
  EXPECT_TRUE(back.packed().equal(r.packed()));
  EXPECT_DOUBLE_EQ(back.r2(), r.r2());
}

TEST(RSquared, APackingNoPackingGivesIsRefused) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const double rows : {-1.0, 0.5, 1e30, nan}) {
    EXPECT_THROW(RSquared::from_packed(torch::tensor({1.0, 0.0, rows}, torch::kDouble)), Error) << rows;
  }
  EXPECT_THROW(RSquared::from_packed(torch::tensor({1.0, 0.0}, torch::kDouble)), Error);
  EXPECT_THROW(RSquared::from_packed(torch::zeros({2, 3}, torch::kDouble)), Error);
}

}  // namespace
}  // namespace mipin
