#pragma once
// The training loop the zoo's models share, whatever holds their parameters
// (a Network of mipin's layers, or a TorchScript module).
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "mipin/data/dataset.h"
#include "mipin/zoo/trainer.h"

namespace mipin {

// Adam on `parameters` against the cross-entropy of forward(inputs), in
// shuffled batches; set_training(true) before and (false) after.
TrainResult train_parameters(const std::function<at::Tensor(const at::Tensor&)>& forward,
                             std::vector<at::Tensor> parameters, const std::function<void(bool)>& set_training,
                             const Dataset& data, const TrainOptions& options);

}  // namespace mipin
