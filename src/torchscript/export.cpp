#include <torch/script.h>

#include "mipin/torchscript/model_file.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"

namespace mipin {

void save_torchscript(const Network& network, const std::string& path,
                      const ModelMetadata& metadata) {
  torch::jit::Module module("MipinModel");
  std::string source = "def forward(self, x):\n";
  for (size_t i = 0; i < network.size(); ++i) {
    const Layer& layer = network.layer(i);
    const std::string prefix = "layer" + std::to_string(i) + "_";
    for (const auto& t : layer.tensors()) {
      if (!t.tensor.defined()) continue;
      const at::Tensor value = t.tensor.detach().clone();
      if (t.trainable) {
        module.register_parameter(prefix + t.name, value, false);
      } else {
        module.register_buffer(prefix + t.name, value);
      }
    }
    source += "    x = " + layer.torchscript("x", prefix) + "\n";
  }
  source += "    return x\n";
  module.define(source);
  module.eval();
  write_atomically(path, [&](const std::string& tmp) {
    module.save(tmp, {{"mipin.json", metadata_to_json(metadata)}});
  });
}

}  // namespace mipin
