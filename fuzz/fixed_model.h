#pragma once
// The model that the inverse, patterns and checkpoint harnesses read files
// for: a small residual network (BatchNorm, a fork, an add), 1x8x8 inputs
// and 3 classes, its weights drawn from seed 0, and 16 examples to fit on. The
// seeds in the corpus were made for it (fuzz_seeds), so mutated files get
// past the model check to the tensors and the code that uses them.
#include "mipin/data/dataset.h"
#include "mipin/inverse/options.h"
#include "mipin/model/network.h"

namespace mipin::fuzz {

const Network& fixed_network();
const Dataset& fixed_data();
InverseOptions fixed_options();
// Two examples of fixed_data() and their labels.
Batch fixed_batch();

}  // namespace mipin::fuzz
