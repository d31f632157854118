#pragma once
// The plain gradient of the target logit with respect to the input (saliency).
#include <memory>

#include "mipin/attribution/fused.h"
#include "mipin/attribution/method.h"
#include "mipin/attribution/rule.h"

namespace mipin {

// Rules: the transpose of every layer's (locally) linear map.
Composite gradient_composite();

// A ReLU's backward rule under max unpooling, as one pair rule: the
// gradient's gate (also MIP-IN's), or guided backprop's or deconvnet's rule.
std::shared_ptr<const PairRule> relu_under_max_pool(fused::ReluBackward relu = fused::ReluBackward::gate);

class Gradient final : public AttributionMethod {
 public:
  explicit Gradient(bool absolute = false) : absolute_(absolute) {}
  std::string name() const override { return "gradient"; }
  at::Tensor attribute(const Network& network, const at::Tensor& x,
                       const at::Tensor& targets) const override;

 private:
  bool absolute_;
};

}  // namespace mipin
