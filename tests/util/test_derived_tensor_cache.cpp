// The cache of tensors derived from a weight: one derivation per weight,
// version and tag; an in-place change derives again; a dead weight's entry
// goes, so that the cache never keeps a model alive.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "util/derived_tensor_cache.h"

namespace mipin {
namespace {

TEST(DerivedTensorCache, DerivesOncePerWeightAndTag) {
  DerivedTensorCache<int, at::Tensor> cache(8);
  const at::Tensor w = torch::randn({4, 3});
  int made = 0;
  auto positive = [&] { ++made; return w.clamp_min(0); };
  const at::Tensor first = cache.get(w, 1, positive);
  const at::Tensor again = cache.get(w, 1, positive);
  EXPECT_EQ(made, 1);
  EXPECT_TRUE(first.is_same(again));
  EXPECT_TRUE(torch::equal(first, w.clamp_min(0)));
  cache.get(w, 2, [&] { ++made; return w.clamp_max(0); });
  EXPECT_EQ(made, 2) << "another tag is another derivation";
  const at::Tensor copy = w.clone();
  cache.get(copy, 1, positive);
  EXPECT_EQ(made, 3) << "an equal tensor is another weight";
}

TEST(DerivedTensorCache, AnInPlaceChangeDerivesAgain) {
  DerivedTensorCache<int, at::Tensor> cache(8);
  at::Tensor w = torch::randn({5});
  auto positive = [&] { return w.clamp_min(0); };
  cache.get(w, 0, positive);
  w.mul_(-1);
  EXPECT_TRUE(torch::equal(cache.get(w, 0, positive), w.clamp_min(0)));
  // A view shares its base's version counter: a change through the base is seen.
  const at::Tensor view = w.reshape({5, 1});
  cache.get(view, 0, [&] { return view.clamp_min(0); });
  w.add_(3);
  EXPECT_TRUE(torch::equal(cache.get(view, 0, [&] { return view.clamp_min(0); }), view.clamp_min(0)));
}

TEST(DerivedTensorCache, ADeadWeightLeavesTheCache) {
  DerivedTensorCache<int, at::Tensor> cache(8);
  const at::Tensor kept = torch::randn({3});
  {
    const at::Tensor w = torch::randn({3});
    cache.get(w, 0, [&] { return w.clamp_min(0); });
    cache.get(kept, 0, [&] { return kept.clamp_min(0); });
    EXPECT_EQ(cache.size(), 2u);
  }
  cache.get(kept, 0, [&] { return kept.clamp_min(0); });  // the look-up drops the dead entry
  EXPECT_EQ(cache.size(), 1u);
}

TEST(DerivedTensorCache, AFullCacheDropsItsOldestEntry) {
  DerivedTensorCache<int, at::Tensor> cache(2);
  const at::Tensor w = torch::randn({3});
  int made = 0;
  auto make = [&] { ++made; return w * 2; };
  cache.get(w, 0, make);
  cache.get(w, 1, make);
  cache.get(w, 2, make);
  EXPECT_EQ(cache.size(), 2u);
  cache.get(w, 2, make);
  EXPECT_EQ(made, 3);
  cache.get(w, 0, make);
  EXPECT_EQ(made, 4) << "the oldest entry should have gone";
}

}  // namespace
}  // namespace mipin
