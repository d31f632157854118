#include "fuzz_input.h"

#include <caffe2/serialize/inline_container.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

namespace mipin::fuzz {

namespace {

// libFuzzer's -fork mode starts a process per job: without this each one
// would leave its scratch files behind in /tmp.
struct RemovedAtExit {
  std::set<std::string> paths;
  ~RemovedAtExit() {
    for (const std::string& path : paths) {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  }
};

}  // namespace

std::string scratch_path(const std::string& suffix) {
  static RemovedAtExit removed;
  const char* dir = std::getenv("TMPDIR");
  const std::string path = std::string(dir && *dir ? dir : "/tmp") + "/mipin-fuzz-" + std::to_string(getpid()) + suffix;
  removed.paths.insert(path);
  return path;
}

std::string scratch_file(const uint8_t* data, size_t size, const std::string& suffix) {
  const std::string path = scratch_path(suffix);
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, file) != size) std::abort();
  std::fclose(file);
  return path;
}

std::string scratch_file(const std::string& bytes, const std::string& suffix) {
  return scratch_file(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), suffix);
}

std::optional<std::string> archive_bytes(const uint8_t* data, size_t size) try {
  const std::string input(reinterpret_cast<const char*>(data), size);
  if (input.rfind("PK\x03\x04", 0) == 0) return input;
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* bytes, size_t n) {
    out.append(static_cast<const char*>(bytes), n);
    return n;
  });
  std::set<std::string> written;
  size_t pos = 0;
  while (pos < input.size()) {
    const size_t end = input.find('\n', pos);
    if (end == std::string::npos || end + 4 > input.size()) break;
    const std::string name = input.substr(pos, end - pos);
    uint32_t length = 0;
    for (int i = 0; i < 4; ++i) length |= uint32_t(static_cast<unsigned char>(input[end + 1 + i])) << (8 * i);
    const size_t start = end + 5;
    const size_t n = std::min<size_t>(length, input.size() - std::min(start, input.size()));
    const std::string record = start < input.size() ? input.substr(start, n) : std::string();
    pos = start + n;
    // The writer adds the version record itself: a listed one sets it.
    if (name == "version" || name == ".data/version") {
      writer.setMinVersion(std::strtoull(record.c_str(), nullptr, 10) % 64);
      continue;
    }
    if (name.empty() || !written.insert(name).second) return std::nullopt;
    writer.writeRecord(name, record.data(), record.size());
  }
  writer.writeEndOfFile();
  return out;
} catch (const c10::Error&) {
  return std::nullopt;
}

std::string record_list(const std::string& archive) {
  std::istringstream in(archive);
  caffe2::serialize::PyTorchStreamReader reader(&in);
  std::string out;
  for (const std::string& name : reader.getAllRecords()) {
    const auto [data, n] = reader.getRecord(name);
    out += name + "\n";
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
    out.append(static_cast<const char*>(data.get()), n);
  }
  return out;
}

}  // namespace mipin::fuzz
