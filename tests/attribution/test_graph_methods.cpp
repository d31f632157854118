// Every method on graphs (residual adds, forks, concatenations, gates, every
// activation), each against its own law: LRP conserves relevance on a
// bias-free graph, DeepLIFT sums to f(x) - f(reference), integrated
// gradients is complete, guided backprop and deconvnet change only the ReLU
// family, and every method runs on the torchvision models.
#include <gtest/gtest.h>
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

at::Tensor input_batch(const Network& net, int64_t n, uint64_t seed) {
  std::vector<int64_t> shape{n};
  for (auto d : net.input_shape()) shape.push_back(d);
  torch::manual_seed(seed);
  return torch::rand(shape);
}

// A bias-free graph with every kind of node: a fork read by a convolution,
// a residual add and a concatenation; a squeeze-and-excitation gate; SiLU;
// global pooling written as a mean (pooling then flatten); a dense layer.
Network bias_free_graph() {
  torch::manual_seed(21);
  Network net;
  auto conv = [](int64_t in, int64_t out, int64_t k) {
    Conv2d c;
    c.weight = torch::randn({out, in, k, k}) * (1.5 / std::sqrt(double(in * k * k)));
    c.padding = {k / 2, k / 2};
    return c;
  };
  net.add(conv(2, 6, 3));                                  // 1
  const size_t fork = net.add(std::make_unique<ReLU>());   // 2
  net.add(conv(6, 6, 3));                                  // 3
  net.add(Activation{});                                   // 4: silu
  static_cast<Activation&>(net.layer(3)).function = "silu";
  const size_t sum = net.add(std::make_unique<Add>(), {fork, 4});       // 5
  const size_t both = net.add(std::make_unique<Concat>(), {sum, fork}); // 6: 12 channels
  AdaptiveAvgPool2d squeeze;
  squeeze.output_size = {1, 1};
  net.add(squeeze);                                        // 7
  net.add(conv(12, 12, 1));                                // 8
  Activation sigmoid;
  sigmoid.function = "sigmoid";
  const size_t gate = net.add(std::make_unique<Activation>(sigmoid));  // 9
  Mul mul;
  mul.gate = 0;
  net.add(std::make_unique<Mul>(mul), {gate, both});       // 10
  net.add(squeeze);                                        // 11
  net.add(Flatten{});                                      // 12
  Linear dense;
  dense.weight = torch::randn({5, 12});
  net.add(dense);                                          // 13
  net.set_input_shape({2, 6, 6});
  return net;
}

TEST(GraphMethods, GradientOfAHandBuiltGraphEqualsAutograd) {
  const Network net = bias_free_graph();
  const at::Tensor x = input_batch(net, 3, 1);
  const at::Tensor t = torch::tensor({0, 2, 4}, torch::kLong);
  at::Tensor input = x.clone().set_requires_grad(true);
  {
    torch::AutoGradMode enable(true);
    net.forward(input).gather(1, t.unsqueeze(1)).sum().backward();
  }
  const at::Tensor g = attribute("gradient", net, x, t);
  EXPECT_LE((g - input.grad()).norm().item<double>() / input.grad().norm().item<double>(), 1e-5);
}

TEST(GraphMethods, LrpConservesRelevanceOnABiasFreeGraph) {
  const Network net = bias_free_graph();
  const at::Tensor x = input_batch(net, 4, 2);
  test::expect_lrp_conserves(net, x, net.forward(x).argmax(1));
}

TEST(GraphMethods, DeepLiftSumsToTheDifferenceFromTheReference) {
  for (const char* file : {"residual_scripted.pt", "squeeze_excite_scripted.pt", "resnet18.pt",
                           "act_silu.pt", "act_gelu.pt", "act_elu.pt", "act_sigmoid.pt", "act_tanh.pt",
                           "act_softplus.pt", "act_leaky_relu.pt", "act_relu6.pt", "act_hardswish.pt"}) {
    const Network net = load(file);
    const at::Tensor x = input_batch(net, 3, 3);
    const at::Tensor t = torch::tensor({0, 1, 2}, torch::kLong);
    MethodSettings s;
    s.options.set("baseline", at::Tensor(input_batch(net, 1, 4)[0] * 0.5));
    const at::Tensor a = attribute("deeplift", net, x, t, s);
    const at::Tensor delta = target_logits(net, x, t) - target_logits(net, s.options.reference("baseline").expand_as(x), t);
    // Relative to the largest difference: an example whose difference is
    // near zero would otherwise measure rounding.
    EXPECT_LE((per_example_sum(a) - delta).abs().max().item<double>(), 1e-4 * delta.abs().max().item<double>())
        << file;
  }
}

TEST(GraphMethods, IntegratedGradientsIsCompleteOnGraphs) {
  for (const char* file : {"residual_scripted.pt", "squeeze_excite_scripted.pt", "act_silu.pt"}) {
    const Network net = load(file);
    const at::Tensor x = input_batch(net, 3, 5);
    const at::Tensor t = torch::tensor({0, 1, 2}, torch::kLong);
    MethodSettings s;
    s.options.set("steps", int64_t(256));
    const at::Tensor a = attribute("integrated-gradients", net, x, t, s);
    const at::Tensor delta = target_logits(net, x, t) - target_logits(net, torch::zeros_like(x), t);
    EXPECT_LE((per_example_sum(a) - delta).abs().max().item<double>(), 1e-2 * delta.abs().max().item<double>())
        << file;
  }
}

// Reference for guided backprop and deconvnet at ReLU6: relu6 forward, and
// a backward that rectifies the signal, through relu6's slope (guided) or
// alone (deconvnet).
struct ModifiedRelu6 : torch::autograd::Function<ModifiedRelu6> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& z, bool guided) {
    ctx->save_for_backward({z});
    ctx->saved_data["guided"] = guided;
    return torch::hardtanh(z, 0, 6);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    const at::Tensor z = ctx->get_saved_variables()[0];
    at::Tensor r = g[0].clamp_min(0);
    if (ctx->saved_data["guided"].toBool()) r = r * z.gt(0).logical_and(z.lt(6)).to(r.scalar_type());
    return {r, at::Tensor()};
  }
};

// Guided backprop and deconvnet change the ReLU family only: on a network
// of smooth activations they are the gradient; at ReLU6 they are autograd
// with the modified backward above.
TEST(GraphMethods, GuidedBackpropAndDeconvnetChangeOnlyTheReluFamily) {
  const Network smooth = load("act_tanh.pt");
  const at::Tensor x = input_batch(smooth, 3, 6) * 4 - 2;
  const at::Tensor t = torch::tensor({0, 1, 3}, torch::kLong);
  const at::Tensor g = attribute("gradient", smooth, x, t);
  EXPECT_TRUE(attribute("guided-backprop", smooth, x, t).equal(g));
  EXPECT_TRUE(attribute("deconvnet", smooth, x, t).equal(g));

  const Network relu6 = load("act_relu6.pt");
  const at::Tensor z = x * 4;
  for (const bool guided : {true, false}) {
    at::Tensor input = z.clone().set_requires_grad(true);
    {
      torch::AutoGradMode enable(true);
      at::Tensor h = input;
      for (size_t i = 0; i < relu6.size(); ++i) {
        h = relu6.layer(i).kind() == LayerKind::Activation ? ModifiedRelu6::apply(h, guided)
                                                             : relu6.layer(i).forward(h, nullptr);
      }
      h.gather(1, t.unsqueeze(1)).sum().backward();
    }
    const at::Tensor ours = attribute(guided ? "guided-backprop" : "deconvnet", relu6, z, t);
    EXPECT_LE((ours - input.grad()).norm().item<double>() / input.grad().norm().item<double>(), 1e-5) << guided;
    EXPECT_GT((ours - attribute("gradient", relu6, z, t)).norm().item<double>(), 1e-3 * ours.norm().item<double>());
  }
}

// The zoo's residual network trained on Fashion-MNIST: the laws hold on a
// graph whose logits are far apart, with BatchNorm folded into its
// convolutions the way the importer folds it.
TEST(GraphMethods, TheTrainedZooResnetKeepsEachMethodsLaw) {
  const test::TrainedModel& m = test::trained_model("resnet");
  const Network& net = m.network;
  const at::Tensor x = m.train_data->get(3000, 3004).inputs;
  const at::Tensor t = torch::tensor({0, 4, 7, 9}, torch::kLong);

  at::Tensor input = x.clone().set_requires_grad(true);
  {
    torch::AutoGradMode enable(true);
    net.forward(input).gather(1, t.unsqueeze(1)).sum().backward();
  }
  const at::Tensor g = attribute("gradient", net, x, t);
  const double gradient_error = (g - input.grad()).norm().item<double>() / input.grad().norm().item<double>();
  EXPECT_LE(gradient_error, 1e-5);

  MethodSettings reference;
  reference.options.set("baseline", at::Tensor(m.train_data->get(3010, 3011).inputs[0] * 0.5));
  const at::Tensor delta = target_logits(net, x, t) - target_logits(net, reference.options.reference("baseline").expand_as(x), t);
  const double deeplift_error = max_relative(per_example_sum(attribute("deeplift", net, x, t, reference)), delta);
  EXPECT_LE(deeplift_error, 1e-4);

  MethodSettings path;
  path.options.set("steps", int64_t(128));
  const at::Tensor from_zero = target_logits(net, x, t) - target_logits(net, torch::zeros_like(x), t);
  const double path_error =
      max_relative(per_example_sum(attribute("integrated-gradients", net, x, t, path)), from_zero);
  EXPECT_LE(path_error, 0.01);
  std::printf("zoo resnet: gradient against autograd %.1e, DeepLIFT summation %.1e, integrated gradients %.1e\n",
              gradient_error, deeplift_error, path_error);

  test::expect_lrp_conserves(without_biases(net), x, t);
}

TEST(GraphMethods, GradCamTakesTheLastConvolutionsBlockOfAResidualNetwork) {
  const Network net = load("resnet18.pt");
  const at::Tensor x = input_batch(net, 2, 7);
  const at::Tensor t = torch::tensor({3, 5}, torch::kLong);
  const at::Tensor cam = attribute("grad-cam", net, x, t);
  EXPECT_EQ(cam.sizes(), x.sizes());
  EXPECT_TRUE(cam.isfinite().all().item<bool>());
  EXPECT_GT(cam.abs().sum().item<double>(), 0);
}

TEST(GraphMethods, EveryMethodRunsOnTorchvisionGraphs) {
  for (const char* file : {"resnet18.pt", "mobilenet_v2.pt", "densenet121.pt", "squeeze_excite_scripted.pt"}) {
    const Network net = load(file);
    const at::Tensor x = input_batch(net, 2, 8);
    const at::Tensor t = torch::tensor({0, 1}, torch::kLong);
    MethodSettings s;
    s.options.set("steps", int64_t(2));
    s.options.set("samples", int64_t(2));
    s.options.set("patch", int64_t(x.size(2) / 2));
    s.options.set("stride", int64_t(x.size(2) / 2));
    s.input_bounds = {0, 1};
    for (const auto& m : registered_methods()) {
      // Methods with fitted parts have their own tests (tests/inverse, test_patterns).
      if (m.fitted != FittedPart::none) continue;
      const at::Tensor a = make_method(m.name, s, /*ignore_undeclared=*/true)->attribute(net, x, t);
      EXPECT_EQ(a.sizes(), x.sizes()) << m.name << " on " << file;
      EXPECT_TRUE(a.isfinite().all().item<bool>()) << m.name << " on " << file;
    }
  }
}

}  // namespace
}  // namespace mipin
