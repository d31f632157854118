// Rule-based methods keep their laws on transformer ops (docs/design.md
// 1.5): DeepLIFT's product rule on attention's products, LayerNorm and
// softmax keeps its sum exactly f(x) - f(reference).
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "mipin/attribution/registry.h"
#include "mipin/torchscript/model_file.h"
#include "support/scripted_model.h"
#include "support/test_support.h"

namespace mipin {
namespace {

using test::scripted_model;

// A pre-LN transformer block with a class token, written op by op as a ViT
// is (qkv map, heads, softmax, products, LayerNorm, GELU), on 5 tokens of 8;
// bias-free, every bias, the class token and the positions are zero.
ImportedModel token_transformer(test::TempDir& dir, bool bias_free = false) {
  torch::manual_seed(6);
  const std::vector<std::pair<std::string, std::vector<int64_t>>> shapes{
      {"cls", {1, 1, 8}}, {"pos", {1, 6, 8}}, {"g1", {8}},   {"b1", {8}},    {"wqkv", {24, 8}}, {"bqkv", {24}},
      {"wo", {8, 8}},     {"bo", {8}},        {"g2", {8}},   {"b2", {8}},    {"w1", {16, 8}},   {"c1", {16}},
      {"w2", {8, 16}},    {"c2", {8}},        {"gf", {8}},   {"bf", {8}},    {"wh", {3, 8}},    {"bh", {3}}};
  std::vector<std::pair<std::string, at::Tensor>> parameters;
  for (const auto& [name, shape] : shapes) {
    const bool gain = name[0] == 'g';
    const bool bias = name[0] == 'b' || name[0] == 'c' || name == "pos";
    at::Tensor value = gain ? 1 + 0.3 * torch::randn(shape) : 0.5 * torch::randn(shape);
    parameters.emplace_back(name, bias_free && bias ? torch::zeros(shape) : value);
  }
  return scripted_model(R"(
def forward(self, x):
    n = x.size(0)
    h = torch.cat([self.cls.expand(n, -1, -1), x], 1) + self.pos
    y = torch.layer_norm(h, [8], self.g1, self.b1, 1e-5)
    qkv = torch.linear(y, self.wqkv, self.bqkv).reshape(n, -1, 3, 2, 4).permute(2, 0, 3, 1, 4)
    q = qkv[0]
    k = qkv[1]
    v = qkv[2]
    p = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * 0.5, -1)
    o = torch.matmul(p, v).transpose(1, 2).reshape(n, -1, 8)
    h = h + torch.linear(o, self.wo, self.bo)
    y = torch.layer_norm(h, [8], self.g2, self.b2, 1e-5)
    h = h + torch.linear(torch.gelu(torch.linear(y, self.w1, self.c1)), self.w2, self.c2)
    h = torch.layer_norm(h, [8], self.gf, self.bf, 1e-5)
    return torch.linear(h.select(1, 0), self.wh, self.bh)
)",
                        {5, 8}, parameters, dir);
}

void expect_deeplift_sums_to_delta(const Network& network, const std::string& what) {
  std::vector<int64_t> shape{16};
  for (int64_t d : network.input_shape()) shape.push_back(d);
  torch::manual_seed(4);
  const at::Tensor x = torch::randn(shape);
  const at::Tensor logits = network.forward(x);
  const at::Tensor targets = logits.argmax(1);
  const at::Tensor reference_logits = network.forward(torch::zeros_like(x));
  const auto deeplift = make_method("deeplift", {});
  const at::Tensor map = deeplift->attribute(network, x, targets).to(at::kDouble);
  const at::Tensor index = targets.unsqueeze(1);
  const at::Tensor delta = (logits.gather(1, index) - reference_logits.gather(1, index)).squeeze(1).to(at::kDouble);
  const at::Tensor sums = map.flatten(1).sum(1);
  EXPECT_LE(((sums - delta).abs() / delta.abs().clamp_min(1e-3)).max().item<double>(), 1e-4)
      << what << ": sums " << sums << " deltas " << delta;
  // Every transformer op has DeepLIFT's own rule.
  for (size_t i : deeplift->fallback_nodes(network)) {
    ADD_FAILURE() << what << ": node " << i << " (" << network.layer(i).describe() << ") fell back";
  }
}

TEST(TransformerRules, DeepLiftSumsToTheDifferenceFromItsReference) {
  test::TempDir dir;
  expect_deeplift_sums_to_delta(token_transformer(dir).network, "token transformer");
  expect_deeplift_sums_to_delta(load_torchscript(test::test_model("layernorm_mlp.pt")).network, "layernorm_mlp");
}

// The gradient's rule at the midpoint would not be exact for a nonlinear
// op: the test can tell.
TEST(TransformerRules, TheSumTestCanTellAnInexactRule) {
  test::TempDir dir;
  const ImportedModel m = token_transformer(dir);
  torch::manual_seed(4);
  const at::Tensor x = torch::randn({4, 5, 8});
  const at::Tensor logits = m.network.forward(x);
  const at::Tensor targets = logits.argmax(1);
  // Input x gradient, the linear reading, misses f(x) - f(0) here.
  const at::Tensor map = make_method("input-x-gradient", {})->attribute(m.network, x, targets).to(at::kDouble);
  const at::Tensor index = targets.unsqueeze(1);
  const at::Tensor delta =
      (logits.gather(1, index) - m.network.forward(torch::zeros_like(x)).gather(1, index)).squeeze(1).to(at::kDouble);
  EXPECT_GT(((map.flatten(1).sum(1) - delta).abs() / delta.abs().clamp_min(1e-3)).max().item<double>(), 1e-2);
}

}  // namespace
}  // namespace mipin

namespace mipin {
namespace {

using test::scripted_model;

at::Tensor lrp_epsilon(const Network& network, const at::Tensor& x, const at::Tensor& targets,
                       const MethodSettings& settings = {}) {
  return make_method("lrp-epsilon", settings)->attribute(network, x, targets).to(at::kDouble);
}

// The largest relative gap between a map's sum and the target logit.
double conservation_gap(const Network& network, const at::Tensor& x, const MethodSettings& settings) {
  const at::Tensor logits = network.forward(x);
  const at::Tensor targets = logits.argmax(1);
  const at::Tensor relevance = lrp_epsilon(network, x, targets, settings);
  const at::Tensor target_logits = logits.gather(1, targets.unsqueeze(1)).squeeze(1).to(at::kDouble);
  return ((relevance.flatten(1).sum(1) - target_logits).abs() / target_logits.abs()).max().item<double>();
}

// AttnLRP's rules conserve relevance where the op has no bias: LayerNorm
// with sd held constant and a product split evenly between its operands.
TEST(TransformerRules, LrpConservesThroughBiasFreeLayerNormsAndProducts) {
  test::TempDir dir;
  torch::manual_seed(7);
  const ImportedModel m = scripted_model(R"(
def forward(self, x):
    y = torch.layer_norm(x, [6], self.g, None, 1e-5)
    z = torch.matmul(y, y.transpose(1, 2))
    return z.flatten(1)
)",
                                         {4, 6}, {{"g", 1 + 0.3 * torch::randn({6})}}, dir);
  const at::Tensor x = torch::randn({3, 4, 6});
  const at::Tensor logits = m.network.forward(x);
  const at::Tensor targets = logits.argmax(1);
  const at::Tensor relevance = lrp_epsilon(m.network, x, targets);
  const at::Tensor target_logits = logits.gather(1, targets.unsqueeze(1)).squeeze(1).to(at::kDouble);
  EXPECT_LE(((relevance.flatten(1).sum(1) - target_logits).abs() / target_logits.abs()).max().item<double>(), 1e-4);
  EXPECT_TRUE(make_method("lrp-epsilon", {})->fallback_nodes(m.network).empty());
}

// A whole bias-free attention block: with the attention weights held
// constant (value-path) relevance is conserved; AttnLRP's linearised
// softmax loses what its bias absorbs, and the test can tell.
TEST(TransformerRules, LrpConservesThroughBiasFreeAttentionOnTheValuePath) {
  test::TempDir dir;
  const ImportedModel m = token_transformer(dir, /*bias_free=*/true);
  torch::manual_seed(9);
  const at::Tensor x = torch::randn({8, 5, 8});
  MethodSettings value_path;
  value_path.options.set("attention", std::string("value-path"));
  EXPECT_LE(conservation_gap(m.network, x, value_path), 1e-4);
  EXPECT_GE(conservation_gap(m.network, x, {}), 1e-3);
}

// Softmax: the epsilon rule of its linearisation, R_in = x (R - s sum R)
// (one that is not the model's last op: a final softmax is dropped).
TEST(TransformerRules, LrpOfSoftmaxIsItsLinearisation) {
  test::TempDir dir;
  const ImportedModel m = scripted_model(R"(
def forward(self, x):
    return torch.softmax(x, -1).flatten(1)
)",
                                         {5}, {}, dir);
  torch::manual_seed(8);
  const at::Tensor x = torch::randn({3, 5});
  const at::Tensor s = torch::softmax(x, -1);
  const at::Tensor targets = torch::tensor({0, 2, 4}, torch::kLong);
  const at::Tensor r = torch::one_hot(targets, 5).to(at::kFloat) * s;  // the target's relevance is its value
  const at::Tensor expected = x * (r - s * r.sum(1, true));
  const at::Tensor actual = lrp_epsilon(m.network, x, targets);
  EXPECT_LE((actual - expected).abs().max().item<double>(), 1e-5);
}

}  // namespace
}  // namespace mipin
