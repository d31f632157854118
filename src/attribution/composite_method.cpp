#include "mipin/attribution/composite_method.h"

#include <torch/torch.h>

#include "mipin/attribution/engine.h"

namespace mipin {

at::Tensor CompositeMethod::attribute(const Network& network, const at::Tensor& x,
                                      const at::Tensor& targets) const {
  return backward_from_targets(network, x, targets, composite_(network),
                               start_ == Start::Logit ? TopValues::logit() : TopValues::unit());
}

}  // namespace mipin
