#pragma once
// What a caller may choose of a method, declared once by the method itself
// (its RegisterMethod entry, registry.h). The command line's flags, `mipin
// methods` and its JSON, and the checks on every value are made from these
// declarations; nothing else lists a method's options.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace mipin {

enum class OptionKind {
  integer,
  real,
  flag,       // on or off; off by default
  choice,     // one of a list of words; the first by default
  reference,  // an input to compare with: zero, or a tensor of one input's shape
};

std::string to_string(OptionKind kind);

struct OptionSpec {
  std::string name;  // "internal_batch": --internal-batch on the command line
  OptionKind kind = OptionKind::integer;
  std::string help;  // one line
  // The default as the command line writes it ("64", "1e-06", "riemann",
  // "zero"); empty where there is none and the method decides ("the last
  // convolution").
  std::string default_text;
  double min = -std::numeric_limits<double>::infinity();  // integer, real
  double max = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices;  // choice

  static OptionSpec integer(std::string name, std::optional<int64_t> default_value, std::string help);
  static OptionSpec real(std::string name, double default_value, std::string help);
  static OptionSpec flag(std::string name, std::string help);
  static OptionSpec choice(std::string name, std::vector<std::string> choices, std::string help);
  static OptionSpec reference(std::string name, std::string help);
  OptionSpec& at_least(double value) {
    min = value;
    return *this;
  }
  OptionSpec& at_most(double value) {
    max = value;
    return *this;
  }

  // "--internal-batch".
  std::string flag_name() const;
  // What a value may be: "integer >= 1", "riemann or gauss-legendre", ...
  std::string accepts() const;
};

// A value as a caller gives it: typed (from C++ or Python) or as text (from
// the command line), which the check converts. A reference is a tensor or
// the word zero.
using OptionValue = std::variant<bool, int64_t, double, std::string, at::Tensor>;

// Option values by name. After check_options, every declared option has a
// value of its kind (its default where the caller gave none), read with the
// typed getters; reading an option the method did not declare is an error.
class MethodOptions {
 public:
  MethodOptions& set(const std::string& name, OptionValue value);
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  const std::map<std::string, OptionValue>& values() const { return values_; }

  int64_t integer(const std::string& name) const;
  // An integer option without a default: empty where not given.
  std::optional<int64_t> maybe_integer(const std::string& name) const;
  double real(const std::string& name) const;
  bool flag(const std::string& name) const;
  const std::string& choice(const std::string& name) const;
  // A reference: undefined for zero.
  at::Tensor reference(const std::string& name) const;

 private:
  const OptionValue& at(const std::string& name) const;
  std::map<std::string, OptionValue> values_;
};

// `given` checked against a method's declarations and completed with their
// defaults. Throws mipin::Error naming the method and the option: one it does
// not declare (listing those it does, unless ignore_undeclared), a value of
// another kind, out of range or not among the choices.
MethodOptions check_options(const std::string& method, const std::vector<OptionSpec>& specs,
                            const MethodOptions& given, bool ignore_undeclared = false);

}  // namespace mipin
