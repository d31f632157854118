#pragma once
// The faithfulness report: one self-contained HTML file (images inline as
// base64 PNG, charts as inline SVG, no network access) built from the JSON of
// the faithfulness suite (eval/suite.h) and a gallery of heatmaps.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace mipin {

// The heatmap grid: one column per example, one row per method. Pictures are
// PNG file contents (report/images.h draws them, data/image_folder.h's
// encode_png encodes them).
struct ReportGallery {
  struct Example {
    std::string caption;    // e.g. "label Dress, predicted Dress"
    std::string input_png;
  };
  struct Row {
    std::string method;
    std::vector<std::string> heatmap_pngs;  // one per example
  };
  std::vector<Example> examples;
  std::vector<Row> rows;
};

// The whole report as HTML text. `metrics` is run_suite's JSON with the
// command's additions (model, split).
std::string html_report(const nlohmann::json& metrics, const ReportGallery& gallery);

// Text as it may appear inside HTML elements and attribute values.
std::string html_escape(const std::string& text);

}  // namespace mipin
