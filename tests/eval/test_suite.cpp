// The faithfulness suite on the trained demo CNN.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>

#include "mipin/eval/map_metrics.h"
#include "mipin/eval/suite.h"
#include "mipin/inverse/inverse.h"
#include "mipin/util/error.h"
#include "support/trained_models.h"

namespace mipin {
namespace {

TEST(Suite, CascadingRandomizationReproducesAdebayo) {
  const test::TrainedModel& m = test::trained_model("cnn");
  const auto test_data = open_dataset("fashion-mnist", Split::Test);
  SuiteOptions o;
  o.methods = {"gradient", "guided-backprop"};
  o.metrics = {"randomization"};
  o.examples = 16;
  o.randomization_examples = 16;
  const auto j = run_suite(m.network, *test_data, o);
  const auto& g = j["methods"]["gradient"]["randomization"];
  const auto& gb = j["methods"]["guided-backprop"]["randomization"];
  ASSERT_EQ(g.size(), 4u);
  for (size_t k = 0; k < g.size(); ++k) {
    std::printf("randomized down to %-46s gradient |r| %.3f r %.3f ssim %.3f   guided |r| %.3f r %.3f ssim %.3f\n",
                g[k]["layer"].get<std::string>().c_str(), g[k]["spearman_abs"].get<double>(),
                g[k]["spearman_signed"].get<double>(), g[k]["ssim"].get<double>(),
                gb[k]["spearman_abs"].get<double>(), gb[k]["spearman_signed"].get<double>(),
                gb[k]["ssim"].get<double>());
  }
  // The gradient forgets the model; guided backprop keeps drawing the input.
  EXPECT_LT(g.back()["ssim"].get<double>(), gb.back()["ssim"].get<double>());
  EXPECT_LT(g.back()["spearman_abs"].get<double>(), gb.back()["spearman_abs"].get<double>());
  // Already after the top layer: the gradient's structure is gone, guided
  // backprop's is not.
  EXPECT_LT(g[0]["ssim"].get<double>(), 0.2);
  EXPECT_GT(gb[0]["ssim"].get<double>(), 0.6);
}

TEST(Suite, RandomMapsScoreAtTheFloor) {
  const test::TrainedModel& m = test::trained_model("cnn");
  const auto test_data = open_dataset("fashion-mnist", Split::Test);
  SuiteOptions o;
  o.methods = {"random", "input-x-gradient"};
  o.metrics = {"deletion", "road", "localization", "completeness", "minimality", "randomization", "ground-truth"};
  o.examples = 200;
  o.randomization_examples = 16;
  // A box covering the left half of every image: random maxima land in it half the time.
  o.boxes = torch::tensor({0, 0, 28, 14}, torch::kLong).repeat({200, 1});
  const auto j = run_suite(m.network, *test_data, o);
  const auto& r = j["methods"]["random"];
  EXPECT_NEAR(r["deletion"]["area"].get<double>(), r["deletion"]["random_area"].get<double>(), 0.05);
  EXPECT_NEAR(r["insertion"]["area"].get<double>(), r["insertion"]["random_area"].get<double>(), 0.05);
  for (const char* road : {"road_most_relevant_first", "road_least_relevant_first"}) {
    EXPECT_NEAR(r[road]["area"].get<double>(), r[road]["random_area"].get<double>(), 0.05) << road;
    EXPECT_EQ(r[road]["curve"].size(), 21u);
  }
  EXPECT_NEAR(r["localization"]["pointing_game"].get<double>(), 0.5, 0.1);
  EXPECT_NEAR(r["localization"]["box_area_fraction"].get<double>(), 0.5, 1e-9);
  // Its noise follows the model, so a randomized model gets unrelated maps.
  for (const auto& step : r["randomization"]) {
    EXPECT_NEAR(step["ssim"].get<double>(), 0.0, 0.05) << step.dump();
    EXPECT_NEAR(step["spearman_signed"].get<double>(), 0.0, 0.05) << step.dump();
  }
  EXPECT_NEAR(r["ground_truth"]["cosine"].get<double>(), 0.0, 0.1);
  // Noise as an input is not the model's evidence: f(s) agrees with f(x) about
  // as often as a fixed guess would.
  EXPECT_LT(r["completeness"]["agreement"].get<double>(), 0.3);
  const auto& ixg = j["methods"]["input-x-gradient"];
  EXPECT_LT(ixg["deletion"]["area"].get<double>(), r["deletion"]["area"].get<double>());
  EXPECT_LT(ixg["road_most_relevant_first"]["area"].get<double>(),
            r["road_most_relevant_first"]["area"].get<double>() - 0.05);
  // The random order is one order for every method.
  EXPECT_EQ(ixg["road_most_relevant_first"]["random_curve"], r["road_most_relevant_first"]["random_curve"]);
}

// Each fill is what deletion puts in: its curve ends at the model's
// probability on the fill itself.
TEST(Suite, DeletionEndsOnTheFillItWasGiven) {
  const test::TrainedModel& m = test::trained_model("cnn");
  const auto test_data = open_dataset("fashion-mnist", Split::Test);
  const Batch b = test_data->get(0, 50);
  const at::Tensor t = m.network.forward(b.inputs).argmax(1);
  auto probability_on = [&](const at::Tensor& input) {
    return torch::softmax(m.network.forward(input), 1).gather(1, t.unsqueeze(1)).mean().item<double>();
  };
  SuiteOptions o;
  o.methods = {"gradient"};
  o.metrics = {"deletion"};
  o.examples = 50;
  o.batch_size = 50;
  const at::Tensor mean = b.inputs.mean(0, true).expand_as(b.inputs);
  const std::vector<std::pair<PerturbationFill, at::Tensor>> fills{
      {PerturbationFill::mean, mean},
      {PerturbationFill::zero, torch::zeros_like(b.inputs)},
      {PerturbationFill::blur, gaussian_blur(b.inputs)}};
  std::vector<double> ends;
  for (const auto& [fill, filled] : fills) {
    o.fill = fill;
    const auto j = run_suite(m.network, *test_data, o)["methods"]["gradient"];
    EXPECT_EQ(j["deletion"]["fill"], to_string(fill));
    EXPECT_NEAR(j["deletion"]["curve"].back().get<double>(), probability_on(filled), 1e-5) << to_string(fill);
    EXPECT_NEAR(j["insertion"]["curve"].front().get<double>(), probability_on(filled), 1e-5) << to_string(fill);
    ends.push_back(j["deletion"]["curve"].back().get<double>());
  }
  EXPECT_NE(ends[0], ends[1]);
  EXPECT_NE(ends[1], ends[2]);
  EXPECT_EQ(parse_perturbation_fill("blur"), PerturbationFill::blur);
  EXPECT_THROW(parse_perturbation_fill("grey"), Error);
}

// metrics.json says what each row ran with: its variant's options over the
// caller's, the declared defaults for the rest, so that a bare "mipin" row
// names the readout the default gave it.
TEST(Suite, EachRowNamesTheOptionsItRanWith) {
  const test::TrainedModel& m = test::trained_model("cnn");
  const auto test_data = open_dataset("fashion-mnist", Split::Test);
  const Batch fit = m.train_data->get(0, 256);
  const auto fit_data = make_tensor_dataset("subset", fit.inputs, fit.labels, Normalization{{1.0}, {}, {}}, 10);
  const Inverse inverse = fit_inverse(m.network, *fit_data, InverseOptions{});
  SuiteOptions o;
  o.methods = {"mipin", "mipin:readout=abs", "smoothgrad:samples=3", "integrated-gradients"};
  o.metrics = {"completeness"};
  o.examples = 4;
  o.settings.inverse = &inverse;
  o.settings.options.set("steps", "8");
  const auto j = run_suite(m.network, *test_data, o)["methods"];
  EXPECT_EQ(j["mipin"]["options"]["readout"], to_string(kDefaultMipInReadout));
  EXPECT_EQ(j["mipin:readout=abs"]["options"]["readout"], "abs");
  EXPECT_EQ(j["smoothgrad:samples=3"]["options"]["samples"], 3);
  EXPECT_EQ(j["integrated-gradients"]["options"]["steps"], 8);
  EXPECT_EQ(j["integrated-gradients"]["options"]["baseline"], "zero");
  // The caller's options reach only the methods that declare them.
  EXPECT_FALSE(j["smoothgrad:samples=3"]["options"].contains("steps"));
}

}  // namespace
}  // namespace mipin
