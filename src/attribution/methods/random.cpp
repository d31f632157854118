// A seeded random map: the floor every faithfulness metric is read against.
// The noise is drawn from the seed and the model's fingerprint together, so
// the same model gives the same maps while a changed (e.g. randomized) model
// gives new ones: random stays at the floor of the randomization check too.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <functional>
#include <string>

#include "mipin/attribution/registry.h"

namespace mipin {
namespace {

class RandomMap final : public AttributionMethod {
 public:
  explicit RandomMap(uint64_t seed) : seed_(seed) {}
  std::string name() const override { return "random"; }
  at::Tensor attribute(const Network& network, const at::Tensor& x, const at::Tensor&) const override {
    auto gen = at::detail::createCPUGenerator(seed_ ^ std::hash<std::string>{}(network.fingerprint()));
    return torch::randn(x.sizes(), gen);
  }

 private:
  uint64_t seed_;
};

const RegisterMethod registration(MethodEntry{
    "random",
    "standard normal noise, seeded by --seed and the model: the floor every metric is compared with",
    {OptionSpec::integer("seed", 0, "seed of the noise (mixed with the model's fingerprint)").at_least(0)},
    [](const MethodSettings& s) { return std::make_unique<RandomMap>(uint64_t(s.options.integer("seed"))); },
}.as_floor());

}  // namespace
}  // namespace mipin
