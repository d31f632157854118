#include "support/trained_models.h"

#include <torch/torch.h>

#include <filesystem>
#include <map>

#include "mipin/util/atomic_file.h"
#include "mipin/zoo/architectures.h"
#include "mipin/zoo/trainer.h"

namespace mipin::test {
namespace {

std::vector<at::Tensor> weights_of(const Network& network) {
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < network.size(); ++i) {
    for (const NamedTensor& t : network.layer(i).tensors()) {
      if (t.tensor.defined()) out.push_back(t.tensor);  // a convolution without bias
    }
  }
  return out;
}

}  // namespace

// Trained by the first test process that asks and kept beside the exported
// test models: the others load the weights instead of training again (a
// third of the suite's time under the sanitizers otherwise).
const TrainedModel& trained_model(const std::string& architecture) {
  static std::map<std::string, TrainedModel> cache;
  auto it = cache.find(architecture);
  if (it != cache.end()) return it->second;
  TrainedModel m;
  m.train_data = open_dataset("fashion-mnist", Split::Train);
  torch::manual_seed(1);
  m.network = make_architecture(architecture, {1, 28, 28}, 10);
  const std::string kept = std::string(MIPIN_TEST_MODELS_DIR) + "/trained-" + architecture + ".pt";
  std::vector<at::Tensor> weights = weights_of(m.network);
  std::vector<at::Tensor> stored;
  if (std::filesystem::exists(kept)) torch::load(stored, kept);
  bool same = stored.size() == weights.size();
  for (size_t k = 0; same && k < weights.size(); ++k) same = stored[k].sizes() == weights[k].sizes();
  if (same) {
    torch::NoGradGuard no_grad;
    for (size_t k = 0; k < weights.size(); ++k) weights[k].copy_(stored[k]);
  } else {
    train(m.network, *m.train_data, TrainOptions{}.with_epochs(1).with_max_examples(3000).with_progress(false));
    std::filesystem::create_directories(MIPIN_TEST_MODELS_DIR);
    write_atomically(kept, [&](const std::string& tmp) { torch::save(weights_of(m.network), tmp); });
  }
  return cache.emplace(architecture, std::move(m)).first->second;
}

}  // namespace mipin::test
