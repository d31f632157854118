#include "mipin/attribution/registry.h"

#include <map>

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

const MethodEntry& method_entry(const std::string& name) {
  const auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& [n, entry] : registry()) known += (known.empty() ? "" : ", ") + n;
    MIPIN_FAIL("unknown method '", name, "'; known methods: ", known,
               " (`mipin methods` describes each)");
  }
  return it->second;
}

std::unique_ptr<AttributionMethod> make_method(const std::string& name, const MethodSettings& settings,
                                               bool ignore_undeclared) {
  const MethodEntry& entry = method_entry(name);
  MethodSettings checked = settings;
  checked.options = check_options(name, entry.options, settings.options, ignore_undeclared);
  return entry.make(checked);
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
