#pragma once
// The one backward pass every rule-based method runs.
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <vector>

#include "mipin/attribution/rule.h"
#include "mipin/model/network.h"

namespace mipin {

// Applies the composite's rules from the last node down to node `down_to`
// (inclusive), in reverse topological order, each rule giving one signal
// per input of its node and signals summing where a value has several
// readers. Returns the signal at value `down_to` (in a chain, the input of
// layer down_to); down_to = 0 gives the signal at the network input. `top`
// has the shape of the logits. When `signals` is given, (*signals)[v]
// receives the signal at value v for every v >= down_to (in a chain, the
// input of layer v), and (*signals)[size] the top signal.
at::Tensor propagate(const Network& network, const ForwardRecord& record,
                     const Composite& composite, const at::Tensor& top, size_t down_to = 0,
                     std::vector<at::Tensor>* signals = nullptr);

}  // namespace mipin
