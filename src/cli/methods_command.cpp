// mipin methods: what each attribution method does and which options it reads.
#include <iostream>

#include "common.h"
#include "mipin/attribution/registry.h"

namespace mipin::cli {

void register_methods_command(CLI::App& app) {
  auto common = std::make_shared<CommonOptions>();
  CLI::App* cmd = app.add_subcommand(
      "methods",
      "List the attribution methods `mipin explain --method` accepts, with what each does\n"
      "and the options it reads.\n\nExample: mipin methods --json");
  add_common_options(*cmd, *common);
  cmd->callback([common] {
    const auto methods = registered_methods();
    if (common->json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& m : methods) {
        list.push_back({{"name", m.name}, {"summary", m.summary}, {"options", m.options}});
      }
      print_json({{"methods", list}});
      return;
    }
    for (const auto& m : methods) {
      std::cout << m.name << "\n    " << m.summary << "\n";
      if (!m.options.empty()) std::cout << "    options: " << m.options << "\n";
    }
  });
}

}  // namespace mipin::cli
