// Composites built on a base (fallback(base)) and rules for a whole group
// of ops: which rule each node gets, and what an op gains by joining a
// group (rule.cpp's table) with no rule of its own in any method.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>

#include "mipin/attribution/registry.h"
#include "mipin/attribution/rule.h"
#include "mipin/model/network.h"
#include "support/scripted_model.h"
#include "support/test_support.h"

namespace mipin {
namespace {

using test::scripted_model;

// linear -> relu -> erf -> cumsum: a kind with a layer of its own (ReLU),
// an op in a group (erf: activation) and an op in none (cumsum).
ImportedModel small_model(test::TempDir& dir) {
  torch::manual_seed(3);
  return scripted_model(R"(
def forward(self, x):
    y = torch.relu(torch.linear(x, self.w, None))
    return torch.cumsum(torch.erf(y), 1)
)",
                        {4}, {{"w", torch::randn({5, 4})}}, dir);
}

size_t find_node(const Network& network, const std::string& text) {
  for (size_t i = 0; i < network.size(); ++i) {
    if (network.layer(i).describe().find(text) != std::string::npos) return i;
  }
  ADD_FAILURE() << "no node " << text;
  return 0;
}

// A rule that says who it is: its signal times a tag.
std::shared_ptr<const Rule> tagged(double tag) {
  return std::make_shared<FunctionRule>([tag](const RuleContext&, const at::Tensor& s) { return Signals(s * tag); });
}

double tag_of(const Composite& c, const Network& network, size_t node) {
  const LayerRecord record;
  const at::Tensor one = torch::ones({1});
  return c.rule_for(network.layer(node), node).backward(RuleContext{network.layer(node), record, node, &network}, one)[0]
      .item<double>();
}

TEST(Rule, OpsBelongToTheirGroups) {
  test::TempDir dir;
  const ImportedModel m = small_model(dir);
  const Network& net = m.network;
  EXPECT_EQ(op_group(net.layer(find_node(net, "Linear"))), OpGroup::affine);
  EXPECT_EQ(op_group(net.layer(find_node(net, "ReLU"))), OpGroup::activation);
  EXPECT_EQ(op_group(net.layer(find_node(net, "erf"))), OpGroup::activation);
  EXPECT_EQ(op_group(net.layer(find_node(net, "cumsum"))), OpGroup::none);
}

TEST(Rule, ACompositeOnABaseNamesOnlyWhatItChanges) {
  test::TempDir dir;
  const ImportedModel m = small_model(dir);
  const Network& net = m.network;
  const size_t relu = find_node(net, "ReLU"), erf = find_node(net, "erf"), cumsum = find_node(net, "cumsum");
  Composite base("base");
  base.with(LayerKind::ReLU, tagged(2)).with_group(OpGroup::activation, tagged(3));
  Composite derived("derived");
  derived.fallback(base).with_group(OpGroup::activation, tagged(5));
  // A kind's rule, even the base's, comes before any group's: the derived
  // group rule reaches erf, the base's ReLU rule stays.
  EXPECT_EQ(tag_of(derived, net, relu), 2);
  EXPECT_EQ(tag_of(derived, net, erf), 5);
  EXPECT_EQ(tag_of(base, net, erf), 3);
  // Its own rule for a kind overrides the base's; one for a position, both.
  derived.with(LayerKind::ReLU, tagged(7));
  EXPECT_EQ(tag_of(derived, net, relu), 7);
  derived.with_layer(erf, tagged(11));
  EXPECT_EQ(tag_of(derived, net, erf), 11);
  EXPECT_EQ(tag_of(base, net, relu), 2);  // the base is untouched
  // cumsum has no rule in either: both fall back there, and only there.
  EXPECT_TRUE(derived.falls_back(net.layer(cumsum), cumsum));
  EXPECT_FALSE(derived.falls_back(net.layer(erf), erf));
  const std::vector<size_t> fell = derived.fallback_nodes(net);
  EXPECT_NE(std::find(fell.begin(), fell.end(), cumsum), fell.end());
  EXPECT_EQ(std::find(fell.begin(), fell.end(), erf), fell.end());
  EXPECT_EQ(std::find(fell.begin(), fell.end(), relu), fell.end());
}

TEST(Rule, ABasesPairRuleHoldsOnlyWhileBothItsRulesDo) {
  test::TempDir dir;
  const ImportedModel m = small_model(dir);
  const Network& net = m.network;
  const auto pair = std::make_shared<FunctionPairRule>(
      [](const RuleContext&, const RuleContext&, const at::Tensor& s) { return s; });
  Composite base("base");
  base.with_pair(LayerKind::Linear, LayerKind::ReLU, pair);
  const size_t relu = find_node(net, "ReLU");
  Composite derived("derived");
  derived.fallback(base).with(LayerKind::Activation, tagged(2));
  EXPECT_EQ(derived.pair_rule_for(net.layer(relu - 1), net.layer(relu), relu), pair.get());
  derived.with(LayerKind::ReLU, tagged(3));
  EXPECT_EQ(derived.pair_rule_for(net.layer(relu - 1), net.layer(relu), relu), nullptr);
}

// LRP-epsilon conserves the target logit and DeepLIFT sums to f(x) - f(0)
// on a bias-free model, neither reporting a fallback; returns f(x) - f(0).
at::Tensor expect_lrp_and_deeplift_laws(const Network& net, const at::Tensor& x, const at::Tensor& targets) {
  const at::Tensor logits = net.forward(x);
  const at::Tensor index = targets.unsqueeze(1);
  const at::Tensor target_logits = logits.gather(1, index).squeeze(1).to(at::kDouble);
  const auto lrp = make_method("lrp-epsilon", {});
  const at::Tensor relevance = lrp->attribute(net, x, targets).to(at::kDouble).sum(1);
  EXPECT_LE(((relevance - target_logits).abs() / target_logits.abs()).max().item<double>(), 1e-4);
  const auto deeplift = make_method("deeplift", {});
  const at::Tensor delta = target_logits - net.forward(torch::zeros_like(x)).gather(1, index).squeeze(1).to(at::kDouble);
  const at::Tensor sums = deeplift->attribute(net, x, targets).to(at::kDouble).sum(1);
  EXPECT_LE(((sums - delta).abs() / delta.abs().clamp_min(1e-3)).max().item<double>(), 1e-4);
  EXPECT_TRUE(lrp->fallback_nodes(net).empty());
  EXPECT_TRUE(deeplift->fallback_nodes(net).empty());
  return delta;
}

// erf joined the activation group with one line and no rule of its own in
// any method: LRP passes its relevance and DeepLIFT rescales it, each by
// its rule for the group, keeping their laws and reporting no fallback.
TEST(Rule, AnOpInAGroupTakesEveryMethodsRuleForTheGroup) {
  test::TempDir dir;
  torch::manual_seed(5);
  const ImportedModel m = scripted_model(R"(
def forward(self, x):
    y = torch.erf(torch.linear(x, self.w1, None))
    return torch.linear(y, self.w2, None)
)",
                                         {6}, {{"w1", torch::randn({8, 6})}, {"w2", torch::randn({3, 8})}}, dir);
  const Network& net = m.network;
  const at::Tensor x = torch::randn({16, 6});
  const at::Tensor targets = net.forward(x).argmax(1);
  const at::Tensor delta = expect_lrp_and_deeplift_laws(net, x, targets);
  // Input x gradient misses f(x) - f(0) here: the sum test can tell.
  const at::Tensor linear = make_method("input-x-gradient", {})->attribute(net, x, targets).to(at::kDouble).sum(1);
  EXPECT_GE(((linear - delta).abs() / delta.abs().clamp_min(1e-3)).max().item<double>(), 1e-2);
}

// einsum is in the product group: a product of two computed tensors takes
// LRP's even split and DeepLIFT's midpoint rule, both keeping their laws.
TEST(Rule, EinsumTakesTheProductGroupsRules) {
  test::TempDir dir;
  torch::manual_seed(8);
  const ImportedModel m = scripted_model(R"(
def forward(self, x):
    a = torch.linear(x, self.w1, None)
    b = torch.linear(x, self.w2, None)
    return torch.linear(torch.einsum("ni,nj->nij", a, b).flatten(1), self.w3, None)
)",
                                         {5},
                                         {{"w1", torch::randn({3, 5})}, {"w2", torch::randn({4, 5})},
                                          {"w3", torch::randn({2, 12})}},
                                         dir);
  const Network& net = m.network;
  const at::Tensor x = torch::randn({16, 5});
  expect_lrp_and_deeplift_laws(net, x, net.forward(x).argmax(1));
}

TEST(Rule, AnOpInNoGroupIsReportedWhereAMethodHasNoRule) {
  test::TempDir dir;
  const ImportedModel m = small_model(dir);
  const size_t cumsum = find_node(m.network, "cumsum");
  for (const char* method : {"lrp-epsilon", "deeplift", "guided-backprop"}) {
    EXPECT_EQ(make_method(method, {})->fallback_nodes(m.network), std::vector<size_t>{cumsum}) << method;
  }
  EXPECT_TRUE(make_method("gradient", {})->fallback_nodes(m.network).empty());
}

}  // namespace
}  // namespace mipin
