// Import parity: the Network built from a TorchScript file computes the same
// logits as the TorchScript module itself.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "mipin/model/layers.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/error.h"
#include "support/archive_copy.h"
#include "support/test_support.h"

namespace mipin {
namespace {

std::map<LayerKind, int> count_kinds(const Network& net) {
  std::map<LayerKind, int> counts;
  for (size_t i = 0; i < net.size(); ++i) counts[net.layer(i).kind()]++;
  return counts;
}

// Max |a - b| relative to the logits' scale (max |b|).
double relative_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-12, b.abs().max().item<double>());
}

at::Tensor module_logits(const std::string& path, const at::Tensor& x) {
  torch::jit::Module module = torch::jit::load(path);
  module.eval();
  torch::NoGradGuard no_grad;
  return module.forward({x}).toTensor();
}

struct ParityCase {
  std::string file;
  int64_t batch;
  bool has_softmax;
};

// Names the case by its file in test listings.
void PrintTo(const ParityCase& c, std::ostream* os) { *os << c.file; }

class ImportParity : public ::testing::TestWithParam<ParityCase> {};

TEST_P(ImportParity, NetworkMatchesTorchScriptModule) {
  const ParityCase c = GetParam();
  const std::string path = test::test_model(c.file);
  const ImportedModel imported = load_torchscript(path);
  ASSERT_FALSE(imported.network.input_shape().empty());
  std::vector<int64_t> shape{c.batch};
  for (auto d : imported.network.input_shape()) shape.push_back(d);
  torch::manual_seed(42);
  const at::Tensor x = torch::randn(shape);
  at::Tensor expected = module_logits(path, x);
  torch::NoGradGuard no_grad;
  const at::Tensor ours = imported.network.forward(x);
  if (c.has_softmax) {
    // mipin explains logits: the dropped softmax is the only difference.
    const bool log = expected.le(0).all().item<bool>();
    expected = log ? expected : expected.log();
    ASSERT_EQ(imported.notices.empty(), false);
    const at::Tensor ours_log = torch::log_softmax(ours, 1);
    EXPECT_LE(relative_difference(ours_log, expected), 1e-4) << c.file;
  } else {
    EXPECT_LE(relative_difference(ours, expected), 1e-4) << c.file;
  }
}

INSTANTIATE_TEST_SUITE_P(
    ExportedModels, ImportParity,
    ::testing::Values(ParityCase{"zoo_cnn.pt", 8, false}, ParityCase{"zoo_cnn_scripted.pt", 8, false},
                      ParityCase{"zoo_mlp.pt", 8, false}, ParityCase{"zoo_vgg_mini.pt", 8, false},
                      ParityCase{"mlp_scripted.pt", 8, true}, ParityCase{"view_cnn.pt", 4, true},
                      ParityCase{"view_cnn_scripted.pt", 4, true}, ParityCase{"vgg16.pt", 2, false},
                      ParityCase{"vgg11_bn.pt", 2, false}, ParityCase{"resnet18.pt", 2, false},
                      ParityCase{"resnet50.pt", 2, false}, ParityCase{"mobilenet_v2.pt", 2, false},
                      ParityCase{"densenet121.pt", 2, false}, ParityCase{"residual_scripted.pt", 4, false},
                      ParityCase{"squeeze_excite_scripted.pt", 4, false}, ParityCase{"act_leaky_relu.pt", 8, false},
                      ParityCase{"act_elu.pt", 8, false}, ParityCase{"act_gelu.pt", 8, false},
                      ParityCase{"act_gelu_tanh.pt", 8, false}, ParityCase{"act_silu.pt", 8, false},
                      ParityCase{"act_sigmoid.pt", 8, false}, ParityCase{"act_tanh.pt", 8, false},
                      ParityCase{"act_softplus.pt", 8, false}, ParityCase{"act_hardtanh.pt", 8, false},
                      ParityCase{"act_relu6.pt", 8, false}, ParityCase{"act_hardsigmoid.pt", 8, false},
                      ParityCase{"act_hardswish.pt", 8, false}),
    [](const auto& info) {
      std::string name = info.param.file.substr(0, info.param.file.find('.'));
      return name;
    });

TEST(Import, Vgg16HasThirteenConvolutionsAndThreeLinearLayers) {
  const ImportedModel m = load_torchscript(test::test_model("vgg16.pt"));
  auto counts = count_kinds(m.network);
  EXPECT_EQ(counts[LayerKind::Conv2d], 13);
  EXPECT_EQ(counts[LayerKind::Linear], 3);
  EXPECT_EQ(counts[LayerKind::MaxPool2d], 5);
  EXPECT_EQ(m.network.num_classes(), 1000);
  EXPECT_EQ(m.network.input_shape(), (std::vector<int64_t>{3, 224, 224}));
}

TEST(Import, Vgg11BatchNormIsFoldedAway) {
  const ImportedModel m = load_torchscript(test::test_model("vgg11_bn.pt"));
  auto counts = count_kinds(m.network);
  EXPECT_EQ(counts[LayerKind::BatchNorm2d], 0);
  EXPECT_EQ(counts[LayerKind::Conv2d], 8);
  // Without folding the same file keeps its 8 BatchNorm2d layers.
  const ImportedModel raw =
      load_torchscript(test::test_model("vgg11_bn.pt"), ImportOptions{}.with_fold_batchnorm(false));
  EXPECT_EQ(count_kinds(raw.network)[LayerKind::BatchNorm2d], 8);
}

TEST(Import, HandWrittenForwardMapsEveryLayerType) {
  const ImportedModel m = load_torchscript(test::test_model("view_cnn.pt"));
  auto counts = count_kinds(m.network);
  EXPECT_EQ(counts[LayerKind::AvgPool2d], 1);
  EXPECT_EQ(counts[LayerKind::AdaptiveAvgPool2d], 1);
  EXPECT_EQ(counts[LayerKind::Flatten], 1);
  const auto& conv2 = static_cast<const Conv2d&>(m.network.layer(2));
  EXPECT_EQ(conv2.groups, 2);
  EXPECT_EQ(conv2.dilation, (Pair{2, 2}));
  EXPECT_FALSE(conv2.bias.defined());
  const auto& conv1 = static_cast<const Conv2d&>(m.network.layer(0));
  EXPECT_EQ(conv1.stride, (Pair{2, 2}));
}

// An op with no layer of mipin's is run as TorchScript runs it, and the
// import names it; a product of two computed tensors (neither a gate) too.
TEST(Import, OpWithoutALayerRunsAsTorchScriptAndIsNamed) {
  const ImportedModel mish = load_torchscript(test::test_model("mish_mlp.pt"));
  EXPECT_EQ(count_kinds(mish.network)[LayerKind::Op], 1);
  const ImportedModel product = load_torchscript(test::test_model("product_scripted.pt"));
  EXPECT_EQ(count_kinds(product.network)[LayerKind::Mul], 0);
  EXPECT_EQ(count_kinds(product.network)[LayerKind::Op], 1);
}

// TorchScript code that does not compile is reported with the compiler's
// reason, also when the records that map it back to Python are corrupt
// (LibTorch's message for it would read them and end the process).
TEST(Import, CodeThatDoesNotCompileIsReportedWithItsReason) {
  test::TempDir dir;
  for (const bool corrupt_debug : {false, true}) {
    const std::string out = dir.file(corrupt_debug ? "corrupt-debug.pt" : "plain.pt");
    const auto made = test::run_python(
        test::python_archive_copier(test::test_model("mlp_scripted.pt")) +
        "def break_code(n, d):\n"
        "    if n.endswith('.py'):\n"
        "        d = d.replace(b'torch.relu(', b'torch.no_such_op(')\n"
        "    if " + std::string(corrupt_debug ? "True" : "False") + " and n.endswith('.debug_pkl'):\n"
        "        d = b'\\x80\\x02s' + d[3:]\n"
        "    return d\n"
        "copy('" + out + "', change=break_code)\n");
    ASSERT_EQ(made.exit_code, 0) << made.err;
    const std::string message = test::error_of([&] { load_torchscript(out); });
    EXPECT_NE(message.find("does not compile"), std::string::npos) << message;
    EXPECT_NE(message.find("no_such_op"), std::string::npos) << message;
  }
}

// The graphs map as they are: one node per op, the wiring kept.
TEST(Import, ResidualBranchingAndGatedGraphsKeepTheirStructure) {
  auto counts = [](const std::string& file) { return count_kinds(load_torchscript(test::test_model(file)).network); };
  auto resnet18 = counts("resnet18.pt");
  EXPECT_EQ(resnet18[LayerKind::Add], 8);
  EXPECT_EQ(resnet18[LayerKind::Conv2d], 20);      // 17 plus 3 projections
  EXPECT_EQ(resnet18[LayerKind::BatchNorm2d], 0);  // every one folded into its convolution
  auto resnet50 = counts("resnet50.pt");
  EXPECT_EQ(resnet50[LayerKind::Add], 16);
  EXPECT_EQ(resnet50[LayerKind::Conv2d], 53);
  auto mobilenet = counts("mobilenet_v2.pt");
  EXPECT_EQ(mobilenet[LayerKind::Add], 10);
  EXPECT_EQ(mobilenet[LayerKind::Activation], 35);  // ReLU6
  EXPECT_EQ(mobilenet[LayerKind::BatchNorm2d], 0);
  // DenseNet's BatchNorms after a concatenation cannot fold: per-channel
  // affine nodes; those right after a convolution fold.
  auto densenet = counts("densenet121.pt");
  EXPECT_EQ(densenet[LayerKind::Concat], 58);
  EXPECT_EQ(densenet[LayerKind::BatchNorm2d], 62);
  auto se = counts("squeeze_excite_scripted.pt");
  EXPECT_EQ(se[LayerKind::Mul], 1);
  EXPECT_EQ(se[LayerKind::Activation], 3);  // silu, silu, sigmoid
  EXPECT_EQ(se[LayerKind::Reshape] + se[LayerKind::Flatten], 1);
  // The gate is the sigmoid's output, whatever the operand order.
  const ImportedModel m = load_torchscript(test::test_model("squeeze_excite_scripted.pt"));
  for (size_t i = 0; i < m.network.size(); ++i) {
    if (m.network.layer(i).kind() != LayerKind::Mul) continue;
    const auto& mul = static_cast<const Mul&>(m.network.layer(i));
    ASSERT_GE(mul.gate, 0);
    const size_t gate = m.network.inputs(i)[static_cast<size_t>(mul.gate)];
    EXPECT_EQ(static_cast<const Activation&>(m.network.layer(gate - 1)).function, "sigmoid");
  }
}

TEST(Export, SavedGraphReloadsWithSameLogits) {
  test::TempDir dir;
  for (const char* file : {"residual_scripted.pt", "squeeze_excite_scripted.pt", "act_gelu_tanh.pt",
                           "act_softplus.pt", "act_hardtanh.pt"}) {
    const ImportedModel m = load_torchscript(test::test_model(file), ImportOptions{}.with_fold_batchnorm(false));
    const std::string out = dir.file(std::string("resaved_") + file);
    ModelMetadata meta;
    meta.input_shape = m.network.input_shape();
    save_torchscript(m.network, out, meta);
    std::vector<int64_t> shape{3};
    for (auto d : m.network.input_shape()) shape.push_back(d);
    torch::manual_seed(3);
    const at::Tensor x = torch::randn(shape);
    torch::NoGradGuard no_grad;
    const at::Tensor expected = m.network.forward(x);
    const ImportedModel again = load_torchscript(out, ImportOptions{}.with_fold_batchnorm(false));
    EXPECT_EQ(again.network.fingerprint(), m.network.fingerprint()) << file;
    EXPECT_LE(relative_difference(again.network.forward(x), expected), 1e-6) << file;
    EXPECT_LE(relative_difference(module_logits(out, x), expected), 1e-6) << file;
  }
}

TEST(Import, InputShapeOverrideIsValidated) {
  const std::string path = test::test_model("zoo_cnn.pt");
  for (std::vector<int64_t> wrong : {std::vector<int64_t>{3, 28, 28}, {1, 32, 32}}) {
    try {
      load_torchscript(path, ImportOptions{}.with_input_shape(wrong));
      FAIL() << "expected an error for input shape " << shape_string(wrong);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cannot take inputs of shape"), std::string::npos)
          << e.what();
    }
  }
  const ImportedModel m = load_torchscript(path);
  try {
    m.network.forward(torch::randn({1, 1, 32, 32}));
    FAIL() << "expected an input shape error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("input shape mismatch"), std::string::npos) << e.what();
  }
}

TEST(Export, SavedNetworkReloadsWithSameLogitsInMipinAndPython) {
  test::TempDir dir;
  const ImportedModel m = load_torchscript(test::test_model("zoo_vgg_mini.pt"),
                                           ImportOptions{}.with_fold_batchnorm(false));
  const std::string out = dir.file("resaved.pt");
  ModelMetadata meta;
  meta.input_shape = m.network.input_shape();
  save_torchscript(m.network, out, meta);
  torch::manual_seed(3);
  const at::Tensor x = torch::randn({4, 1, 28, 28});
  torch::NoGradGuard no_grad;
  const at::Tensor expected = m.network.forward(x);
  EXPECT_LE(relative_difference(load_torchscript(out).network.forward(x), expected), 1e-5);
  EXPECT_LE(relative_difference(module_logits(out, x), expected), 1e-5);
  // Python loads it as a user would.
  const auto r = test::run_python("import torch\nm = torch.jit.load('" + out +
                                  "')\nprint(tuple(m(torch.zeros(2, 1, 28, 28)).shape))\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(2, 10)"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace mipin
