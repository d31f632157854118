#pragma once
// A TorchScript module written in the test (its forward as TorchScript
// source, its parameters by name), saved and imported at an input shape.
#include <torch/script.h>

#include <string>
#include <utility>
#include <vector>

#include "mipin/torchscript/model_file.h"
#include "support/test_support.h"

namespace mipin::test {

inline ImportedModel scripted_model(const std::string& source, const std::vector<int64_t>& shape,
                                    const std::vector<std::pair<std::string, at::Tensor>>& parameters, TempDir& dir) {
  torch::jit::Module module("M");
  for (const auto& [name, t] : parameters) module.register_parameter(name, t, false);
  module.define(source);
  const std::string path = dir.file("m.pt");
  module.save(path);
  return load_torchscript(path, ImportOptions().with_input_shape(shape));
}

}  // namespace mipin::test
