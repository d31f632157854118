#pragma once
// What the rules for transformer ops read from an Op node and its graph:
// a LayerNorm's parameters and its forward normaliser, and whether an
// operand of a product is a gate (it passes through a softmax or sigmoid).
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <optional>
#include <vector>

#include "mipin/attribution/rule.h"

namespace mipin {

class Layer;
class Network;

// aten::layer_norm(x, normalized_shape, weight, bias, eps): weight and bias
// undefined where the op has none.
struct LayerNormParts {
  at::Tensor weight, bias;
  double eps = 1e-5;
  int64_t dims = 1;  // how many trailing axes are normalised
};
std::optional<LayerNormParts> layer_norm_parts(const Layer& layer);

// The normalised axes of an input of this rank (the last `dims`).
std::vector<int64_t> normalised_axes(const LayerNormParts& parts, int64_t rank);

// sd = sqrt(var(x) + eps) over the normalised axes, kept for broadcasting.
at::Tensor layer_norm_sd(const LayerNormParts& parts, const at::Tensor& x);

// Value v of the network is a gate: its producer is a softmax or a sigmoid,
// possibly behind ops that only move or scale it (dropout, transpose, ...).
bool is_gate_value(const Network& network, size_t value);

// The node's vector-Jacobian product with input k's part multiplied by
// weights[k] (0 sends none: an undefined signal).
Signals weighted_vjp(const RuleContext& context, const at::Tensor& signal, const std::vector<double>& weights);

// A product's operand weights: a gate gets 0 and the others share 1; where
// no operand is a gate, each of the n gets 1 / n (AttnLRP's uniform rule).
std::vector<double> product_shares(const RuleContext& context);

// autograd's vector-Jacobian product in closed form, from the node's
// inputs alone (DeepLIFT's midpoint record has no output), for the ops a
// transformer runs in every block: softmax, layer_norm with constant gain
// and bias, and matmul/bmm of two computed tensors with the same batch
// axes. Nothing where the node is none of these or is used otherwise (a
// dtype, a computed gain, broadcast batch axes): autograd takes it.
std::optional<Signals> closed_form_vjp(const RuleContext& context, const at::Tensor& signal);

}  // namespace mipin
