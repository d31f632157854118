#include "mipin/attribution/composite_method.h"

#include <torch/torch.h>

#include "mipin/attribution/engine.h"

namespace mipin {

at::Tensor CompositeMethod::attribute(const Network& network, const at::Tensor& x,
                                      const at::Tensor& targets) const {
  torch::NoGradGuard no_grad;
  ForwardRecord record;
  const at::Tensor logits = network.forward(x, &record);
  const at::Tensor values = start_ == Start::Logit
                                ? logits.gather(1, targets.reshape({-1, 1}).clamp(0, logits.size(1) - 1))
                                : torch::ones({x.size(0)}, logits.options());
  const at::Tensor top = one_hot_top(targets, logits.size(1), values);
  return propagate(network, record, composite_(network), top);
}

}  // namespace mipin
