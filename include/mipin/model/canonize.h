#pragma once
// Canonizers rewrite a Network into an equivalent one that attribution rules
// handle more simply (they run once, before anything is explained).
#include "mipin/model/network.h"

namespace mipin {

// Folds every BatchNorm2d into the Conv2d (or Linear) layer right before it
// where that layer's output has no other reader (eval statistics):
// w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta.
// Returns how many were folded. The others stay, as per-channel affine nodes.
// The network as it was is kept as its module form (Network::as_module),
// sharing the tensors of the layers folding leaves alone: the gradient runs
// on it, as the module does.
int fold_batchnorm(Network& network);

}  // namespace mipin
