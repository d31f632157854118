#include "mipin/attribution/registry.h"

#include <algorithm>
#include <map>

#include "attribution/resolved_options.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

// Function-local so registration from other translation units' static
// initialisers never runs before the map exists.
std::map<std::string, MethodEntry>& registry() {
  static std::map<std::string, MethodEntry> methods;
  return methods;
}

}  // namespace

RegisterMethod::RegisterMethod(MethodEntry entry) {
  const std::string name = entry.name;
  registry()[name] = std::move(entry);
}

std::vector<MethodEntry> registered_methods() {
  std::vector<MethodEntry> out;
  for (const auto& [name, entry] : registry()) out.push_back(entry);
  return out;
}

MethodVariant parse_method_variant(const std::string& text) {
  MethodVariant v;
  const size_t colon = text.find(':');
  v.name = text.substr(0, colon);
  for (size_t at = colon; at != std::string::npos;) {
    const size_t next = text.find(':', at + 1);
    const std::string part = text.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    const size_t equals = part.find('=');
    MIPIN_CHECK(equals != std::string::npos && equals > 0, "method '", text,
                "': expected NAME:OPTION=VALUE[:OPTION=VALUE...], found '", part, "'");
    std::string option = part.substr(0, equals);
    std::replace(option.begin(), option.end(), '-', '_');
    MIPIN_CHECK(!v.options.has(option), "method '", text, "': option ", option, " is given twice");
    v.options.set(option, part.substr(equals + 1));
    at = next;
  }
  return v;
}

const MethodEntry& method_entry(const std::string& text) {
  const std::string name = text.substr(0, text.find(':'));
  const auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& [n, entry] : registry()) known += (known.empty() ? "" : ", ") + n;
    MIPIN_FAIL("unknown method '", name, "'; known methods: ", known,
               " (`mipin methods` describes each)");
  }
  return it->second;
}

MethodOptions resolved_options(const std::string& name, const MethodSettings& settings, bool ignore_undeclared) {
  const MethodVariant variant = parse_method_variant(name);
  const MethodEntry& entry = method_entry(variant.name);
  MethodOptions given = settings.options;
  if (!variant.options.values().empty()) {
    check_options(variant.name, entry.options, variant.options);  // a variant's options are its method's
    for (const auto& [option, value] : variant.options.values()) given.set(option, value);
  }
  return check_options(variant.name, entry.options, given, ignore_undeclared);
}

std::unique_ptr<AttributionMethod> make_method(const std::string& name, const MethodSettings& settings,
                                               bool ignore_undeclared) {
  MethodSettings checked = settings;
  checked.options = resolved_options(name, settings, ignore_undeclared);
  return method_entry(parse_method_variant(name).name).make(checked);
}

OptionSpec inner_method_option(const std::string& help) {
  // The methods registered as_gradient_like(); a choice is declared before
  // the registry is complete, so the list is written here and checked by
  // make_inner_method.
  return OptionSpec::choice("of", {"gradient", "guided-backprop", "deconvnet"}, help);
}

std::unique_ptr<AttributionMethod> make_inner_method(const std::string& wrapper, const MethodOptions& options) {
  const std::string& inner = options.choice("of");
  MIPIN_CHECK(method_entry(inner).gradient_like, "method '", wrapper, "': option of takes a gradient-like method, found '",
              inner, "'");
  return make_method(inner, MethodSettings{});
}

}  // namespace mipin
