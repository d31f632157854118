#pragma once
// A progress bar on stderr, drawn only when stderr is a terminal so that logs
// and pipes stay clean.
#include <chrono>
#include <cstdint>
#include <functional>
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

// What long library work (a fit, an evaluation) says of itself, for the
// caller to show or not: library code reports through a callback and never
// writes to stderr itself.
struct ProgressEvent {
  enum class Kind {
    begin,    // a stage of `count` steps named `text` starts
    advance,  // `count` more steps of the stage are done
    status,   // `text` describes what the stage does now
    line,     // a finished piece of work worth a line in a log
    end,      // the stage is over
  };
  Kind kind = Kind::line;
  std::string text;
  int64_t count = 0;
};
using ProgressCallback = std::function<void(const ProgressEvent&)>;

// Bars on stderr where it is a terminal (see Progress), one line per `line`
// event where it is not.
ProgressCallback terminal_progress();

// A stage reported through a callback; silent without one.
class ProgressStage {
 public:
  ProgressStage(ProgressCallback callback, std::string label, int64_t total);
  ~ProgressStage();
  ProgressStage(const ProgressStage&) = delete;
  ProgressStage& operator=(const ProgressStage&) = delete;
  void advance(int64_t steps = 1);
  void status(std::string text);

 private:
  ProgressCallback callback_;
};

// A `line` event, where there is a callback.
void report_line(const ProgressCallback& callback, std::string text);

}  // namespace mipin
