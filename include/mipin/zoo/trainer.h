#pragma once
// Trains a Network with Adam on a Dataset: what `mipin train` runs.
#include <cstdint>
#include <functional>

#include "mipin/data/dataset.h"
#include "mipin/model/network.h"
#include "mipin/torchscript/model_file.h"

namespace mipin {

struct TrainOptions {
  int64_t epochs = 3;
  int64_t batch_size = 64;
  double learning_rate = 1e-3;
  uint64_t seed = 1;
  int64_t max_examples = 0;  // 0: the whole training split
  bool show_progress = true;

  TrainOptions& with_epochs(int64_t v) { epochs = v; return *this; }
  TrainOptions& with_batch_size(int64_t v) { batch_size = v; return *this; }
  TrainOptions& with_learning_rate(double v) { learning_rate = v; return *this; }
  TrainOptions& with_seed(uint64_t v) { seed = v; return *this; }
  TrainOptions& with_max_examples(int64_t v) { max_examples = v; return *this; }
  TrainOptions& with_progress(bool v) { show_progress = v; return *this; }
};

struct TrainResult {
  double final_loss = 0;      // mean cross-entropy over the last epoch
  int64_t examples_seen = 0;  // per epoch
  double seconds = 0;
};

// Trains in place. The same seed, data and options give the same weights.
// BatchNorm running statistics are then re-estimated on the final weights
// (over up to 10,000 training examples).
TrainResult train(Network& network, const Dataset& data, const TrainOptions& options);

struct ModuleTrainResult : TrainResult {
  double test_accuracy = 0;  // the trained module's own, on the whole test split
  int64_t parameters = 0;
};

// Builds the module architecture `name` (module_architecture_names()) for the
// data's shape and classes, trains it like train() and writes it to `path` as
// TorchScript with `metadata` (input shape, architecture and accuracy filled in).
ModuleTrainResult train_module_architecture(const std::string& name, const Dataset& train_data,
                                            const Dataset& test_data, const TrainOptions& options,
                                            const std::string& path, ModelMetadata metadata);

// A linear classifier (one Linear layer) for flat inputs, trained with Adam
// (learning rate 1e-2) from zero weights. Zero initialisation keeps the class
// rows antisymmetric for two classes: cross-entropy gradients sum to zero over
// the classes. The model of the linear signal/distractor toy.
Network train_linear_classifier(const Dataset& data, int64_t epochs = 20);

// Fraction of examples whose argmax logit equals the label (eval mode).
double accuracy(const Network& network, const Dataset& data, int64_t max_examples = 0,
                int64_t batch_size = 500);

}  // namespace mipin
