#pragma once
// Small string helpers shared by the readers' error messages.
#include <string>

namespace mipin {

// Up to the first newline: LibTorch's messages go on with backtraces and source.
inline std::string first_line(const std::string& s) {
  const auto end = s.find('\n');
  return end == std::string::npos ? s : s.substr(0, end);
}

inline bool ends_with(const std::string& s, const std::string& end) {
  return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

}  // namespace mipin
