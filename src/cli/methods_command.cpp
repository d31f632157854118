// mipin methods: what each attribution method does and which options it reads.
#include <cmath>
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
        nlohmann::json options = nlohmann::json::array();
        for (const OptionSpec& o : m.options) {
          nlohmann::json j = {{"name", o.name},         {"flag", o.flag_name()}, {"type", to_string(o.kind)},
                              {"accepts", o.accepts()}, {"help", o.help},        {"default", nullptr}};
          if (!o.default_text.empty()) j["default"] = o.default_text;
          if (std::isfinite(o.min)) j["min"] = o.min;
          if (std::isfinite(o.max)) j["max"] = o.max;
          if (!o.choices.empty()) j["choices"] = o.choices;
          options.push_back(j);
        }
        const char* fitted = m.fitted == FittedPart::inverse    ? "inverse"
                             : m.fitted == FittedPart::patterns ? "patterns"
                                                                : nullptr;
        list.push_back({{"name", m.name},
                        {"summary", m.summary},
                        {"options", options},
                        {"fitted", fitted ? nlohmann::json(fitted) : nlohmann::json(nullptr)},
                        {"images_only", m.images_only},
                        {"output_in_input_units", m.output_in_input_units},
                        {"multiplies_by_input", m.multiplies_by_input}});
      }
      print_json({{"methods", list}});
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
