#include "mipin/attribution/rule.h"

#include <torch/torch.h>

#include <set>

#include "mipin/model/layers.h"
#include "mipin/model/network.h"
#include "mipin/util/error.h"

namespace mipin {

Composite& Composite::with(LayerKind kind, std::shared_ptr<const Rule> rule) {
  by_kind_[kind] = std::move(rule);
  for (auto it = by_pair_.begin(); it != by_pair_.end();) {
    it = it->first.first == kind || it->first.second == kind ? by_pair_.erase(it) : std::next(it);
  }
  return *this;
}

Composite& Composite::with_affine(std::shared_ptr<const Rule> rule) {
  for (LayerKind kind : affine_kinds()) with(kind, rule);
  return *this;
}

Composite& Composite::with_pair(LayerKind lower, LayerKind upper, std::shared_ptr<const PairRule> rule) {
  by_pair_[{lower, upper}] = std::move(rule);
  return *this;
}

const PairRule* Composite::pair_rule_for(const Layer& lower, const Layer& upper, size_t upper_index) const {
  if (upper_index == 0 || by_index_.count(upper_index) || by_index_.count(upper_index - 1)) return nullptr;
  auto it = by_pair_.find({lower.kind(), upper.kind()});
  return it == by_pair_.end() ? nullptr : it->second.get();
}

Composite& Composite::with_layer(size_t index, std::shared_ptr<const Rule> rule) {
  by_index_[index] = std::move(rule);
  return *this;
}

Composite& Composite::with_op(const std::string& op, std::shared_ptr<const Rule> rule) {
  by_op_[op] = std::move(rule);
  return *this;
}

bool is_structural_op(const std::string& op) {
  static const std::set<std::string> structural{
      "aten::transpose", "aten::permute",   "aten::t",         "aten::select",      "aten::slice",
      "aten::narrow",    "aten::reshape",   "aten::view",      "aten::flatten",     "aten::unflatten",
      "aten::squeeze",   "aten::unsqueeze", "aten::contiguous", "aten::clone",      "aten::cat",
      "aten::stack",     "aten::chunk",     "aten::split",     "aten::index_select", "aten::expand",
      "aten::repeat",    "aten::roll",      "aten::pad",       "aten::constant_pad_nd", "aten::dropout"};
  return structural.count(op) > 0;
}

const Rule& Composite::rule_for(const Layer& layer, size_t index) const {
  if (auto it = by_index_.find(index); it != by_index_.end()) return *it->second;
  if (layer.kind() == LayerKind::Op && !by_op_.empty()) {
    if (auto it = by_op_.find(layer.op()); it != by_op_.end()) return *it->second;
  }
  if (auto it = by_kind_.find(layer.kind()); it != by_kind_.end()) return *it->second;
  static const std::shared_ptr<const Rule> fallback = autograd_rule();
  return *fallback;
}

bool Composite::falls_back(const Layer& layer, size_t index) const {
  if (by_index_.count(index) || by_kind_.count(layer.kind())) return false;
  if (layer.kind() != LayerKind::Op) return true;
  return !by_op_.count(layer.op()) && !layer.only_moves_values();
}

std::vector<size_t> Composite::fallback_nodes(const Network& network) const {
  std::vector<size_t> out;
  if (fallback_exact_) return out;
  for (size_t i = 0; i < network.size(); ++i) {
    if (falls_back(network.layer(i), i)) out.push_back(i);
  }
  return out;
}

namespace {

// The layer's forward pass again, recorded by autograd this time, and the
// signal pulled back through it.
class AutogradRule final : public Rule {
 public:
  Signals backward(const RuleContext& context, const at::Tensor& signal) const override {
    const std::vector<at::Tensor> recorded =
        context.record.inputs.empty() ? std::vector<at::Tensor>{context.record.input} : context.record.inputs;
    torch::AutoGradMode enable(true);
    std::vector<at::Tensor> leaves, differentiable;
    std::vector<size_t> where;
    for (size_t k = 0; k < recorded.size(); ++k) {
      MIPIN_CHECK(recorded[k].defined(), "node ", context.index, " (", context.layer.describe(),
                  ") has no recorded input ", k, ": run the forward pass with a record");
      at::Tensor leaf = recorded[k].detach();
      if (leaf.is_floating_point()) {
        leaf.requires_grad_(true);
        differentiable.push_back(leaf);
        where.push_back(k);
      }
      leaves.push_back(leaf);
    }
    Signals result(recorded.size());
    std::vector<at::Tensor> grads;
    try {
      const at::Tensor out = context.layer.forward_of(leaves, nullptr);
      if (differentiable.empty() || !out.requires_grad()) return result;  // nothing flows back
      MIPIN_CHECK(signal.sizes() == out.sizes(), "the signal at node ", context.index, " (",
                  context.layer.describe(), ") has shape ", shape_string(signal.sizes().vec()),
                  " but the node's output has shape ", shape_string(out.sizes().vec()));
      grads = torch::autograd::grad({out}, differentiable, {signal.to(out.scalar_type())},
                                    /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
    } catch (const std::exception& e) {
      // LibTorch's error, or the node's own (a TorchOp reports the op's).
      const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
      const std::string what = torch_error ? torch_error->what_without_backtrace() : e.what();
      MIPIN_FAIL("autograd cannot differentiate node ", context.index, " (", context.layer.describe(),
                 "): ", what.substr(0, what.find('\n')),
                 ". Fused inference ops (_native_multi_head_attention, _transformer_encoder_layer_fwd) are what "
                 "PyTorch records when a model is traced under torch.no_grad(); mipin rewrites them into their "
                 "parts unless they read a mask or their attention weights are used: trace it without no_grad");
    }
    for (size_t j = 0; j < where.size(); ++j) result[where[j]] = grads[j];
    return result;
  }
};

}  // namespace

std::shared_ptr<const Rule> autograd_rule() { return std::make_shared<AutogradRule>(); }

}  // namespace mipin
