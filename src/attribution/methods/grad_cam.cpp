// Grad-CAM (Selvaraju et al. 2017): a conv layer's feature maps weighted by
// the spatial mean of the target logit's gradient, rectified and upsampled to
// the input. Each input channel carries an equal share, so the channel sum
// is the CAM itself.
#include <torch/torch.h>

#include "mipin/attribution/engine.h"
#include "mipin/attribution/gradient.h"
#include "mipin/attribution/registry.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

class GradCam final : public AttributionMethod {
 public:
  explicit GradCam(std::optional<size_t> layer) : layer_(layer) {}
  std::string name() const override { return "grad-cam"; }

  at::Tensor attribute(const Network& network, const at::Tensor& x,
                       const at::Tensor& targets) const override {
    torch::NoGradGuard no_grad;
    MIPIN_CHECK(x.dim() == 4, "grad-cam needs image inputs [N, C, H, W], found ", x.sizes());
    const size_t maps_at = feature_maps(network, conv_layer(network));
    ForwardRecord record;
    const at::Tensor grad =
        backward_from_targets(network, x, targets, gradient_composite(), TopValues::unit(), maps_at, &record);
    const at::Tensor features = record.value(maps_at);
    const at::Tensor weights = grad.mean({2, 3}, true);
    const at::Tensor cam = torch::relu((weights * features).sum(1, true));
    const at::Tensor up = torch::upsample_bilinear2d(cam, {x.size(2), x.size(3)}, false);
    return (up / double(x.size(1))).expand_as(x).contiguous();
  }

 private:
  size_t conv_layer(const Network& network) const {
    if (layer_) {
      MIPIN_CHECK(*layer_ < network.size() && network.layer(*layer_).kind() == LayerKind::Conv2d,
                  "method 'grad-cam': option layer must name a Conv2d layer (see `mipin info`), found ",
                  *layer_ < network.size() ? network.layer(*layer_).describe() : std::string("no layer"),
                  " at ", *layer_);
      return *layer_;
    }
    for (size_t i = network.size(); i-- > 0;) {
      if (network.layer(i).kind() == LayerKind::Conv2d) return i;
    }
    MIPIN_FAIL("grad-cam needs a network with a Conv2d layer");
  }

  // The feature maps of the conv's block: its output followed through the
  // element-wise nodes that alone read it (a ReLU; in a residual block the
  // add and the ReLU after it), up to where the maps are pooled or reshaped.
  static size_t feature_maps(const Network& network, size_t conv) {
    size_t v = conv + 1;
    for (auto readers = network.reader_nodes(v); readers.size() == 1 && v < network.size();
         readers = network.reader_nodes(v)) {
      const LayerKind k = network.layer(readers[0]).kind();
      if (k != LayerKind::ReLU && k != LayerKind::Activation && k != LayerKind::Add && k != LayerKind::BatchNorm2d) break;
      v = readers[0] + 1;
    }
    return v;
  }

  std::optional<size_t> layer_;
};

const RegisterMethod registration(MethodEntry{
    "grad-cam",
    "feature maps of a conv layer weighted by their mean gradient, upsampled to the input "
    "(Selvaraju et al. 2017)",
    {OptionSpec::integer("layer", std::nullopt, "the Conv2d layer, by its index in `mipin info` (default: the last)")
         .at_least(0)},
    [](const MethodSettings& s) {
      const std::optional<int64_t> layer = s.options.maybe_integer("layer");
      return std::make_unique<GradCam>(layer ? std::optional<size_t>(size_t(*layer)) : std::nullopt);
    },
}.for_images_only());

}  // namespace
}  // namespace mipin
