#pragma once
// Errors that reach a user: one exception type whose message says what was
// expected and what was found, in the spirit of TORCH_CHECK. Its kind says
// what went wrong in the terms a caller branches on (the Python module
// raises ValueError, IndexError, FileNotFoundError or NotImplementedError).
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mipin {

enum class ErrorKind {
  invalid,      // a value, shape or file content the call cannot take
  out_of_range, // an index (a target class, a layer) beyond what exists
  not_found,    // a file or directory that is not there
  unsupported,  // something valid that mipin does not handle (an op, a dtype)
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ErrorKind kind = ErrorKind::invalid)
      : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
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

// The same with a kind: MIPIN_CHECK_AS(not_found, exists, "file not found: ", path).
#define MIPIN_CHECK_AS(kind, cond, ...)                                                              \
  do {                                                                                               \
    if (!(cond)) throw ::mipin::Error(::mipin::detail::concat(__VA_ARGS__), ::mipin::ErrorKind::kind); \
  } while (false)

#define MIPIN_FAIL_AS(kind, ...) \
  throw ::mipin::Error(::mipin::detail::concat(__VA_ARGS__), ::mipin::ErrorKind::kind)
