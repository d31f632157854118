#include "method_flags.h"

#include <algorithm>
#include <vector>

#include "mipin/attribution/registry.h"

namespace mipin::cli {
namespace {

// One help line for an option name: the methods that take it, grouped where
// they declare it alike.
std::string help_for(const std::string& name, const OptionSpec** first) {
  struct Group {
    std::string methods;
    const OptionSpec* spec;
  };
  std::vector<Group> groups;
  // The registry outlives every call: its entries' specs may be pointed at.
  static const std::vector<MethodEntry> methods = registered_methods();
  for (const MethodEntry& m : methods) {
    for (const OptionSpec& s : m.options) {
      if (s.name != name) continue;
      if (!*first) *first = &s;
      bool joined = false;
      for (Group& g : groups) {
        if (g.spec->help == s.help && g.spec->accepts() == s.accepts() && g.spec->default_text == s.default_text) {
          g.methods += ", " + m.name;
          joined = true;
        }
      }
      if (!joined) groups.push_back({m.name, &s});
    }
  }
  std::string help;
  for (const Group& g : groups) {
    help += (help.empty() ? "" : "; ") + g.methods + ": " + g.spec->help;
    if (g.spec->kind != OptionKind::flag) {
      help += " (" + g.spec->accepts() +
              (g.spec->default_text.empty() ? std::string() : ", default " + g.spec->default_text) + ")";
    }
  }
  return help;
}

}  // namespace

void add_method_flags(CLI::App& command, MethodFlags& flags) {
  std::vector<std::string> names;
  for (const MethodEntry& m : registered_methods()) {
    for (const OptionSpec& s : m.options) {
      if (std::find(names.begin(), names.end(), s.name) == names.end()) names.push_back(s.name);
    }
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const OptionSpec* spec = nullptr;
    const std::string help = help_for(name, &spec);
    if (spec->kind == OptionKind::flag) {
      command.add_flag_callback(spec->flag_name(), [&flags, name] { flags.given[name] = "true"; }, help)
          ->group("Method options");
      continue;
    }
    // What the value looks like on the command line.
    std::string value = spec->kind == OptionKind::integer ? "N"
                        : spec->kind == OptionKind::real  ? "X"
                                                          : "zero|mean|FILE.npy";
    if (spec->kind == OptionKind::choice) {
      value.clear();
      for (const std::string& c : spec->choices) value += (value.empty() ? "" : "|") + c;
    }
    command
        .add_option_function<std::string>(
            spec->flag_name(), [&flags, name](const std::string& v) { flags.given[name] = v; }, help)
        ->type_name(value)
        ->group("Method options");
  }
}

MethodOptions method_options(const MethodFlags& flags,
                             const std::function<at::Tensor(const std::string& text)>& read_reference) {
  MethodOptions options;
  for (const auto& [name, text] : flags.given) {
    OptionKind kind = OptionKind::integer;
    for (const MethodEntry& m : registered_methods()) {
      for (const OptionSpec& s : m.options) {
        if (s.name == name) kind = s.kind;
      }
    }
    if (kind == OptionKind::reference && text != "zero") {
      options.set(name, read_reference(text));
    } else {
      options.set(name, text);
    }
  }
  return options;
}

}  // namespace mipin::cli
