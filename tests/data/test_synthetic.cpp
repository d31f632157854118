// Synthetic data with known ground truth.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mipin/data/synthetic.h"

namespace mipin {
namespace {

TEST(LinearToy, SignalAndDistractorAreAsSpecified) {
  const LinearToy toy = make_linear_toy(500);
  EXPECT_NEAR(toy.signal_direction.dot(toy.distractor_direction).item<double>(), 0.7, 1e-5);
  const Batch b = toy.data->get(0, 500);
  // The label is the sign of the signal's coefficient.
  const at::Tensor s = toy.signal.matmul(toy.signal_direction);
  EXPECT_TRUE(s.gt(0).to(torch::kLong).equal(b.labels));
  // Same seed, same directions; another sample seed, other examples.
  LinearToyOptions other;
  other.sample_seed = 9;
  const LinearToy again = make_linear_toy(500, other);
  EXPECT_TRUE(again.signal_direction.equal(toy.signal_direction));
  EXPECT_FALSE(again.data->get(0, 10).inputs.equal(b.inputs.slice(0, 0, 10)));
}

TEST(ClutteredCanvas, ObjectSitsInItsBoxAndDistractorsStayOutside) {
  torch::manual_seed(0);
  const at::Tensor raw = torch::rand({20, 1, 12, 12}) + 0.1;  // no zero pixels
  const auto objects = make_tensor_dataset("objects", raw, torch::arange(20, torch::kLong) % 4, {}, 4);
  ClutterOptions o;
  o.canvas = 30;
  o.distractors = 5;
  o.patch = 4;
  const ClutteredCanvas c = make_cluttered_canvas(*objects, 25, o);
  ASSERT_EQ(c.images.sizes(), (at::IntArrayRef{25, 1, 30, 30}));
  for (int64_t i = 0; i < 25; ++i) {
    const auto b = c.boxes[i];
    const int64_t top = b[0].item<int64_t>(), left = b[1].item<int64_t>();
    EXPECT_EQ(b[2].item<int64_t>() - top, 12);
    EXPECT_EQ(b[3].item<int64_t>() - left, 12);
    EXPECT_TRUE(c.images[i].slice(1, top, top + 12).slice(2, left, left + 12).equal(raw[i % 20]));
    EXPECT_EQ(c.labels[i].item<int64_t>(), (i % 20) % 4);
    // Outside the box: exactly the distractor patches (5 x 16 pixels at most).
    at::Tensor outside = c.images[i].clone();
    outside.slice(1, top, top + 12).slice(2, left, left + 12).zero_();
    const int64_t lit = outside.gt(0).sum().item<int64_t>();
    EXPECT_GT(lit, 0);
    EXPECT_LE(lit, 5 * 16);
  }
  // Deterministic for a seed.
  EXPECT_TRUE(make_cluttered_canvas(*objects, 25, o).images.equal(c.images));
}

}  // namespace
}  // namespace mipin
