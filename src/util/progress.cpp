#include "mipin/util/progress.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>

namespace mipin {
namespace {
std::optional<bool>& enabled_override() {
  static std::optional<bool> value;
  return value;
}
bool enabled() {
  if (enabled_override()) return *enabled_override();
  return isatty(STDERR_FILENO) == 1;
}
}  // namespace

void Progress::set_enabled(bool on) { enabled_override() = on; }

bool Progress::drawing() { return enabled(); }

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total < 1 ? 1 : total),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {
  draw(true);
}

Progress::~Progress() { finish(); }

void Progress::advance(int64_t steps) {
  done_ += steps;
  if (done_ > total_) done_ = total_;
  draw(false);
}

void Progress::set_status(std::string status) { status_ = std::move(status); }

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!enabled()) return;
  draw(true);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

void Progress::draw(bool force) {
  if (!enabled()) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && done_ < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  constexpr int kWidth = 30;
  const double fraction = static_cast<double>(done_) / static_cast<double>(total_);
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0.0;
  std::fprintf(stderr, "\r%-18s [%s] %3d%%  %5.0fs elapsed, %4.0fs left  %s\x1b[K", label_.c_str(),
               bar.c_str(), static_cast<int>(fraction * 100), elapsed, eta, status_.c_str());
  std::fflush(stderr);
}

ProgressCallback terminal_progress() {
  auto bar = std::make_shared<std::unique_ptr<Progress>>();
  return [bar](const ProgressEvent& e) {
    switch (e.kind) {
      case ProgressEvent::Kind::begin:
        *bar = std::make_unique<Progress>(e.text, e.count);
        break;
      case ProgressEvent::Kind::advance:
        if (*bar) (*bar)->advance(e.count);
        break;
      case ProgressEvent::Kind::status:
        if (*bar) (*bar)->set_status(e.text);
        break;
      case ProgressEvent::Kind::line:
        // Logs and pipes get one line per finished piece instead of a bar.
        if (!Progress::drawing()) {
          std::fprintf(stderr, "%s\n", e.text.c_str());
          std::fflush(stderr);
        }
        break;
      case ProgressEvent::Kind::end:
        bar->reset();
        break;
    }
  };
}

ProgressStage::ProgressStage(ProgressCallback callback, std::string label, int64_t total)
    : callback_(std::move(callback)) {
  if (callback_) callback_({ProgressEvent::Kind::begin, std::move(label), total});
}

ProgressStage::~ProgressStage() {
  if (callback_) callback_({ProgressEvent::Kind::end, "", 0});
}

void ProgressStage::advance(int64_t steps) {
  if (callback_) callback_({ProgressEvent::Kind::advance, "", steps});
}

void ProgressStage::status(std::string text) {
  if (callback_) callback_({ProgressEvent::Kind::status, std::move(text), 0});
}

void report_line(const ProgressCallback& callback, std::string text) {
  if (callback) callback({ProgressEvent::Kind::line, std::move(text), 0});
}

}  // namespace mipin
