#include "mipin/attribution/rule.h"

#include "mipin/model/layers.h"
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

const Rule& Composite::rule_for(const Layer& layer, size_t index) const {
  if (auto it = by_index_.find(index); it != by_index_.end()) return *it->second;
  auto it = by_kind_.find(layer.kind());
  MIPIN_CHECK(it != by_kind_.end(), "method '", name_, "' has no rule for layer ", index, " (",
              layer.describe(), ")");
  return *it->second;
}

}  // namespace mipin
