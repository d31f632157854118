#pragma once
// A progress bar on stderr, drawn only when stderr is a terminal so that logs
// and pipes stay clean.
#include <chrono>
#include <cstdint>
#include <string>

namespace mipin {

class Progress {
 public:
  Progress(std::string label, int64_t total);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(int64_t steps = 1);
  // Extra text shown after the bar, e.g. the running loss.
  void set_status(std::string status);
  void finish();

  // Forces drawing on (tests) or off (--quiet) regardless of the terminal.
  static void set_enabled(bool enabled);
  // Whether bars are drawn; long steps log a line each instead when not.
  static bool drawing();

 private:
  void draw(bool force);
  std::string label_;
  std::string status_;
  int64_t total_;
  int64_t done_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace mipin
