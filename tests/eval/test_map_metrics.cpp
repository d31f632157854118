// Map metrics against hand-computed values and the properties that define them.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mipin/attribution/registry.h"
#include "mipin/eval/map_metrics.h"
#include "mipin/util/error.h"
#include "support/trained_models.h"

namespace mipin {
namespace {

at::Tensor as_map(std::vector<float> values) {
  return torch::tensor(values).view({1, 1, 1, -1});
}

TEST(MapMetrics, SpearmanMatchesAHandComputedValueWithTies) {
  // ranks [0, 1.5, 1.5, 3] and [0, 2, 1, 3]: r = 4.5 / sqrt(4.5 * 5).
  const double r = spearman(as_map({1, 2, 2, 3}), as_map({1, 3, 2, 4}))[0].item<double>();
  EXPECT_NEAR(r, 4.5 / std::sqrt(22.5), 1e-6);
  const at::Tensor a = torch::randn({3, 2, 5, 5});
  EXPECT_TRUE(torch::allclose(spearman(a, a), torch::ones({3})));
  EXPECT_TRUE(torch::allclose(spearman(a, -a), -torch::ones({3})));
  EXPECT_TRUE(torch::allclose(spearman(a, torch::exp(a)), torch::ones({3})));  // rank only
}

TEST(MapMetrics, SsimIsOneForTheSameStructureAndLowForNoise) {
  torch::manual_seed(0);
  const at::Tensor a = torch::randn({2, 3, 16, 16});
  EXPECT_TRUE(torch::allclose(ssim(a, a), torch::ones({2}), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(ssim(a, a * 3 + 1), torch::ones({2}), 1e-4, 1e-4));
  EXPECT_LT(ssim(a, torch::randn({2, 3, 16, 16})).abs().max().item<double>(), 0.3);
}

// A constant image stays as it is; a point becomes the Gaussian's outer
// product, normalised, away from the edges.
TEST(MapMetrics, GaussianBlurKeepsConstantsAndSpreadsAPointAsTheKernel) {
  const at::Tensor flat = torch::full({2, 3, 9, 10}, 0.7);
  EXPECT_TRUE(torch::allclose(gaussian_blur(flat, 5, 2.0), flat, 1e-6, 1e-6));
  at::Tensor point = torch::zeros({1, 1, 15, 15});
  point[0][0][7][7] = 1;
  const at::Tensor blurred = gaussian_blur(point, 11, 5.0)[0][0];
  std::vector<double> g;
  double total = 0;
  for (int k = -5; k <= 5; ++k) total += std::exp(-k * k / 50.0);
  for (int k = -5; k <= 5; ++k) g.push_back(std::exp(-k * k / 50.0) / total);
  for (int i = -5; i <= 5; ++i) {
    for (int j = -5; j <= 5; ++j) {
      EXPECT_NEAR(blurred[7 + i][7 + j].item<double>(), g[i + 5] * g[j + 5], 1e-7);
    }
  }
  EXPECT_EQ(blurred[0][0].item<double>(), 0);  // beyond the kernel's reach
  EXPECT_THROW(gaussian_blur(point, 4, 1.0), Error);
}

TEST(MapMetrics, LocalizationCountsHitsAndMass) {
  at::Tensor m = torch::zeros({2, 1, 4, 4});
  m[0][0][1][1] = 3;   // max inside the box
  m[0][0][3][3] = 1;   // positive mass outside
  m[1][0][0][3] = 2;   // max outside
  m[1][0][1][1] = 1;
  m[1][0][2][2] = -5;  // negative mass does not count
  const at::Tensor boxes = torch::tensor({0, 0, 2, 2, 1, 1, 3, 3}, torch::kLong).view({2, 4});
  const Localization l = localization(m, boxes);
  EXPECT_EQ(l.hits[0].item<float>(), 1);
  EXPECT_EQ(l.hits[1].item<float>(), 0);
  EXPECT_NEAR(l.mass_in_box[0].item<double>(), 0.75, 1e-6);
  EXPECT_NEAR(l.mass_in_box[1].item<double>(), 1.0 / 3.0, 1e-6);
}

TEST(MapMetrics, DeletionCurvesEndWhereTheyMustAndBeatRandomOrder) {
  const test::TrainedModel& m = test::trained_model("cnn");
  const at::Tensor x = m.train_data->get(3000, 3032).inputs;
  const at::Tensor t = m.network.forward(x).argmax(1);
  const at::Tensor fill = torch::zeros({1, 28, 28});
  MethodSettings s;
  const at::Tensor ixg = make_method("input-x-gradient", s)->attribute(m.network, x, t);
  const at::Tensor noise = make_method("random", s)->attribute(m.network, x, t);
  const PerturbationCurves good = perturbation_curves(m.network, x, t, ixg, fill, 10);
  const PerturbationCurves bad = perturbation_curves(m.network, x, t, noise, fill, 10);
  ASSERT_EQ(good.deletion.numel(), 11);
  // Both orders start from x (deletion) or the fill (insertion) and end at the other.
  for (const PerturbationCurves* c : {&good, &bad}) {
    EXPECT_NEAR(c->deletion[0].item<double>(), good.deletion[0].item<double>(), 1e-6);
    EXPECT_NEAR(c->deletion[10].item<double>(), c->insertion[0].item<double>(), 1e-6);
    EXPECT_NEAR(c->insertion[10].item<double>(), c->deletion[0].item<double>(), 1e-6);
  }
  EXPECT_LT(good.deletion_area, bad.deletion_area);
  EXPECT_GT(good.insertion_area, bad.insertion_area);
}

}  // namespace
}  // namespace mipin
