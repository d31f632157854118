#pragma once
// The one backward pass every rule-based method runs.
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <vector>

#include "mipin/attribution/rule.h"
#include "mipin/model/network.h"

namespace mipin {

// Applies the composite's rules from the last layer down to layer `down_to`
// (inclusive) and returns the signal at that layer's input; down_to = 0 gives
// the signal at the network input. `top` has the shape of the logits.
// When `signals` is given, (*signals)[l] receives the signal at the input of
// layer l for every l >= down_to, and (*signals)[size] the top signal.
at::Tensor propagate(const Network& network, const ForwardRecord& record,
                     const Composite& composite, const at::Tensor& top, size_t down_to = 0,
                     std::vector<at::Tensor>* signals = nullptr);

}  // namespace mipin
