// Gradient times the sign of the input (Kim et al. 2019): like gradient times
// input, but independent of the input's magnitude, so dark and bright pixels
// of equal sensitivity count alike.
#include <torch/torch.h>

#include "mipin/attribution/gradient.h"
#include "mipin/attribution/registry.h"

namespace mipin {
namespace {

class GradientTimesSign final : public AttributionMethod {
 public:
  std::string name() const override { return "gradient-x-sign"; }
  at::Tensor attribute(const Network& network, const at::Tensor& x,
                       const at::Tensor& targets) const override {
    return torch::sign(x) * Gradient().attribute(network, x, targets);
  }
};

const RegisterMethod registration({
    "gradient-x-sign",
    "gradient of the target logit times the sign of the input (Kim et al. 2019)",
    {},
    [](const MethodSettings&) { return std::make_unique<GradientTimesSign>(); },
});

}  // namespace
}  // namespace mipin
