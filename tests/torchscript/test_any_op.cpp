// Any op a PyTorch user's model holds loads: ops with no layer of mipin's run
// as TorchScript runs them, the gradient family takes autograd's gradient
// through them, rule-based methods name them, and the import verifies every
// node against the module.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>

#include "mipin/attribution/registry.h"
#include "mipin/data/dataset.h"
#include "mipin/inverse/inverse.h"
#include "mipin/model/layers.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/error.h"
#include "support/test_support.h"

namespace mipin {
namespace {

double relative(const at::Tensor& a, const at::Tensor& reference) {
  const at::Tensor r = reference.to(at::kDouble);
  return (a.to(at::kDouble) - r).abs().max().item<double>() / std::max(1e-30, r.abs().max().item<double>());
}

at::Tensor input_for(const Network& network, int64_t batch, uint64_t seed) {
  std::vector<int64_t> shape{batch};
  for (auto d : network.input_shape()) shape.push_back(d);
  torch::manual_seed(seed);
  return torch::randn(shape);
}

// The gradient of each example's target logit, by autograd through the
// TorchScript module itself, in the given precision.
at::Tensor module_gradient(const std::string& path, const at::Tensor& x, const at::Tensor& targets,
                           at::ScalarType type) {
  // A recurrent model's trace fixes its initial state's dtype: its float64
  // twin was exported as such.
  const std::string twin = path.substr(0, path.size() - 3) + "_f64.pt";
  const bool has_twin = type == at::kDouble && std::ifstream(twin).good();
  torch::jit::Module module = torch::jit::load(has_twin ? twin : path);
  module.eval();
  // Module::to would convert integer buffers too (Swin's position index).
  for (const auto& t : module.parameters()) t.set_data(t.to(type));
  for (const auto& t : module.buffers()) {
    if (t.is_floating_point()) t.set_data(t.to(type));
  }
  const at::Tensor input = x.to(type).detach().requires_grad_(true);
  const at::Tensor logits = module.forward({input}).toTensor();
  const at::Tensor picked = logits.gather(1, targets.reshape({-1, 1})).sum();
  return torch::autograd::grad({picked}, {input})[0];
}

at::Tensor module_logits(const std::string& path, const at::Tensor& x) {
  torch::jit::Module module = torch::jit::load(path);
  module.eval();
  torch::NoGradGuard no_grad;
  return module.forward({x}).toTensor();
}

bool has_op_nodes(const Network& network) {
  for (size_t i = 0; i < network.size(); ++i) {
    if (network.layer(i).kind() == LayerKind::Op) return true;
  }
  return false;
}

struct AnyOpCase {
  std::string file;
  bool runs_ops;  // holds ops with no layer of mipin's
  // Traced under no_grad: PyTorch recorded fused inference ops, which
  // import rewrites into their parts and which autograd cannot
  // differentiate through the module: the reference is this twin, the same
  // weights traced without no_grad.
  std::string reference;
};
void PrintTo(const AnyOpCase& c, std::ostream* os) { *os << c.file; }

class AnyOp : public ::testing::TestWithParam<AnyOpCase> {};

// mipin's float32 gradient lies within max(3 x float32 autograd's own
// error, 1e-4) of float64 autograd, relative to the gradient's scale.
void expect_gradient_is_autograds(const AnyOpCase& c) {
  const std::string path = test::test_model(c.file);
  const ImportedModel model = load_torchscript(path);
  EXPECT_EQ(has_op_nodes(model.network), c.runs_ops) << c.file;
  const at::Tensor x = input_for(model.network, 3, 7);
  {
    torch::NoGradGuard no_grad;
    const at::Tensor ours = model.network.forward(x);
    EXPECT_LE(relative(ours, module_logits(path, x)), 1e-4) << c.file;
  }
  const at::Tensor targets = std::get<1>(module_logits(path, x).max(1));
  const std::string differentiable = c.reference.empty() ? path : test::test_model(c.reference);
  if (!c.reference.empty()) {
    const auto& notices = model.notices;
    EXPECT_TRUE(std::any_of(notices.begin(), notices.end(),
                            [](const std::string& n) { return n.find("rewrote the fused") != std::string::npos; }))
        << c.file;
  }
  const at::Tensor reference = module_gradient(differentiable, x, targets, at::kDouble);
  const double autograd_error = relative(module_gradient(differentiable, x, targets, at::kFloat), reference);
  const at::Tensor ours = make_method("gradient", {})->attribute(model.network, x, targets);
  const double error = relative(ours, reference);
  EXPECT_LE(error, std::max(3 * autograd_error, 1e-4))
      << c.file << ": float32 autograd is " << autograd_error << " from float64";
}

TEST_P(AnyOp, LoadsAndItsGradientIsAutogradsInFloat64) { expect_gradient_is_autograds(GetParam()); }

INSTANTIATE_TEST_SUITE_P(
    Models, AnyOp,
    ::testing::Values(AnyOpCase{"lstm.pt", true}, AnyOpCase{"gru.pt", true},
                      AnyOpCase{"transformer_encoder.pt", true, "transformer_encoder_grad.pt"},
                      AnyOpCase{"transformer_encoder_grad.pt", true}, AnyOpCase{"transformer_masked_grad.pt", true},
                      AnyOpCase{"conv1d.pt", true}, AnyOpCase{"layernorm_mlp.pt", true},
                      AnyOpCase{"vit_small.pt", true, "vit_small_grad.pt"}, AnyOpCase{"vit_small_grad.pt", true},
                      AnyOpCase{"swin_small.pt", true}, AnyOpCase{"swin_v2_small.pt", true},
                      AnyOpCase{"convnext_small.pt", true}, AnyOpCase{"shufflenet_v2_x0_5.pt", true},
                      AnyOpCase{"mish_mlp.pt", true}, AnyOpCase{"product_scripted.pt", true},
                      AnyOpCase{"resnet18.pt", false}),
    [](const auto& info) { return info.param.file.substr(0, info.param.file.find('.')); });

bool has_notice(const ImportedModel& model, const std::string& text) {
  return std::any_of(model.notices.begin(), model.notices.end(),
                     [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

// Each node's kind and op, in order, leaving out the dropouts.
std::vector<std::string> computing_nodes(const Network& network) {
  std::vector<std::string> out;
  for (size_t i = 0; i < network.size(); ++i) {
    const Layer& layer = network.layer(i);
    if (layer.kind() != LayerKind::Dropout) out.push_back(std::to_string(int(layer.kind())) + " " + layer.op());
  }
  return out;
}

// Traced with autograd on, nn.MultiheadAttention(batch_first=True) records
// its ops with the heads in the batch axis; import reads them as the same
// batch-first parts as the fused op it records under no_grad. The two
// traces of the same weights are then one network: the same nodes, and the
// same maps from methods whose rules depend on the graph (LRP's AttnLRP
// products, DeepLIFT's softmax), with no attention node left to the
// fallback.
TEST(AnyOp, AttentionTracedWithAutogradIsReadAsItsParts) {
  for (const std::string name : {"transformer_encoder", "vit_small"}) {
    const ImportedModel fused = load_torchscript(test::test_model(name + ".pt"));
    const ImportedModel traced = load_torchscript(test::test_model(name + "_grad.pt"));
    EXPECT_TRUE(has_notice(traced, "read 2 nn.MultiheadAttention")) << name;
    // (The trace with autograd keeps the encoder's eval-mode dropouts as
    // nodes; the fused layer has none.)
    EXPECT_EQ(computing_nodes(traced.network), computing_nodes(fused.network)) << name;
    const at::Tensor x = input_for(fused.network, 3, 11);
    const at::Tensor targets = torch::tensor({0, 1, 2});
    for (const char* method : {"lrp-epsilon", "deeplift", "gradient"}) {
      const auto m = make_method(method, {});
      EXPECT_EQ(m->fallback_nodes(traced.network).size(), m->fallback_nodes(fused.network).size())
          << name << " " << method;
      EXPECT_LE(relative(m->attribute(traced.network, x, targets), m->attribute(fused.network, x, targets)), 1e-5)
          << name << " " << method;
    }
  }
  // With a mask the pattern is another: the attention stays one op, and
  // import still verifies it against the module.
  const ImportedModel masked = load_torchscript(test::test_model("transformer_masked_grad.pt"));
  EXPECT_FALSE(has_notice(masked, "nn.MultiheadAttention"));
  EXPECT_LT(masked.network.size(), load_torchscript(test::test_model("transformer_encoder_grad.pt")).network.size());
}

// One classifier of every torchvision family, full size, random weights and
// BatchNorm statistics (scripts/export_test_models.py), traced under no_grad
// as users do; the transformer also without it. The gradient is taken
// through the network as the module computes it (BatchNorm unfolded, the
// module's convolution kernels: Network::as_module), so a ReLU input within
// rounding of its kink falls on the module's side and the float32 gradient
// is float32 autograd's. (Swin's attention mask is written in place through
// slices: an op's graph copies those writes.)
class TorchvisionZoo : public ::testing::TestWithParam<AnyOpCase> {};

TEST_P(TorchvisionZoo, LoadsAndItsGradientIsAutogradsInFloat64) { expect_gradient_is_autograds(GetParam()); }

INSTANTIATE_TEST_SUITE_P(
    Families, TorchvisionZoo,
    ::testing::Values(AnyOpCase{"tv_alexnet.pt", false}, AnyOpCase{"vgg11_bn.pt", false},
                      AnyOpCase{"vgg16.pt", false}, AnyOpCase{"resnet50.pt", false},
                      AnyOpCase{"tv_resnext50_32x4d.pt", false}, AnyOpCase{"tv_wide_resnet50_2.pt", false},
                      AnyOpCase{"densenet121.pt", false}, AnyOpCase{"tv_squeezenet1_1.pt", false},
                      AnyOpCase{"tv_inception_v3.pt", false}, AnyOpCase{"tv_googlenet.pt", false},
                      AnyOpCase{"shufflenet_v2_x0_5.pt", true}, AnyOpCase{"mobilenet_v2.pt", false},
                      AnyOpCase{"tv_mobilenet_v3_small.pt", false}, AnyOpCase{"tv_mnasnet0_5.pt", false},
                      AnyOpCase{"tv_efficientnet_b0.pt", false}, AnyOpCase{"tv_efficientnet_v2_s.pt", false},
                      AnyOpCase{"tv_regnet_x_400mf.pt", false}, AnyOpCase{"tv_regnet_y_400mf.pt", false},
                      AnyOpCase{"tv_convnext_tiny.pt", true}, AnyOpCase{"tv_vit_b_16.pt", true, "tv_vit_b_16_grad.pt"},
                      AnyOpCase{"tv_vit_b_16_grad.pt", true}, AnyOpCase{"tv_swin_t.pt", true},
                      AnyOpCase{"tv_swin_v2_t.pt", true}, AnyOpCase{"tv_maxvit_t.pt", true}),
    [](const auto& info) { return info.param.file.substr(0, info.param.file.find('.')); });

// On the recurrent models every gradient-family method is its definition
// computed with autograd through the module.
TEST(AnyOp, GradientFamilyOnRecurrentModelsIsItsAutogradDefinition) {
  for (const std::string file : {"lstm.pt", "gru.pt"}) {
    const std::string path = test::test_model(file);
    const ImportedModel model = load_torchscript(path);
    const at::Tensor x = input_for(model.network, 4, 11);
    const at::Tensor targets = torch::tensor({0, 1, 2, 1}, torch::kLong);
    const at::Tensor g = module_gradient(path, x, targets, at::kFloat);
    EXPECT_LE(relative(make_method("gradient", {})->attribute(model.network, x, targets), g), 1e-5) << file;
    EXPECT_LE(relative(make_method("input-x-gradient", {})->attribute(model.network, x, targets), x * g), 1e-5)
        << file;
    EXPECT_LE(relative(make_method("gradient-x-sign", {})->attribute(model.network, x, targets), torch::sign(x) * g),
              1e-5)
        << file;
    // Integrated gradients, 8 midpoints from a zero baseline.
    MethodSettings settings;
    settings.options.set("steps", int64_t{8});
    at::Tensor sum = torch::zeros_like(x);
    for (int i = 0; i < 8; ++i) sum += module_gradient(path, (i + 0.5) / 8.0 * x, targets, at::kFloat) / 8.0;
    EXPECT_LE(relative(make_method("integrated-gradients", settings)->attribute(model.network, x, targets), x * sum),
              1e-5)
        << file;
    // SmoothGrad, 6 noisy copies in one pass, its noise drawn as it draws it.
    MethodSettings smooth;
    smooth.options.set("samples", int64_t{6});
    smooth.options.set("noise", 0.2);
    smooth.options.set("seed", int64_t{9});
    smooth.options.set("internal_batch", int64_t{64});
    {
      auto gen = at::detail::createCPUGenerator(9);
      const at::Tensor range = std::get<0>(x.flatten(1).max(1)) - std::get<0>(x.flatten(1).min(1));
      const at::Tensor repeated = x.repeat_interleave(6, 0);
      const at::Tensor noisy =
          repeated + torch::randn(repeated.sizes(), gen) * (range * 0.2).view({-1, 1, 1}).repeat_interleave(6, 0);
      const at::Tensor mean = module_gradient(path, noisy, targets.repeat_interleave(6, 0), at::kFloat)
                                  .view({x.size(0), 6, x.size(1), x.size(2)})
                                  .mean(1);
      EXPECT_LE(relative(make_method("smoothgrad", smooth)->attribute(model.network, x, targets), mean), 1e-5)
          << file;
    }
    // The gradient needs no fallback: autograd's product is its rule.
    EXPECT_TRUE(make_method("gradient", {})->fallback_nodes(model.network).empty());
    EXPECT_TRUE(make_method("integrated-gradients", {})->fallback_nodes(model.network).empty());
  }
}

// Rule-based methods take the gradient's rule at the recurrent node and say
// so; ops that only move values (select, transpose) have it as their own
// rule and are not named.
TEST(AnyOp, RuleBasedMethodsNameTheNodesThatTookTheFallback) {
  const ImportedModel model = load_torchscript(test::test_model("lstm.pt"));
  std::vector<size_t> op_nodes, structural;
  for (size_t i = 0; i < model.network.size(); ++i) {
    if (model.network.layer(i).kind() != LayerKind::Op) continue;
    (model.network.layer(i).only_moves_values() ? structural : op_nodes).push_back(i);
  }
  ASSERT_FALSE(op_nodes.empty());
  const at::Tensor x = input_for(model.network, 2, 3);
  const at::Tensor targets = torch::tensor({0, 2}, torch::kLong);
  for (const std::string method : {"lrp-epsilon", "deeplift", "guided-backprop", "deconvnet"}) {
    const auto m = make_method(method, {});
    const std::vector<size_t> fallback = m->fallback_nodes(model.network);
    for (size_t i : op_nodes) {
      EXPECT_NE(std::find(fallback.begin(), fallback.end(), i), fallback.end()) << method << " node " << i;
    }
    for (size_t i : structural) {
      EXPECT_EQ(std::find(fallback.begin(), fallback.end(), i), fallback.end()) << method << " node " << i;
    }
    const at::Tensor map = m->attribute(model.network, x, targets);
    EXPECT_EQ(map.sizes(), x.sizes()) << method;
    EXPECT_TRUE(map.isfinite().all().item<bool>()) << method;
  }
  // MIP-IN fits the inverse around the recurrent node and takes the
  // gradient's rule there.
  torch::manual_seed(5);
  const auto data = make_tensor_dataset("sequences", torch::randn({48, 10, 6}), torch::randint(0, 3, {48}),
                                        Normalization{}, 3);
  const Inverse inverse = fit_inverse(model.network, *data, InverseOptions{}.with_batch_size(16));
  MethodSettings with_inverse;
  with_inverse.inverse = &inverse;
  const auto mipin = make_method("mipin", with_inverse);
  const std::vector<size_t> fallback = mipin->fallback_nodes(model.network);
  for (size_t i : op_nodes) EXPECT_NE(std::find(fallback.begin(), fallback.end(), i), fallback.end()) << i;
  EXPECT_TRUE(mipin->attribute(model.network, x, targets).isfinite().all().item<bool>());
  const ImportedModel folded_cnn = load_torchscript(test::test_model("zoo_cnn.pt"));
  EXPECT_TRUE(make_method("lrp-epsilon", {})->fallback_nodes(folded_cnn.network).empty());
}

// An op's weights (an LSTM's list of them) belong to its node: they are
// in the fingerprint, and describe() names them without printing them.
TEST(AnyOp, AnOpsWeightsAreTheNodesOwn) {
  ImportedModel model = load_torchscript(test::test_model("lstm.pt"));
  const Layer& lstm = model.network.layer(0);
  ASSERT_EQ(lstm.kind(), LayerKind::Op);
  EXPECT_EQ(lstm.tensors().size(), 8u);
  EXPECT_NE(lstm.describe().find("8 tensors"), std::string::npos) << lstm.describe();
  const std::string before = model.network.fingerprint();
  {
    torch::NoGradGuard no_grad;
    model.network.layer(0).tensors()[0].tensor.add_(1.0);
  }
  EXPECT_NE(model.network.fingerprint(), before);
}

// The import's notices name the ops run as TorchScript runs them.
TEST(AnyOp, ImportNoticesNameTheOpsRunByTorchScript) {
  const ImportedModel model = load_torchscript(test::test_model("mish_mlp.pt"));
  bool named = false;
  for (const auto& n : model.notices) named = named || n.find("aten::mish") != std::string::npos;
  EXPECT_TRUE(named);
}

// A wrong mapping is caught: one node's weight changed after the mapping
// makes the import fail, naming that node with both values.
TEST(AnyOp, VerifiedImportCatchesAWrongMapping) {
  for (const std::string file : {"zoo_cnn.pt", "vit_small.pt"}) {
    size_t changed = 0;
    ImportOptions options;
    options.after_mapping = [&changed](Network& network) {
      for (size_t i = 0; i < network.size(); ++i) {
        if (AffineLayer* affine = as_affine(network.layer(i))) {
          torch::NoGradGuard no_grad;
          affine->weight.mul_(1.5);
          changed = i;
          return;
        }
      }
    };
    try {
      load_torchscript(test::test_model(file), options);
      ADD_FAILURE() << file << ": a changed node was not caught";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("differs from the TorchScript module at node " + std::to_string(changed) + " "),
                std::string::npos)
          << what;
      EXPECT_NE(what.find("mipin computes"), std::string::npos) << what;
      EXPECT_NE(what.find("TorchScript"), std::string::npos) << what;
    }
    // Unchanged, the same model loads.
    EXPECT_NO_THROW(load_torchscript(test::test_model(file)));
  }
}

// What mipin still refuses: control flow decided by the input's values.
TEST(AnyOp, ControlFlowOnTheInputIsRefusedByName) {
  test::TempDir dir;
  const std::string path = dir.file("branching.pt");
  torch::jit::Module module("Branching");
  module.define(R"(
def forward(self, x):
    if bool(x.sum() > 0):
        return x * 2.0
    return x
)");
  module.save(path);
  try {
    load_torchscript(path, ImportOptions().with_input_shape({4}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("control flow"), std::string::npos) << e.what();
  }
}

// A Linear applied to each token of [N, tokens, F] is mipin's own Linear, so
// the rule-based methods keep their laws there: on a bias-free token MLP
// LRP-epsilon conserves the target logit, and the class token's select (a
// scatter) has its transpose for every method's rule: no fallback.
TEST(AnyOp, ALinearAppliedPerTokenIsALinearLayer) {
  test::TempDir dir;
  const std::string path = dir.file("tokens.pt");
  torch::jit::Module module("TokenMlp");
  torch::manual_seed(3);
  module.register_parameter("w1", torch::randn({8, 6}) * 0.5, false);
  module.register_parameter("w2", torch::randn({3, 8}) * 0.5, false);
  module.define(R"(
def forward(self, x):
    h = torch.relu(torch.linear(x, self.w1, None))
    return torch.linear(h, self.w2, None).select(1, 0)
)");
  module.save(path);
  const ImportedModel m = load_torchscript(path, ImportOptions().with_input_shape({4, 6}));
  ASSERT_EQ(m.network.size(), 4u);
  EXPECT_EQ(m.network.layer(0).kind(), LayerKind::Linear);
  EXPECT_EQ(m.network.layer(2).kind(), LayerKind::Linear);
  EXPECT_EQ(m.network.shapes({4, 6})[1], (std::vector<int64_t>{4, 8}));
  const at::Tensor x = input_for(m.network, 5, 1);
  const at::Tensor logits = m.network.forward(x);
  const at::Tensor targets = logits.argmax(1);
  EXPECT_LE(relative(make_method("gradient", {})->attribute(m.network, x, targets),
                     module_gradient(path, x, targets, at::kDouble)),
            1e-5);
  const auto lrp = make_method("lrp-epsilon", {});
  EXPECT_EQ(m.network.layer(3).op(), "aten::select");
  EXPECT_TRUE(lrp->fallback_nodes(m.network).empty());
  const at::Tensor relevance = lrp->attribute(m.network, x, targets).to(at::kDouble);
  const at::Tensor target_logits = logits.gather(1, targets.unsqueeze(1)).squeeze(1).to(at::kDouble);
  EXPECT_LE((relevance.sum({1, 2}) - target_logits).abs().max().item<double>(),
            1e-4 * target_logits.abs().max().item<double>());
}

}  // namespace
}  // namespace mipin
