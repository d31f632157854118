#pragma once
// Canonizers rewrite a Network into an equivalent one that attribution rules
// handle more simply (they run once, before anything is explained).
#include "mipin/model/network.h"

namespace mipin {

// Folds every BatchNorm2d into the Conv2d right before it (eval statistics):
// w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta.
// Returns how many were folded. A BatchNorm2d that follows no Conv2d is an
// error naming its position.
int fold_batchnorm(Network& network);

}  // namespace mipin
