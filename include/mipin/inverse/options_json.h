#pragma once
// A fit's options as the JSON an inverse file, a checkpoint and `mipin fit
// --json` carry (defined beside the file format, inverse_file.cpp).
#include <nlohmann/json.hpp>

#include "mipin/inverse/options.h"

namespace mipin {

nlohmann::json inverse_options_json(const InverseOptions& options);
InverseOptions inverse_options_from_json(const nlohmann::json& json);

}  // namespace mipin
