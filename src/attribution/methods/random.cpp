// A seeded random map: the floor every faithfulness metric is read against.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "mipin/attribution/registry.h"

namespace mipin {
namespace {

class RandomMap final : public AttributionMethod {
 public:
  explicit RandomMap(uint64_t seed) : seed_(seed) {}
  std::string name() const override { return "random"; }
  at::Tensor attribute(const Network&, const at::Tensor& x, const at::Tensor&) const override {
    auto gen = at::detail::createCPUGenerator(seed_);
    return torch::randn(x.sizes(), gen);
  }

 private:
  uint64_t seed_;
};

const RegisterMethod registration({
    "random",
    "standard normal noise, seeded: the floor every metric is compared with",
    "--seed S",
    [](const MethodSettings& s) { return std::make_unique<RandomMap>(s.seed); },
});

}  // namespace
}  // namespace mipin
