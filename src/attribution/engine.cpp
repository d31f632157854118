#include "mipin/attribution/engine.h"

#include <torch/torch.h>

#include "mipin/attribution/method.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

// A tensor that no one else holds, not even through a view: safe to add
// into. Signals are fresh tensors, but a rule may pass one on unchanged to
// several inputs (an add), or hand back the caller's or the record's.
bool held_here_alone(const at::Tensor& t) {
  return t.use_count() == 1 && t.storage().use_count() == 1 && t.is_non_overlapping_and_dense();
}

}  // namespace

at::Tensor propagate(const Network& network, const ForwardRecord& record,
                     const Composite& composite, const at::Tensor& top, size_t down_to,
                     std::vector<at::Tensor>* signals) {
  MIPIN_CHECK(record.layers.size() == network.size(),
              "the forward record has ", record.layers.size(), " layers but the network has ",
              network.size(), ": record a forward pass of this network first");
  MIPIN_CHECK(down_to <= network.size(), "cannot propagate down to layer ", down_to,
              " of a network with ", network.size(), " layers");
  MIPIN_CHECK(top.sizes() == record.logits.sizes(), "the top signal has shape ",
              shape_string(top.sizes().vec()), " but the logits have shape ",
              shape_string(record.logits.sizes().vec()));
  torch::NoGradGuard no_grad;
  // The signal at every value, summed over the nodes that read it. Value v
  // is read only by nodes >= v, so once the nodes down to `down_to` have
  // run, every value >= down_to has its whole signal.
  std::vector<at::Tensor> at_value(network.size() + 1);
  at_value[network.size()] = top;
  // With a fork rule the parts are kept apart until the value is used.
  const ForkRule& fork = composite.fork_rule();
  std::vector<std::vector<at::Tensor>> parts(fork ? network.size() + 1 : 0);
  auto receive = [&](size_t v, at::Tensor s) {
    if (!s.defined()) return;
    if (fork) {
      parts[v].push_back(std::move(s));
      return;
    }
    at::Tensor& sum = at_value[v];
    if (!sum.defined()) {
      sum = std::move(s);
    } else if (held_here_alone(sum) && sum.sizes() == s.sizes() && sum.scalar_type() == s.scalar_type()) {
      sum.add_(s);  // in place: no fresh buffer for every fork's sum
    } else {
      sum = sum + s;
    }
  };
  auto combine = [&](size_t v) {
    if (!fork || parts[v].empty()) return;
    at_value[v] = parts[v].size() == 1 ? parts[v][0] : fork(v, parts[v]);
    parts[v].clear();
  };
  for (size_t l = network.size(); l-- > down_to;) {
    combine(l + 1);
    const at::Tensor s = at_value[l + 1];
    if (!signals) at_value[l + 1] = at::Tensor();  // its last use
    if (!s.defined()) continue;                      // no signal reaches this node
    const Layer& layer = network.layer(l);
    // Two layers in one step where the composite has a rule for the pair, the
    // lower one's output is read by the upper one alone, and nobody asked
    // for the signal between them.
    if (!signals && l > down_to && network.inputs(l)[0] == l && network.inputs(l).size() == 1 &&
        network.readers(l) == 1 && network.layer(l - 1).arity() == 1) {
      if (const PairRule* pair = composite.pair_rule_for(network.layer(l - 1), layer, l)) {
        receive(network.inputs(l - 1)[0],
                pair->backward(RuleContext{network.layer(l - 1), record.layers[l - 1], l - 1, &network},
                               RuleContext{layer, record.layers[l], l, &network}, s));
        --l;  // the loop's own step moves past the lower layer
        continue;
      }
    }
    Signals out = composite.rule_for(layer, l).backward(RuleContext{layer, record.layers[l], l, &network}, s);
    const auto& inputs = network.inputs(l);
    MIPIN_CHECK(out.size() == inputs.size(), "method '", composite.name(), "' gave ", out.size(),
                " signal(s) for layer ", l, " (", layer.describe(), "), which reads ", inputs.size());
    for (size_t k = 0; k < inputs.size(); ++k) receive(inputs[k], std::move(out[k]));
  }
  // A value that nothing reached (every path to it was cut) has a zero
  // signal; values below down_to have none yet.
  for (size_t v = signals ? 0 : down_to; v <= (signals ? network.size() : down_to); ++v) {
    if (v >= down_to) combine(v);
    if (v < down_to) {
      at_value[v] = at::Tensor();
    } else if (!at_value[v].defined()) {
      at_value[v] = torch::zeros_like(record.value(v));
    }
  }
  if (signals) *signals = at_value;
  // Convolutions leave signals channels-last; callers get the plain layout.
  return at_value[down_to].contiguous();
}

at::Tensor TopValues::at_targets(const at::Tensor& logits, const at::Tensor& targets) const {
  if (!reading_ && !logit_) return torch::ones({logits.size(0)}, logits.options());
  const at::Tensor values = reading_ ? reading_(logits) : logits;
  return values.gather(1, targets.reshape({-1, 1}).clamp(0, values.size(1) - 1)).squeeze(1);
}

at::Tensor backward_from_targets(const Network& network, const at::Tensor& x, const at::Tensor& targets,
                                 const Composite& composite, const TopValues& top_values, size_t down_to,
                                 ForwardRecord* record) {
  torch::NoGradGuard no_grad;
  ForwardRecord own;
  ForwardRecord& r = record ? *record : own;
  const at::Tensor logits = network.forward(x, &r);
  MIPIN_CHECK(targets.numel() == x.size(0), "expected one target per example (", x.size(0), "), found ",
              targets.numel());
  const at::Tensor top = one_hot_top(targets, logits.size(1), top_values.at_targets(logits, targets));
  return propagate(network, r, composite, top, down_to);
}

}  // namespace mipin
