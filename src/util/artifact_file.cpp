#include "util/artifact_file.h"

#include <torch/serialize/output-archive.h>
#include <torch/torch.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"
#include "util/libtorch_archive.h"
#include "util/stored_tensor.h"

namespace mipin {

// The saved module itself, read as every LibTorch archive is
// (util/libtorch_archive.h); OutputArchive stores each tensor as a buffer and
// the metadata as an attribute of it.
struct ArtifactReader::Archive {
  torch::jit::Module module;
};

void write_artifact(const std::string& path, const ArtifactFormat& format, nlohmann::json metadata,
                    const std::map<std::string, at::Tensor>& tensors) {
  metadata["format"] = format.tag;
  torch::serialize::OutputArchive archive;
  archive.write("metadata", c10::IValue(metadata.dump()));
  for (const auto& [name, tensor] : tensors) archive.write(name, tensor);
  // Through a stream, not a file name: the archive names its records after
  // the file it is saved to, and the temporary name would make the same
  // content different bytes each time.
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    MIPIN_CHECK(out, "cannot open '", tmp, "' for writing: ", std::strerror(errno));
    archive.save_to(out);
    out.close();
    MIPIN_CHECK(out, "cannot write '", tmp, "' (disk full?)");
  });
}

at::Tensor ArtifactReader::tensor(const std::string& name) const {
  const torch::jit::Module& module = archive_->module;
  MIPIN_CHECK(module.hasattr(name), "tensor '", name, "' is missing");
  const c10::IValue value = module.attr(name);
  MIPIN_CHECK(value.isTensor(), "'", name, "' is not a tensor");
  const at::Tensor t = value.toTensor();
  check_stored_tensor(t, "tensor '" + name + "'");
  return t;
}

void read_artifact(const std::string& path, const ArtifactFormat& format,
                   const std::function<void(const ArtifactReader&)>& parse) {
  std::error_code ec;
  MIPIN_CHECK_AS(not_found, std::filesystem::exists(path, ec), format.what, " file not found: '", path, "'");
  ArtifactReader reader;
  reader.archive_ = std::make_shared<ArtifactReader::Archive>();
  reader.archive_->module = read_libtorch_archive(
      path, {"the " + format.what + " '" + path + "'", "not written by `" + format.made_by + "`"});
  try {
    const torch::jit::Module& module = reader.archive_->module;
    MIPIN_CHECK(module.hasattr("metadata") && module.attr("metadata").isString(), "cannot read the ", format.what,
                " '", path, "': it has no metadata (not written by `", format.made_by, "`)");
    reader.metadata_ = nlohmann::json::parse(module.attr("metadata").toStringRef());
  } catch (const nlohmann::json::exception& e) {
    MIPIN_FAIL("cannot read the ", format.what, " '", path, "': its metadata is corrupt (", e.what(), ")");
  }
  const std::string tag = reader.metadata_.is_object() ? reader.metadata_.value("format", "") : "";
  const auto retired = format.retired.find(tag);
  MIPIN_CHECK(retired == format.retired.end(), "'", path, "' was made by an earlier mipin (format '", tag,
              "', expected '", format.tag, "'): ", retired->second);
  MIPIN_CHECK(tag == format.tag, "'", path, "' is not a mipin ", format.what, " (format '", tag, "', expected '",
              format.tag, "')");
  try {
    parse(reader);
  } catch (const Error& e) {
    throw Error(detail::concat("cannot read the ", format.what, " '", path, "': ", e.what()), e.kind());
  } catch (const c10::Error& e) {
    MIPIN_FAIL("cannot read the ", format.what, " '", path, "': a tensor is missing or corrupt (",
               std::string(e.what_without_backtrace()).substr(0, 160), ")");
  } catch (const nlohmann::json::exception& e) {
    MIPIN_FAIL("cannot read the ", format.what, " '", path, "': its metadata is incomplete (", e.what(), ")");
  }
}

}  // namespace mipin
