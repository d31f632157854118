// SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies
// of the input, noise scaled to each input's value range.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "attribution/resource_bounds.h"
#include "mipin/attribution/registry.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

// Noisy copies, each a gradient: beyond this a run takes days.
constexpr int64_t kMaxSamples = 1000000;

class SmoothGrad final : public AttributionMethod {
 public:
  explicit SmoothGrad(const MethodSettings& s)
      : samples_(s.options.integer("samples")),
        noise_(s.options.real("noise")),
        seed_(uint64_t(s.options.integer("seed"))),
        chunk_(s.options.integer("internal_batch")),
        squared_(s.options.flag("squared")),
        inner_(make_inner_method("smoothgrad", s.options)) {}
  std::string name() const override { return "smoothgrad"; }
  at::Tensor attribute(const Network& network, const at::Tensor& x,
                       const at::Tensor& targets) const override {
    check_inputs_per_pass(network, x, chunk_, "smoothgrad", "internal_batch");
    auto gen = at::detail::createCPUGenerator(seed_);
    const at::Tensor flat = x.flatten(1);
    const at::Tensor range = (std::get<0>(flat.max(1)) - std::get<0>(flat.min(1)));
    std::vector<int64_t> view(static_cast<size_t>(x.dim()), 1);
    view[0] = -1;
    const at::Tensor sigma = (range * noise_).view(view);
    at::Tensor sum = torch::zeros_like(x);
    // Noisy copies of every example, `chunk_` inputs per backward pass.
    const int64_t per_pass = std::max<int64_t>(1, chunk_ / std::max<int64_t>(1, x.size(0)));
    for (int64_t done = 0; done < samples_; done += per_pass) {
      const int64_t k = std::min(per_pass, samples_ - done);
      const at::Tensor repeated = x.repeat_interleave(k, 0);
      const at::Tensor noisy = repeated + torch::randn(repeated.sizes(), gen) * sigma.repeat_interleave(k, 0);
      const at::Tensor g = inner_->attribute(network, noisy, targets.repeat_interleave(k, 0));
      std::vector<int64_t> grouped{x.size(0), k};
      grouped.insert(grouped.end(), x.sizes().begin() + 1, x.sizes().end());
      sum += (squared_ ? g * g : g).view(grouped).sum(1);
    }
    return sum / double(samples_);
  }

  std::vector<size_t> fallback_nodes(const Network& network) const override {
    return inner_->fallback_nodes(network);
  }

 private:
  int64_t samples_;
  double noise_;
  uint64_t seed_;
  int64_t chunk_;
  bool squared_;
  std::unique_ptr<AttributionMethod> inner_;
};

const RegisterMethod registration({
    "smoothgrad",
    "gradient (or a gradient-like map) averaged over noisy copies of the input (Smilkov et al. 2017)",
    {OptionSpec::integer("samples", 32, "noisy copies of each input").at_least(1).at_most(kMaxSamples),
     OptionSpec::real("noise", 0.15, "standard deviation of the noise, as a fraction of the input's range")
         .at_least(0),
     OptionSpec::integer("seed", 0, "seed of the noise").at_least(0),
     OptionSpec::integer("internal_batch", 64, "inputs per backward pass (memory against speed)").at_least(1),
     inner_method_option("the gradient-like method averaged over the noisy copies"),
     OptionSpec::flag("squared", "average the squared maps (SmoothGrad-Squared, Hooker et al. 2019)")},
    [](const MethodSettings& s) { return std::make_unique<SmoothGrad>(s); },
});

}  // namespace
}  // namespace mipin
