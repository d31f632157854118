#include "mipin/model/canonize.h"

#include <torch/torch.h>

#include "mipin/model/layers.h"
#include "mipin/util/error.h"

namespace mipin {

int fold_batchnorm(Network& network) {
  int folded = 0;
  for (size_t i = 0; i < network.size(); ++i) {
    if (network.layer(i).kind() != LayerKind::BatchNorm2d) continue;
    MIPIN_CHECK(i > 0 && network.layer(i - 1).kind() == LayerKind::Conv2d, "BatchNorm2d at layer ",
                i, " does not directly follow a Conv2d, so it cannot be folded (found ",
                i > 0 ? network.layer(i - 1).describe() : std::string("nothing"), " before it)");
    const auto& bn = static_cast<const BatchNorm2d&>(network.layer(i));
    auto& conv = static_cast<Conv2d&>(network.layer(i - 1));
    torch::NoGradGuard no_grad;
    const at::Tensor scale = bn.weight / torch::sqrt(bn.running_var + bn.eps);
    const at::Tensor bias = conv.bias.defined() ? conv.bias : torch::zeros_like(bn.running_mean);
    conv.weight = (conv.weight * scale.view({-1, 1, 1, 1})).detach();
    conv.bias = ((bias - bn.running_mean) * scale + bn.bias).detach();
    network.erase(i);
    --i;
    ++folded;
  }
  return folded;
}

}  // namespace mipin
