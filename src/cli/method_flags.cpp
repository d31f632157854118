#include "method_flags.h"

#include <map>
#include <utility>
#include <vector>

#include "mipin/attribution/registry.h"

namespace mipin::cli {
namespace {

// Every option name any method declares, with the methods that declare it
// (in the registry's order) and their declarations; read once, as the
// registry is complete before main() runs.
const OptionDeclarations& declarations() {
  static const OptionDeclarations all = [] {
    OptionDeclarations d;
    for (const MethodEntry& m : registered_methods()) {
      for (const OptionSpec& s : m.options) d[s.name].emplace_back(m.name, s);
    }
    return d;
  }();
  return all;
}

// One help line for an option: the methods that take it, grouped where they
// declare it alike.
std::string help_for(const std::vector<std::pair<std::string, OptionSpec>>& declared) {
  struct Group {
    std::string methods;
    const OptionSpec* spec;
  };
  std::vector<Group> groups;
  for (const auto& [method, s] : declared) {
    bool joined = false;
    for (Group& g : groups) {
      if (g.spec->help == s.help && g.spec->accepts() == s.accepts() && g.spec->default_text == s.default_text) {
        g.methods += ", " + method;
        joined = true;
      }
    }
    if (!joined) groups.push_back({method, &s});
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
  add_option_flags(command, declarations(), flags, "Method options");
}

void add_option_flags(CLI::App& command, const OptionDeclarations& all, MethodFlags& flags,
                      const std::string& group) {
  for (const auto& [name, declared] : all) {
    const OptionSpec& spec = declared.front().second;
    // A flag of the command's own comes first (evaluate's --fill is
    // deletion's; occlusion's is then given as a variant, occlusion:fill=X).
    if (command.get_option_no_throw(spec.flag_name()) != nullptr) continue;
    const std::string help = help_for(declared);
    const std::string option = name;  // captured by the callbacks
    if (spec.kind == OptionKind::flag) {
      command.add_flag_callback(spec.flag_name(), [&flags, option] { flags.given[option] = "true"; }, help)
          ->group(group);
      continue;
    }
    // What the value looks like on the command line.
    std::string value = spec.kind == OptionKind::integer ? "N"
                        : spec.kind == OptionKind::real  ? "X"
                                                         : "zero|mean|FILE.npy";
    if (spec.kind == OptionKind::choice) {
      value.clear();
      for (const std::string& c : spec.choices) value += (value.empty() ? "" : "|") + c;
    }
    command
        .add_option_function<std::string>(
            spec.flag_name(), [&flags, option](const std::string& v) { flags.given[option] = v; }, help)
        ->type_name(value)
        ->group(group);
  }
}

MethodOptions method_options(const MethodFlags& flags,
                             const std::function<at::Tensor(const std::string& text)>& read_reference) {
  MethodOptions options;
  for (const auto& [name, text] : flags.given) {
    const auto it = declarations().find(name);
    const bool reference = it != declarations().end() && it->second.front().second.kind == OptionKind::reference;
    if (reference && text != "zero") {
      options.set(name, read_reference(text));
    } else {
      options.set(name, text);
    }
  }
  return options;
}

}  // namespace mipin::cli
