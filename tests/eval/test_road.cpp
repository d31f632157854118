// ROAD: the imputation against a linear ramp (which it must reproduce) and a
// dense solve of the same equations; the curves against the floor (a random
// order) and the true signal of the linear toy.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "mipin/attribution/registry.h"
#include "mipin/data/synthetic.h"
#include "mipin/eval/road.h"
#include "mipin/inverse/inverse.h"
#include "mipin/model/layers.h"
#include "mipin/zoo/trainer.h"
#include "support/trained_models.h"

namespace mipin {
namespace {

// a * row + b * col + c in each of two channels.
at::Tensor ramp(int64_t h, int64_t w) {
  const at::Tensor rows = torch::arange(h, torch::kFloat).view({h, 1});
  const at::Tensor cols = torch::arange(w, torch::kFloat).view({1, w});
  return torch::stack({0.3 * rows - 0.2 * cols + 1, -0.05 * rows + 0.4 * cols - 2}).unsqueeze(0);
}

TEST(Road, ImputationReproducesALinearRampInsideTheImage) {
  const at::Tensor x = ramp(12, 14);
  at::Tensor removed = torch::zeros({1, 12, 14}, torch::kBool);
  removed.slice(1, 3, 9).slice(2, 4, 11).fill_(true);  // a block
  removed[0][1][2] = true;                              // a lone pixel
  removed.slice(1, 10, 11).slice(2, 1, 13).fill_(true); // a line
  const at::Tensor far = torch::full({1, 2, 1, 1}, 100.0);  // must not matter here
  const at::Tensor exact = noisy_linear_imputation(x, removed, far, /*noise=*/0);
  EXPECT_LT((exact - x).abs().max().item<double>(), 1e-4);
  // With noise, only the removed pixels move, by noise of the given scale.
  const at::Tensor noisy = noisy_linear_imputation(x, removed, far, 0.01, 7);
  const at::Tensor moved = (noisy - x).masked_select(removed.unsqueeze(1).expand_as(x));
  EXPECT_NEAR(moved.std().item<double>(), 0.01, 0.002);
  EXPECT_TRUE(noisy.masked_select(~removed.unsqueeze(1).expand_as(x)).equal(
      x.masked_select(~removed.unsqueeze(1).expand_as(x))));
  EXPECT_TRUE(noisy.equal(noisy_linear_imputation(x, removed, far, 0.01, 7)));  // seeded
}

// The equations written out one by one, solved densely: each removed pixel
// times its neighbours' total weight minus its removed neighbours, weighted,
// equals its kept neighbours, weighted.
TEST(Road, ImputationSolvesTheNeighbourEquations) {
  torch::manual_seed(3);
  const int64_t h = 6, w = 7;
  const at::Tensor x = torch::randn({1, 1, h, w}, torch::kDouble);
  const at::Tensor removed = torch::rand({1, h, w}) < 0.4;
  std::vector<int64_t> index(h * w, -1);
  int64_t unknowns = 0;
  for (int64_t p = 0; p < h * w; ++p) {
    if (removed[0][p / w][p % w].item<bool>()) index[p] = unknowns++;
  }
  ASSERT_GT(unknowns, 5);
  at::Tensor a = torch::zeros({unknowns, unknowns}, torch::kDouble);
  at::Tensor b = torch::zeros({unknowns}, torch::kDouble);
  for (int64_t p = 0; p < h * w; ++p) {
    if (index[p] < 0) continue;
    const int64_t i = p / w, j = p % w;
    for (int64_t di = -1; di <= 1; ++di) {
      for (int64_t dj = -1; dj <= 1; ++dj) {
        const int64_t ni = i + di, nj = j + dj;
        if ((di == 0 && dj == 0) || ni < 0 || nj < 0 || ni >= h || nj >= w) continue;
        const double weight = (di == 0 || dj == 0) ? 1.0 / 6 : 1.0 / 12;
        a[index[p]][index[p]] += weight;
        const int64_t q = ni * w + nj;
        if (index[q] >= 0) {
          a[index[p]][index[q]] -= weight;
        } else {
          b[index[p]] += weight * x[0][0][ni][nj].item<double>();
        }
      }
    }
  }
  const at::Tensor solution = at::linalg_solve(a, b);
  const at::Tensor imputed = noisy_linear_imputation(x, removed, torch::zeros({1}), 0);
  for (int64_t p = 0; p < h * w; ++p) {
    if (index[p] < 0) continue;
    EXPECT_NEAR(imputed[0][0][p / w][p % w].item<double>(), solution[index[p]].item<double>(), 1e-8);
  }
}

// With nothing kept around it, a region has no unique solution and keeps the
// fallback's level.
TEST(Road, ARegionWithNothingKeptKeepsTheFallback) {
  const at::Tensor x = torch::randn({2, 3, 5, 5});
  const at::Tensor fallback = torch::tensor({0.5, -1.0, 2.0}).view({1, 3, 1, 1});
  const at::Tensor all = noisy_linear_imputation(x, torch::ones({2, 5, 5}, torch::kBool), fallback, 0);
  EXPECT_TRUE(torch::allclose(all, fallback.expand_as(x), 1e-6, 1e-6));
}

TEST(Road, ARandomOrderScoresAtTheFloorAndTheCnnsMapsAboveIt) {
  const test::TrainedModel& m = test::trained_model("cnn");
  const at::Tensor x = m.train_data->get(3000, 3064).inputs;
  const at::Tensor t = m.network.forward(x).argmax(1);
  const at::Tensor fallback = m.train_data->get(0, 1000).inputs.mean(0, true);
  MethodSettings s;
  const at::Tensor noise = make_method("random", s)->attribute(m.network, x, t);
  const RoadCurves random = road_curves(m.network, x, t, noise, fallback, 10);
  ASSERT_EQ(random.most_relevant_first.numel(), 11);
  // A random order knows nothing: removing its "most" and its "least"
  // relevant pixels first are the same experiment.
  EXPECT_NEAR(random.most_relevant_first_area, random.least_relevant_first_area, 0.03);
  const double start = torch::softmax(m.network.forward(x), 1).gather(1, t.unsqueeze(1)).mean().item<double>();
  EXPECT_NEAR(random.most_relevant_first[0].item<double>(), start, 1e-6);
  // The gradient times the input orders pixels by the evidence they carry.
  const at::Tensor ixg = make_method("input-x-gradient", s)->attribute(m.network, x, t);
  const RoadCurves good = road_curves(m.network, x, t, ixg, fallback, 10);
  std::printf("CNN ROAD areas: input x gradient MoRF %.4f LeRF %.4f, random MoRF %.4f LeRF %.4f\n",
              good.most_relevant_first_area, good.least_relevant_first_area, random.most_relevant_first_area,
              random.least_relevant_first_area);
  EXPECT_LT(good.most_relevant_first_area, random.most_relevant_first_area - 0.05);
}

// The linear signal/distractor toy laid out as 4x4 images: a linear model
// trained on 4,000 examples, seen through a Flatten, and 1,000 test examples
// with their true signal a_s s.
struct ToyImages {
  LinearToy train = make_linear_toy(4000);
  LinearToy test = make_linear_toy(1000, [] {
    LinearToyOptions o;
    o.sample_seed = 2;
    return o;
  }());
  Network image;
  at::Tensor x, targets, signal;
  const at::Tensor fallback = torch::zeros({1, 1, 4, 4});
  ToyImages() {
    const Network flat = train_linear_classifier(*train.data);
    image.add(Flatten{});
    image.add(static_cast<const Linear&>(flat.layer(0)));
    image.set_input_shape({1, 4, 4});
    x = test.data->get(0, 1000).inputs.view({-1, 1, 4, 4});
    targets = image.forward(x).argmax(1);
    signal = test.signal.view({-1, 1, 4, 4});
  }
  RoadCurves road(const at::Tensor& attribution) const {
    return road_curves(image, x, targets, attribution, fallback, 8);
  }
  double most_relevant_first(const at::Tensor& attribution) const {
    return road(attribution).most_relevant_first_area;
  }
};

// Removing the pixels that carry most of the toy's known signal first takes
// the evidence away sooner than a random order, and removing those that
// carry least of it later. The signal's sign is not evidence for or against
// the class (a negative entry of a_s carries the class as much as a positive
// one): the order is by its magnitude.
TEST(Road, TheTrueSignalBeatsARandomOrderOnTheLinearToy) {
  const ToyImages toy;
  const RoadCurves truth = toy.road(toy.signal.abs());
  MethodSettings s;
  const RoadCurves random = toy.road(make_method("random", s)->attribute(toy.image, toy.x, toy.targets));
  std::printf("linear toy ROAD areas: true signal MoRF %.4f LeRF %.4f, random MoRF %.4f LeRF %.4f\n",
              truth.most_relevant_first_area, truth.least_relevant_first_area, random.most_relevant_first_area,
              random.least_relevant_first_area);
  EXPECT_LT(truth.most_relevant_first_area, random.most_relevant_first_area - 0.02);
  EXPECT_GT(truth.least_relevant_first_area, random.least_relevant_first_area + 0.02);
}

// What ROAD most-relevant-first rewards, on the toy where the truth is known:
// the probability falls with the model's use of each pixel, w_i x_i, and not
// with where the signal is (a_s s, what a perfect source signal returns).
// The two differ because the filter w also cancels the distractor: a pixel
// where a_s is small can still carry much of w x. So even the exact signal,
// read as |a_s s| or as a_s s times x, removes the evidence more slowly than
// the gradient times the input, and so does MIP-IN, whose inverse recovers
// that signal on the toy, with every readout.
TEST(Road, OnTheLinearToyTheFiltersContributionRemovesTheEvidenceFasterThanTheTrueSignal) {
  const ToyImages toy;
  MethodSettings s;
  const double filter =
      toy.most_relevant_first(make_method("input-x-gradient", s)->attribute(toy.image, toy.x, toy.targets));
  const double magnitude = toy.most_relevant_first(toy.signal.abs());
  const double times_input = toy.most_relevant_first(toy.signal * toy.x);
  const double random = toy.most_relevant_first(make_method("random", s)->attribute(toy.image, toy.x, toy.targets));
  const Batch fit = toy.train.data->get(0, 4000);
  const auto fit_images = make_tensor_dataset("toy", fit.inputs.view({-1, 1, 4, 4}), fit.labels,
                                              Normalization{{1.0}, {}, {}}, 2);
  const Inverse inverse = fit_inverse(toy.image, *fit_images, InverseOptions{});
  s.inverse = &inverse;
  std::map<std::string, double> mipin;
  for (const char* readout : {"times-input", "signal", "contrast", "abs"}) {
    mipin[readout] = toy.most_relevant_first(
        make_method(std::string("mipin:readout=") + readout, s)->attribute(toy.image, toy.x, toy.targets));
  }
  std::printf("linear toy ROAD MoRF areas: w x %.4f; true signal: |a_s s| %.4f, a_s s x %.4f; random %.4f; MIP-IN: "
              "times-input %.4f signal %.4f contrast %.4f abs %.4f\n",
              filter, magnitude, times_input, random, mipin["times-input"], mipin["signal"], mipin["contrast"],
              mipin["abs"]);
  EXPECT_LT(filter, magnitude - 0.02);
  EXPECT_LT(filter, times_input - 0.02);
  for (const auto& [readout, area] : mipin) EXPECT_LT(filter, area - 0.02) << readout;
  // MIP-IN's readouts of the signal land with the exact signal's, well ahead
  // of a random order (contrast, s_c minus the other class's signal, is not
  // a reading of where the signal is on a two-class toy).
  EXPECT_NEAR(mipin["times-input"], times_input, 0.05);
  EXPECT_NEAR(mipin["abs"], magnitude, 0.05);
  for (const char* readout : {"times-input", "signal", "abs"}) EXPECT_LT(mipin[readout], random - 0.05) << readout;
}

}  // namespace
}  // namespace mipin
