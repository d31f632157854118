// The layer list: shapes, recorded forward passes, copies, fingerprints and
// BatchNorm folding, each checked against LibTorch's own functional ops.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mipin/model/canonize.h"
#include "mipin/model/layers.h"
#include "mipin/model/network.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/error.h"
#include "mipin/zoo/architectures.h"
#include "support/test_support.h"

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

// A window read from a model file is checked before it is used: a zero
// stride once divided by zero (found by fuzz_model).
TEST(Network, WindowsWithZeroStrideKernelOrDilationAreRefused) {
  Conv2d conv;
  conv.weight = torch::randn({2, 1, 3, 3});
  conv.stride = {0, 1};
  try {
    conv.output_shape({1, 8, 8});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stride 0"), std::string::npos) << e.what();
  }
  MaxPool2d pool;
  pool.dilation = {1, 0};
  EXPECT_THROW(pool.output_shape({1, 8, 8}), Error);
  AvgPool2d average;
  average.kernel = {0, 2};
  EXPECT_THROW(average.output_shape({1, 8, 8}), Error);
  average.kernel = {2, 2};
  average.padding = {-1, 0};
  EXPECT_THROW(average.output_shape({1, 8, 8}), Error);
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

// The fold is computed in float64 and rounded once: each folded float32
// weight is the float32 nearest the exact product, so a float32 network
// folded and a float64 one folded are the same function up to that rounding
// (folding in float32 rounded twice and moved resnet50's float64 gradient by
// 1e-7 to 1e-3 where a ReLU input sat near its kink).
TEST(Canonize, FoldedWeightsAreTheNearestFloat32ToTheExactProduct) {
  torch::manual_seed(3);
  Network net = make_architecture("vgg-mini", {1, 28, 28}, 10);
  for (size_t i = 0; i < net.size(); ++i) {
    if (net.layer(i).kind() != LayerKind::BatchNorm2d) continue;
    auto& bn = static_cast<BatchNorm2d&>(net.layer(i));
    const int64_t c = bn.running_mean.size(0);
    bn.running_mean = torch::randn({c}) * 0.2;
    bn.running_var = torch::rand({c}) * 1e-3 + 1e-4;  // a large scale: rounding shows
    bn.weight = torch::rand({c}) + 0.5;
    bn.bias = torch::randn({c}) * 0.2;
  }
  Network wide = net;
  wide.to(at::kDouble);
  Network folded = net;
  ASSERT_EQ(fold_batchnorm(folded), 4);
  ASSERT_EQ(fold_batchnorm(wide), 4);
  for (size_t i = 0; i < folded.size(); ++i) {
    const AffineLayer* narrow = as_affine(folded.layer(i));
    if (!narrow) continue;
    const AffineLayer* exact = as_affine(wide.layer(i));
    ASSERT_NE(exact, nullptr);
    EXPECT_TRUE(narrow->weight.equal(exact->weight.to(at::kFloat))) << folded.layer(i).describe();
    EXPECT_TRUE(narrow->bias.equal(exact->bias.to(at::kFloat))) << folded.layer(i).describe();
  }
}

TEST(Canonize, BatchNormWithoutConvolutionStaysAPerChannelAffineNode) {
  Network net;
  net.add(ReLU{});
  BatchNorm2d bn;
  bn.weight = torch::tensor({0.5, 2.0});
  bn.bias = torch::tensor({0.1, -0.3});
  bn.running_mean = torch::tensor({0.2, -1.0});
  bn.running_var = torch::tensor({4.0, 0.25});
  net.add(bn);
  const at::Tensor x = torch::randn({3, 2, 4, 4});
  const at::Tensor before = net.forward(x);
  EXPECT_EQ(fold_batchnorm(net), 0);
  ASSERT_EQ(net.size(), 2u);
  EXPECT_EQ(net.layer(1).kind(), LayerKind::BatchNorm2d);
  EXPECT_TRUE(net.forward(x).equal(before));
}

TEST(Canonize, BatchNormIsNotFoldedIntoAConvolutionWhoseOutputIsReadTwice) {
  // conv -> (bn, and the raw output into an add): folding would change what
  // the add reads.
  torch::manual_seed(3);
  Network net;
  Conv2d c;
  c.weight = torch::randn({2, 2, 1, 1});
  c.bias = torch::randn({2});
  const size_t conv = net.add(std::make_unique<Conv2d>(c));
  BatchNorm2d bn;
  bn.weight = torch::rand({2}) + 0.5;
  bn.bias = torch::randn({2});
  bn.running_mean = torch::randn({2});
  bn.running_var = torch::rand({2}) + 0.5;
  const size_t normalised = net.add(std::make_unique<BatchNorm2d>(bn));
  net.add(std::make_unique<Add>(), {conv, normalised});
  const at::Tensor x = torch::randn({2, 2, 3, 3});
  const at::Tensor before = net.forward(x);
  EXPECT_EQ(fold_batchnorm(net), 0);
  EXPECT_TRUE(net.forward(x).equal(before));
  // A BatchNorm after a Linear layer (BatchNorm1d) folds into it.
  Network dense;
  Linear l;
  l.weight = torch::randn({2, 3});
  l.bias = torch::randn({2});
  dense.add(l);
  dense.add(bn);
  const at::Tensor v = torch::randn({4, 3});
  const at::Tensor dense_before = dense.forward(v);
  EXPECT_EQ(fold_batchnorm(dense), 1);
  EXPECT_EQ(dense.size(), 1u);
  EXPECT_LE((dense.forward(v) - dense_before).abs().max().item<double>(), 1e-5);
}

// A small residual graph: conv -> relu, read by a second conv and by the add.
Network residual_graph() {
  torch::manual_seed(11);
  Network net;
  Conv2d a;
  a.weight = torch::randn({4, 2, 3, 3}) * 0.3;
  a.bias = torch::randn({4}) * 0.1;
  a.padding = {1, 1};
  net.add(a);                                   // value 1
  const size_t relu = net.add(std::make_unique<ReLU>());  // value 2
  Conv2d b = a;
  b.weight = torch::randn({4, 4, 3, 3}) * 0.3;
  net.add(b);                                   // value 3
  net.add(std::make_unique<Add>(), {relu, 3});  // value 4
  net.add(std::make_unique<Concat>(), {4, relu});  // value 5: [8, H, W]
  net.add(Flatten{});
  return net;
}

TEST(Graph, ForwardMatchesTheSameOpsWrittenOut) {
  const Network net = residual_graph();
  ASSERT_FALSE(net.is_chain());
  const at::Tensor x = torch::randn({3, 2, 5, 5});
  const auto& a = static_cast<const Conv2d&>(net.layer(0));
  const auto& b = static_cast<const Conv2d&>(net.layer(2));
  const at::Tensor r = torch::relu(torch::conv2d(x, a.weight, a.bias, 1, 1));
  const at::Tensor sum = r + torch::conv2d(r, b.weight, b.bias, 1, 1);
  const at::Tensor want = torch::cat({sum, r}, 1).flatten(1);
  ForwardRecord record;
  const at::Tensor got = net.forward(x, &record);
  EXPECT_LE((got - want).abs().max().item<double>(), 1e-5);
  EXPECT_TRUE(net.forward(x).equal(got));  // without a record, values are freed early
  EXPECT_EQ(net.shapes({2, 5, 5}).back(), (Shape{8 * 25}));
  EXPECT_EQ(net.shapes({2, 5, 5})[5], (Shape{8, 5, 5}));
  ASSERT_EQ(record.layers[3].inputs.size(), 2u);
  EXPECT_TRUE(record.layers[3].inputs[0].equal(record.value(2)));
  EXPECT_TRUE(record.layers[3].inputs[1].equal(record.value(3)));
  EXPECT_EQ(net.readers(2), 3u);  // conv b, the add and the concat
  EXPECT_EQ(net.reader_nodes(2), (std::vector<size_t>{2, 3, 4}));
  EXPECT_EQ(net.readers(net.size()), 1u);
}

TEST(Graph, CopiesKeepTheWiringAndTheFingerprintCoversIt) {
  const Network net = residual_graph();
  const Network copy = net;
  EXPECT_EQ(copy.inputs(4), (std::vector<size_t>{4, 2}));
  EXPECT_EQ(copy.fingerprint(), net.fingerprint());
  // The same layers wired differently: another model.
  Network rewired;
  for (size_t i = 0; i < net.size(); ++i) {
    std::vector<size_t> inputs = net.inputs(i);
    if (i == 4) inputs = {2, 4};
    rewired.add(net.layer(i).clone(), inputs);
  }
  EXPECT_NE(rewired.fingerprint(), net.fingerprint());
  // A chain's wiring is implied: explicit inputs give the same fingerprint.
  Network chain = small_cnn(), explicit_chain;
  for (size_t i = 0; i < chain.size(); ++i) explicit_chain.add(chain.layer(i).clone(), {i});
  EXPECT_TRUE(explicit_chain.is_chain());
  EXPECT_EQ(explicit_chain.fingerprint(), chain.fingerprint());
}

TEST(Graph, ErasingANodeRewiresItsReaders) {
  Network net = residual_graph();
  net.erase(1);  // the ReLU: its readers read the first conv's output
  EXPECT_EQ(net.inputs(1), (std::vector<size_t>{1}));
  EXPECT_EQ(net.inputs(2), (std::vector<size_t>{1, 2}));
  EXPECT_EQ(net.inputs(3), (std::vector<size_t>{3, 1}));
  EXPECT_EQ(net.shapes({2, 5, 5}).back(), (Shape{8 * 25}));
  EXPECT_THROW(net.erase(2), Error);  // the add reads two values
}

TEST(Graph, WiringAndShapesAreChecked) {
  Network net;
  net.add(ReLU{});
  EXPECT_THROW(net.add(std::make_unique<ReLU>(), {5}), Error);  // no such value
  EXPECT_THROW(net.add(std::make_unique<Add>(), {1}), Error);   // an add of one
  net.add(std::make_unique<Reshape>(), {1});
  static_cast<Reshape&>(net.layer(1)).shape = {2, -1};
  net.add(std::make_unique<Add>(), {1, 2});  // [2, 3, 4] + [2, 12]
  try {
    net.shapes({2, 3, 4});
    FAIL() << "expected a shape error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("one shape"), std::string::npos) << e.what();
  }
}

TEST(Graph, ReshapeReadsSizesOfItsInput) {
  Reshape r;
  r.shape = {Reshape::input_dim(1), -1};
  EXPECT_EQ(r.output_shape({4, 3, 5}), (Shape{4, 15}));
  r.shape = {Reshape::input_dim(2), 2, -1};
  EXPECT_EQ(r.output_shape({4, 3, 4}), (Shape{3, 2, 8}));
  r.shape = {5, -1};
  EXPECT_THROW(r.output_shape({4, 3}), Error);
  const at::Tensor x = torch::randn({2, 3, 4});
  EXPECT_TRUE(r.forward(torch::randn({2, 5, 2}), nullptr).sizes().equals({2, 5, 2}));
  r.shape = {Reshape::input_dim(2), -1};
  EXPECT_TRUE(r.forward(x, nullptr).equal(x.reshape({2, 4, 3})));
}

TEST(Graph, MulFindsItsGateByShapeOrByWhatComputedIt) {
  Mul m;
  EXPECT_EQ(m.gate_index({{8, 1, 1}, {8, 4, 4}}), 0u);
  EXPECT_EQ(m.gate_index({{8, 4, 4}, {8, 1, 1}}), 1u);
  EXPECT_EQ(m.output_shape_of({{8, 1, 1}, {8, 4, 4}}), (Shape{8, 4, 4}));
  EXPECT_THROW(m.gate_index({{8, 4, 4}, {8, 4, 4}}), Error);
  m.gate = 1;
  EXPECT_EQ(m.gate_index({{8, 4, 4}, {8, 4, 4}}), 1u);
  EXPECT_THROW(m.output_shape_of({{8, 4, 4}, {3, 1, 1}}), Error);
}

// A record marks an input non-negative from the graph alone (what made it:
// a ReLU, a non-negative activation, a pooling, sum or reshape of such
// values), and LRP skips its sign scan there, so a mark must be sound on
// real data; where a ReLU precedes every layer but the first, every one is
// marked.
TEST(Graph, RecordKnowsWhichInputsCannotBeNegative) {
  struct Case {
    const char* file;
    // Whether every affine layer after the first is marked, or none is.
    enum { all_after_first, none, some } affine;
  };
  for (const Case& c : {Case{"resnet18.pt", Case::all_after_first}, Case{"densenet121.pt", Case::all_after_first},
                        Case{"zoo_cnn.pt", Case::all_after_first}, Case{"mobilenet_v2.pt", Case::some},
                        Case{"squeeze_excite_scripted.pt", Case::none}, Case{"act_relu6.pt", Case::all_after_first},
                        Case{"act_sigmoid.pt", Case::all_after_first}, Case{"act_softplus.pt", Case::all_after_first},
                        Case{"act_hardsigmoid.pt", Case::all_after_first}, Case{"act_hardtanh.pt", Case::none},
                        Case{"act_tanh.pt", Case::none}, Case{"act_silu.pt", Case::none},
                        Case{"act_leaky_relu.pt", Case::none}}) {
    const ImportedModel m = load_torchscript(test::test_model(c.file));
    const Network& net = m.network;
    std::vector<int64_t> shape{4};
    for (auto d : net.input_shape()) shape.push_back(d);
    torch::manual_seed(2);
    ForwardRecord record;
    net.forward(torch::randn(shape), &record);
    size_t affine = 0, marked = 0;
    for (size_t i = 0; i < net.size(); ++i) {
      const LayerRecord& r = record.layers[i];
      if (r.input_non_negative) {
        for (size_t v : net.inputs(i)) {
          EXPECT_GE(record.value(v).min().item<double>(), 0) << c.file << ": layer " << i << " ("
                                                              << net.layer(i).describe() << ")";
        }
      }
      if (as_affine(net.layer(i))) {
        if (affine++ == 0) {
          EXPECT_FALSE(r.input_non_negative) << c.file << ": the network's input can be anything";
        } else {
          marked += r.input_non_negative;
        }
      }
    }
    ASSERT_GT(affine, 1u) << c.file;
    if (c.affine == Case::all_after_first) EXPECT_EQ(marked, affine - 1) << c.file;
    if (c.affine == Case::none) EXPECT_EQ(marked, 0u) << c.file;
    if (c.affine == Case::some) {
      EXPECT_GT(marked, 0u) << c.file;
      EXPECT_LT(marked, affine - 1) << c.file;
    }
  }
}

}  // namespace
}  // namespace mipin
