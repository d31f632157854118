// LRP against Zennit 0.5.1: relevances Zennit itself computed
// (tests/reference/zennit/make_reference.py wrote them, with the model and
// inputs) for the epsilon, z+ and alpha2-beta1 rules, and for composites
// with flat, w^2 and gamma, on a CNN with large biases. The epsilon rule agrees as it is; z+ and alpha-beta agree with
// Zennit's conventions (--bias absorb --stabilizer 1e-6) and differ without.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mipin/attribution/registry.h"
#include "mipin/data/npy.h"
#include "mipin/torchscript/model_file.h"

namespace mipin {
namespace {

const std::string kReference = std::string(MIPIN_SOURCE_DIR) + "/tests/reference/zennit/";

// The largest difference, relative to the reference map's largest value.
double relative_difference(const at::Tensor& ours, const at::Tensor& theirs) {
  return ((ours - theirs).abs().max() / theirs.abs().max()).item<double>();
}

struct Case {
  std::string method;
  std::vector<std::pair<std::string, std::string>> options;
  std::string reference;
};

at::Tensor relevance(const Network& net, const Case& c, const at::Tensor& x, const at::Tensor& t) {
  MethodSettings s;
  for (const auto& [name, value] : c.options) s.options.set(name, value);
  return make_method(c.method, s)->attribute(net, x, t);
}

TEST(LrpConventions, ZennitsRelevancesWithItsBiasConvention) {
  const ImportedModel m = load_torchscript(kReference + "model.pt");
  const at::Tensor x = read_npy(kReference + "x.npy");
  const at::Tensor t = read_npy(kReference + "targets.npy");
  ASSERT_TRUE(m.network.forward(x).argmax(1).equal(t));
  const std::vector<Case> same{
      {"lrp-epsilon", {}, "epsilon"},
      {"lrp-zplus", {{"bias", "absorb"}, {"stabilizer", "1e-6"}}, "zplus"},
      {"lrp-alpha-beta", {{"alpha", "2"}, {"beta", "1"}, {"bias", "absorb"}, {"stabilizer", "1e-6"}}, "alpha2_beta1"},
  };
  for (const Case& c : same) {
    const double d = relative_difference(relevance(m.network, c, x, t), read_npy(kReference + c.reference + ".npy"));
    std::printf("%s with Zennit's convention: largest difference %.2e of the map's scale\n", c.method.c_str(), d);
    EXPECT_LT(d, 1e-4) << c.method;
  }
  // mipin's own convention leaves biases out: another map on this model,
  // and one whose relevance is the target logit, conserved.
  const std::vector<Case> own{{"lrp-zplus", {}, "zplus"}, {"lrp-alpha-beta", {{"alpha", "2"}, {"beta", "1"}}, "alpha2_beta1"}};
  for (const Case& c : own) {
    const at::Tensor r = relevance(m.network, c, x, t);
    const double d = relative_difference(r, read_npy(kReference + c.reference + ".npy"));
    std::printf("%s with biases ignored: largest difference %.2e of Zennit's map's scale\n", c.method.c_str(), d);
    EXPECT_GT(d, 0.05) << c.method;
  }
  const at::Tensor logits = m.network.forward(x).gather(1, t.view({-1, 1})).squeeze(1);
  const at::Tensor sums = relevance(m.network, own[0], x, t).sum({1, 2, 3});
  EXPECT_TRUE(torch::allclose(sums, logits.clamp_min(0), 1e-4, 1e-5)) << sums << logits;
}

// The rule library's first-layer rules (flat, w^2) and gamma, in
// lrp-composite, against Zennit's SpecialFirstLayerMapComposite with the
// same rules (biases out of the modified rules, as mipin leaves them).
TEST(LrpConventions, ZennitsFirstLayerAndGammaRules) {
  const ImportedModel m = load_torchscript(kReference + "model.pt");
  const at::Tensor x = read_npy(kReference + "x.npy");
  const at::Tensor t = read_npy(kReference + "targets.npy");
  const std::vector<Case> cases{
      {"lrp-composite", {{"first", "flat"}}, "flat_zplus"},
      {"lrp-composite", {{"first", "wsquare"}}, "wsquare_zplus"},
      {"lrp-composite", {{"first", "flat"}, {"conv", "gamma"}, {"gamma", "0.25"}}, "flat_gamma"},
  };
  for (const Case& c : cases) {
    const double d = relative_difference(relevance(m.network, c, x, t), read_npy(kReference + c.reference + ".npy"));
    std::printf("%s %s: largest difference %.2e of Zennit's map's scale\n", c.method.c_str(), c.reference.c_str(), d);
    EXPECT_LT(d, 1e-4) << c.reference;
  }
  // The rules differ where they should: flat against w^2 at the first layer.
  const at::Tensor flat = relevance(m.network, cases[0], x, t), square = relevance(m.network, cases[1], x, t);
  EXPECT_GT(relative_difference(flat, square), 0.05);
}

}  // namespace
}  // namespace mipin
