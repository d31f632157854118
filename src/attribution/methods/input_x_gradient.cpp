// Gradient times input: the first-order Taylor contribution of each input value.
#include <torch/torch.h>

#include "mipin/attribution/gradient.h"
#include "mipin/attribution/registry.h"

namespace mipin {
namespace {

class InputTimesGradient final : public AttributionMethod {
 public:
  std::string name() const override { return "input-x-gradient"; }
  at::Tensor attribute(const Network& network, const at::Tensor& x,
                       const at::Tensor& targets) const override {
    return x * Gradient().attribute(network, x, targets);
  }
};

const RegisterMethod registration(MethodEntry{
    "input-x-gradient",
    "gradient of the target logit times the input",
    {},
    [](const MethodSettings&) { return std::make_unique<InputTimesGradient>(); },
}.times_input());

}  // namespace
}  // namespace mipin
