// Integrated gradients (Sundararajan et al. 2017): (x - x0) times the gradient
// averaged along the straight path from the baseline x0 to x.
#include <torch/torch.h>

#include <cmath>

#include "attribution/resource_bounds.h"
#include "mipin/attribution/registry.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

// Nodes in (0, 1) and weights summing to 1 for integrating over [0, 1].
std::pair<std::vector<double>, std::vector<double>> quadrature(const std::string& rule,
                                                               int64_t steps) {
  std::vector<double> nodes, weights;
  if (rule == "riemann") {  // midpoint rule
    for (int64_t i = 0; i < steps; ++i) {
      nodes.push_back((double(i) + 0.5) / double(steps));
      weights.push_back(1.0 / double(steps));
    }
    return {nodes, weights};
  }
  MIPIN_CHECK(rule == "gauss-legendre", "unknown integration rule '", rule,
              "'; expected riemann or gauss-legendre");
  // Golub-Welsch: the nodes are the eigenvalues of the Jacobi matrix of the
  // Legendre polynomials, the weights twice the squared first eigenvector entries.
  at::Tensor jacobi = torch::zeros({steps, steps}, torch::kDouble);
  for (int64_t k = 1; k < steps; ++k) {
    const double b = double(k) / std::sqrt(4.0 * double(k) * double(k) - 1.0);
    jacobi[k - 1][k] = b;
    jacobi[k][k - 1] = b;
  }
  const auto [values, vectors] = torch::linalg_eigh(jacobi);
  for (int64_t i = 0; i < steps; ++i) {
    nodes.push_back((values[i].item<double>() + 1) / 2);
    weights.push_back(vectors[0][i].item<double>() * vectors[0][i].item<double>());
  }
  return {nodes, weights};
}

constexpr int64_t kMaxGaussLegendreSteps = 1024;
// Points on the path, each a gradient: beyond this a run takes days.
constexpr int64_t kMaxSteps = 1000000;

class IntegratedGradients final : public AttributionMethod {
 public:
  explicit IntegratedGradients(const MethodSettings& s)
      : baseline_(s.options.reference("baseline")),
        steps_(s.options.integer("steps")),
        rule_(s.options.choice("integration")),
        chunk_(s.options.integer("internal_batch")),
        inner_(make_inner_method("integrated-gradients", s.options)) {
    // Golub-Welsch's Jacobi matrix has steps^2 entries.
    MIPIN_CHECK(rule_ != "gauss-legendre" || steps_ <= kMaxGaussLegendreSteps,
                "method 'integrated-gradients': option steps takes at most ", kMaxGaussLegendreSteps,
                " nodes with integration gauss-legendre (its nodes come from a steps x steps matrix), found ", steps_);
  }
  std::string name() const override { return "integrated-gradients"; }
  at::Tensor attribute(const Network& network, const at::Tensor& x,
                       const at::Tensor& targets) const override {
    check_inputs_per_pass(network, x, chunk_, "integrated-gradients", "internal_batch");
    const at::Tensor x0 = baseline_.defined() ? baseline_.expand_as(x) : torch::zeros_like(x);
    const auto [nodes, weights] = quadrature(rule_, steps_);
    at::Tensor sum = torch::zeros_like(x);
    // Path points of all examples, at most `chunk_` inputs per backward pass.
    const int64_t per_pass = std::max<int64_t>(1, chunk_ / std::max<int64_t>(1, x.size(0)));
    for (int64_t first = 0; first < steps_; first += per_pass) {
      const int64_t k = std::min(per_pass, steps_ - first);
      std::vector<at::Tensor> points;
      for (int64_t i = 0; i < k; ++i) points.push_back(x0 + nodes[first + i] * (x - x0));
      const at::Tensor g = inner_->attribute(network, torch::cat(points, 0), targets.repeat({k}));
      for (int64_t i = 0; i < k; ++i) {
        sum += weights[first + i] * g.slice(0, i * x.size(0), (i + 1) * x.size(0));
      }
    }
    return (x - x0) * sum;
  }

  std::vector<size_t> fallback_nodes(const Network& network) const override {
    return inner_->fallback_nodes(network);
  }

 private:
  at::Tensor baseline_;
  int64_t steps_;
  std::string rule_;
  int64_t chunk_;
  std::unique_ptr<AttributionMethod> inner_;
};

const RegisterMethod registration(MethodEntry{
    "integrated-gradients",
    "input minus baseline times the gradient averaged along the path between them "
    "(Sundararajan et al. 2017)",
    {OptionSpec::reference("baseline", "the input the path starts from"),
     OptionSpec::integer("steps", 64, "points on the path").at_least(1).at_most(kMaxSteps),
     OptionSpec::choice("integration", {"riemann", "gauss-legendre"}, "the quadrature along the path"),
     OptionSpec::integer("internal_batch", 64, "inputs per backward pass (memory against speed)").at_least(1),
     inner_method_option("the gradient-like method integrated along the path")},
    [](const MethodSettings& s) { return std::make_unique<IntegratedGradients>(s); },
}.times_input());

}  // namespace
}  // namespace mipin
