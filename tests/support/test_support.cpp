#include "support/test_support.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "mipin/util/error.h"

namespace mipin::test {
namespace fs = std::filesystem;

TempDir::TempDir() {
  std::random_device rd;
  path_ = (fs::temp_directory_path() / ("mipin-test-" + std::to_string(rd()))).string();
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

CommandResult run_command(const std::string& command_line) {
  TempDir dir;
  const std::string out = dir.file("stdout"), err = dir.file("stderr");
  const std::string full = command_line + " >" + out + " 2>" + err + " </dev/null";
  // fork and wait4 rather than system(): the child's own peak memory.
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  while (pid > 0 && wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  CommandResult result;
  result.exit_code = pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.peak_mb = double(usage.ru_maxrss) / 1024.0;
  result.out = read_text(out);
  result.err = read_text(err);
  return result;
}

CommandResult run_cli(const std::string& args) {
  return run_command(std::string("'") + MIPIN_CLI + "' " + args);
}

CommandResult run_python(const std::string& script) {
  TempDir dir;
  const std::string path = dir.file("script.py");
  write_text(path, script);
  return run_command(std::string("'") + MIPIN_PYTHON + "' " + path);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a mipin::Error";
  return "";
}

void expect_error(const CommandResult& r, const std::vector<std::string>& fragments) {
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("error"), std::string::npos) << r.err;
  for (const auto& f : fragments) {
    EXPECT_NE(r.err.find(f), std::string::npos) << "missing '" << f << "' in: " << r.err;
  }
}

std::string test_model(const std::string& file_name) {
  const std::string path = std::string(MIPIN_TEST_MODELS_DIR) + "/" + file_name;
  if (!fs::exists(path)) {
    throw std::runtime_error("test model " + path +
                             " is missing: run the export_test_models test first (ctest fixture)");
  }
  return path;
}

std::string method_flags(const nlohmann::json& method, const std::map<std::string, std::string>& wanted) {
  std::string out;
  for (const auto& option : method.at("options")) {
    const auto it = wanted.find(option.at("name").get<std::string>());
    if (it != wanted.end()) out += " " + option.at("flag").get<std::string>() + " " + it->second;
  }
  return out;
}

}  // namespace mipin::test
