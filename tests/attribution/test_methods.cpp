// Every classic method against an independent reference: conservation laws,
// brute force, and autograd with custom ReLU backward functions.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "mipin/attribution/registry.h"
#include "mipin/model/layers.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/error.h"
#include "support/method_checks.h"
#include "support/test_support.h"
#include "support/trained_models.h"

namespace mipin {
namespace {

using test::attribute;
using test::load;
using test::max_relative;
using test::per_example_sum;
using test::target_logits;
using test::without_biases;

TEST(Methods, RegistryListsEveryMethodAndRefusesUnknownNames) {
  std::vector<std::string> names;
  for (const auto& m : registered_methods()) {
    names.push_back(m.name);
    EXPECT_FALSE(m.summary.empty()) << m.name;
  }
  for (const char* expected : {"gradient", "input-x-gradient", "smoothgrad", "integrated-gradients",
                               "guided-backprop", "deconvnet", "lrp-epsilon", "lrp-zplus",
                               "lrp-alpha-beta", "lrp-composite", "deeplift", "grad-cam",
                               "occlusion", "random", "mipin", "patternnet", "patternattribution"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  }
  try {
    make_method("saliency-magic", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lrp-epsilon"), std::string::npos) << e.what();
  }
}

TEST(Methods, IntegratedGradientsIsComplete) {
  for (const char* file : {"cnn", "mlp"}) {
    const test::TrainedModel& m = test::trained_model(file);
    const Network& net = m.network;
    const at::Tensor x = m.train_data->get(3000, 3004).inputs;
    const at::Tensor t = torch::tensor({0, 1, 2, 3}, torch::kLong);
    // The integrand of a ReLU network has kinks, which the midpoint rule
    // handles better than Gauss-Legendre's polynomial fit.
    for (const auto& [rule, tolerance] : {std::pair<const char*, double>{"riemann", 0.01}, {"gauss-legendre", 0.05}}) {
      MethodSettings s;
      s.options.set("steps", int64_t(128));
      s.options.set("integration", std::string(rule));
      const at::Tensor a = attribute("integrated-gradients", net, x, t, s);
      const at::Tensor delta = target_logits(net, x, t) - target_logits(net, torch::zeros_like(x), t);
      EXPECT_LE(max_relative(per_example_sum(a), delta), tolerance) << file << " " << rule;
    }
  }
}

TEST(Methods, LrpConservesRelevanceOnABiasFreeReluNetwork) {
  for (const char* file : {"cnn", "mlp"}) {
    const test::TrainedModel& m = test::trained_model(file);
    const Network net = without_biases(m.network);
    const at::Tensor x = m.train_data->get(3000, 3003).inputs;
    const at::Tensor t = torch::tensor({1, 5, 9}, torch::kLong);
    SCOPED_TRACE(file);
    test::expect_lrp_conserves(net, x, t);
    // LRP-0 is gradient times input on such a network.
    MethodSettings tiny;
    tiny.options.set("epsilon", double(1e-9));
    const at::Tensor eps = attribute("lrp-epsilon", net, x, t, tiny);
    const at::Tensor ixg = attribute("input-x-gradient", net, x, t);
    EXPECT_LE((eps - ixg).abs().max().item<double>(), 1e-4 * ixg.abs().max().item<double>()) << file;
  }
}

TEST(Methods, DeepLiftSumsToTheDifferenceFromTheReference) {
  for (const char* file : {"cnn", "mlp"}) {
    const test::TrainedModel& m = test::trained_model(file);
    const Network& net = m.network;
    const at::Tensor x = m.train_data->get(3000, 3004).inputs;
    const at::Tensor t = torch::tensor({0, 4, 7, 9}, torch::kLong);
    MethodSettings s;
    s.options.set("baseline", at::Tensor(m.train_data->get(3010, 3011).inputs[0] * 0.5));
    const at::Tensor a = attribute("deeplift", net, x, t, s);
    const at::Tensor delta = target_logits(net, x, t) - target_logits(net, s.options.reference("baseline").expand_as(x), t);
    EXPECT_LE(max_relative(per_example_sum(a), delta), 1e-4) << file;
  }
}

// Reference for the modified-ReLU methods: autograd through LibTorch's own
// layers, with the ReLU's backward replaced by a custom function.
struct GuidedRelu : torch::autograd::Function<GuidedRelu> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& z) {
    ctx->save_for_backward({z});
    return torch::relu(z);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    const at::Tensor z = ctx->get_saved_variables()[0];
    return {g[0].clamp_min(0) * z.gt(0).to(g[0].scalar_type())};
  }
};
struct DeconvRelu : torch::autograd::Function<DeconvRelu> {
  static at::Tensor forward(torch::autograd::AutogradContext*, const at::Tensor& z) { return torch::relu(z); }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 torch::autograd::variable_list g) {
    return {g[0].clamp_min(0)};
  }
};

template <typename Relu>
at::Tensor autograd_reference(const Network& net, const at::Tensor& x, const at::Tensor& t) {
  at::Tensor input = x.clone().set_requires_grad(true);
  at::Tensor h = input;
  for (size_t i = 0; i < net.size(); ++i) {
    h = net.layer(i).kind() == LayerKind::ReLU ? Relu::apply(h) : net.layer(i).forward(h, nullptr);
  }
  h.gather(1, t.unsqueeze(1)).sum().backward();
  return input.grad();
}

TEST(Methods, GuidedBackpropAndDeconvnetMatchAutogradWithCustomReluBackward) {
  const Network net = load("zoo_cnn.pt");
  torch::manual_seed(4);
  const at::Tensor x = torch::rand({3, 1, 28, 28});
  const at::Tensor t = torch::tensor({2, 6, 8}, torch::kLong);
  const at::Tensor guided = attribute("guided-backprop", net, x, t);
  const at::Tensor guided_ref = autograd_reference<GuidedRelu>(net, x, t);
  EXPECT_LE((guided - guided_ref).norm().item<double>() / guided_ref.norm().item<double>(), 1e-5);
  const at::Tensor deconv = attribute("deconvnet", net, x, t);
  const at::Tensor deconv_ref = autograd_reference<DeconvRelu>(net, x, t);
  EXPECT_LE((deconv - deconv_ref).norm().item<double>() / deconv_ref.norm().item<double>(), 1e-5);
  EXPECT_GT((guided - deconv).norm().item<double>(), 1e-3 * guided.norm().item<double>());
}

TEST(Methods, OcclusionWithOnePixelPatchesIsTheLogitDrop) {
  const Network net = load("view_cnn.pt");
  torch::manual_seed(5);
  const at::Tensor x = torch::randn({2, 3, 16, 16});
  const at::Tensor t = torch::tensor({1, 3}, torch::kLong);
  MethodSettings s;
  s.options.set("patch", int64_t(1));
  s.options.set("stride", int64_t(1));
  s.options.set("fill", double(0.25));
  const at::Tensor a = attribute("occlusion", net, x, t, s);
  const at::Tensor base = target_logits(net, x, t);
  for (int64_t i = 0; i < 16; ++i) {
    for (int64_t j = 0; j < 16; ++j) {
      at::Tensor filled = x.clone();
      filled.select(2, i).select(2, j).fill_(0.25);
      const at::Tensor drop = base - target_logits(net, filled, t);
      for (int64_t c = 0; c < 3; ++c) {
        ASSERT_NEAR(a[0][c][i][j].item<double>(), drop[0].item<double>(), 1e-5) << i << "," << j;
        ASSERT_NEAR(a[1][c][i][j].item<double>(), drop[1].item<double>(), 1e-5) << i << "," << j;
      }
    }
  }
}

TEST(Methods, EveryMethodRunsInBatchesOnEveryZooModelAndVgg) {
  struct Case {
    std::string file;
    std::vector<int64_t> shape;
  };
  for (const Case& c : {Case{"zoo_cnn.pt", {1, 28, 28}}, Case{"zoo_mlp.pt", {1, 28, 28}},
                        Case{"zoo_vgg_mini.pt", {1, 28, 28}}, Case{"vgg16.pt", {3, 64, 64}},
                        Case{"vgg11_bn.pt", {3, 64, 64}}}) {
    const Network net = load_torchscript(test::test_model(c.file),
                                         ImportOptions{}.with_input_shape(c.shape)).network;
    std::vector<int64_t> shape{2};
    shape.insert(shape.end(), c.shape.begin(), c.shape.end());
    const at::Tensor x = torch::rand(shape);
    const at::Tensor t = torch::tensor({0, 1}, torch::kLong);
    MethodSettings s;
    s.options.set("steps", int64_t(4));
    s.options.set("samples", int64_t(3));
    s.options.set("patch", int64_t(c.shape[1] / 2));
    s.options.set("stride", int64_t(c.shape[1] / 2));
    for (const auto& m : registered_methods()) {
      // Methods with fitted parts have their own tests (tests/inverse, test_patterns).
      if (m.fitted != FittedPart::none) continue;
      // Grad-CAM needs a convolution, which the MLP has none of.
      if (m.name == "grad-cam" && c.file == std::string("zoo_mlp.pt")) {
        EXPECT_THROW(make_method(m.name, s, /*ignore_undeclared=*/true)->attribute(net, x, t), Error);
        continue;
      }
      const at::Tensor a = make_method(m.name, s, /*ignore_undeclared=*/true)->attribute(net, x, t);
      EXPECT_EQ(a.sizes(), x.sizes()) << m.name << " on " << c.file;
      EXPECT_TRUE(a.isfinite().all().item<bool>()) << m.name << " on " << c.file;
      // Per-example targets: the second example's map depends on its own target.
      const at::Tensor other =
          make_method(m.name, s, /*ignore_undeclared=*/true)->attribute(net, x, torch::tensor({0, 2}, torch::kLong));
      EXPECT_TRUE(a[0].equal(other[0]) || m.name == "smoothgrad") << m.name << " on " << c.file;
    }
  }
}

}  // namespace
}  // namespace mipin
