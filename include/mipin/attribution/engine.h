#pragma once
// The one backward pass every rule-based method runs.
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <functional>
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

// What enters the backward pass at each example's target output: 1
// (sensitivities: the gradient and its relatives), the target logit
// (relevance methods redistribute the output's value) or the target entry
// of another reading of the logits (MIP-IN's softmax).
class TopValues {
 public:
  using Reading = std::function<at::Tensor(const at::Tensor& logits)>;  // [N, K] -> [N, K]
  static TopValues unit() { return TopValues(nullptr, false); }
  static TopValues logit() { return TopValues(nullptr, true); }
  static TopValues of(Reading reading) { return TopValues(std::move(reading), false); }
  // [N]: the value at each example's target.
  at::Tensor at_targets(const at::Tensor& logits, const at::Tensor& targets) const;

 private:
  TopValues(Reading reading, bool logit) : reading_(std::move(reading)), logit_(logit) {}
  Reading reading_;
  bool logit_;
};

// The path of every rule-based method: one recorded forward pass of x, a
// one-hot top signal at each example's target (its top value), and the
// composite's backward pass down to value
// down_to. `record`, when given, receives the forward record. Throws
// mipin::Error for a target count or class that does not fit.
at::Tensor backward_from_targets(const Network& network, const at::Tensor& x, const at::Tensor& targets,
                                 const Composite& composite, const TopValues& top_values, size_t down_to = 0,
                                 ForwardRecord* record = nullptr);

}  // namespace mipin
