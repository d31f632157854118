#pragma once
// A method that is nothing but a composite of rules: one recorded forward
// pass, a one-hot top signal on the target logit, one backward pass.
#include <functional>

#include "mipin/attribution/method.h"
#include "mipin/attribution/rule.h"

namespace mipin {

class CompositeMethod final : public AttributionMethod {
 public:
  // What enters the backward pass at the target logit: 1 (gradient-like
  // methods propagate sensitivities) or the logit itself (relevance methods
  // such as LRP redistribute the output value).
  enum class Start { Unit, Logit };
  // The composite may depend on the network (e.g. a rule for its first layer).
  using CompositeFor = std::function<Composite(const Network&)>;
  CompositeMethod(std::string name, CompositeFor composite, Start start = Start::Unit)
      : name_(std::move(name)), composite_(std::move(composite)), start_(start) {}

  std::string name() const override { return name_; }
  at::Tensor attribute(const Network& network, const at::Tensor& x,
                       const at::Tensor& targets) const override;
  std::vector<size_t> fallback_nodes(const Network& network) const override {
    return composite_(network).fallback_nodes(network);
  }

 private:
  std::string name_;
  CompositeFor composite_;
  Start start_;
};

}  // namespace mipin
