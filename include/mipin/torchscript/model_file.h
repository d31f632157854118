#pragma once
// Reading and writing TorchScript files: the format a PyTorch user brings
// (torch.jit.trace or torch.jit.script, then .save), and the one `mipin train`
// writes.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mipin/model/network.h"

namespace mipin {

// Facts about a model that its weights do not tell. Stored as the extra file
// "mipin.json" inside the TorchScript archive; a model without it still loads.
struct ModelMetadata {
  std::vector<int64_t> input_shape;  // per example: [C, H, W] or [features]
  std::string architecture;          // zoo name, or empty
  std::string data;                  // data set it was trained on, or empty
  double test_accuracy = -1;         // < 0: unknown
};

struct ImportOptions {
  // Overrides the input shape stored in the file.
  std::vector<int64_t> input_shape;
  // Fold BatchNorm2d into the preceding Conv2d (on by default; attribution
  // rules assume folded networks).
  bool fold_batchnorm = true;
  // Compare the network's forward pass, node by node, with the TorchScript
  // module's on a probe input, and refuse the model on a difference.
  bool verify = true;
  // Called on the mapped network before it is verified: tests change a
  // node here to check that the verification catches a wrong mapping.
  std::function<void(Network&)> after_mapping;

  ImportOptions& with_input_shape(std::vector<int64_t> shape) {
    input_shape = std::move(shape);
    return *this;
  }
  ImportOptions& with_fold_batchnorm(bool fold) {
    fold_batchnorm = fold;
    return *this;
  }
  ImportOptions& with_verify(bool on) {
    verify = on;
    return *this;
  }
};

struct ImportedModel {
  Network network;
  ModelMetadata metadata;
  std::string path;
  // What the import changed, for the user to read: a dropped softmax, folded
  // BatchNorm layers, an inferred input shape.
  std::vector<std::string> notices;
};

// Loads a TorchScript file and maps its inlined graph's aten ops onto a
// Network. An op mipin has no layer for becomes an Op node that runs it as
// TorchScript does (notices name them). Throws mipin::Error naming the file
// and what it cannot read (control flow that depends on the input, several
// inputs), or the first node whose value differs from the module's.
ImportedModel load_torchscript(const std::string& path, const ImportOptions& options = {});
// The same from the archive's bytes in memory (torch.jit.save into a
// buffer: a model that never touches the disk); `name` stands for the file
// in messages.
ImportedModel load_torchscript_bytes(const std::string& bytes, const std::string& name,
                                     const ImportOptions& options = {});

// Writes the network as a TorchScript module (loadable by torch.jit.load and
// by load_torchscript), atomically.
void save_torchscript(const Network& network, const std::string& path,
                      const ModelMetadata& metadata);

std::string metadata_to_json(const ModelMetadata& metadata);
ModelMetadata metadata_from_json(const std::string& text, const std::string& origin);

}  // namespace mipin
