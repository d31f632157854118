// The layer list: shapes, recorded forward passes, copies, fingerprints and
// BatchNorm folding, each checked against LibTorch's own functional ops.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mipin/model/canonize.h"
#include "mipin/model/layers.h"
#include "mipin/model/network.h"
#include "mipin/util/error.h"
#include "mipin/zoo/architectures.h"

namespace mipin {
namespace {

Network small_cnn() {
  torch::manual_seed(0);
  return make_architecture("cnn", {1, 12, 12}, 3);
}

TEST(Network, ShapesMatchTheActualForwardPassForEveryLayerGeometry) {
  torch::manual_seed(1);
  Network net;
  Conv2d c;
  c.weight = torch::randn({6, 1, 3, 3});
  c.bias = torch::randn({6});
  c.stride = {2, 1};
  c.padding = {1, 2};
  c.dilation = {1, 2};
  net.add(c);
  net.add(ReLU{});
  MaxPool2d m;
  m.kernel = {3, 3};
  m.stride = {2, 2};
  m.ceil_mode = true;
  net.add(m);
  Conv2d g;
  g.weight = torch::randn({6, 3, 1, 1});
  g.groups = 2;
  net.add(g);
  AvgPool2d a;
  a.kernel = {2, 2};
  a.stride = {1, 1};
  a.padding = {1, 1};
  net.add(a);
  AdaptiveAvgPool2d ad;
  ad.output_size = {3, 2};
  net.add(ad);
  net.add(Flatten{});
  for (std::vector<int64_t> in : {std::vector<int64_t>{1, 11, 13}, {1, 16, 16}, {1, 7, 9}}) {
    const auto shapes = net.shapes(in);
    std::vector<int64_t> batch{2};
    batch.insert(batch.end(), in.begin(), in.end());
    ForwardRecord record;
    net.forward(torch::randn(batch), &record);
    for (size_t l = 0; l < net.size(); ++l) {
      const auto got = record.layers[l].output.sizes().vec();
      EXPECT_EQ(std::vector<int64_t>(got.begin() + 1, got.end()), shapes[l + 1])
          << "layer " << l << " " << net.layer(l).describe() << " input " << shape_string(in);
    }
  }
}

TEST(Network, RecordHoldsInputsOutputsAndPoolingSwitches) {
  const Network net = small_cnn();
  const at::Tensor x = torch::randn({2, 1, 12, 12});
  ForwardRecord record;
  const at::Tensor logits = net.forward(x, &record);
  ASSERT_EQ(record.layers.size(), net.size());
  EXPECT_TRUE(record.layers[0].input.equal(x));
  EXPECT_TRUE(record.logits.equal(logits));
  for (size_t l = 0; l + 1 < net.size(); ++l) {
    EXPECT_TRUE(record.layers[l].output.equal(record.layers[l + 1].input));
  }
  // Max pooling switches point at the maxima of the pooled input.
  const LayerRecord& pool = record.layers[2];
  ASSERT_EQ(net.layer(2).kind(), LayerKind::MaxPool2d);
  ASSERT_TRUE(pool.switches.defined());
  const at::Tensor gathered =
      pool.input.flatten(2).gather(2, pool.switches.flatten(2)).view_as(pool.output);
  EXPECT_TRUE(gathered.equal(pool.output));
  // Without a record the result is the same.
  EXPECT_TRUE(net.forward(x).equal(logits));
}

TEST(Network, CopiesAreDeepAndFingerprintsFollowWeights) {
  const Network a = small_cnn();
  Network b = a;
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
  auto& conv = static_cast<Conv2d&>(b.layer(0));
  {
    torch::NoGradGuard no_grad;
    conv.weight.add_(1e-3);
  }
  EXPECT_NE(a.fingerprint(), b.fingerprint());
  EXPECT_FALSE(static_cast<const Conv2d&>(a.layer(0)).weight.equal(conv.weight));
}

TEST(Network, InputShapeErrorsSayWhatWasExpected) {
  const Network net = small_cnn();
  try {
    net.forward(torch::randn({1, 3, 12, 12}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 12, 12]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[3, 12, 12]"), std::string::npos) << e.what();
  }
  Network unshaped = net;
  unshaped.set_input_shape({});
  try {
    unshaped.shapes({1, 10, 10});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Linear"), std::string::npos) << e.what();
  }
}

TEST(Canonize, FoldingBatchNormKeepsLogitsAndRemovesTheLayers) {
  torch::manual_seed(2);
  Network net = make_architecture("vgg-mini", {1, 28, 28}, 10);
  // Non-trivial statistics, as after training.
  for (size_t i = 0; i < net.size(); ++i) {
    if (net.layer(i).kind() != LayerKind::BatchNorm2d) continue;
    auto& bn = static_cast<BatchNorm2d&>(net.layer(i));
    const int64_t c = bn.running_mean.size(0);
    bn.running_mean = torch::randn({c}) * 0.2;
    bn.running_var = torch::rand({c}) + 0.3;
    bn.weight = torch::rand({c}) + 0.5;
    bn.bias = torch::randn({c}) * 0.2;
  }
  const at::Tensor x = torch::randn({4, 1, 28, 28});
  const at::Tensor before = net.forward(x);
  Network folded = net;
  EXPECT_EQ(fold_batchnorm(folded), 4);
  for (size_t i = 0; i < folded.size(); ++i) {
    EXPECT_NE(folded.layer(i).kind(), LayerKind::BatchNorm2d);
  }
  const at::Tensor after = folded.forward(x);
  EXPECT_LE((after - before).abs().max().item<double>(), 1e-4 * before.abs().max().item<double>());
}

TEST(Canonize, BatchNormWithoutConvolutionIsRefused) {
  Network net;
  net.add(ReLU{});
  BatchNorm2d bn;
  bn.weight = torch::ones({2});
  bn.bias = torch::zeros({2});
  bn.running_mean = torch::zeros({2});
  bn.running_var = torch::ones({2});
  net.add(bn);
  EXPECT_THROW(fold_batchnorm(net), Error);
}

}  // namespace
}  // namespace mipin
