// Input times a gradient-like map: for the gradient, the first-order Taylor
// contribution of each input value.
#include <torch/torch.h>

#include "mipin/attribution/registry.h"

namespace mipin {
namespace {

class InputTimes final : public AttributionMethod {
 public:
  explicit InputTimes(std::unique_ptr<AttributionMethod> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return "input-x-gradient"; }
  at::Tensor attribute(const Network& network, const at::Tensor& x,
                       const at::Tensor& targets) const override {
    return x * inner_->attribute(network, x, targets);
  }

  std::vector<size_t> fallback_nodes(const Network& network) const override {
    return inner_->fallback_nodes(network);
  }

 private:
  std::unique_ptr<AttributionMethod> inner_;
};

const RegisterMethod registration(MethodEntry{
    "input-x-gradient",
    "gradient of the target logit (or a gradient-like map) times the input",
    {inner_method_option("the gradient-like method multiplied by the input")},
    [](const MethodSettings& s) {
      return std::make_unique<InputTimes>(make_inner_method("input-x-gradient", s.options));
    },
}.times_input());

}  // namespace
}  // namespace mipin
