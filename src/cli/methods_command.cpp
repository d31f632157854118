// mipin methods: what each attribution method does and which options it reads.
#include <iostream>

#include "common.h"
#include "mipin/attribution/method_catalog.h"
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
      print_json(methods_json());
      return;
    }
    for (const auto& m : methods) {
      std::cout << m.name << "\n    " << m.summary << "\n";
      if (m.fitted == FittedPart::inverse) std::cout << "    needs: --inverse FILE (made by `mipin fit`)\n";
      if (m.fitted == FittedPart::patterns) {
        std::cout << "    needs: --patterns FILE (made by `mipin fit --method pattern`)\n";
      }
      for (const OptionSpec& o : m.options) {
        std::cout << "    " << o.flag_name() << (o.kind == OptionKind::flag ? "" : " (" + o.accepts() +
                                                (o.default_text.empty() ? "" : ", default " + o.default_text) + ")")
                  << ": " << o.help << "\n";
      }
    }
  });
}

}  // namespace mipin::cli
