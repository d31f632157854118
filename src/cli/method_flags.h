#pragma once
// Method options as command-line flags: one flag per option name that any
// registered method declares (registry.h), its help naming the methods that
// take it. Adding an option to a method adds its flag here by itself.
#include <CLI/CLI.hpp>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mipin/attribution/method_options.h"

namespace mipin::cli {

// The method options given on the command line, as text by option name.
struct MethodFlags {
  std::map<std::string, std::string> given;
};

// Option declarations by name, with the methods (or fits) that declare
// them, in order.
using OptionDeclarations = std::map<std::string, std::vector<std::pair<std::string, OptionSpec>>>;

// One flag per declared option, in the help's `group`; its help names the
// declarers that take it. An option whose flag the command already has is
// left to the command.
void add_option_flags(CLI::App& command, const OptionDeclarations& declared, MethodFlags& flags,
                      const std::string& group);
// The flags of every registered method's options.
void add_method_flags(CLI::App& command, MethodFlags& flags);

// The given flags as options for make_method. A reference option (a
// baseline) is read with read_reference: the text is "mean" or a file
// ("zero" needs no reading).
MethodOptions method_options(const MethodFlags& flags,
                             const std::function<at::Tensor(const std::string& text)>& read_reference);

}  // namespace mipin::cli
