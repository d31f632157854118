// Model import from a TorchScript file: mutated archives, and archives
// rebuilt from mutated records (the pickled weights, the TorchScript code,
// mipin.json), imported and run on one input.
#include <torch/torch.h>

#include "fuzz_input.h"
#include "mipin/torchscript/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::optional<std::string> archive = mipin::fuzz::archive_bytes(data, size);
  if (!archive) return 0;
  mipin::fuzz::expect_clear_errors([&] {
    const mipin::ImportedModel model = mipin::load_torchscript_bytes(*archive, "model.pt");
    const auto& shape = model.network.input_shape();
    if (shape.empty() || shape.size() > 3) return;
    int64_t elements = 1;
    for (int64_t s : shape) elements *= s;
    if (elements > (1 << 16)) return;
    std::vector<int64_t> batch{1};
    batch.insert(batch.end(), shape.begin(), shape.end());
    model.network.forward(torch::ones(batch));
  });
  return 0;
}
