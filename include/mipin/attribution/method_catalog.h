#pragma once
// Every method's declaration as JSON: what `mipin methods --json` prints and
// what the Python module makes its classes, keywords and docstrings from.
#include <nlohmann/json.hpp>

#include "mipin/attribution/method_options.h"

namespace mipin {

// {"name", "flag", "type", "accepts", "help", "default", ["min", "max", "choices"]}.
nlohmann::json option_json(const OptionSpec& spec);
// {"methods": [...]}: each method's name, summary, options and traits, and
// for a fitted method the options of its fit ("fit_options").
nlohmann::json methods_json();

}  // namespace mipin
