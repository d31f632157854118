#pragma once
// Small models trained once per test process on Fashion-MNIST: untrained
// networks have logits so close together that conservation checks would
// measure float32 rounding instead of the method.
#include <memory>

#include "mipin/data/dataset.h"
#include "mipin/model/network.h"

namespace mipin::test {

struct TrainedModel {
  Network network;
  std::unique_ptr<Dataset> train_data;
};

// The demo CNN ("cnn") or "mlp", 1 epoch on 3,000 training images, seed 1.
const TrainedModel& trained_model(const std::string& architecture);

}  // namespace mipin::test
