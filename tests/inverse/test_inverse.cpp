// MIP-IN: ground truth on the linear toy, closed-form least squares, per-class
// additivity, exact vs iterative solvers, and the inverse file.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <tuple>

#include "mipin/attribution/gradient.h"
#include "mipin/data/synthetic.h"
#include "mipin/inverse/inverse.h"
#include "mipin/model/layers.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/error.h"
#include "mipin/zoo/architectures.h"
#include "mipin/zoo/trainer.h"
#include "support/test_support.h"
#include "support/trained_models.h"

namespace mipin {
namespace {

double mean_cosine(const at::Tensor& a, const at::Tensor& b) {
  return torch::cosine_similarity(a.flatten(1), b.flatten(1), 1).mean().item<double>();
}

TEST(MipIn, RecoversTheTrueSignalOnTheLinearToy) {
  const LinearToy train_toy = make_linear_toy(4000, LinearToyOptions{});
  LinearToyOptions test_options;
  test_options.sample_seed = 2;
  const LinearToy test_toy = make_linear_toy(1000, test_options);
  const Network net = train_linear_classifier(*train_toy.data);
  ASSERT_GE(accuracy(net, *test_toy.data), 0.99);
  const Inverse inverse = fit_inverse(net, *train_toy.data, InverseOptions{});
  const Batch batch = test_toy.data->get(0, 1000);
  const at::Tensor predicted = net.forward(batch.inputs).argmax(1);
  const double mipin_cos = mean_cosine(inverse.explain(net, batch.inputs, predicted), test_toy.signal);
  const double full_cos = mean_cosine(inverse.source_signal(net, batch.inputs), test_toy.signal);
  const double grad_cos = mean_cosine(Gradient().attribute(net, batch.inputs, predicted), test_toy.signal);
  std::printf("linear toy, mean cosine with the true signal: mipin %.4f (full logits %.4f), gradient %.4f\n",
              mipin_cos, full_cos, grad_cos);
  EXPECT_GE(mipin_cos, 0.99);
  EXPECT_GE(full_cos, 0.99);
  EXPECT_LT(grad_cos, 0.9);  // the gradient follows the filter, not the signal
}

TEST(MipIn, ExactSolverMatchesTheClosedFormOnALinearModel) {
  torch::manual_seed(3);
  Network net;
  Linear l;
  l.weight = torch::randn({3, 5});
  l.bias = torch::randn({3});
  net.add(l);
  net.set_input_shape({5});
  const at::Tensor x = torch::randn({300, 5});
  const auto data = make_tensor_dataset("random", x, torch::randint(0, 3, {300}, torch::kLong), {}, 3);
  const double alpha = 1e-2;
  const Inverse inverse = fit_inverse(net, *data, InverseOptions{}.with_alpha(alpha).with_batch_size(64));
  // U = X^T Y (Y^T Y + lambda I)^-1 with Y the logits, in double.
  const at::Tensor xd = x.to(torch::kDouble);
  const at::Tensor y = net.forward(x).to(torch::kDouble);
  const at::Tensor a = y.t().matmul(y);
  const double lambda = alpha * a.trace().item<double>() / 3;
  const at::Tensor expected = xd.t().matmul(y).matmul(torch::inverse(a + lambda * torch::eye(3, torch::kDouble)));
  // Stored in the weight's shape: U^T.
  const at::Tensor got = inverse.operators().at(0).to(torch::kDouble).t();
  EXPECT_LE((got - expected).abs().max().item<double>(), 1e-4 * expected.abs().max().item<double>());
  // R^2 from the accumulated statistics equals R^2 from the residuals.
  const at::Tensor residual = xd - y.matmul(expected.t());
  const double r2 = 1 - residual.square().sum().item<double>() / (xd - xd.mean(0)).square().sum().item<double>();
  EXPECT_NEAR(inverse.fits()[0].r2, r2, 1e-5);
}

TEST(MipIn, ClassSignalsAddUpToTheFullSignal) {
  const test::TrainedModel& d = test::trained_model("cnn");
  const Inverse inverse = fit_inverse(d.network, *d.train_data, InverseOptions{}.with_examples(500));
  const at::Tensor x = d.train_data->get(1000, 1016).inputs;
  const at::Tensor full = inverse.source_signal(d.network, x);
  at::Tensor sum = torch::zeros_like(full);
  for (int64_t c = 0; c < 10; ++c) sum += inverse.explain(d.network, x, torch::full({16}, c, torch::kLong));
  const double rel = ((sum - full).norm() / full.norm()).item<double>();
  EXPECT_LE(rel, 1e-4);
  // One example at a time takes other kernels (matrix-vector products, a
  // direct convolution where the batch takes Winograd's) than a batch: the
  // same signal either way, up to rounding relative to its largest value.
  const at::Tensor targets = torch::full({16}, 3, torch::kLong);
  const at::Tensor batched = inverse.explain(d.network, x, targets);
  for (int64_t i : {0, 7}) {
    const at::Tensor one = inverse.explain(d.network, x.slice(0, i, i + 1), targets.slice(0, i, i + 1));
    const at::Tensor same = batched.slice(0, i, i + 1);
    const double error = (one - same).abs().max().item<double>(), scale = same.abs().max().item<double>();
    EXPECT_LE(error, 1e-4 * scale) << i << ": " << error << " of " << scale;
  }
  // Not additive when the ReLU inverse rectifies the signal: the check can fail.
  const Inverse rectified = fit_inverse(d.network, *d.train_data,
                                        InverseOptions{}.with_examples(500).with_relu_mode(ReluMode::Both));
  at::Tensor sum_r = torch::zeros_like(full);
  for (int64_t c = 0; c < 10; ++c) sum_r += rectified.explain(d.network, x, torch::full({16}, c, torch::kLong));
  const at::Tensor full_r = rectified.source_signal(d.network, x);
  EXPECT_GT(((sum_r - full_r).norm() / full_r.norm()).item<double>(), 1e-2);
}

TEST(MipIn, ExactAndIterativeSolversReachTheSameReconstructionLoss) {
  const test::TrainedModel& d = test::trained_model("cnn");
  const auto options = InverseOptions{}.with_examples(256).with_batch_size(64);
  const Inverse exact = fit_inverse(d.network, *d.train_data, InverseOptions(options).with_solver(Solver::Exact));
  const Inverse iterative = fit_inverse(
      d.network, *d.train_data,
      InverseOptions(options).with_solver(Solver::Iterative));
  ASSERT_EQ(exact.fits().size(), 4u);
  ASSERT_EQ(iterative.fits().size(), 4u);
  for (size_t i = 0; i < exact.fits().size(); ++i) {
    const auto& e = exact.fits()[i];
    const auto& it = iterative.fits()[i];
    std::printf("layer %zu %-48s exact mse %.6g  iterative mse %.6g\n", e.index, e.layer.c_str(), e.mse, it.mse);
    EXPECT_EQ(e.solver, "exact");
    EXPECT_EQ(it.solver, "iterative");
    EXPECT_LE(std::abs(it.mse - e.mse), 0.01 * e.mse) << e.layer;
  }
}

// The exact solver covers strided, grouped and dilated convolutions (each
// output phase of a strided layer its own taps): the error its normal
// equations report is the error of its operator applied as the transposed
// convolution, and it is never above what the iterative solver (which
// differentiates that transposed convolution itself) reaches.
TEST(MipIn, ExactSolverFitsStridedGroupedAndDilatedConvolutions) {
  const ImportedModel m = load_torchscript(test::test_model("view_cnn.pt"));
  torch::manual_seed(0);
  const auto data = make_tensor_dataset("random", torch::randn({64, 3, 16, 16}),
                                        torch::randint(0, 5, {64}, torch::kLong), {}, 5);
  const InverseOptions options = InverseOptions{}.with_fit_on(FitOn::Activations);
  // And the zoo's residual network: a 1x1 stride-2 projection, whose inverse
  // reaches one output phase of four (the others stay unexplained).
  torch::manual_seed(1);
  const Network resnet = make_architecture("resnet", {3, 16, 16}, 5);
  // Kernels whose taps are not symmetric within a phase: a patch embedding
  // (kernel = stride = 4), a 4x4 stride-2 downsampling, a 2x2 stride 2.
  std::vector<Network> single;
  for (const auto& [k, s, p] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{4, 4, 0}, {4, 2, 1}, {2, 2, 0}}) {
    Network net;
    Conv2d conv;
    conv.weight = torch::randn({16, 3, k, k});
    conv.stride = {s, s};
    conv.padding = {p, p};
    net.add(conv);
    Flatten flatten;
    net.add(flatten);
    const int64_t side = (16 + 2 * p - k) / s + 1;
    Linear head;
    head.weight = torch::randn({5, 16 * side * side}) * 0.1;
    head.bias = torch::zeros({5});
    net.add(head);
    net.set_input_shape({3, 16, 16});
    single.push_back(std::move(net));
  }
  for (const Network* net : std::vector<const Network*>{&m.network, &resnet, &single[0], &single[1], &single[2]}) {
    const Inverse exact = fit_inverse(*net, *data, InverseOptions(options).with_solver(Solver::Exact));
    const Inverse iterative = fit_inverse(
        *net, *data, InverseOptions(options).with_solver(Solver::Iterative).with_iterative_iterations(100));
    ForwardRecord record;
    net->forward(data->get(0, 64).inputs, &record);
    for (size_t i = 0; i < exact.fits().size(); ++i) {
      const auto& e = exact.fits()[i];
      const Layer& layer = net->layer(e.index);
      if (layer.kind() != LayerKind::Conv2d && layer.kind() != LayerKind::Linear) continue;
      const auto& it = iterative.fits()[i];
      const LayerRecord& r = record.layers[e.index];
      const double applied = (apply_inverse_operator(layer, exact.operators().at(e.index), r.output, r.input) - r.input)
                                 .to(torch::kDouble).square().mean().item<double>();
      std::printf("layer %zu %-48s exact mse %.6g (applied %.6g)  iterative mse %.6g\n", e.index, e.layer.c_str(),
                  e.mse, applied, it.mse);
      EXPECT_EQ(e.solver, "exact");
      EXPECT_EQ(it.index, e.index);
      // The fit's mse is a difference of large sums (sum x^2 - 2 b.w + w'Gw):
      // for a near-perfect fit it carries rounding of order 1e-7 of the
      // input's energy, which another compiler's rounding moves.
      const double energy = r.input.to(torch::kDouble).square().mean().item<double>();
      EXPECT_NEAR(applied, e.mse, 1e-4 * e.mse + 1e-6 * energy) << e.layer;
      EXPECT_LE(e.mse, it.mse * (1 + 1e-4)) << e.layer;
    }
  }
  const Inverse exact = fit_inverse(m.network, *data, InverseOptions(options).with_solver(Solver::Exact));
  ASSERT_EQ(exact.fits().size(), 3u);
  // Auto takes the exact solver for them too.
  const Inverse automatic = fit_inverse(m.network, *data, options);
  for (const auto& f : automatic.fits()) EXPECT_EQ(f.solver, "exact") << f.layer;
  // The whole inverse runs on the strided, grouped, pooled geometry.
  const at::Tensor x = data->get(0, 4).inputs;
  EXPECT_EQ(exact.source_signal(m.network, x).sizes(), x.sizes());
}

TEST(MipIn, SaveLoadRoundTripGivesIdenticalExplanations) {
  const test::TrainedModel& d = test::trained_model("cnn");
  Inverse inverse = fit_inverse(d.network, *d.train_data, InverseOptions{}.with_examples(256).with_relu_mode(ReluMode::Both));
  inverse.model_name = "demo";
  test::TempDir dir;
  inverse.save(dir.file("inv.mipin"));
  const Inverse loaded = Inverse::load(dir.file("inv.mipin"));
  EXPECT_EQ(loaded.options().relu_mode, ReluMode::Both);
  EXPECT_EQ(loaded.examples, 256);
  EXPECT_EQ(loaded.fits().size(), inverse.fits().size());
  EXPECT_EQ(loaded.model_fingerprint(), d.network.fingerprint());
  const at::Tensor x = d.train_data->get(0, 8).inputs;
  const at::Tensor t = torch::arange(8, torch::kLong);
  EXPECT_TRUE(loaded.explain(d.network, x, t).equal(inverse.explain(d.network, x, t)));
  // Another model is refused.
  torch::manual_seed(99);
  const Network other = make_architecture("cnn", {1, 28, 28}, 10);
  try {
    loaded.check_compatible(other, "other.pt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(loaded.check_compatible(d.network));
  // A truncated file is refused.
  const std::string whole = test::read_text(dir.file("inv.mipin"));
  test::write_text(dir.file("cut.mipin"), whole.substr(0, whole.size() / 3));
  EXPECT_THROW(Inverse::load(dir.file("cut.mipin")), Error);
  EXPECT_THROW(Inverse::load(dir.file("missing.mipin")), Error);
}

}  // namespace
}  // namespace mipin
