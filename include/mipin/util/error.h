#pragma once
// Errors that reach a user: one exception type whose message says what was
// expected and what was found, in the spirit of TORCH_CHECK.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mipin {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}
}  // namespace detail

}  // namespace mipin

// MIPIN_CHECK(cond, "expected ", a, ", found ", b) throws mipin::Error.
#define MIPIN_CHECK(cond, ...)                                       \
  do {                                                               \
    if (!(cond)) throw ::mipin::Error(::mipin::detail::concat(__VA_ARGS__)); \
  } while (false)

#define MIPIN_FAIL(...) throw ::mipin::Error(::mipin::detail::concat(__VA_ARGS__))
