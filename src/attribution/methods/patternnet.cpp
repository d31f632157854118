// PatternNet and PatternAttribution (Kindermans et al. 2018): the gradient's
// backward pass with each Linear/Conv2d weight replaced by its fitted
// pattern A (PatternNet: a signal estimate in input units) or by W * A
// (PatternAttribution), starting from the target logit's value.
#include <torch/torch.h>

#include "mipin/attribution/composite_method.h"
#include "mipin/attribution/gradient.h"
#include "mipin/attribution/layer_maps.h"
#include "mipin/attribution/patterns.h"
#include "mipin/attribution/registry.h"
#include "mipin/model/layers.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

Composite pattern_composite(const std::string& name, const Patterns& patterns, bool times_weight,
                            const Network& network) {
  Composite c(name);
  c.fallback(gradient_composite());
  for (const auto& [index, a] : patterns.patterns) {
    MIPIN_CHECK(index < network.size(), "the patterns do not fit this network (layer ", index, ")");
    const Layer& layer = network.layer(index);
    const AffineLayer* affine = as_affine(layer);
    MIPIN_CHECK(affine != nullptr, "the patterns do not fit this network: layer ", index, " (", layer.describe(),
                ") has no weight");
    const at::Tensor& w = affine->weight;
    MIPIN_CHECK(w.sizes() == a.sizes(), "the pattern of layer ", index, " has shape ", a.sizes(),
                " but the layer's weight has ", w.sizes(), ": fit the patterns for this model");
    const at::Tensor map = times_weight ? (w * a).contiguous() : a;
    c.with_layer(index, std::make_shared<FunctionRule>([map, affine](const RuleContext& ctx, const at::Tensor& s) {
      return affine->transposed_map(map, s, ctx.record.input, TransposeKernels::fastest);
    }));
  }
  return c;
}

std::unique_ptr<AttributionMethod> make(const std::string& name, const MethodSettings& s, bool times_weight) {
  MIPIN_CHECK(s.patterns != nullptr, "method '", name,
              "' needs fitted patterns (the tool's `mipin fit --method pattern`, Python's mipin.fit_patterns)");
  const Patterns* patterns = s.patterns;
  return std::make_unique<CompositeMethod>(
      name,
      [name, patterns, times_weight](const Network& net) {
        return pattern_composite(name, *patterns, times_weight, net);
      },
      CompositeMethod::Start::Logit);
}

const RegisterMethod patternnet(MethodEntry{
    "patternnet",
    "PatternNet signal estimate: the backward pass through fitted patterns instead of weights "
    "(Kindermans et al. 2018)",
    {},
    [](const MethodSettings& s) { return make("patternnet", s, false); },
}
                                     .fitted_with(FittedPart::patterns)
                                     .in_input_units());

const RegisterMethod patternattribution(MethodEntry{
    "patternattribution",
    "PatternAttribution: the backward pass through weights times patterns (Kindermans et al. 2018)",
    {},
    [](const MethodSettings& s) { return make("patternattribution", s, true); },
}
                                             .fitted_with(FittedPart::patterns));

}  // namespace
}  // namespace mipin
