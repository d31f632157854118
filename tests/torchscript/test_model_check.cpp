// check_model (mipin check): the gradient at every node against autograd.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "mipin/torchscript/model_check.h"
#include "support/test_support.h"

namespace mipin {
namespace {

// In float64 the network, folded in float64, is the module's function: every
// node's gradient is autograd's up to rounding, and so is the input's
// against the TorchScript module itself.
TEST(ModelCheck, EveryNodeIsAutogradsInFloat64) {
  for (const char* file : {"zoo_cnn.pt", "resnet18.pt", "densenet121.pt", "vit_small_grad.pt", "conv1d.pt"}) {
    const ModelCheck check = check_model(test::test_model(file));
    ASSERT_GT(check.values.size(), 2u) << file;
    EXPECT_EQ(check.targets.size(), 2u) << file;
    EXPECT_EQ(check.values.front().layer, "input");
    for (const ValueCheck& c : check.values) {
      EXPECT_LE(c.gradient_float64, 1e-10) << file << " at " << c.layer;
      EXPECT_LE(c.forward_float32, 1e-4) << file << " at " << c.layer;
    }
    EXPECT_GE(check.module_gradient_float64, 0) << file;
    EXPECT_LE(check.module_gradient_float64, 1e-10) << file;
  }
}

// In float32, on shallow networks no ReLU input lies near enough its kink
// for rounding to flip it: every gradient is within float32 autograd's
// floor. (On deep random ones a flip moves the gradient by 1e-3 and more;
// where it falls depends on the kernels' accumulation order: see
// docs/design.md, "Float32 gradients of deep networks".)
TEST(ModelCheck, ShallowNetworksAreWithinFloat32AutogradsFloor) {
  for (const char* file : {"zoo_cnn.pt", "vit_small_grad.pt", "conv1d.pt", "layernorm_mlp.pt"}) {
    const ModelCheck check = check_model(test::test_model(file));
    for (const ValueCheck& c : check.values) {
      EXPECT_LE(c.gradient_float32, std::max(3 * c.autograd_float32, 1e-4)) << file << " at " << c.layer;
    }
    EXPECT_LE(check.module_gradient_float32, std::max(3 * check.module_autograd_float32, 1e-4)) << file;
  }
}

// A trace that fixed its dtype (an LSTM's initial state) cannot run in
// float64: the module's column is left out, the nodes are still checked.
TEST(ModelCheck, AModuleThatOnlyRunsInFloat32IsComparedNodeByNode) {
  const ModelCheck check = check_model(test::test_model("lstm.pt"));
  EXPECT_LT(check.module_gradient_float64, 0);
  for (const ValueCheck& c : check.values) EXPECT_LE(c.gradient_float64, 1e-10) << c.layer;
}

TEST(ModelCheck, TheCommandPrintsEveryNodeAndFailsOnNothingHere) {
  const auto text = test::run_cli("check " + test::test_model("resnet18.pt"));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("float64: every node agrees with autograd"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Conv2d(3, 64"), std::string::npos) << text.out;
  const auto json = test::run_cli("check --json --examples 3 --seed 4 " + test::test_model("zoo_cnn.pt"));
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["targets"].size(), 3u);
  EXPECT_TRUE(j["float64_agrees"].get<bool>());
  EXPECT_EQ(j["values"].size(), 11u);  // the input and 10 nodes
  EXPECT_TRUE(j["values"][0]["node"].is_null());
  const auto help = test::run_cli("check --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Example"), std::string::npos);
  test::expect_error(test::run_cli("check /nonexistent/missing.pt"), {"not found", "missing.pt"});
}

}  // namespace
}  // namespace mipin
