#include "mipin/attribution/method_options.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "mipin/util/error.h"

namespace mipin {
namespace {

// The shortest text that reads back as the same double ("1e-06", "0.15").
std::string number_text(double v) {
  std::ostringstream s;
  s.precision(15);
  s << v;
  return s.str();
}

std::string joined(const std::vector<std::string>& words, const std::string& last) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == words.size() ? " " + last + " " : ", ") + words[i];
  }
  return out;
}

const char* kind_of(const OptionValue& v) {
  switch (v.index()) {
    case 0: return "a flag";
    case 1: return "an integer";
    case 2: return "a number";
    case 3: return "text";
    default: return "a tensor";
  }
}

// The value converted to the spec's kind (text parsed), or an error naming
// what was expected.
OptionValue converted(const std::string& method, const OptionSpec& spec, const OptionValue& v) {
  auto fail = [&](const std::string& found) -> OptionValue {
    MIPIN_FAIL("method '", method, "': option ", spec.name, " takes ", spec.accepts(), ", found ", found);
  };
  const std::string* text = std::get_if<std::string>(&v);
  switch (spec.kind) {
    case OptionKind::flag:
      if (const bool* b = std::get_if<bool>(&v)) return *b;
      if (text && (*text == "true" || *text == "1")) return true;
      if (text && (*text == "false" || *text == "0")) return false;
      return fail(text ? "'" + *text + "'" : kind_of(v));
    case OptionKind::integer: {
      int64_t n = 0;
      if (const int64_t* i = std::get_if<int64_t>(&v)) {
        n = *i;
      } else if (text) {
        char* end = nullptr;
        n = std::strtoll(text->c_str(), &end, 10);
        if (text->empty() || *end != '\0') return fail("'" + *text + "'");
      } else {
        return fail(kind_of(v));
      }
      if (double(n) < spec.min || double(n) > spec.max) return fail(std::to_string(n));
      return n;
    }
    case OptionKind::real: {
      double x = 0;
      if (const double* d = std::get_if<double>(&v)) {
        x = *d;
      } else if (const int64_t* i = std::get_if<int64_t>(&v)) {
        x = double(*i);
      } else if (text) {
        char* end = nullptr;
        x = std::strtod(text->c_str(), &end);
        if (text->empty() || *end != '\0') return fail("'" + *text + "'");
      } else {
        return fail(kind_of(v));
      }
      if (!std::isfinite(x) || x < spec.min || x > spec.max) return fail(number_text(x));
      return x;
    }
    case OptionKind::choice:
      if (!text) return fail(kind_of(v));
      for (const std::string& c : spec.choices) {
        if (*text == c) return c;
      }
      return fail("'" + *text + "'");
    case OptionKind::reference:
      if (const at::Tensor* t = std::get_if<at::Tensor>(&v)) return *t;
      if (text && *text == "zero") return at::Tensor();
      return fail(text ? "'" + *text + "' (a file or the data's mean is read by the caller first)" : kind_of(v));
  }
  return fail(kind_of(v));
}

}  // namespace

std::string to_string(OptionKind kind) {
  switch (kind) {
    case OptionKind::integer: return "integer";
    case OptionKind::real: return "real";
    case OptionKind::flag: return "flag";
    case OptionKind::choice: return "choice";
    case OptionKind::reference: return "reference";
  }
  return "unknown";
}

namespace {

OptionSpec spec_of(std::string name, OptionKind kind, std::string help, std::string default_text) {
  OptionSpec s;
  s.name = std::move(name);
  s.kind = kind;
  s.help = std::move(help);
  s.default_text = std::move(default_text);
  return s;
}

}  // namespace

OptionSpec OptionSpec::integer(std::string name, std::optional<int64_t> default_value, std::string help) {
  return spec_of(std::move(name), OptionKind::integer, std::move(help),
                 default_value ? std::to_string(*default_value) : std::string());
}

OptionSpec OptionSpec::real(std::string name, double default_value, std::string help) {
  return spec_of(std::move(name), OptionKind::real, std::move(help), number_text(default_value));
}

OptionSpec OptionSpec::flag(std::string name, std::string help) {
  return spec_of(std::move(name), OptionKind::flag, std::move(help), "false");
}

OptionSpec OptionSpec::choice(std::string name, std::vector<std::string> choices, std::string help) {
  MIPIN_CHECK(!choices.empty(), "option ", name, ": a choice needs at least one word");
  OptionSpec s = spec_of(std::move(name), OptionKind::choice, std::move(help), choices.front());
  s.choices = std::move(choices);
  return s;
}

OptionSpec OptionSpec::reference(std::string name, std::string help) {
  return spec_of(std::move(name), OptionKind::reference, std::move(help), "zero");
}

std::string OptionSpec::flag_name() const {
  std::string out = "--" + name;
  for (char& c : out) {
    if (c == '_') c = '-';
  }
  return out;
}

std::string OptionSpec::accepts() const {
  auto range = [&](const std::string& what) {
    const bool low = std::isfinite(min), high = std::isfinite(max);
    if (low && high) return what + " from " + number_text(min) + " to " + number_text(max);
    if (low) return what + " >= " + number_text(min);
    if (high) return what + " <= " + number_text(max);
    return what;
  };
  switch (kind) {
    case OptionKind::integer: return range("an integer");
    case OptionKind::real: return range("a number");
    case OptionKind::flag: return "true or false";
    case OptionKind::choice: return joined(choices, "or");
    case OptionKind::reference: return "zero, the data's mean or an input (a .npy file, a tensor)";
  }
  return "";
}

MethodOptions& MethodOptions::set(const std::string& name, OptionValue value) {
  values_[name] = std::move(value);
  return *this;
}

const OptionValue& MethodOptions::at(const std::string& name) const {
  const auto it = values_.find(name);
  MIPIN_CHECK(it != values_.end(), "option ", name, " was read but not declared by the method");
  return it->second;
}

int64_t MethodOptions::integer(const std::string& name) const {
  const auto n = maybe_integer(name);
  MIPIN_CHECK(n.has_value(), "option ", name, " has no value and no default");
  return *n;
}

std::optional<int64_t> MethodOptions::maybe_integer(const std::string& name) const {
  const OptionValue& v = at(name);
  if (const std::string* t = std::get_if<std::string>(&v); t && t->empty()) return std::nullopt;
  return std::get<int64_t>(v);
}

double MethodOptions::real(const std::string& name) const { return std::get<double>(at(name)); }
bool MethodOptions::flag(const std::string& name) const { return std::get<bool>(at(name)); }
const std::string& MethodOptions::choice(const std::string& name) const { return std::get<std::string>(at(name)); }
at::Tensor MethodOptions::reference(const std::string& name) const { return std::get<at::Tensor>(at(name)); }

MethodOptions check_options(const std::string& method, const std::vector<OptionSpec>& specs,
                            const MethodOptions& given, bool ignore_undeclared) {
  MethodOptions out;
  for (const auto& [name, value] : given.values()) {
    const OptionSpec* spec = nullptr;
    for (const OptionSpec& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (!spec) {
      if (ignore_undeclared) continue;
      std::vector<std::string> names;
      for (const OptionSpec& s : specs) names.push_back(s.name);
      MIPIN_FAIL("method '", method, "' has no option ", name, "; ",
                 names.empty() ? std::string("it takes none") : "its options: " + joined(names, "and"));
    }
    out.set(name, converted(method, *spec, value));
  }
  for (const OptionSpec& s : specs) {
    if (out.has(s.name)) continue;
    // An integer without a default stays unset (empty text).
    if (s.kind == OptionKind::integer && s.default_text.empty()) {
      out.set(s.name, std::string());
    } else {
      out.set(s.name, converted(method, s, s.default_text));
    }
  }
  return out;
}

}  // namespace mipin
