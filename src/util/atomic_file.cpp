#include "mipin/util/atomic_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>

#include "mipin/util/error.h"

namespace mipin {
namespace fs = std::filesystem;
namespace {

struct Unfinished {
  std::mutex mutex;
  std::set<std::string> paths;
};
Unfinished& unfinished() {
  static Unfinished u;
  return u;
}
// Lists a temporary file while it is written.
struct InFlight {
  explicit InFlight(std::string p) : path(std::move(p)) {
    std::lock_guard<std::mutex> lock(unfinished().mutex);
    unfinished().paths.insert(path);
  }
  ~InFlight() {
    std::lock_guard<std::mutex> lock(unfinished().mutex);
    unfinished().paths.erase(path);
  }
  std::string path;
};

}  // namespace

void remove_unfinished_files() {
  std::lock_guard<std::mutex> lock(unfinished().mutex);
  std::error_code ec;
  for (const std::string& p : unfinished().paths) fs::remove_all(p, ec);
  unfinished().paths.clear();
}

void write_atomically(const std::string& path,
                      const std::function<void(const std::string&)>& write) {
  const fs::path target(path);
  if (target.has_parent_path() && !fs::exists(target.parent_path())) {
    fs::create_directories(target.parent_path());
  }
  std::random_device rd;
  const std::string tmp = path + ".tmp-" + std::to_string(rd());
  const InFlight in_flight(tmp);
  try {
    write(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    MIPIN_FAIL("cannot write '", path, "': ", ec.message());
  }
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    MIPIN_CHECK(out, "cannot open '", tmp, "' for writing: ", std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    MIPIN_CHECK(out, "cannot write '", tmp, "' (disk full?)");
  });
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  MIPIN_CHECK_AS(not_found, fs::exists(path, ec), "file not found: '", path, "'");
  MIPIN_CHECK(!fs::is_directory(path, ec), "expected a file, found a directory: '", path, "'");
  std::ifstream in(path, std::ios::binary);
  MIPIN_CHECK(in, "cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace mipin
