#pragma once
// `mipin check`: how far mipin's forward pass and gradient are from
// autograd's, node by node, in the precision users run (float32) and in
// float64, where a difference can only be a wrong mapping or a wrong rule.
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <string>
#include <vector>

#include "mipin/torchscript/model_file.h"

namespace mipin {

// Relative differences: the largest absolute difference over the largest
// absolute reference value (0 where both are zero). The reference is always
// autograd in float64 through the same nodes.
struct ValueCheck {
  size_t value = 0;                // 0: the input; v: node v - 1's output
  std::string layer;               // node v - 1 described, or "input"
  double forward_float32 = 0;      // mipin's float32 forward
  double gradient_float64 = 0;     // mipin's backward pass (the gradient's rules) in float64
  double gradient_float32 = 0;     // the same in float32
  double autograd_float32 = 0;     // autograd through the same nodes in float32: the float32 floor
};

struct ModelCheck {
  std::vector<ValueCheck> values;  // the input, then every node's output
  // At the input, against autograd of the TorchScript module itself in
  // float64 (negative where the module cannot run in float64: a trace that
  // fixed a dtype): mipin's float64 and float32 gradients, and the module's
  // own float32 autograd (the floor users compare with).
  double module_gradient_float64 = -1;
  double module_gradient_float32 = -1;
  double module_autograd_float32 = -1;
  // The nodes are those of the network as the module computes it (the
  // gradient's: Network::as_module). Where BatchNorm was folded, the
  // gradient through the folded network the rule-based methods explain,
  // at the input against the same reference (negative where nothing was
  // folded): a float32 fold is another function by its rounding.
  double folded_gradient_float64 = -1;
  double folded_gradient_float32 = -1;
  std::vector<int64_t> targets;  // the classes differentiated: mipin's float64 prediction
  std::vector<std::string> notices;  // the import's
};

// Loads the model at `path` as load_torchscript does with `options`, and
// checks it on `examples` standard normal inputs drawn with `seed`,
// differentiating each example's predicted logit. The float64 network is
// folded in float64 from the unfolded import, so it is the module's
// function up to float64 rounding.
ModelCheck check_model(const std::string& path, const ImportOptions& options = {}, int64_t examples = 2,
                       uint64_t seed = 0);

}  // namespace mipin
