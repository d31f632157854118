// The zoo and the trainer: architectures build, training learns, and the same
// seed gives the same model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mipin/data/dataset.h"
#include "mipin/data/synthetic.h"
#include "mipin/model/layers.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/error.h"
#include "mipin/zoo/architectures.h"
#include "mipin/zoo/trainer.h"
#include "support/test_support.h"

namespace mipin {
namespace {

// Two classes of 1x8x8 images told apart by which half is brighter.
std::unique_ptr<Dataset> halves(int64_t n, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  at::Tensor labels = torch::randint(0, 2, {n}, gen, torch::kLong);
  at::Tensor x = torch::rand({n, 1, 8, 8}, gen) * 0.5;
  const at::Tensor left = labels.eq(0).view({n, 1, 1, 1}).to(torch::kFloat);
  x.slice(3, 0, 4).add_(left * 0.5);
  x.slice(3, 4, 8).add_((1 - left) * 0.5);
  return make_tensor_dataset("halves", x, labels, {}, 2);
}

// Saved as TorchScript and imported again (BatchNorm folded), the network
// computes the same logits.
void expect_reloads_with_the_same_logits(const Network& net, const Dataset& data) {
  test::TempDir dir;
  ModelMetadata meta;
  meta.input_shape = net.input_shape();
  save_torchscript(net, dir.file("m.pt"), meta);
  const ImportedModel reloaded = load_torchscript(dir.file("m.pt"));
  const Batch batch = data.get(0, 16);
  const at::Tensor expected = net.forward(batch.inputs);
  EXPECT_LE((reloaded.network.forward(batch.inputs) - expected).abs().max().item<double>(),
            1e-4 * expected.abs().max().item<double>());
}

TEST(Zoo, EveryArchitectureBuildsForItsInputAndClassCount) {
  for (const auto& name : architecture_names()) {
    torch::manual_seed(0);
    // conv1d reads series [C, 1, T]; the others images.
    const std::vector<int64_t> shape = name == "conv1d" ? std::vector<int64_t>{1, 1, 128}
                                                        : std::vector<int64_t>{1, 28, 28};
    const Network net = make_architecture(name, shape, 10);
    EXPECT_EQ(net.num_classes(), 10) << name;
    std::vector<int64_t> batch{2};
    batch.insert(batch.end(), shape.begin(), shape.end());
    EXPECT_EQ(net.forward(torch::randn(batch)).sizes().vec(), (std::vector<int64_t>{2, 10})) << name;
  }
  EXPECT_THROW(make_architecture("conv1d", {1, 28, 28}, 10), Error);
  EXPECT_THROW(make_architecture("transformer", {1, 28, 28}, 10), Error);
  // Another activation in place of every ReLU.
  const Network silu = make_architecture("resnet", {1, 28, 28}, 10, "silu");
  int activations = 0;
  for (size_t i = 0; i < silu.size(); ++i) {
    EXPECT_NE(silu.layer(i).kind(), LayerKind::ReLU);
    activations += silu.layer(i).kind() == LayerKind::Activation;
  }
  EXPECT_EQ(activations, 5);
  EXPECT_EQ(silu.forward(torch::randn({2, 1, 28, 28})).sizes().vec(), (std::vector<int64_t>{2, 10}));
  EXPECT_THROW(make_architecture("mlp", {1, 28, 28}, 10, "mish"), Error);
  EXPECT_THROW(make_architecture("resnet", {784}, 10), Error);
  EXPECT_THROW(make_architecture("cnn", {784}, 10), Error);
}

// The planted-motifs series as a data set [N, 1, 1, T], as `--data npy:DIR` reads them.
std::unique_ptr<Dataset> motifs(int64_t n, uint64_t seed) {
  MotifOptions o;
  o.seed = seed;
  const MotifSeries m = make_motif_series(n, o);
  return make_tensor_dataset("motifs", m.series.unsqueeze(2), m.labels, {}, o.classes);
}

// The zoo's 1-D convolutional net learns the motifs (a matched filter that
// knows them reaches 0.9965 on them), and every node of it is one of mipin's
// own layers, so no method needs the gradient's fallback on it.
TEST(Trainer, Conv1dNetLearnsThePlantedMotifs) {
  const auto train_data = motifs(6000, 3);
  const auto test_data = motifs(1000, 4);
  torch::manual_seed(1);
  Network net = make_architecture("conv1d", train_data->sample_shape(), 4);
  for (size_t i = 0; i < net.size(); ++i) EXPECT_NE(net.layer(i).kind(), LayerKind::Op) << i;
  train(net, *train_data, TrainOptions{}.with_epochs(10).with_seed(1).with_progress(false));
  const double acc = accuracy(net, *test_data);
  std::printf("conv1d on planted motifs: test accuracy %.4f\n", acc);
  EXPECT_GE(acc, 0.95);
  expect_reloads_with_the_same_logits(net, *test_data);
}

TEST(Trainer, LearnsASeparableTaskAndIsReproducible) {
  const auto train_data = halves(512, 1);
  const auto test_data = halves(256, 2);
  auto run = [&](uint64_t seed) {
    torch::manual_seed(seed);
    Network net = make_architecture("cnn", {1, 8, 8}, 2);
    train(net, *train_data,
          TrainOptions{}.with_epochs(2).with_batch_size(32).with_seed(seed).with_progress(false));
    return net;
  };
  const Network a = run(7);
  const Network b = run(7);
  const Network c = run(8);
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
  EXPECT_NE(a.fingerprint(), c.fingerprint());
  EXPECT_GE(accuracy(a, *test_data), 0.95);
}

TEST(Trainer, BatchNormStatisticsAreLearnedAndExported) {
  const auto data = halves(256, 3);
  torch::manual_seed(0);
  Network net = make_architecture("vgg-mini", {1, 8, 8}, 2);
  train(net, *data, TrainOptions{}.with_epochs(1).with_batch_size(64).with_progress(false));
  expect_reloads_with_the_same_logits(net, *data);
}

// The residual zoo model: a graph that trains, whose BatchNorm statistics
// are re-estimated on the final weights (the plain mean over the batches),
// and that exports and imports (BatchNorm folded) with the same logits.
TEST(Trainer, ResidualNetworkTrainsExportsAndReimports) {
  const auto data = halves(256, 4);
  torch::manual_seed(0);
  Network net = make_architecture("resnet", {1, 8, 8}, 2);
  ASSERT_FALSE(net.is_chain());
  train(net, *data, TrainOptions{}.with_epochs(2).with_batch_size(64).with_progress(false));
  EXPECT_GE(accuracy(net, *halves(128, 5)), 0.9);
  // The first BatchNorm reads the first convolution: its running mean is the
  // mean of that convolution's output over the 256 examples (4 equal batches).
  ASSERT_EQ(net.layer(1).kind(), LayerKind::BatchNorm2d);
  const auto& bn = static_cast<const BatchNorm2d&>(net.layer(1));
  const at::Tensor conv_out = net.layer(0).forward(data->get(0, 256).inputs, nullptr);
  EXPECT_LE((bn.running_mean - conv_out.mean({0, 2, 3})).abs().max().item<double>(), 1e-5);
  expect_reloads_with_the_same_logits(net, *data);
}

// The zoo's vision transformer: a TorchScript module that trains, that the
// same seed reproduces, and that mipin reads back through its import (which
// compares every node with the module) with the module's own accuracy.
TEST(Trainer, VisionTransformerTrainsAndMipinReadsItBack) {
  // Two classes of 1x8x8 images told apart by their texture in every patch
  // (a vertical or a horizontal stripe), wherever they are.
  auto stripes = [](int64_t n, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    const at::Tensor labels = torch::randint(0, 2, {n}, gen, torch::kLong);
    at::Tensor x = torch::rand({n, 1, 8, 8}, gen) * 0.5;
    const at::Tensor vertical = labels.eq(0).view({n, 1, 1, 1}).to(torch::kFloat);
    x.slice(3, 0, 8, 2).add_(vertical * 0.5);
    x.slice(2, 0, 8, 2).add_((1 - vertical) * 0.5);
    return make_tensor_dataset("stripes", x, labels, {}, 2);
  };
  const auto train_data = stripes(512, 6);
  const auto test_data = stripes(256, 7);
  test::TempDir dir;
  auto run = [&](const std::string& file, uint64_t seed) {
    return train_module_architecture("vit", *train_data, *test_data,
                                     TrainOptions{}.with_epochs(3).with_batch_size(32).with_seed(seed).with_progress(false),
                                     dir.file(file), ModelMetadata{});
  };
  const ModuleTrainResult r = run("a.pt", 1);
  EXPECT_GE(r.test_accuracy, 0.9);
  const ImportedModel m = load_torchscript(dir.file("a.pt"));
  EXPECT_EQ(m.metadata.architecture, "vit");
  EXPECT_EQ(m.metadata.input_shape, (std::vector<int64_t>{1, 8, 8}));
  EXPECT_NEAR(m.metadata.test_accuracy, r.test_accuracy, 1e-12);
  EXPECT_DOUBLE_EQ(accuracy(m.network, *test_data), r.test_accuracy);
  int64_t ops = 0;
  for (size_t i = 0; i < m.network.size(); ++i) ops += m.network.layer(i).kind() == LayerKind::Op;
  EXPECT_GT(ops, 0);  // attention and LayerNorm run as TorchScript runs them
  // The ops' weights count as the model's parameters (`mipin info`).
  EXPECT_EQ(m.network.parameter_count(), r.parameters);
  run("b.pt", 1);
  run("c.pt", 2);
  EXPECT_EQ(load_torchscript(dir.file("b.pt")).network.fingerprint(), m.network.fingerprint());
  EXPECT_NE(load_torchscript(dir.file("c.pt")).network.fingerprint(), m.network.fingerprint());
  EXPECT_THROW(make_architecture("vit", {1, 8, 8}, 2), Error);
}

}  // namespace
}  // namespace mipin
