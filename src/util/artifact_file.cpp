#include "util/artifact_file.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/torch.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"
#include "util/stored_tensor.h"

namespace mipin {

struct ArtifactReader::Archive {
  mutable torch::serialize::InputArchive archive;
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
  at::Tensor t;
  archive_->archive.read(name, t);
  check_stored_tensor(t, "tensor '" + name + "'");
  return t;
}

void read_artifact(const std::string& path, const ArtifactFormat& format,
                   const std::function<void(const ArtifactReader&)>& parse) {
  std::error_code ec;
  MIPIN_CHECK_AS(not_found, std::filesystem::exists(path, ec), format.what, " file not found: '", path, "'");
  ArtifactReader reader;
  reader.archive_ = std::make_shared<ArtifactReader::Archive>();
  try {
    reader.archive_->archive.load_from(path);
    c10::IValue text;
    reader.archive_->archive.read("metadata", text);
    reader.metadata_ = nlohmann::json::parse(text.toStringRef());
  } catch (const c10::Error& e) {
    MIPIN_FAIL("cannot read the ", format.what, " '", path, "': the file is truncated, corrupt or not written by `",
               format.made_by, "` (", std::string(e.what_without_backtrace()).substr(0, 160), ")");
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
