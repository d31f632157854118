#include <torch/script.h>

#include "mipin/torchscript/model_file.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"

namespace mipin {

void save_torchscript(const Network& network, const std::string& path,
                      const ModelMetadata& metadata) {
  torch::jit::Module module("MipinModel");
  // One variable per value: v0 the input, v{i+1} node i's output.
  std::string source = "def forward(self, v0):\n";
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
    std::vector<std::string> inputs;
    for (size_t v : network.inputs(i)) inputs.push_back("v" + std::to_string(v));
    source += "    v" + std::to_string(i + 1) + " = " + layer.torchscript_of(inputs, prefix) + "\n";
  }
  source += "    return v" + std::to_string(network.size()) + "\n";
  module.define(source);
  module.eval();
  write_atomically(path, [&](const std::string& tmp) {
    module.save(tmp, {{"mipin.json", metadata_to_json(metadata)}});
  });
}

}  // namespace mipin
