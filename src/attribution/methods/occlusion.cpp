// Occlusion (Zeiler and Fergus 2014): slide a patch filled with a constant
// over the input; each position is credited with the drop of the target
// logit, averaged over the patches that cover it.
#include <torch/torch.h>

#include "mipin/attribution/registry.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

class Occlusion final : public AttributionMethod {
 public:
  explicit Occlusion(const MethodSettings& s)
      : patch_(s.options.integer("patch")), stride_(s.options.integer("stride")), fill_(s.options.real("fill")) {}
  std::string name() const override { return "occlusion"; }
  at::Tensor attribute(const Network& network, const at::Tensor& x,
                       const at::Tensor& targets) const override {
    torch::NoGradGuard no_grad;
    MIPIN_CHECK(x.dim() == 4, "occlusion needs image inputs [N, C, H, W], found ", x.sizes());
    const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
    // Patches are cut at the borders: a sequence ([1, T]) takes any patch up
    // to its length.
    MIPIN_CHECK(patch_ <= std::max(h, w), "method 'occlusion': option patch is ", patch_,
                " pixels, larger than the input (", h, "x", w, "): at most ", std::max(h, w));
    const at::Tensor base = network.forward(x).gather(1, targets.unsqueeze(1)).squeeze(1);
    std::vector<std::pair<int64_t, int64_t>> positions;
    for (int64_t i = 0; i < h; i += stride_) {
      for (int64_t j = 0; j < w; j += stride_) {
        positions.emplace_back(i, j);
        if (j + patch_ >= w) break;
      }
      if (i + patch_ >= h) break;
    }
    at::Tensor sum = torch::zeros({n, 1, h, w});
    at::Tensor count = torch::zeros({1, 1, h, w});
    const int64_t per_pass = std::max<int64_t>(1, 256 / n);
    for (size_t first = 0; first < positions.size(); first += size_t(per_pass)) {
      const size_t last = std::min(positions.size(), first + size_t(per_pass));
      std::vector<at::Tensor> occluded;
      for (size_t p = first; p < last; ++p) {
        at::Tensor o = x.clone();
        const auto [i, j] = positions[p];
        o.slice(2, i, std::min(h, i + patch_)).slice(3, j, std::min(w, j + patch_)).fill_(fill_);
        occluded.push_back(o);
      }
      const at::Tensor scores = network.forward(torch::cat(occluded, 0))
                                    .gather(1, targets.repeat({int64_t(last - first)}).unsqueeze(1))
                                    .squeeze(1);
      for (size_t p = first; p < last; ++p) {
        const auto [i, j] = positions[p];
        const at::Tensor drop = base - scores.slice(0, int64_t(p - first) * n, int64_t(p - first + 1) * n);
        sum.slice(2, i, std::min(h, i + patch_)).slice(3, j, std::min(w, j + patch_)) += drop.view({n, 1, 1, 1});
        count.slice(2, i, std::min(h, i + patch_)).slice(3, j, std::min(w, j + patch_)) += 1;
      }
    }
    return (sum / count.clamp_min(1)).expand_as(x).contiguous();
  }

 private:
  int64_t patch_, stride_;
  double fill_;
};

const RegisterMethod registration(MethodEntry{
    "occlusion",
    "drop of the target logit when a sliding patch of the input is filled with a constant",
    {OptionSpec::integer("patch", 4, "side of the square patch, in pixels").at_least(1),
     OptionSpec::integer("stride", 4, "step between patches, in pixels").at_least(1),
     OptionSpec::real("fill", 0, "the value the patch is filled with")},
    [](const MethodSettings& s) { return std::make_unique<Occlusion>(s); },
}.for_images_only());

}  // namespace
}  // namespace mipin
