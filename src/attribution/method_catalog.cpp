#include "mipin/attribution/method_catalog.h"

#include <cmath>

#include "mipin/attribution/registry.h"
#include "mipin/inverse/options.h"

namespace mipin {

nlohmann::json option_json(const OptionSpec& o) {
  nlohmann::json j = {{"name", o.name},         {"flag", o.flag_name()}, {"type", to_string(o.kind)},
                      {"accepts", o.accepts()}, {"help", o.help},        {"default", nullptr}};
  if (!o.default_text.empty()) j["default"] = o.default_text;
  if (std::isfinite(o.min)) j["min"] = o.min;
  if (std::isfinite(o.max)) j["max"] = o.max;
  if (!o.choices.empty()) j["choices"] = o.choices;
  return j;
}

namespace {
nlohmann::json options_json(const std::vector<OptionSpec>& specs) {
  nlohmann::json list = nlohmann::json::array();
  for (const OptionSpec& o : specs) list.push_back(option_json(o));
  return list;
}
}  // namespace

nlohmann::json methods_json() {
  nlohmann::json list = nlohmann::json::array();
  for (const MethodEntry& m : registered_methods()) {
    nlohmann::json j = {{"name", m.name},
                        {"summary", m.summary},
                        {"options", options_json(m.options)},
                        {"fitted", nullptr},
                        {"images_only", m.images_only},
                        {"output_in_input_units", m.output_in_input_units},
                        {"multiplies_by_input", m.multiplies_by_input},
                        {"reads_input_bounds", m.reads_input_bounds},
                        {"floor", m.floor}};
    if (m.fitted == FittedPart::inverse) {
      j["fitted"] = "inverse";
      j["fit_options"] = options_json(inverse_option_specs());
    } else if (m.fitted == FittedPart::patterns) {
      j["fitted"] = "patterns";
      j["fit_options"] = options_json(pattern_option_specs());
    }
    list.push_back(std::move(j));
  }
  return {{"methods", list}};
}

}  // namespace mipin
