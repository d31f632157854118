// The rule engine's gradient against autograd through the TorchScript module
// itself: an independent reference for every layer type's transpose.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "mipin/attribution/engine.h"
#include "mipin/attribution/gradient.h"
#include "mipin/model/canonize.h"
#include "mipin/model/layers.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/error.h"
#include "support/test_support.h"

namespace mipin {
namespace {

at::Tensor autograd_gradient(const std::string& path, const at::Tensor& x, const at::Tensor& targets) {
  torch::jit::Module module = torch::jit::load(path);
  module.eval();
  module.to(x.scalar_type());
  at::Tensor input = x.clone().set_requires_grad(true);
  at::Tensor out = module.forward({input}).toTensor();
  const bool is_log_softmax = out.le(0).all().item<bool>() &&
                              out.exp().sum(1).sub(1).abs().max().item<double>() < 1e-4;
  EXPECT_FALSE(is_log_softmax) << "reference needs a model that returns logits";
  out.gather(1, targets.unsqueeze(1)).sum().backward();
  return input.grad();
}

double gradient_error(const std::string& file, at::ScalarType type) {
  const std::string path = test::test_model(file);
  // Converted before BatchNorm is folded, as import would fold it, so that
  // the folded weights carry no float32 rounding into a float64 check.
  ImportedModel m = load_torchscript(path, ImportOptions{}.with_fold_batchnorm(false));
  m.network.to(type);
  fold_batchnorm(m.network);
  std::vector<int64_t> shape{3};
  for (auto d : m.network.input_shape()) shape.push_back(d);
  torch::manual_seed(5);
  const at::Tensor x = torch::randn(shape).to(type);
  const at::Tensor targets = torch::tensor({0, 3, 1}, torch::kLong) % m.network.num_classes();
  const at::Tensor ours = Gradient().attribute(m.network, x, targets);
  EXPECT_EQ(ours.scalar_type(), type);
  const at::Tensor reference = autograd_gradient(path, x, targets);
  return (ours - reference).norm().item<double>() / reference.norm().item<double>();
}

// In float64 on both sides the comparison is exact up to rounding. In
// float32 a ReLU whose input lies within rounding of its kink can switch
// between two forward passes that take different kernels (and BatchNorm
// folded or not); on deep random networks that moves the gradient itself
// (measured: 1e-3 on resnet50, 1e-2 on mobilenet_v2).
class GradientParity : public ::testing::TestWithParam<std::string> {};

TEST_P(GradientParity, EqualsAutogradOfTheTorchScriptModule) {
  EXPECT_LE(gradient_error(GetParam(), at::kDouble), 1e-5) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(ExportedModels, GradientParity,
                         ::testing::Values("zoo_cnn.pt", "zoo_mlp.pt", "zoo_vgg_mini.pt",
                                           "zoo_cnn_scripted.pt", "resnet18.pt", "resnet50.pt",
                                           "mobilenet_v2.pt", "densenet121.pt", "residual_scripted.pt",
                                           "squeeze_excite_scripted.pt", "act_leaky_relu.pt", "act_elu.pt",
                                           "act_gelu.pt", "act_gelu_tanh.pt", "act_silu.pt", "act_sigmoid.pt",
                                           "act_tanh.pt", "act_softplus.pt", "act_hardtanh.pt", "act_relu6.pt",
                                           "act_hardsigmoid.pt", "act_hardswish.pt"),
                         [](const auto& info) { return info.param.substr(0, info.param.find('.')); });

// Autograd through the network's own layers with each ReLU replaced by
// its mask in the given record: the gradient at that activation pattern.
// A float32 forward pass on other kernels (the module's, with BatchNorm
// unfolded) may put a ReLU input that lies within rounding of zero on the
// other side, and on a deep random network one such flip moves the whole
// gradient (2e-3 on densenet121); at one pattern the comparison is exact
// up to rounding.
at::Tensor autograd_at_pattern(const Network& net, const ForwardRecord& record, const at::Tensor& x,
                               const at::Tensor& targets) {
  torch::AutoGradMode enable(true);
  at::Tensor input = x.clone().set_requires_grad(true);
  std::vector<at::Tensor> values{input};
  for (size_t i = 0; i < net.size(); ++i) {
    std::vector<at::Tensor> in;
    for (size_t v : net.inputs(i)) in.push_back(values[v]);
    const bool relu = net.layer(i).kind() == LayerKind::ReLU;
    values.push_back(relu ? in[0] * (record.layers[i].output > 0).to(in[0].scalar_type())
                          : net.layer(i).forward_of(in, nullptr));
  }
  values.back().gather(1, targets.unsqueeze(1)).sum().backward();
  return input.grad();
}

// The float32 kernels (oneDNN convolutions, the fused gates and pooling
// loops) against float32 autograd at the activation pattern of the same
// forward pass.
TEST(Gradient, Float32KernelsEqualAutograd) {
  for (const char* file : {"zoo_cnn.pt", "zoo_mlp.pt", "zoo_vgg_mini.pt", "zoo_cnn_scripted.pt", "resnet18.pt",
                           "densenet121.pt", "residual_scripted.pt", "squeeze_excite_scripted.pt"}) {
    const ImportedModel m = load_torchscript(test::test_model(file));
    std::vector<int64_t> shape{3};
    for (auto d : m.network.input_shape()) shape.push_back(d);
    torch::manual_seed(5);
    const at::Tensor x = torch::randn(shape);
    const at::Tensor targets = torch::tensor({0, 3, 1}, torch::kLong) % m.network.num_classes();
    ForwardRecord record;
    const at::Tensor ours = backward_from_targets(m.network, x, targets, gradient_composite(), TopValues::unit(),
                                                  0, &record);
    const at::Tensor reference = autograd_at_pattern(m.network, record, x, targets);
    EXPECT_LE((ours - reference).norm().item<double>() / reference.norm().item<double>(), 1e-5) << file;
    EXPECT_TRUE(ours.is_contiguous()) << file << ": attributions come back in the plain layout";
  }
}

TEST(Gradient, StridedGroupedAndAveragePooledLayers) {
  // view_cnn ends in log_softmax, which import drops: compare with autograd
  // of the imported network's own forward (LibTorch ops, not our rules).
  const ImportedModel m = load_torchscript(test::test_model("view_cnn.pt"));
  torch::manual_seed(6);
  const at::Tensor x = torch::randn({2, 3, 16, 16});
  const at::Tensor targets = torch::tensor({4, 2}, torch::kLong);
  at::Tensor input = x.clone().set_requires_grad(true);
  {
    torch::AutoGradMode enable(true);
    m.network.forward(input).gather(1, targets.unsqueeze(1)).sum().backward();
  }
  const at::Tensor ours = Gradient().attribute(m.network, x, targets);
  EXPECT_LE((ours - input.grad()).norm().item<double>() / input.grad().norm().item<double>(), 1e-5);
}

TEST(Engine, PartialPropagationAndSignalsAreConsistent) {
  const ImportedModel m = load_torchscript(test::test_model("zoo_cnn.pt"));
  const at::Tensor x = torch::randn({2, 1, 28, 28});
  ForwardRecord record;
  const at::Tensor logits = m.network.forward(x, &record);
  const Composite c = gradient_composite();
  std::vector<at::Tensor> signals;
  const at::Tensor full = propagate(m.network, record, c, logits, 0, &signals);
  ASSERT_EQ(signals.size(), m.network.size() + 1);
  EXPECT_TRUE(signals[0].equal(full));
  for (size_t l = 0; l < m.network.size(); ++l) {
    EXPECT_EQ(signals[l].sizes(), record.layers[l].input.sizes()) << l;
    EXPECT_TRUE(propagate(m.network, record, c, logits, l).equal(signals[l])) << l;
  }
  EXPECT_THROW(propagate(m.network, ForwardRecord{}, c, logits), Error);
  // A composite with no rules takes autograd's product at every node: the
  // gradient, with every node reported as a fallback.
  Composite empty("nothing");
  const at::Tensor fallback = propagate(m.network, record, empty, logits);
  EXPECT_LE((fallback - signals[0]).abs().max().item<double>(), 1e-5 * signals[0].abs().max().item<double>());
  EXPECT_EQ(empty.fallback_nodes(m.network).size(), m.network.size());
  EXPECT_TRUE(c.fallback_nodes(m.network).empty());
}

// On graphs the engine sums a fork's signals in place where it holds the
// sum alone. An add hands one signal to both its inputs, and asking for the
// signals keeps every one: an in-place sum into a shared tensor would show
// as a partial propagation that differs from the kept signal, or as a
// changed top signal.
TEST(Engine, ForkSumsLeaveSharedSignalsAlone) {
  for (const char* file : {"residual_scripted.pt", "resnet18.pt", "densenet121.pt"}) {
    const ImportedModel m = load_torchscript(test::test_model(file));
    std::vector<int64_t> shape{2};
    for (auto d : m.network.input_shape()) shape.push_back(d);
    torch::manual_seed(3);
    const at::Tensor x = torch::randn(shape);
    ForwardRecord record;
    const at::Tensor logits = m.network.forward(x, &record);
    const at::Tensor top = logits.clone();
    const Composite c = gradient_composite();
    std::vector<at::Tensor> signals;
    const at::Tensor full = propagate(m.network, record, c, logits, 0, &signals);
    EXPECT_TRUE(logits.equal(top)) << file;
    EXPECT_TRUE(propagate(m.network, record, c, logits).equal(full)) << file;
    size_t forks = 0;
    for (size_t l = 0; l < m.network.size(); ++l) {
      if (m.network.readers(l) < 2) continue;
      ++forks;
      const at::Tensor partial = propagate(m.network, record, c, logits, l);
      EXPECT_LE((partial - signals[l]).abs().max().item<double>(), 1e-5 * signals[l].abs().max().item<double>())
          << file << ", value " << l;
    }
    EXPECT_GT(forks, 0u) << file << " has forks";
    EXPECT_TRUE(logits.equal(top)) << file;
  }
}

// A pair rule stands for two single rules; replacing either (as guided
// backprop replaces the ReLU's) must drop it, or the pair's old gate would
// run where the new rule should.
TEST(Engine, PairRulesFollowTheSingleRulesTheyStandFor) {
  const ImportedModel m = load_torchscript(test::test_model("zoo_cnn.pt"));
  const at::Tensor x = torch::randn({2, 1, 28, 28});
  ForwardRecord record;
  const at::Tensor logits = m.network.forward(x, &record);
  const auto pass = std::make_shared<FunctionRule>([](const RuleContext&, const at::Tensor& s) { return s; });
  size_t relu_under_pool = 0;
  for (size_t l = 1; l < m.network.size(); ++l) {
    if (m.network.layer(l).kind() == LayerKind::MaxPool2d && m.network.layer(l - 1).kind() == LayerKind::ReLU) {
      relu_under_pool = l - 1;
      break;
    }
  }
  ASSERT_GT(relu_under_pool, 0u) << "the zoo CNN has a ReLU under a max pooling";
  Composite by_kind = gradient_composite();
  by_kind.with(LayerKind::ReLU, pass);
  Composite by_position = gradient_composite();
  by_position.with_layer(relu_under_pool, pass);
  for (const Composite* c : {&by_kind, &by_position}) {
    std::vector<at::Tensor> signals;  // asking for them runs every layer's own rule
    const at::Tensor single = propagate(m.network, record, *c, logits, 0, &signals);
    EXPECT_TRUE(propagate(m.network, record, *c, logits).equal(single));
    EXPECT_FALSE(single.equal(propagate(m.network, record, gradient_composite(), logits)));
  }
}

}  // namespace
}  // namespace mipin
