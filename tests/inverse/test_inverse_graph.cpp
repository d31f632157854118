// MIP-IN on graphs: the add scales are the closed-form least squares, every
// node kind keeps the inverse linear in the top signal (class signals add
// up), a frontier pass fits every ready node, and the activation gates are
// the transfer factors they claim to be.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "mipin/attribution/engine.h"
#include "mipin/data/dataset.h"
#include "mipin/eval/faithfulness.h"
#include "mipin/inverse/inverse.h"
#include "mipin/model/layers.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/zoo/architectures.h"
#include "model/activations.h"
#include "support/test_support.h"

namespace mipin {
namespace {

std::unique_ptr<Dataset> random_data(const Network& net, int64_t n, int64_t classes, uint64_t seed) {
  std::vector<int64_t> shape{n};
  for (auto d : net.input_shape()) shape.push_back(d);
  torch::manual_seed(seed);
  return make_tensor_dataset("random", torch::rand(shape), torch::randint(0, classes, {n}, torch::kLong), {},
                             classes);
}

// The source signal the explaining composite gives (adds' scales folded into
// the operators below where they can be) is the one the fitted rules give.
at::Tensor expect_explaining_gives_the_fitted_signal(const Network& net, const Inverse& inverse, const at::Tensor& x) {
  ForwardRecord record;
  const at::Tensor logits = net.forward(x, &record);
  const at::Tensor as_fitted = propagate(net, record, inverse.composite(), inverse.top_signal(logits));
  const at::Tensor explained = propagate(net, record, inverse.composite_for(net), inverse.top_signal(logits));
  EXPECT_LE((explained - as_fitted).abs().max().item<double>(), 1e-5 * as_fitted.abs().max().item<double>());
  return explained;
}

// x -> Linear a -> add(a, x) -> Linear: fitted on true activations, each add
// input's scale is sum(input * z) / (sum(z * z) + lambda) per feature, z the
// add's output and lambda = alpha * the mean over features of sum(z * z).
TEST(MipInGraph, AddScalesAreTheClosedFormLeastSquares) {
  torch::manual_seed(2);
  Network net;
  Linear a;
  a.weight = torch::randn({6, 6}) * 0.5;
  a.bias = torch::randn({6});
  net.add(a);
  const size_t add = net.add(std::make_unique<Add>(), {1, 0});
  Linear top;
  top.weight = torch::randn({3, 6});
  net.add(top);
  net.set_input_shape({6});
  const auto data = random_data(net, 200, 3, 1);
  const double alpha = 1e-2;
  const Inverse inverse = fit_inverse(
      net, *data, InverseOptions{}.with_alpha(alpha).with_fit_on(FitOn::Activations).with_batch_size(64));
  const at::Tensor x = data->get(0, 200).inputs.to(torch::kDouble);
  const at::Tensor h = torch::linear(x, a.weight.to(torch::kDouble), a.bias.to(torch::kDouble));
  const at::Tensor z = h + x;
  const at::Tensor zz = (z * z).sum(0);
  const double lambda = alpha * zz.mean().item<double>();
  const at::Tensor expected = torch::stack({(h * z).sum(0) / (zz + lambda), (x * z).sum(0) / (zz + lambda)});
  const at::Tensor got = inverse.operators().at(add - 1).to(torch::kDouble);
  EXPECT_LE((got - expected).abs().max().item<double>(), 1e-5);
}

// A dense block: conv - relu, another conv on it, both concatenated, then
// a BatchNorm that cannot fold (it follows the concatenation).
Network dense_block() {
  torch::manual_seed(6);
  Network net;
  Conv2d a;
  a.weight = torch::randn({4, 2, 3, 3}) * 0.4;
  a.bias = torch::randn({4}) * 0.1;
  a.padding = {1, 1};
  net.add(a);
  const size_t r = net.add(std::make_unique<ReLU>());
  Conv2d b = a;
  b.weight = torch::randn({4, 4, 3, 3}) * 0.3;
  const size_t c = net.add(std::make_unique<Conv2d>(b), {r});
  net.add(std::make_unique<Concat>(), {r, c});
  BatchNorm2d bn;
  bn.weight = torch::rand({8}) + 0.5;
  bn.bias = torch::randn({8}) * 0.1;
  bn.running_mean = torch::randn({8}) * 0.1;
  bn.running_var = torch::rand({8}) + 0.5;
  net.add(bn);
  net.add(ReLU{});
  AdaptiveAvgPool2d pool;
  pool.output_size = {1, 1};
  net.add(pool);
  net.add(Flatten{});
  Linear top;
  top.weight = torch::randn({4, 8});
  top.bias = torch::randn({4});
  net.add(top);
  net.set_input_shape({2, 6, 6});
  return net;
}

// Adds with fitted scales, an unfolded BatchNorm's scale, a gate, SiLU's
// transfer factor, a concatenation: every inverse node is linear in the
// signal, so the class signals add up to the full one.
TEST(MipInGraph, ClassSignalsAddUpOnGraphs) {
  for (const char* file : {"residual_scripted.pt", "squeeze_excite_scripted.pt", "dense block"}) {
    const Network net = std::string(file) == "dense block" ? dense_block() : load_torchscript(test::test_model(file)).network;
    const int64_t classes = net.num_classes();
    const auto data = random_data(net, 24, std::min<int64_t>(classes, 10), 3);
    const Inverse inverse = fit_inverse(net, *data, InverseOptions{}.with_batch_size(12));
    const at::Tensor x = data->get(0, 3).inputs;
    const at::Tensor full = inverse.source_signal(net, x);
    EXPECT_EQ(full.sizes(), x.sizes()) << file;
    at::Tensor sum = torch::zeros_like(full);
    for (int64_t c = 0; c < classes; ++c) sum += inverse.explain(net, x, torch::full({3}, c, torch::kLong));
    EXPECT_LE(((sum - full).norm() / full.norm()).item<double>(), 1e-4) << file;
  }
}

// The fork ablations stay linear in the signal; fitted fork weights are the
// least-squares combination of the readers' signals, so on the fitting
// data they reconstruct a forked value at least as well as the plain sum.
// Explaining moves an add's scale into the convolution that computes that
// input for the add alone; the source signal stays what the fitted rules
// give.
TEST(MipInGraph, ScalesFoldedIntoTheOperatorBelowGiveTheSameSignal) {
  const Network net = load_torchscript(test::test_model("residual_scripted.pt")).network;
  bool foldable = false;
  for (size_t i = 0; i < net.size(); ++i) {
    if (net.layer(i).kind() != LayerKind::Add) continue;
    for (size_t v : net.inputs(i)) foldable |= v > 0 && net.readers(v) == 1 && as_affine(net.layer(v - 1));
  }
  ASSERT_TRUE(foldable) << "the test needs an add whose input a convolution computes for it alone";
  const auto data = random_data(net, 24, std::min<int64_t>(net.num_classes(), 10), 5);
  const Inverse inverse = fit_inverse(net, *data, InverseOptions{}.with_batch_size(12));
  const at::Tensor x = data->get(0, 4).inputs;
  const at::Tensor folded = expect_explaining_gives_the_fitted_signal(net, inverse, x);
  EXPECT_TRUE(inverse.source_signal(net, x).equal(folded));
}

// On tokens an add's scales are per token (axis 1), not per unit of the
// per-token Linear that computes its input: they stay at the add, and the
// signal is what the fitted rules give, its class signals adding up.
TEST(MipInGraph, AddScalesOverAPerTokenLinearStayAtTheAdd) {
  test::TempDir dir;
  torch::jit::Module module("TokenResidual");
  torch::manual_seed(4);
  module.register_parameter("w1", torch::randn({6, 6}) * 0.4, false);
  module.register_parameter("w2", torch::randn({3, 6}) * 0.4, false);
  module.define(R"(
def forward(self, x):
    h = torch.linear(x, self.w1, None)
    return torch.linear(torch.relu(h + x).select(1, 0), self.w2, None)
)");
  module.save(dir.file("tokens.pt"));
  const Network net = load_torchscript(dir.file("tokens.pt"), ImportOptions().with_input_shape({5, 6})).network;
  const auto data = random_data(net, 24, 3, 6);
  const Inverse inverse = fit_inverse(net, *data, InverseOptions{}.with_batch_size(12));
  const at::Tensor x = data->get(0, 4).inputs;
  const at::Tensor explained = expect_explaining_gives_the_fitted_signal(net, inverse, x);
  EXPECT_GT(explained.abs().max().item<double>(), 0);
  at::Tensor sum = torch::zeros_like(explained);
  for (int64_t c = 0; c < 3; ++c) sum += inverse.explain(net, x, torch::full({4}, c, torch::kLong));
  EXPECT_LE(((sum - inverse.source_signal(net, x)).norm() / explained.norm()).item<double>(), 1e-5);
}

// composite_for keeps the folded operators between calls: new scales, set
// on a copy or changed in place, must reach them.
TEST(MipInGraph, FoldedOperatorsFollowTheScales) {
  const Network net = load_torchscript(test::test_model("residual_scripted.pt")).network;
  const auto data = random_data(net, 24, std::min<int64_t>(net.num_classes(), 10), 5);
  const Inverse inverse = fit_inverse(net, *data, InverseOptions{}.with_batch_size(12));
  const at::Tensor x = data->get(0, 4).inputs;
  ForwardRecord record;
  const at::Tensor logits = net.forward(x, &record);
  const at::Tensor top = inverse.top_signal(logits);
  auto agree = [&](const Inverse& inv) {
    const at::Tensor as_fitted = propagate(net, record, inv.composite(), top);
    const at::Tensor folded = propagate(net, record, inv.composite_for(net), top);
    return (folded - as_fitted).abs().max().item<double>() <= 1e-5 * as_fitted.abs().max().item<double>();
  };
  const at::Tensor before = propagate(net, record, inverse.composite_for(net), top);
  Inverse changed = inverse;
  size_t adds = 0;
  for (const auto& [i, op] : inverse.operators()) {
    if (net.layer(i).kind() != LayerKind::Add) continue;
    changed.set_operator(i, op * 3.0);
    ++adds;
  }
  ASSERT_GT(adds, 0u);
  EXPECT_TRUE(agree(changed));
  EXPECT_FALSE(propagate(net, record, changed.composite_for(net), top).allclose(before));
  EXPECT_TRUE(propagate(net, record, inverse.composite_for(net), top).equal(before)) << "the original keeps its own";
  for (const auto& [i, op] : changed.operators()) {
    if (net.layer(i).kind() == LayerKind::Add) op.mul_(0.5);  // in place: seen by the version counter
  }
  EXPECT_TRUE(agree(changed));
}

TEST(MipInGraph, ForkWeightsReconstructTheForkedValueAtLeastAsWellAsTheSum) {
  const Network net = load_torchscript(test::test_model("residual_scripted.pt")).network;
  const auto data = random_data(net, 48, 3, 7);
  const InverseOptions options = InverseOptions{}.with_batch_size(16);
  const Inverse summed = fit_inverse(net, *data, options);
  const Inverse fitted = fit_inverse(net, *data, InverseOptions(options).with_fork(ForkCombine::Fitted));
  const Inverse mean = fit_inverse(net, *data, InverseOptions(options).with_fork(ForkCombine::Mean));
  size_t forks = 0;
  for (size_t v = 0; v < net.size(); ++v) forks += net.readers(v) >= 2;
  ASSERT_GE(forks, 3u);
  EXPECT_EQ(fitted.forks().size(), forks);
  EXPECT_TRUE(summed.forks().empty());
  const Inverse reloaded = [&] {
    test::TempDir dir;
    fitted.save(dir.file("f.mipin"));
    return Inverse::load(dir.file("f.mipin"));
  }();
  EXPECT_EQ(reloaded.forks().size(), forks);
  const at::Tensor x = data->get(0, 4).inputs;
  EXPECT_TRUE(reloaded.source_signal(net, x).equal(fitted.source_signal(net, x)));
  for (const Inverse* inverse : {&fitted, &mean}) {
    const at::Tensor full = inverse->source_signal(net, x);
    at::Tensor sum = torch::zeros_like(full);
    for (int64_t c = 0; c < 3; ++c) sum += inverse->explain(net, x, torch::full({4}, c, torch::kLong));
    EXPECT_LE(((sum - full).norm() / full.norm()).item<double>(), 1e-4);
  }
  // The last fork above the output: its weights are fitted on the signals
  // that the inverse above it delivers, which the plain sum shares; there
  // the fitted combination cannot do worse.
  size_t last_fork = 0;
  for (size_t v = 0; v < net.size(); ++v) {
    if (net.readers(v) >= 2) last_fork = v;
  }
  const EvaluationOptions eval = [] {
    EvaluationOptions e;
    e.completeness = e.minimality = e.additivity = false;
    return e;
  }();
  const double with_sum = evaluate_inverse(net, summed, *data, eval).reconstruction.at(last_fork).r2;
  const double with_weights = evaluate_inverse(net, fitted, *data, eval).reconstruction.at(last_fork).r2;
  std::printf("R^2 at the last fork: sum %.4f, fitted weights %.4f\n", with_sum, with_weights);
  EXPECT_GE(with_weights, with_sum - 1e-6);
}

// Each pass fits every node whose fitted nodes below (towards the output)
// are all done: a residual block's two branches share a pass.
TEST(MipInGraph, EachPassFitsTheWholeFrontier) {
  torch::manual_seed(4);
  const Network net = make_architecture("resnet", {1, 8, 8}, 3);
  const auto data = random_data(net, 16, 3, 5);
  const Inverse inverse = fit_inverse(net, *data, InverseOptions{}.with_batch_size(8));
  std::map<std::string, int> pass_of;
  int passes = 0;
  for (const auto& f : inverse.fits()) {
    pass_of[std::to_string(f.index) + " " + f.layer] = f.pass;
    passes = std::max(passes, f.pass);
  }
  // linear; add; [conv b, 1x1 projection's BN]; ... Every fitted node is there once.
  size_t fitted = 0;
  for (size_t i = 0; i < net.size(); ++i) fitted += has_fitted_inverse(net.layer(i), inverse.options());
  EXPECT_EQ(inverse.fits().size(), fitted);
  EXPECT_LT(passes, static_cast<int>(fitted));
  // The strided block's two branches: the BatchNorm after its second conv
  // and the one after the projection read the add's signal: one pass.
  std::vector<size_t> add_readers;
  for (size_t i = 0; i < net.size(); ++i) {
    if (net.layer(i).kind() != LayerKind::Add) continue;
    add_readers.clear();
    for (size_t v : net.inputs(i)) add_readers.push_back(v - 1);
  }
  ASSERT_EQ(add_readers.size(), 2u);
  int first = -1;
  for (const auto& f : inverse.fits()) {
    if (f.index != add_readers[0] && f.index != add_readers[1]) continue;
    if (first < 0) first = f.pass;
    EXPECT_EQ(f.pass, first) << f.layer;
  }
}

// The transfer factor (f(z) - f(0)) / z: for ReLU6 the gate where 0 < z < 6
// and 6 / z above; for SiLU sigmoid(z); f'(0) at zero.
TEST(MipInGraph, TransferFactorsOfActivations) {
  const at::Tensor z = torch::tensor({-2.0, -0.5, 0.0, 0.5, 3.0, 8.0});
  const at::Tensor s = torch::ones_like(z);
  const ActivationSpec& relu6 = activation_spec("relu6");
  const at::Tensor t6 = activation_transfer(relu6, {}, s, z, relu6.f(z, {}));
  EXPECT_TRUE(torch::allclose(t6, torch::tensor({0.0, 0.0, 0.0, 1.0, 1.0, 0.75})));
  const ActivationSpec& silu = activation_spec("silu");
  const at::Tensor ts = activation_transfer(silu, {}, s, z, silu.f(z, {}));
  EXPECT_TRUE(torch::allclose(ts, torch::sigmoid(z), 1e-5, 1e-6));
  const ActivationSpec& tanh = activation_spec("tanh");
  const at::Tensor tt = activation_transfer(tanh, {}, s, z, tanh.f(z, {}));
  EXPECT_NEAR(tt[2].item<double>(), 1.0, 1e-6);  // tanh'(0)
  EXPECT_NEAR(tt[4].item<double>(), std::tanh(3.0) / 3.0, 1e-6);
}

}  // namespace
}  // namespace mipin
