#pragma once
// The report's heatmap grid, drawn: every method on the first examples of a
// data set, each captioned with its label and the model's prediction.
#include <cstdint>
#include <string>
#include <vector>

#include "mipin/attribution/registry.h"
#include "mipin/data/dataset.h"
#include "mipin/model/network.h"
#include "mipin/report/html_report.h"

namespace mipin {

// The first `count` examples of `data` (fewer where it has fewer), one row
// per method, each made from `settings` (each takes the options it declares).
ReportGallery make_gallery(const Network& network, const Dataset& data, const std::vector<std::string>& methods,
                           const MethodSettings& settings, int64_t count);

}  // namespace mipin
