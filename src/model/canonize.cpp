#include "mipin/model/canonize.h"

#include <torch/torch.h>

#include <optional>

#include "mipin/model/layers.h"
#include "mipin/util/error.h"

namespace mipin {

namespace {

// The network's copy whose tensors are the network's own (one storage each):
// folding replaces the tensors of the layers it rewrites, so the copy keeps
// the module's layers at no cost in memory.
Network sharing_tensors(const Network& network) {
  Network copy = network;
  for (size_t i = 0; i < network.size(); ++i) {
    const auto ours = network.layer(i).tensors();
    auto theirs = copy.layer(i).tensors();
    for (size_t k = 0; k < ours.size() && k < theirs.size(); ++k) {
      if (ours[k].tensor.defined() && theirs[k].tensor.defined()) theirs[k].tensor.set_data(ours[k].tensor);
    }
  }
  return copy;
}

}  // namespace

int fold_batchnorm(Network& network) {
  int folded = 0;
  std::optional<Network> original;
  for (size_t i = 0; i < network.size(); ++i) {
    if (network.layer(i).kind() != LayerKind::BatchNorm2d) continue;
    // Foldable where the layer before is the only reader of its output: a
    // convolution (or a Linear layer, for BatchNorm1d) that nothing else sees
    // unnormalised. Elsewhere (a pre-activation block, a BatchNorm after a
    // concatenation) it stays: a per-channel affine node.
    const size_t v = network.inputs(i)[0];
    if (v == 0 || network.readers(v) != 1) continue;
    AffineLayer* before = as_affine(network.layer(v - 1));
    if (!before) continue;
    if (!original) original = sharing_tensors(network);
    const auto& bn = static_cast<const BatchNorm2d&>(network.layer(i));
    torch::NoGradGuard no_grad;
    // In float64, rounded once to the weights' type: each folded weight is
    // then the nearest float32 to the true product, and the folded network
    // differs from the module by no more than that rounding.
    const auto type = before->weight.scalar_type();
    auto wide = [](const at::Tensor& t) { return t.to(at::kDouble); };
    const at::Tensor scale = wide(bn.weight) / torch::sqrt(wide(bn.running_var) + bn.eps);
    const at::Tensor b = before->bias.defined() ? wide(before->bias) : torch::zeros_like(scale);
    before->weight = (wide(before->weight) * before->per_unit(scale)).to(type).detach();
    before->bias = ((b - wide(bn.running_mean)) * scale + wide(bn.bias)).to(type).detach();
    network.erase(i);
    --i;
    ++folded;
  }
  if (original) network.set_module_form(std::move(*original));
  return folded;
}

}  // namespace mipin
