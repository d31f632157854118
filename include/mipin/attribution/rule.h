#pragma once
// Attribution as a backward pass: a Rule maps the signal arriving at a
// node's output to one signal per input of the node, using what the forward
// pass recorded. A Composite says which rule each layer gets. Adding a method means
// writing rules and a composite, never touching the engine.
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mipin/model/layer.h"

namespace mipin {

// One signal per input of a node, in its input order; a single-input
// node's rule returns one tensor, which converts. An undefined signal means
// none reaches that input (a gate's branch under MIP-IN).
struct Signals : std::vector<at::Tensor> {
  using std::vector<at::Tensor>::vector;
  Signals(at::Tensor signal) { push_back(std::move(signal)); }  // NOLINT: implicit on purpose
};

class Network;

struct RuleContext {
  const Layer& layer;
  const LayerRecord& record;  // input, output and switches of this layer
  size_t index;               // position of the layer in the network
  const Network* network = nullptr;  // the graph around it (who produced its inputs)
};

class Rule {
 public:
  virtual ~Rule() = default;
  // signal: [N, ...output shape]; returns one [N, ...input shape] per input.
  virtual Signals backward(const RuleContext& context, const at::Tensor& signal) const = 0;
};

// A rule written as a lambda, for rules with no state of their own.
class FunctionRule final : public Rule {
 public:
  using Function = std::function<Signals(const RuleContext&, const at::Tensor&)>;
  explicit FunctionRule(Function f) : f_(std::move(f)) {}
  Signals backward(const RuleContext& context, const at::Tensor& signal) const override {
    return f_(context, signal);
  }

 private:
  Function f_;
};

// A rule for two consecutive single-input layers, the upper the only reader
// of the lower's output: takes the signal at the upper layer's output to
// the lower layer's input in one step, where two single rules would each
// pass over the whole activation (unpooling and the ReLU gate below it). It
// must give what the two single rules of its kinds give.
class PairRule {
 public:
  virtual ~PairRule() = default;
  virtual at::Tensor backward(const RuleContext& lower, const RuleContext& upper,
                              const at::Tensor& signal) const = 0;
};

class FunctionPairRule final : public PairRule {
 public:
  using Function = std::function<at::Tensor(const RuleContext&, const RuleContext&, const at::Tensor&)>;
  explicit FunctionPairRule(Function f) : f_(std::move(f)) {}
  at::Tensor backward(const RuleContext& lower, const RuleContext& upper,
                      const at::Tensor& signal) const override {
    return f_(lower, upper, signal);
  }

 private:
  Function f_;
};

// How the signals that the readers of a value send back combine into the
// value's signal, in the order they arrive (readers from the last node
// down). Unset, they sum: the gradient's rule at a fork.
using ForkRule = std::function<at::Tensor(size_t value, const std::vector<at::Tensor>& parts)>;

// autograd's vector-Jacobian product of a node's own forward pass at its
// recorded inputs: the gradient of any layer, whatever it computes. It is
// the rule of a node whose kind a composite names no rule for (the
// fallback), so every method runs on every op LibTorch can differentiate.
std::shared_ptr<const Rule> autograd_rule();

// Ops that only move values (transpose, select, reshape, cat, ...): their
// vector-Jacobian product is every method's rule there (a rearrangement
// passes gradient, relevance and signal alike), so the autograd rule on
// them is no fallback and is not reported as one.
bool is_structural_op(const std::string& op);

// What a node does, for rules written once for all its kind: a method
// gives a group one rule, and an op joins its group with one line
// (rule.cpp's table), taking every method's rule for the group.
enum class OpGroup {
  affine,         // linear in its input up to a constant: Linear, Conv2d, add, sub, sum, mean
  activation,     // element-wise, one input: ReLU, GELU, erf, ...
  normalization,  // divides by a statistic of its input: BatchNorm, layer_norm, softmax
  pooling,        // max or average over windows
  structural,     // only moves values: reshape, permute, select, cat, ...
  product,        // multiplies computed tensors: gates, matmul, bmm, einsum
  none,           // none of these: a method's rule for it is its own or the fallback
};

std::string to_string(OpGroup group);
OpGroup op_group(const Layer& layer);

// Says which rule each node gets: the rule for its position, else for the
// op an Op node runs, else for its layer kind (this composite's, else its
// base's: fallback(base)), else the rule for its group (this composite's,
// else its base's), else autograd_rule(). A composite built on a base
// names only what it changes; a group's rule is the default for the ops of
// the group that no composite in the chain names.
class Composite {
 public:
  explicit Composite(std::string name) : name_(std::move(name)) {}

  // Every node this composite has no rule for takes base's rule (and
  // base's pair rules where this one names neither kind).
  Composite& fallback(Composite base);
  Composite& with(LayerKind kind, std::shared_ptr<const Rule> rule);
  // One rule for every affine kind (Linear, Conv2d: model/layers.h's AffineLayer).
  Composite& with_affine(std::shared_ptr<const Rule> rule);
  Composite& with_group(OpGroup group, std::shared_ptr<const Rule> rule);
  Composite& with_layer(size_t index, std::shared_ptr<const Rule> rule);
  // The rule of every Op node that runs `op` ("aten::layer_norm").
  Composite& with_op(const std::string& op, std::shared_ptr<const Rule> rule);
  // A pair rule stands for the single rules of its two kinds as they are
  // now: with() on either kind later drops it, so a composite derived from
  // another (guided backprop from the gradient) never keeps a stale pair.
  Composite& with_pair(LayerKind lower, LayerKind upper, std::shared_ptr<const PairRule> rule);

  // The node's rule: this composite's, its base's, or the fallback.
  const Rule& rule_for(const Layer& layer, size_t index) const;
  // The node has no rule of this composite or its bases and takes the fallback.
  bool falls_back(const Layer& layer, size_t index) const;
  // The nodes of `network` where this method's answer is the gradient's
  // for want of a rule of its own, for every result to report. Empty for
  // the gradient's own composite, whose rule the fallback is.
  std::vector<size_t> fallback_nodes(const Network& network) const;
  // The fallback is this composite's own rule (the gradient's), not a
  // stand-in; a composite built on this one is another method and reports.
  Composite& fallback_is_exact() {
    fallback_exact_ = true;
    return *this;
  }
  // The pair rule for layers lower and upper = lower + 1, or null where there
  // is none or either position has a rule of its own.
  const PairRule* pair_rule_for(const Layer& lower, const Layer& upper, size_t upper_index) const;
  const std::string& name() const { return name_; }
  Composite& with_fork(ForkRule rule) {
    fork_ = std::move(rule);
    return *this;
  }
  // This composite's fork rule, else its base's.
  const ForkRule& fork_rule() const;
  // A composite copied from another (e.g. the gradient's) under its own name.
  Composite& rename(std::string name) {
    name_ = std::move(name);
    fallback_exact_ = false;
    return *this;
  }

 private:
  // The rule for the node's position, op or kind in this composite or its
  // bases; the rule for its group. Null if none.
  const Rule* specific_rule(const Layer& layer, size_t index) const;
  const Rule* group_rule(const Layer& layer) const;

  std::string name_;
  std::shared_ptr<const Composite> base_;
  std::map<LayerKind, std::shared_ptr<const Rule>> by_kind_;
  std::map<OpGroup, std::shared_ptr<const Rule>> by_group_;
  std::map<size_t, std::shared_ptr<const Rule>> by_index_;
  std::map<std::string, std::shared_ptr<const Rule>> by_op_;
  std::map<std::pair<LayerKind, LayerKind>, std::shared_ptr<const PairRule>> by_pair_;
  ForkRule fork_;
  bool fallback_exact_ = false;
};

}  // namespace mipin
