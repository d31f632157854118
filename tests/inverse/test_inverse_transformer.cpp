// MIP-IN's reading of transformer ops (docs/design.md, "Transformers"): a
// LayerNorm's forward normaliser is a gate, attention's probabilities gate
// V (Q and K get no signal), and a product with no gate splits evenly.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "attribution/op_parts.h"
#include "mipin/attribution/engine.h"
#include "mipin/data/dataset.h"
#include "mipin/inverse/inverse.h"
#include "mipin/inverse/options_json.h"
#include "mipin/util/error.h"
#include "mipin/torchscript/model_file.h"
#include "support/scripted_model.h"
#include "support/test_support.h"

namespace mipin {
namespace {

using test::scripted_model;

// MIP-IN's signal at the input for the signal s at the output.
at::Tensor inverse_signal(const Network& network, const InverseOptions& options, const at::Tensor& x,
                          const at::Tensor& s) {
  const Inverse inverse(options, network.fingerprint());
  ForwardRecord record;
  network.forward(x, &record);
  return propagate(network, record, inverse.composite_for(network), s);
}

double max_relative(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-30, b.abs().max().item<double>());
}

TEST(MipInTransformer, ALayerNormsNormaliserIsAGateUndone) {
  test::TempDir dir;
  torch::manual_seed(1);
  const at::Tensor g = torch::randn({6}), b = torch::randn({6});
  const ImportedModel m = scripted_model(R"(
def forward(self, x):
    return torch.layer_norm(x, [6], self.g, self.b, 1e-3)
)",
                                   {6}, {{"g", g}, {"b", b}}, dir);
  ASSERT_EQ(m.network.size(), 1u);
  const auto parts = layer_norm_parts(m.network.layer(0));
  ASSERT_TRUE(parts.has_value());
  EXPECT_TRUE(parts->weight.equal(g));
  EXPECT_TRUE(parts->bias.equal(b));
  EXPECT_DOUBLE_EQ(parts->eps, 1e-3);
  EXPECT_EQ(parts->dims, 1);
  const at::Tensor x = torch::randn({4, 6}) * 3 + 1, s = torch::randn({4, 6});
  const at::Tensor sd = torch::sqrt(x.var(1, /*unbiased=*/false, /*keepdim=*/true) + 1e-3);
  // The inverse of y = g (x - mean) / sd + b in x's units: s sd / g.
  EXPECT_LE(max_relative(inverse_signal(m.network, InverseOptions{}, x, s), s * sd / g), 1e-6);
  EXPECT_TRUE(inverse_signal(m.network, InverseOptions{}.with_layer_norm(LayerNormReading::Identity), x, s).equal(s));
  // The ablation keeps the fallback: the gradient, g / sd times the centring.
  at::Tensor leaf = x.clone().requires_grad_(true);
  const at::Tensor gradient =
      torch::autograd::grad({torch::layer_norm(leaf, {6}, g, b, 1e-3)}, {leaf}, {s})[0];
  EXPECT_LE(max_relative(inverse_signal(m.network, InverseOptions{}.with_layer_norm(LayerNormReading::Gradient), x, s),
                         gradient),
            1e-5);
}

TEST(MipInTransformer, AttentionProbabilitiesGateTheValuesAndQueriesAndKeysGetNothing) {
  test::TempDir dir;
  const ImportedModel m = scripted_model(R"(
def forward(self, x):
    p = torch.softmax(torch.matmul(x, x.transpose(1, 2)) * 0.5, -1)
    return torch.matmul(p, x)
)",
                                   {5, 3}, {}, dir);
  torch::manual_seed(2);
  const at::Tensor x = torch::randn({2, 5, 3}), s = torch::randn({2, 5, 3});
  const at::Tensor p = torch::softmax(torch::matmul(x, x.transpose(1, 2)) * 0.5, -1);
  // Only V's path carries the signal: s_x = P^T s.
  EXPECT_LE(max_relative(inverse_signal(m.network, InverseOptions{}, x, s), torch::matmul(p.transpose(1, 2), s)),
            1e-6);
  // The ablation routes to Q and K with the gradient: autograd's answer.
  at::Tensor leaf = x.clone().requires_grad_(true);
  const at::Tensor out = torch::matmul(torch::softmax(torch::matmul(leaf, leaf.transpose(1, 2)) * 0.5, -1), leaf);
  const at::Tensor gradient = torch::autograd::grad({out}, {leaf}, {s})[0];
  EXPECT_LE(max_relative(inverse_signal(m.network, InverseOptions{}.with_attention(AttentionReading::Gradient), x, s),
                         gradient),
            1e-5);
}

TEST(MipInTransformer, AProductWithNoGateSplitsItsSignalEvenly) {
  test::TempDir dir;
  const ImportedModel m = scripted_model(R"(
def forward(self, x):
    return torch.matmul(x, x.transpose(1, 2) * 2.0)
)",
                                   {4, 3}, {}, dir);
  torch::manual_seed(3);
  const at::Tensor x = torch::randn({2, 4, 3}), s = torch::randn({2, 4, 4});
  // Each operand gets half of its transpose, the other held at its forward value.
  at::Tensor leaf = x.clone().requires_grad_(true);
  const at::Tensor gradient = torch::autograd::grad({torch::matmul(leaf, leaf.transpose(1, 2) * 2.0)}, {leaf}, {s})[0];
  EXPECT_LE(max_relative(inverse_signal(m.network, InverseOptions{}, x, s), 0.5 * gradient), 1e-6);
  // A gate behind a sigmoid takes none of it.
  const ImportedModel gated = scripted_model(R"(
def forward(self, x):
    return torch.sigmoid(x) * x
)",
                                       {4}, {}, dir);
  const at::Tensor y = torch::randn({3, 4}), t = torch::randn({3, 4});
  EXPECT_LE(max_relative(inverse_signal(gated.network, InverseOptions{}, y, t), torch::sigmoid(y) * t), 1e-6);
}

}  // namespace
}  // namespace mipin

namespace mipin {
namespace {

// The readings are part of the inverse: a file keeps them, and a file from
// before them reads as the gradient at both (what it was fitted with).
TEST(MipInTransformer, TheReadingsTravelWithTheInverseFile) {
  const InverseOptions options =
      InverseOptions{}.with_layer_norm(LayerNormReading::Identity).with_attention(AttentionReading::Gradient);
  const InverseOptions back = inverse_options_from_json(inverse_options_json(options));
  EXPECT_EQ(back.layer_norm, LayerNormReading::Identity);
  EXPECT_EQ(back.attention, AttentionReading::Gradient);
  nlohmann::json old = inverse_options_json(InverseOptions{});
  old.erase("layer_norm");
  old.erase("attention");
  EXPECT_EQ(inverse_options_from_json(old).layer_norm, LayerNormReading::Gradient);
  EXPECT_EQ(inverse_options_from_json(old).attention, AttentionReading::Gradient);
  EXPECT_EQ(InverseOptions{}.layer_norm, LayerNormReading::Gate);
  EXPECT_THROW(parse_layer_norm_reading("inverse"), Error);
}

}  // namespace
}  // namespace mipin

namespace mipin {
namespace {

// Fitted fork weights on tokens run along the features, and a file keeps
// them where the fork's value is not a fitted node's index (a LayerNorm
// reads it).
TEST(MipInTransformer, FittedForksOnTokensSaveAndLoad) {
  test::TempDir dir;
  torch::manual_seed(9);
  const ImportedModel m = scripted_model(R"(
def forward(self, x):
    h = x + torch.linear(torch.layer_norm(x, [6], self.g, self.b, 1e-5), self.w, None)
    return torch.linear(torch.layer_norm(h, [6], self.g, self.b, 1e-5).mean(1), self.head, None)
)",
                                   {4, 6},
                                   {{"g", 1 + 0.2 * torch::randn({6})}, {"b", 0.1 * torch::randn({6})},
                                    {"w", torch::randn({6, 6})}, {"head", torch::randn({3, 6})}},
                                   dir);
  const auto data = make_tensor_dataset("tokens", torch::randn({64, 4, 6}), torch::randint(0, 3, {64}), Normalization{}, 3);
  const Inverse fitted = fit_inverse(m.network, *data, InverseOptions{}.with_batch_size(16).with_fork(ForkCombine::Fitted));
  ASSERT_FALSE(fitted.forks().empty());
  for (const auto& [value, weights] : fitted.forks()) EXPECT_EQ(weights.size(1), 6) << "value " << value;
  fitted.save(dir.file("f.mipin"));
  const Inverse loaded = Inverse::load(dir.file("f.mipin"));
  const at::Tensor x = torch::randn({2, 4, 6});
  EXPECT_TRUE(loaded.source_signal(m.network, x).equal(fitted.source_signal(m.network, x)));
}

}  // namespace
}  // namespace mipin
