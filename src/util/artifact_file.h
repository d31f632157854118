#pragma once
// A fitted artifact on disk (an inverse, patterns): JSON metadata carrying a
// format tag, and named tensors, in one LibTorch archive that appears
// complete or not at all. Reading one turns every failure (a missing file,
// a truncated archive, another format, a missing tensor or field) into one
// mipin::Error that names the file and the command that makes it.
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace mipin {

struct ArtifactFormat {
  std::string what;     // "inverse", "patterns": how errors name it
  std::string tag;      // the format written, e.g. "mipin-inverse/2"
  std::string made_by;  // the command that makes it, e.g. "mipin fit"
  // Earlier tags that are refused with advice rather than as foreign files.
  std::map<std::string, std::string> retired;
};

void write_artifact(const std::string& path, const ArtifactFormat& format, nlohmann::json metadata,
                    const std::map<std::string, at::Tensor>& tensors);

class ArtifactReader {
 public:
  const nlohmann::json& metadata() const { return metadata_; }
  // Throws (through read_artifact) when the tensor is missing or corrupt.
  at::Tensor tensor(const std::string& name) const;

 private:
  friend void read_artifact(const std::string&, const ArtifactFormat&,
                            const std::function<void(const ArtifactReader&)>&);
  struct Archive;
  std::shared_ptr<Archive> archive_;
  nlohmann::json metadata_;
};

// Opens the file, checks its format and runs `parse` on it.
void read_artifact(const std::string& path, const ArtifactFormat& format,
                   const std::function<void(const ArtifactReader&)>& parse);

}  // namespace mipin
