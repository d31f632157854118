#include "mipin/attribution/rule.h"

#include "mipin/util/error.h"

namespace mipin {

Composite& Composite::with(LayerKind kind, std::shared_ptr<const Rule> rule) {
  by_kind_[kind] = std::move(rule);
  return *this;
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
