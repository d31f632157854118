#pragma once
// Shared helpers for the test suite: temporary directories, running the
// command-line tool and Python, and locating exported test models.
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mipin::test {

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
  double peak_mb = 0;  // the largest resident set of any one process the command ran
};

// Runs a shell command line, capturing stdout and stderr separately.
CommandResult run_command(const std::string& command_line);

// Runs the built `mipin` executable with the given argument string.
CommandResult run_cli(const std::string& args);

// Runs Debian's python3 (the one with torch and numpy) on a script given as text.
CommandResult run_python(const std::string& script);

// Path of a model exported by scripts/export_test_models.py.
std::string test_model(const std::string& file_name);

// The message of the mipin::Error that f throws (a test failure if none).
std::string error_of(const std::function<void()>& f);

// A command that failed: non-zero exit, "error" on stderr, every fragment in
// the message.
void expect_error(const CommandResult& result, const std::vector<std::string>& fragments);

// Command-line flags for the options a method (an entry of `mipin methods
// --json`) declares among `wanted` (option name -> value): " --steps 8 ...".
std::string method_flags(const nlohmann::json& method, const std::map<std::string, std::string>& wanted);

void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

}  // namespace mipin::test
