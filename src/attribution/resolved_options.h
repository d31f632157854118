#pragma once
// The options a method or variant ("mipin:readout=contrast") runs with: the
// variant's own over the settings', checked against the method's
// declarations and completed with their defaults. make_method builds the
// method from them; the suite writes them beside each row of metrics.json.
#include <string>

#include "mipin/attribution/registry.h"

namespace mipin {

// Throws mipin::Error as make_method does (see registry.h).
MethodOptions resolved_options(const std::string& name, const MethodSettings& settings,
                               bool ignore_undeclared = false);

}  // namespace mipin
