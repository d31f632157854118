// PatternNet's estimators: ground truth on the linear toy, and the file.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>

#include "mipin/attribution/patterns.h"
#include "mipin/attribution/registry.h"
#include "mipin/data/dataset.h"
#include "mipin/data/synthetic.h"
#include "mipin/model/layers.h"
#include "mipin/util/error.h"
#include "mipin/zoo/trainer.h"
#include "support/method_checks.h"
#include "support/test_support.h"
#include "support/trained_models.h"

namespace mipin {
namespace {

TEST(Patterns, PatternNetRecoversTheTrueSignalOnTheLinearToy) {
  const LinearToy train_toy = make_linear_toy(4000);
  LinearToyOptions test_options;
  test_options.sample_seed = 2;
  const LinearToy test_toy = make_linear_toy(1000, test_options);
  const Network net = train_linear_classifier(*train_toy.data);
  const Patterns patterns = fit_patterns(net, *train_toy.data, 0, 128);
  MethodSettings s;
  s.patterns = &patterns;
  const Batch batch = test_toy.data->get(0, 1000);
  const at::Tensor predicted = net.forward(batch.inputs).argmax(1);
  auto cosine = [&](const std::string& method) {
    const at::Tensor a = make_method(method, s)->attribute(net, batch.inputs, predicted);
    return torch::cosine_similarity(a, test_toy.signal, 1).mean().item<double>();
  };
  const double signal = cosine("patternnet");
  const double gradient = cosine("gradient");
  std::printf("linear toy, mean cosine with the true signal: patternnet %.4f, patternattribution %.4f, gradient %.4f\n",
              signal, cosine("patternattribution"), gradient);
  EXPECT_GE(signal, 0.99);
  EXPECT_LT(gradient, 0.9);
}

TEST(Patterns, SaveLoadAndWrongModel) {
  const test::TrainedModel& m = test::trained_model("cnn");
  Patterns p = fit_patterns(m.network, *m.train_data, 256, 64);
  EXPECT_EQ(p.patterns.size(), 4u);
  test::TempDir dir;
  p.save(dir.file("p.patterns"));
  const Patterns loaded = Patterns::load(dir.file("p.patterns"));
  EXPECT_NO_THROW(loaded.check_compatible(m.network));
  for (const auto& [i, a] : p.patterns) EXPECT_TRUE(loaded.patterns.at(i).equal(a)) << i;
  MethodSettings s;
  s.patterns = &loaded;
  const at::Tensor x = m.train_data->get(0, 4).inputs;
  const at::Tensor a = make_method("patternnet", s)->attribute(m.network, x, torch::arange(4, torch::kLong));
  EXPECT_EQ(a.sizes(), x.sizes());
  Network other = m.network;
  static_cast<Linear&>(other.layer(other.size() - 1)).bias.add_(1);
  EXPECT_NE(test::error_of([&] { loaded.check_compatible(other); }).find("another model"), std::string::npos);
  const std::string whole = test::read_text(dir.file("p.patterns"));
  test::write_text(dir.file("cut.patterns"), whole.substr(0, whole.size() / 2));
  EXPECT_THROW(Patterns::load(dir.file("cut.patterns")), Error);
  EXPECT_THROW(make_method("patternnet", MethodSettings{}), Error);
}

// A grouped convolution's unit reads its own group's channels: its pattern
// is the in-group block of the pattern of the same map written ungrouped
// (zero weights off the diagonal blocks), where the unit reads every channel.
TEST(Patterns, GroupedConvolutionsTakeEachUnitsOwnGroup) {
  torch::manual_seed(9);
  Conv2d grouped;
  grouped.weight = torch::randn({4, 3, 3, 3});
  grouped.padding = {1, 1};
  grouped.groups = 2;
  const Conv2d dense = test::ungrouped(grouped);
  Network a, b;
  a.add(grouped);
  b.add(dense);
  for (Network* net : {&a, &b}) {
    net->add(Flatten{});
    net->set_input_shape({6, 5, 5});
  }
  const auto data = make_tensor_dataset("random", torch::randn({64, 6, 5, 5}), torch::randint(0, 2, {64}, torch::kLong),
                                        {}, 2);
  const at::Tensor from_grouped = fit_patterns(a, *data, 0, 16).patterns.at(0);
  const at::Tensor from_dense = fit_patterns(b, *data, 0, 16).patterns.at(0);
  ASSERT_EQ(from_grouped.sizes(), grouped.weight.sizes());
  EXPECT_TRUE(torch::allclose(from_grouped.slice(0, 0, 2), from_dense.slice(0, 0, 2).slice(1, 0, 3), 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(from_grouped.slice(0, 2, 4), from_dense.slice(0, 2, 4).slice(1, 3, 6), 1e-4, 1e-5));
}

}  // namespace
}  // namespace mipin
