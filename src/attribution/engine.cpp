#include "mipin/attribution/engine.h"

#include <torch/torch.h>

#include "mipin/util/error.h"

namespace mipin {

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
  if (signals) {
    signals->assign(network.size() + 1, at::Tensor());
    (*signals)[network.size()] = top;
  }
  at::Tensor s = top;
  for (size_t l = network.size(); l-- > down_to;) {
    const Layer& layer = network.layer(l);
    // Two layers in one step where the composite has a rule for the pair and
    // nobody asked for the signal between them.
    if (!signals && l > down_to) {
      if (const PairRule* pair = composite.pair_rule_for(network.layer(l - 1), layer, l)) {
        s = pair->backward(RuleContext{network.layer(l - 1), record.layers[l - 1], l - 1},
                           RuleContext{layer, record.layers[l], l}, s);
        --l;  // the loop's own step moves past the lower layer
        continue;
      }
    }
    s = composite.rule_for(layer, l).backward(RuleContext{layer, record.layers[l], l}, s);
    if (signals) (*signals)[l] = s;
  }
  return s;
}

}  // namespace mipin
