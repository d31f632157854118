// Wrappers compose: SmoothGrad, integrated gradients and input-times are
// taken over any gradient-like method, and reduce to their definitions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "mipin/attribution/registry.h"
#include "support/method_checks.h"
#include "support/test_support.h"

namespace mipin {
namespace {

at::Tensor run(const std::string& method, const MethodOptions& options, const Network& net, const at::Tensor& x,
               const at::Tensor& targets) {
  MethodSettings s;
  s.options = options;
  return make_method(method, s)->attribute(net, x, targets);
}

TEST(Wrappers, TheInnerChoicesAreExactlyTheGradientLikeMethods) {
  std::set<std::string> gradient_like, choices;
  for (const MethodEntry& m : registered_methods()) {
    if (m.gradient_like) gradient_like.insert(m.name);
  }
  for (const std::string& c : inner_method_option("x").choices) choices.insert(c);
  EXPECT_EQ(gradient_like, choices);
  EXPECT_EQ(inner_method_option("x").default_text, "gradient");
}

TEST(Wrappers, EachWrapperOverAGradientLikeMethodIsItsDefinition) {
  const Network net = test::load("zoo_cnn.pt");
  torch::manual_seed(3);
  const at::Tensor x = torch::rand({3, 1, 28, 28});
  const at::Tensor t = torch::tensor({1, 4, 7}, torch::kLong);
  for (const std::string inner : {"guided-backprop", "deconvnet", "gradient"}) {
    const at::Tensor g = run(inner, {}, net, x, t);
    // input-times: x * g(x).
    EXPECT_TRUE(torch::allclose(run("input-x-gradient", MethodOptions().set("of", inner), net, x, t), x * g))
        << inner;
    // SmoothGrad without noise, one sample: g(x).
    const at::Tensor smooth =
        run("smoothgrad", MethodOptions().set("of", inner).set("noise", 0.0).set("samples", int64_t(1)), net, x, t);
    EXPECT_TRUE(torch::allclose(smooth, g)) << inner;
    // Integrated gradients with one midpoint from zero: x * g(x / 2).
    const at::Tensor half = run(inner, {}, net, x / 2, t);
    EXPECT_TRUE(torch::allclose(
        run("integrated-gradients", MethodOptions().set("of", inner).set("steps", int64_t(1)), net, x, t), x * half,
        1e-5, 1e-7))
        << inner;
  }
  // SmoothGrad-Squared: the mean of the squared maps; g * g with one noiseless sample.
  const at::Tensor g = run("gradient", {}, net, x, t);
  EXPECT_TRUE(torch::allclose(
      run("smoothgrad", MethodOptions().set("squared", true).set("noise", 0.0).set("samples", int64_t(1)), net, x, t),
      g * g));
  // The wrappers differ with the inner method (the option is not ignored).
  EXPECT_FALSE(torch::allclose(run("input-x-gradient", MethodOptions().set("of", "deconvnet"), net, x, t),
                               run("input-x-gradient", {}, net, x, t)));
  // Only gradient-like methods: occlusion is refused, naming what is taken.
  EXPECT_NE(test::error_of([&] { run("smoothgrad", MethodOptions().set("of", "occlusion"), net, x, t); })
                .find("gradient, guided-backprop or deconvnet"),
            std::string::npos);
}

}  // namespace
}  // namespace mipin
