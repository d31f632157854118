// Synthetic data with known ground truth.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mipin/data/synthetic.h"
#include "mipin/util/error.h"

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

// Without noise a series is its motif alone: the class's shape times the
// amplitude inside the span, zero outside it.
TEST(MotifSeries, EachSeriesHoldsItsClassMotifInItsSpan) {
  MotifOptions o;
  o.noise = 0;
  o.seed = 5;
  const MotifSeries m = make_motif_series(200, o);
  ASSERT_EQ(m.series.sizes().vec(), (std::vector<int64_t>{200, 1, o.length}));
  EXPECT_TRUE(m.series.equal(m.motifs));
  std::vector<int64_t> per_class(size_t(o.classes), 0);
  for (int64_t i = 0; i < 200; ++i) {
    const int64_t k = m.labels[i].item<int64_t>(), s = m.spans[i][0].item<int64_t>();
    ASSERT_GE(k, 0);
    ASSERT_LT(k, o.classes);
    ++per_class[size_t(k)];
    ASSERT_EQ(m.spans[i][1].item<int64_t>() - s, o.motif_length);
    ASSERT_GE(s, 0);
    ASSERT_LE(s + o.motif_length, o.length);
    const at::Tensor row = m.series[i][0];
    EXPECT_TRUE(row.slice(0, s, s + o.motif_length).allclose(motif_shape(k, o.motif_length) * o.amplitude));
    EXPECT_EQ(row.slice(0, 0, s).abs().sum().item<double>(), 0);
    EXPECT_EQ(row.slice(0, s + o.motif_length).abs().sum().item<double>(), 0);
  }
  for (int64_t c : per_class) EXPECT_GT(c, 25);
}

// Motifs share their window and have zero mean; they differ from class to
// class (the window widens each sine's spectrum, so neighbouring classes
// still correlate: cosine 0.67 to 0.73); the noise is what was asked; the seed fixes everything.
TEST(MotifSeries, MotifsDifferNoiseIsAsAskedAndTheSeedDecides) {
  for (int64_t a = 0; a < 4; ++a) {
    const at::Tensor ma = motif_shape(a, 24).to(torch::kDouble);
    EXPECT_NEAR(ma.sum().item<double>(), 0, 1e-5) << a;
    EXPECT_LE(ma.abs().max().item<double>(), 1.0);
    for (int64_t b = a + 1; b < 4; ++b) {
      const at::Tensor mb = motif_shape(b, 24).to(torch::kDouble);
      EXPECT_LT(std::abs(ma.dot(mb).item<double>()) / (ma.norm() * mb.norm()).item<double>(), 0.75) << a << b;
    }
  }
  MotifOptions o;
  o.seed = 2;
  const MotifSeries m = make_motif_series(2000, o);
  const at::Tensor noise = (m.series - m.motifs).to(torch::kDouble);
  EXPECT_NEAR(noise.mean().item<double>(), 0, 0.01);
  EXPECT_NEAR(noise.std().item<double>(), o.noise, 0.01);
  const MotifSeries again = make_motif_series(2000, o);
  EXPECT_TRUE(again.series.equal(m.series));
  EXPECT_TRUE(again.spans.equal(m.spans));
  o.seed = 3;
  EXPECT_FALSE(make_motif_series(2000, o).spans.equal(m.spans));
  o.classes = 9;
  EXPECT_THROW(make_motif_series(10, o), Error);
  o.classes = 4;
  o.length = 10;
  EXPECT_THROW(make_motif_series(10, o), Error);
}

}  // namespace
}  // namespace mipin
