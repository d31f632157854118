#include "support/trained_models.h"

#include <torch/torch.h>

#include <map>

#include "mipin/zoo/architectures.h"
#include "mipin/zoo/trainer.h"

namespace mipin::test {

const TrainedModel& trained_model(const std::string& architecture) {
  static std::map<std::string, TrainedModel> cache;
  auto it = cache.find(architecture);
  if (it != cache.end()) return it->second;
  TrainedModel m;
  m.train_data = open_dataset("fashion-mnist", Split::Train);
  torch::manual_seed(1);
  m.network = make_architecture(architecture, {1, 28, 28}, 10);
  train(m.network, *m.train_data,
        TrainOptions{}.with_epochs(1).with_max_examples(3000).with_progress(false));
  return cache.emplace(architecture, std::move(m)).first->second;
}

}  // namespace mipin::test
