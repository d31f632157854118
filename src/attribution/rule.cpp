#include "mipin/attribution/rule.h"

#include <torch/torch.h>

#include <set>

#include "mipin/model/layers.h"
#include "mipin/model/network.h"
#include "mipin/util/error.h"
#include "attribution/op_parts.h"

namespace mipin {

Composite& Composite::fallback(Composite base) {
  base_ = std::make_shared<const Composite>(std::move(base));
  return *this;
}

Composite& Composite::with_group(OpGroup group, std::shared_ptr<const Rule> rule) {
  by_group_[group] = std::move(rule);
  return *this;
}

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
  if (auto it = by_pair_.find({lower.kind(), upper.kind()}); it != by_pair_.end()) return it->second.get();
  // Base's pair stands for base's two single rules: only where both still apply.
  if (!base_ || by_kind_.count(lower.kind()) || by_kind_.count(upper.kind())) return nullptr;
  if (!by_op_.empty() && (by_op_.count(lower.op()) || by_op_.count(upper.op()))) return nullptr;
  return base_->pair_rule_for(lower, upper, upper_index);
}

const ForkRule& Composite::fork_rule() const { return fork_ || !base_ ? fork_ : base_->fork_rule(); }

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

std::string to_string(OpGroup group) {
  switch (group) {
    case OpGroup::affine: return "affine";
    case OpGroup::activation: return "activation";
    case OpGroup::normalization: return "normalization";
    case OpGroup::pooling: return "pooling";
    case OpGroup::structural: return "structural";
    case OpGroup::product: return "product";
    case OpGroup::none: break;
  }
  return "none";
}

OpGroup op_group(const Layer& layer) {
  switch (layer.kind()) {
    case LayerKind::Linear:
    case LayerKind::Conv2d:
    case LayerKind::Add: return OpGroup::affine;
    case LayerKind::ReLU:
    case LayerKind::Activation: return OpGroup::activation;
    case LayerKind::BatchNorm2d: return OpGroup::normalization;
    case LayerKind::MaxPool2d:
    case LayerKind::AvgPool2d:
    case LayerKind::AdaptiveAvgPool2d: return OpGroup::pooling;
    case LayerKind::Flatten:
    case LayerKind::Dropout:
    case LayerKind::Concat:
    case LayerKind::Reshape: return OpGroup::structural;
    case LayerKind::Mul: return OpGroup::product;
    case LayerKind::Op: break;
  }
  // Ops LibTorch runs for us, by what they compute. An element-wise op
  // listed here must take one tensor (its other arguments constants).
  static const std::map<std::string, OpGroup> groups{
      {"aten::add", OpGroup::affine},
      {"aten::sub", OpGroup::affine},
      {"aten::sum", OpGroup::affine},
      {"aten::mean", OpGroup::affine},
      {"aten::erf", OpGroup::activation},
      {"aten::exp", OpGroup::activation},
      {"aten::abs", OpGroup::activation},
      {"aten::sin", OpGroup::activation},
      {"aten::cos", OpGroup::activation},
      {"aten::square", OpGroup::activation},
      {"aten::mish", OpGroup::activation},
      {"aten::selu", OpGroup::activation},
      {"aten::celu", OpGroup::activation},
      {"aten::log_sigmoid", OpGroup::activation},
      {"aten::layer_norm", OpGroup::normalization},
      {"aten::group_norm", OpGroup::normalization},
      {"aten::batch_norm", OpGroup::normalization},
      {"aten::instance_norm", OpGroup::normalization},
      {"aten::softmax", OpGroup::normalization},
      {"aten::_softmax", OpGroup::normalization},
      {"aten::max_pool1d", OpGroup::pooling},
      {"aten::max_pool3d", OpGroup::pooling},
      {"aten::avg_pool1d", OpGroup::pooling},
      {"aten::avg_pool3d", OpGroup::pooling},
      {"aten::adaptive_avg_pool1d", OpGroup::pooling},
      {"aten::adaptive_avg_pool3d", OpGroup::pooling},
      {"aten::adaptive_max_pool1d", OpGroup::pooling},
      {"aten::matmul", OpGroup::product},
      {"aten::bmm", OpGroup::product},
      {"aten::mul", OpGroup::product},
      {"aten::einsum", OpGroup::product},
  };
  if (layer.only_moves_values()) return OpGroup::structural;
  const auto it = groups.find(layer.op());
  return it == groups.end() ? OpGroup::none : it->second;
}

const Rule* Composite::specific_rule(const Layer& layer, size_t index) const {
  if (auto it = by_index_.find(index); it != by_index_.end()) return it->second.get();
  if (layer.kind() == LayerKind::Op && !by_op_.empty()) {
    if (auto it = by_op_.find(layer.op()); it != by_op_.end()) return it->second.get();
  }
  if (auto it = by_kind_.find(layer.kind()); it != by_kind_.end()) return it->second.get();
  return base_ ? base_->specific_rule(layer, index) : nullptr;
}

const Rule* Composite::group_rule(const Layer& layer) const {
  if (!by_group_.empty()) {
    if (auto it = by_group_.find(op_group(layer)); it != by_group_.end()) return it->second.get();
  }
  return base_ ? base_->group_rule(layer) : nullptr;
}

const Rule& Composite::rule_for(const Layer& layer, size_t index) const {
  if (const Rule* rule = specific_rule(layer, index)) return *rule;
  if (const Rule* rule = group_rule(layer)) return *rule;
  static const std::shared_ptr<const Rule> fallback = autograd_rule();
  return *fallback;
}

bool Composite::falls_back(const Layer& layer, size_t index) const {
  if (specific_rule(layer, index) || group_rule(layer)) return false;
  return layer.kind() != LayerKind::Op || !layer.only_moves_values();
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
    // The same product without running the node again, where it has a closed form.
    if (auto closed = closed_form_vjp(context, signal)) return std::move(*closed);
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
