#pragma once
// An attribution method: per example, a map over the input saying how each
// input value bears on the target class.
#include <ATen/core/Tensor.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mipin/model/network.h"

namespace mipin {

class AttributionMethod {
 public:
  virtual ~AttributionMethod() = default;
  virtual std::string name() const = 0;
  // x: [N, ...input shape] float32; targets: int64 [N] class indices.
  // Returns [N, ...input shape].
  virtual at::Tensor attribute(const Network& network, const at::Tensor& x,
                               const at::Tensor& targets) const = 0;
  // The part of x that completeness and minimality feed the network (f(s)
  // and f(x - s)), given the attribution of the predicted classes: that
  // attribution itself, unless the method defines a signal of the whole
  // output (MIP-IN's source signal, docs/design.md section 1.2).
  virtual at::Tensor evidence(const Network& network, const at::Tensor& x, const at::Tensor& attribution) const {
    (void)network;
    (void)x;
    return attribution;
  }
  // The nodes of `network` this method has no rule for, where it took the
  // gradient's (autograd's vector-Jacobian product) instead: reported
  // with every result, since there the map is not the method's own.
  virtual std::vector<size_t> fallback_nodes(const Network& network) const {
    (void)network;
    return {};
  }
};

// A target per example: the predicted class (no class given) or one class for
// all. Throws mipin::Error when the class is out of range.
at::Tensor resolve_targets(const at::Tensor& logits, std::optional<int64_t> target_class);

// One-hot rows scaled by the given values: top[n, targets[n]] = values[n].
at::Tensor one_hot_top(const at::Tensor& targets, int64_t num_classes, const at::Tensor& values);

}  // namespace mipin
