#pragma once
// A fit's options and per-layer results as the JSON an inverse file, a
// checkpoint and `mipin fit --json` carry (defined beside the file format,
// inverse_file.cpp).
#include <nlohmann/json.hpp>

#include "mipin/inverse/inverse.h"
#include "mipin/inverse/options.h"

namespace mipin {

nlohmann::json inverse_options_json(const InverseOptions& options);
InverseOptions inverse_options_from_json(const nlohmann::json& json);

// One node's fit; its seconds only where asked (a file keeps none: the same
// fit gives the same bytes).
nlohmann::json layer_fit_json(const LayerFit& fit, bool with_seconds);
LayerFit layer_fit_from_json(const nlohmann::json& json);

}  // namespace mipin
