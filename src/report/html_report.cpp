#include "mipin/report/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <sstream>

#include "mipin/util/base64.h"

namespace mipin {
namespace {

using Json = nlohmann::json;

std::string number(double v, const char* format = "%.3f") {
  if (!std::isfinite(v)) return "n/a";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, v);
  return buffer;
}

std::string png_img(const std::string& png, const std::string& alt) {
  return "<img alt=\"" + html_escape(alt) + "\" src=\"data:image/png;base64," + base64_encode(png) + "\">";
}

// Distinct colours for up to 20 methods (Tableau's categorical palettes);
// `random` is always grey so the floor reads the same in every chart.
std::string colour_of(const std::string& method, size_t index) {
  static const char* palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                                  "#17becf", "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
                                  "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#ad494a"};
  if (method == "random") return "#9a9a9a";
  return palette[index % (sizeof palette / sizeof *palette)];
}

// ---- charts ---------------------------------------------------------------

struct Series {
  std::string name, colour;
  std::vector<double> x, y;
  bool dashed = false;
};

struct Axis {
  double lo = 0, hi = 1;
  std::string label;
  std::vector<std::pair<double, std::string>> ticks;
};

Axis unit_axis(const std::string& label) {
  Axis a;
  a.label = label;
  for (int i = 0; i <= 4; ++i) a.ticks.emplace_back(i / 4.0, number(i / 4.0, "%.2f"));
  return a;
}

std::string line_chart(const std::string& title, const std::vector<Series>& series, const Axis& x, const Axis& y) {
  const double W = 440, H = 290, left = 52, right = 14, top = 30, bottom = 48;
  const double pw = W - left - right, ph = H - top - bottom;
  auto px = [&](double v) { return left + (x.hi > x.lo ? (v - x.lo) / (x.hi - x.lo) : 0.5) * pw; };
  auto py = [&](double v) { return top + (1 - (y.hi > y.lo ? (v - y.lo) / (y.hi - y.lo) : 0.5)) * ph; };
  std::ostringstream s;
  s << "<svg class=\"chart\" viewBox=\"0 0 " << W << ' ' << H << "\" width=\"" << W << "\" height=\"" << H
    << "\" role=\"img\" aria-label=\"" << html_escape(title) << "\">";
  s << "<text x=\"" << left << "\" y=\"18\" class=\"ctitle\">" << html_escape(title) << "</text>";
  for (const auto& [v, label] : y.ticks) {
    s << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << py(v) << "\" y2=\"" << py(v)
      << "\" class=\"grid\"/><text x=\"" << left - 6 << "\" y=\"" << py(v) + 4
      << "\" class=\"tick\" text-anchor=\"end\">" << html_escape(label) << "</text>";
  }
  for (const auto& [v, label] : x.ticks) {
    s << "<line x1=\"" << px(v) << "\" x2=\"" << px(v) << "\" y1=\"" << top + ph << "\" y2=\"" << top + ph + 4
      << "\" class=\"axis\"/><text x=\"" << px(v) << "\" y=\"" << top + ph + 17
      << "\" class=\"tick\" text-anchor=\"middle\">" << html_escape(label) << "</text>";
  }
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" class=\"frame\"/>";
  s << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 8 << "\" class=\"alabel\" text-anchor=\"middle\">"
    << html_escape(x.label) << "</text>";
  s << "<text transform=\"translate(13 " << top + ph / 2 << ") rotate(-90)\" class=\"alabel\" "
    << "text-anchor=\"middle\">" << html_escape(y.label) << "</text>";
  for (const Series& line : series) {
    s << "<polyline fill=\"none\" stroke=\"" << line.colour << "\" stroke-width=\"1.8\""
      << (line.dashed ? " stroke-dasharray=\"5 4\"" : "") << " points=\"";
    for (size_t i = 0; i < line.x.size() && i < line.y.size(); ++i) {
      s << number(px(line.x[i]), "%.1f") << ',' << number(py(std::clamp(line.y[i], y.lo, y.hi)), "%.1f") << ' ';
    }
    s << "\"><title>" << html_escape(line.name) << "</title></polyline>";
  }
  s << "</svg>";
  return s.str();
}

std::string legend(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out = "<ul class=\"legend\">";
  for (const auto& [name, colour] : entries) {
    out += "<li><span class=\"swatch\" style=\"background:" + colour + "\"></span>" + html_escape(name) + "</li>";
  }
  return out + "</ul>";
}

// ---- the metric table -------------------------------------------------------

std::optional<double> at_path(const Json& m, std::initializer_list<const char*> path) {
  const Json* j = &m;
  for (const char* key : path) {
    if (!j->is_object() || !j->contains(key)) return std::nullopt;
    j = &(*j)[key];
  }
  if (!j->is_number()) return std::nullopt;
  return j->get<double>();
}

std::optional<double> randomization_at(const Json& m, bool last, const char* key) {
  if (!m.contains("randomization") || m["randomization"].empty()) return std::nullopt;
  const Json& step = last ? m["randomization"].back() : m["randomization"].front();
  return step.contains(key) ? std::optional<double>(step[key].get<double>()) : std::nullopt;
}

// How a column ranks methods: by the larger or smaller value, or by the
// distance to an ideal (chance for minimality, 0 for a similarity that should
// vanish).
enum class Better { Higher, Lower, NearChance, NearZero };

struct Column {
  std::string name;
  Better better;
  std::function<std::optional<double>(const Json&)> value;
  std::string reading;  // what it means, in plain words
  const char* format = "%.3f";
  // The metrics.json entry whose random_area is a random pixel order's score
  // on the same metric (perturbation metrics), or empty.
  std::string random_order_key;
};

std::vector<Column> columns() {
  return {
      {"completeness", Better::Higher, [](const Json& m) { return at_path(m, {"completeness", "agreement"}); },
       "Shown only the explanation s (MIP-IN's source signal, or the method's map used as an input), does the "
       "model still predict what it predicted on the whole input? The share of examples where it does. 1 means "
       "the explanation alone carries the decision."},
      {"minimality", Better::NearChance, [](const Json& m) { return at_path(m, {"minimality", "accuracy"}); },
       "Shown the input with the explanation removed (x - s), how often is the model still right? Near chance "
       "means nothing the model needed was left out of the explanation."},
      {"deletion", Better::Lower, [](const Json& m) { return at_path(m, {"deletion", "area"}); },
       "Pixels are replaced by a fill (the data's mean unless --fill says zero or blur) in the order the map "
       "ranks them, most relevant first; the area under the predicted class's probability. Lower is better: the "
       "pixels the map points at are the ones the model needs. Compare with the random order's area. A constant "
       "fill makes images the model never saw, which can reward a map for the wrong reason: see ROAD.",
       "%.3f", "deletion"},
      {"insertion", Better::Higher, [](const Json& m) { return at_path(m, {"insertion", "area"}); },
       "The reverse: the map's top pixels are put into the fill first. Higher is better.", "%.3f", "insertion"},
      {"ROAD MoRF", Better::Lower,
       [](const Json& m) { return at_path(m, {"road_most_relevant_first", "area"}); },
       "ROAD, most relevant first: pixels are removed in the map's order and filled in from their neighbours "
       "(noisy linear imputation), so the images stay like the data; the area under the predicted class's "
       "probability. Lower is better.",
       "%.3f", "road_most_relevant_first"},
      {"ROAD LeRF", Better::Higher,
       [](const Json& m) { return at_path(m, {"road_least_relevant_first", "area"}); },
       "ROAD, least relevant first: the same, starting with the pixels the map ranks lowest. Higher is better: "
       "what the map calls irrelevant can go without changing the decision.",
       "%.3f", "road_least_relevant_first"},
      {"pointing game", Better::Higher, [](const Json& m) { return at_path(m, {"localization", "pointing_game"}); },
       "On the cluttered canvas, how often the map's strongest pixel falls on the object rather than on a "
       "distractor. A map that points at random hits as often as the box covers the image."},
      {"mass in box", Better::Higher, [](const Json& m) { return at_path(m, {"localization", "mass_in_box"}); },
       "The share of the map's positive mass that lies on the object."},
      {"ground truth", Better::Higher, [](const Json& m) { return at_path(m, {"ground_truth", "cosine"}); },
       "On a toy where the true signal is known (x = signal + distractor + noise, the label depends on the "
       "signal only), the cosine between the explanation and the true signal. Near 1 means the method recovers "
       "the signal; the gradient points partly at the distractor."},
      {"SSIM, top layer random", Better::NearZero, [](const Json& m) { return randomization_at(m, false, "ssim"); },
       "After the top layer's weights are replaced by random ones, how similar (SSIM) the new maps are to the "
       "original ones. A map that explains the model must change when the model does: near 0 is best."},
      {"SSIM, all random", Better::NearZero, [](const Json& m) { return randomization_at(m, true, "ssim"); },
       "The same after every layer is random. High values mean the map shows the input, not the model."},
      {"signed Spearman, all random", Better::NearZero,
       [](const Json& m) { return randomization_at(m, true, "spearman_signed"); },
       "Rank correlation of the signed maps with every layer random. Maps that look like the input keep a high "
       "correlation of |attribution| even on a random model; the signed one tells them apart."},
      {"input R\u00b2", Better::Higher, [](const Json& m) { return at_path(m, {"reconstruction", "input_r2"}); },
       "MIP-IN only: how much of the input's variation the source signal of the full output reconstructs "
       "(1 = all of it)."},
      {"additivity error", Better::Lower, [](const Json& m) { return at_path(m, {"additivity", "relative_error"}); },
       "MIP-IN only: the source signals of the classes, added up, against the source signal of the whole "
       "output (relative error; near 0 means the explanation is linear in the output).",
       "%.1e"},
  };
}

// Whether a is a better score than b in column c.
bool better_than(const Column& c, double a, double b, double chance) {
  switch (c.better) {
    case Better::Higher: return a > b;
    case Better::Lower: return a < b;
    case Better::NearChance: return std::abs(a - chance) < std::abs(b - chance);
    case Better::NearZero: return std::abs(a) < std::abs(b);
  }
  return false;
}

const char* better_text(Better b) {
  switch (b) {
    case Better::Higher: return "higher is better";
    case Better::Lower: return "lower is better";
    case Better::NearChance: return "near chance is best";
    case Better::NearZero: return "near 0 is best";
  }
  return "";
}

std::string metric_table(const Json& methods, const std::vector<std::string>& order, const std::vector<Column>& cols,
                         double chance, std::vector<bool>& used) {
  used.assign(cols.size(), false);
  for (size_t c = 0; c < cols.size(); ++c) {
    for (const auto& [name, m] : methods.items()) used[c] = used[c] || cols[c].value(m).has_value();
  }
  std::ostringstream s;
  s << "<table class=\"metrics\"><thead><tr><th>method</th>";
  for (size_t c = 0; c < cols.size(); ++c) {
    if (used[c]) s << "<th>" << html_escape(cols[c].name) << "<br><small>" << better_text(cols[c].better) << "</small></th>";
  }
  s << "</tr></thead><tbody>";
  std::vector<std::optional<double>> best(cols.size());
  for (size_t c = 0; c < cols.size(); ++c) {
    for (const std::string& name : order) {
      const Json& m = methods[name];
      if (name == "random") continue;
      const auto v = cols[c].value(m);
      if (!v || !std::isfinite(*v)) continue;
      if (!best[c] || better_than(cols[c], *v, *best[c], chance)) best[c] = v;
    }
  }
  for (const std::string& name : order) {
      const Json& m = methods[name];
    s << "<tr" << (name == "random" ? " class=\"floor\"" : "") << "><th>" << html_escape(name) << "</th>";
    for (size_t c = 0; c < cols.size(); ++c) {
      if (!used[c]) continue;
      const auto v = cols[c].value(m);
      const bool is_best = v && best[c] && *v == *best[c] && name != "random";
      s << "<td" << (is_best ? " class=\"best\"" : "") << ">" << (v ? number(*v, cols[c].format) : "\u2014") << "</td>";
    }
    s << "</tr>";
  }
  s << "</tbody></table>";
  return s.str();
}

std::string readings(const Json& methods, const std::vector<std::string>& order, const std::vector<Column>& cols,
                     const std::vector<bool>& used, const Json& metrics) {
  std::ostringstream s;
  s << "<dl class=\"readings\">";
  for (size_t c = 0; c < cols.size(); ++c) {
    if (!used[c]) continue;
    s << "<dt>" << html_escape(cols[c].name) << "</dt><dd>" << html_escape(cols[c].reading);
    std::optional<std::pair<std::string, double>> best;
    std::optional<double> floor;
    for (const std::string& name : order) {
      const Json& m = methods[name];
      const auto v = cols[c].value(m);
      if (!v) continue;
      if (name == "random") {
        floor = v;
        continue;
      }
      if (!best || better_than(cols[c], *v, best->second, metrics.value("chance", 0.0))) best = {{name, *v}};
    }
    if (best) {
      s << " <em>In this run:</em> best " << html_escape(best->first) << " (" << number(best->second, cols[c].format)
        << ")";
      if (floor) s << "; the random map scores " << number(*floor, cols[c].format);
      if (cols[c].name == "minimality" && metrics.contains("chance")) {
        s << "; chance is " << number(metrics["chance"].get<double>());
      }
      if (!cols[c].random_order_key.empty()) {
        const std::string& key = cols[c].random_order_key;
        for (const std::string& name : order) {
          const Json& m = methods[name];
          if (m.contains(key)) {
            s << "; a random pixel order scores " << number(m[key]["random_area"].get<double>());
            break;
          }
        }
      }
      if (cols[c].name == "pointing game") {
        for (const std::string& name : order) {
      const Json& m = methods[name];
          if (m.contains("localization")) {
            s << "; the box covers " << number(m["localization"]["box_area_fraction"].get<double>())
              << " of the image on average";
            break;
          }
        }
      }
      s << ".";
    }
    s << "</dd>";
  }
  s << "</dl>";
  return s.str();
}

// ---- the sections -----------------------------------------------------------

std::string gallery_section(const ReportGallery& g) {
  if (g.examples.empty() || g.rows.empty()) return "";
  std::ostringstream s;
  s << "<h2 id=\"heatmaps\">Heatmaps</h2><p>Each map explains the class the model predicted. Red: evidence for "
       "it, blue: against it, white: none; every map is scaled to its own largest value, so compare shapes, "
       "not strengths, across maps.</p><div class=\"scroll\"><table class=\"gallery\"><thead><tr><th></th>";
  for (const auto& e : g.examples) {
    s << "<th>" << png_img(e.input_png, "input: " + e.caption) << "<div class=\"caption\">"
      << html_escape(e.caption) << "</div></th>";
  }
  s << "</tr></thead><tbody>";
  for (const auto& row : g.rows) {
    s << "<tr><th class=\"rowname\">" << html_escape(row.method) << "</th>";
    for (size_t i = 0; i < row.heatmap_pngs.size(); ++i) {
      s << "<td>" << png_img(row.heatmap_pngs[i], row.method + ", example " + std::to_string(i + 1)) << "</td>";
    }
    s << "</tr>";
  }
  s << "</tbody></table></div>";
  return s.str();
}

std::string randomization_section(const Json& methods, const std::vector<std::string>& order) {
  size_t steps = 0;
  for (const auto& name : order) {
    if (methods[name].contains("randomization")) steps = std::max(steps, methods[name]["randomization"].size());
  }
  if (steps == 0) return "";
  Axis x;
  x.lo = 0;
  x.hi = double(steps);
  x.label = "layers re-initialised, from the top (down to layer)";
  x.ticks.emplace_back(0, "none");
  for (const auto& name : order) {
    const Json& r = methods[name].value("randomization", Json::array());
    if (r.size() != steps) continue;
    for (size_t k = 0; k < steps; ++k) {
      x.ticks.emplace_back(double(k + 1), std::to_string(r[k]["randomized_down_to"].get<int64_t>()));
    }
    break;
  }
  std::ostringstream s;
  s << "<h2 id=\"randomization\">Cascading model randomization</h2><p>The layers are re-initialised with random "
       "weights one after another from the top (Adebayo et al. 2018), learned methods are fitted again on each "
       "randomized model, and the same examples are explained. The curves show how similar the maps stay to "
       "those of the trained model. An explanation of the model should fall towards 0; one that stays high "
       "shows the input whatever the model has learned.</p><div class=\"charts\">";
  const std::pair<const char*, const char*> measures[] = {
      {"ssim", "SSIM"}, {"spearman_signed", "Spearman rank correlation, signed"},
      {"spearman_abs", "Spearman rank correlation of |attribution|"}};
  for (const auto& [key, label] : measures) {
    std::vector<Series> series;
    for (size_t i = 0; i < order.size(); ++i) {
      const Json& r = methods[order[i]].value("randomization", Json::array());
      if (r.empty()) continue;
      Series line{order[i], colour_of(order[i], i), {0.0}, {1.0}, order[i] == "random"};
      for (size_t k = 0; k < r.size(); ++k) {
        line.x.push_back(double(k + 1));
        line.y.push_back(r[k][key].get<double>());
      }
      series.push_back(line);
    }
    Axis y = unit_axis(label);
    if (std::string(key) != "ssim") {
      y.lo = -0.25;
      y.ticks.insert(y.ticks.begin(), {-0.25, "-0.25"});
    }
    s << line_chart(label, series, x, y);
  }
  s << "</div>";
  return s.str();
}

// Charts of perturbation curves (metrics.json entries with a curve and a
// random_curve), one per key, every method's beside a random order's.
std::string perturbation_charts(const Json& methods, const std::vector<std::string>& order,
                                const std::vector<std::pair<std::string, std::string>>& charts,
                                const std::string& x_label) {
  std::ostringstream s;
  s << "<div class=\"charts\">";
  Axis x = unit_axis(x_label);
  for (const auto& [key, title] : charts) {
    std::vector<Series> series;
    std::optional<Series> random_order;
    for (size_t i = 0; i < order.size(); ++i) {
      const Json& m = methods[order[i]];
      if (!m.contains(key)) continue;
      auto line_of = [](const Json& curve) {
        std::vector<double> xs, ys = curve.get<std::vector<double>>();
        for (size_t k = 0; k < ys.size(); ++k) xs.push_back(ys.size() > 1 ? double(k) / double(ys.size() - 1) : 0);
        return std::make_pair(xs, ys);
      };
      auto [xs, ys] = line_of(m[key]["curve"]);
      series.push_back({order[i], colour_of(order[i], i), xs, ys, order[i] == "random"});
      if (!random_order) {
        auto [rx, ry] = line_of(m[key]["random_curve"]);
        random_order = Series{"random order", "#9a9a9a", rx, ry, true};
      }
    }
    if (random_order) series.push_back(*random_order);
    s << line_chart(title, series, x, unit_axis("probability of the predicted class"));
  }
  s << "</div>";
  return s.str();
}

bool any_has(const Json& methods, const std::vector<std::string>& order, const char* key) {
  for (const auto& name : order) {
    if (methods[name].contains(key)) return true;
  }
  return false;
}

std::string perturbation_section(const Json& methods, const std::vector<std::string>& order) {
  std::ostringstream s;
  if (any_has(methods, order, "deletion")) {
    std::string fill = "mean";
    for (const auto& name : order) {
      if (methods[name].contains("deletion")) fill = methods[name]["deletion"].value("fill", fill);
    }
    const std::string filled = fill == "zero" ? "zeros" : fill == "blur" ? "the image blurred" : "the mean input";
    s << "<h2 id=\"deletion\">Deletion and insertion</h2><p>Pixels are taken away (deletion: replaced by "
      << filled << ") or put in (insertion: into " << filled << ") in the order each map ranks them, most "
      << "relevant first, 5% at a time; the curve is the model's mean probability for the class it first "
      << "predicted. A good map makes the deletion curve drop early and the insertion curve rise early. The grey "
      << "dashed line is a random pixel order.</p>"
      << perturbation_charts(methods, order, {{"deletion", "deletion curve"}, {"insertion", "insertion curve"}},
                             "share of pixels changed");
  }
  if (any_has(methods, order, "road_most_relevant_first")) {
    s << "<h2 id=\"road\">ROAD</h2><p>Pixels are removed in each map's order, most relevant first (MoRF) or "
         "least relevant first (LeRF), and filled in from their neighbours by noisy linear imputation (Rong et "
         "al. 2022), so that the image stays like those the model was trained on and the curve measures what "
         "the pixels carried, not the surprise of a new background. A good map makes MoRF fall early and LeRF "
         "stay high. The grey dashed line is a random pixel order.</p>"
      << perturbation_charts(methods, order,
                             {{"road_most_relevant_first", "ROAD, most relevant first"},
                              {"road_least_relevant_first", "ROAD, least relevant first"}},
                             "share of pixels removed");
  }
  return s.str();
}

std::string localization_section(const Json& methods, const std::vector<std::string>& order) {
  std::ostringstream rows;
  double box = -1;
  for (const auto& name : order) {
    const Json& m = methods[name];
    if (!m.contains("localization")) continue;
    box = m["localization"]["box_area_fraction"].get<double>();
    rows << "<tr" << (name == "random" ? " class=\"floor\"" : "") << "><th>" << html_escape(name) << "</th><td>"
         << number(m["localization"]["pointing_game"].get<double>()) << "</td><td>"
         << number(m["localization"]["mass_in_box"].get<double>()) << "</td></tr>";
  }
  if (box < 0) return "";
  return "<h2 id=\"localization\">Pointing game</h2><p>On the cluttered canvas the object sits at a known place "
         "among distractor patches cut from other images. A hit is the map's strongest pixel on the object; "
         "the box covers " + number(box) + " of the image on average, which is what a map pointing at random "
         "scores.</p><table class=\"metrics narrow\"><thead><tr><th>method</th><th>pointing game</th>"
         "<th>positive mass in box</th></tr></thead><tbody>" + rows.str() + "</tbody></table>";
}

std::string reconstruction_section(const Json& methods) {
  if (!methods.contains("mipin") || !methods["mipin"].contains("reconstruction")) return "";
  std::ostringstream s;
  s << "<h2 id=\"reconstruction\">MIP-IN: reconstruction per layer</h2><p>R\u00b2 of the source signal against "
       "the network's own activation at the input of each layer (1 = the signal reconstructs the activation "
       "completely).</p><table class=\"metrics narrow\"><thead><tr><th>layer</th><th>R\u00b2</th></tr></thead><tbody>";
  for (const auto& l : methods["mipin"]["reconstruction"]["layers"]) {
    s << "<tr><th>" << l["index"].get<int64_t>() << " " << html_escape(l["layer"].get<std::string>()) << "</th><td>"
      << number(l["r2"].get<double>()) << "</td></tr>";
  }
  s << "</tbody></table>";
  return s.str();
}

// The nodes where a method had no rule of its own and took the gradient's
// (autograd's vector-Jacobian product of the node): its map there is not the
// method's own reading.
std::string fallback_section(const Json& methods, const std::vector<std::string>& order) {
  std::ostringstream rows;
  for (const auto& name : order) {
    const Json& m = methods.at(name);
    if (!m.contains("fallback_nodes") || m["fallback_nodes"].empty()) continue;
    rows << "<tr><th>" << html_escape(name) << "</th><td style=\"text-align:left\">";
    bool first = true;
    for (const auto& node : m["fallback_nodes"]) {
      rows << (first ? "" : "; ") << node["node"].get<int64_t>() << " "
           << html_escape(node["layer"].get<std::string>());
      first = false;
    }
    rows << "</td></tr>";
  }
  if (rows.str().empty()) return "";
  return "<h2 id=\"fallback\">Nodes without a rule of the method's own</h2><p>At these nodes (ops mipin "
         "runs as TorchScript does) the method took the gradient's rule, autograd's vector-Jacobian product of "
         "the node: its map passes through them as the gradient would. The gradient family is exact on every "
         "node and is not listed.</p><table class=\"metrics narrow\"><thead><tr><th>method</th><th>nodes</th>"
         "</tr></thead><tbody>" +
         rows.str() + "</tbody></table>";
}

const char* kStyle = R"(
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1320px;padding:0 16px;color:#1d1d1f}
h1{font-size:26px;margin-bottom:4px}h2{font-size:20px;margin-top:34px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555}.scroll{overflow-x:auto}
table.metrics{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
table.metrics th,table.metrics td{border-bottom:1px solid #e3e3e3;padding:5px 9px;text-align:right}
table.metrics thead th{vertical-align:bottom;text-align:center;background:#f6f6f6}
table.metrics tbody th{text-align:left;white-space:nowrap}table.metrics small{font-weight:normal;color:#777}
td.best{font-weight:700;background:#e8f4e8}tr.floor{color:#888;font-style:italic}
table.gallery{border-collapse:collapse}table.gallery td,table.gallery th{padding:2px}
table.gallery img{display:block;width:84px;height:84px;image-rendering:pixelated}
.caption{font-size:11px;font-weight:normal;max-width:84px;color:#444}
.rowname{text-align:right;font-size:13px;padding-right:8px!important;white-space:nowrap}
.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{background:#fff}svg .grid{stroke:#ececec}svg .frame{fill:none;stroke:#bbb}svg .axis{stroke:#888}
svg .tick{font-size:10px;fill:#555}svg .alabel{font-size:11px;fill:#333}svg .ctitle{font-size:13px;font-weight:600;fill:#222}
ul.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:6px 16px;font-size:13px}
.swatch{display:inline-block;width:14px;height:4px;margin-right:6px;vertical-align:middle}
dl.readings dt{font-weight:600;margin-top:10px}dl.readings dd{margin-left:0;color:#333}
img.broken{outline:3px solid #d00}
)";

// Marks images that failed to decode, and records the counts on <body> so
// that a headless browser can check them (tests/report).
const char* kImageCheck = R"(<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  broken.forEach(function (i) { i.className += " broken"; });
  document.body.setAttribute("data-images", String(images.length));
  document.body.setAttribute("data-broken-images", String(broken.length));
});
</script>)";

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string html_report(const Json& metrics, const ReportGallery& gallery) {
  const Json methods = metrics.value("methods", Json::object());
  // Methods in the order of the gallery (the command's order), then any others.
  std::vector<std::string> order;
  for (const auto& row : gallery.rows) {
    if (methods.contains(row.method)) order.push_back(row.method);
  }
  for (const auto& [name, m] : methods.items()) {
    if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
  }
  std::vector<std::pair<std::string, std::string>> legend_entries;
  for (size_t i = 0; i < order.size(); ++i) legend_entries.emplace_back(order[i], colour_of(order[i], i));

  const auto cols = columns();
  std::vector<bool> used;
  const std::string table = metric_table(methods, order, cols, metrics.value("chance", 0.0), used);

  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    << "<title>mipin faithfulness report</title><style>" << kStyle << "</style></head><body>";
  s << "<h1>How faithful is each explanation?</h1><p class=\"meta\">";
  if (metrics.contains("model")) s << "Model <code>" << html_escape(metrics["model"].get<std::string>()) << "</code>, ";
  s << "data <code>" << html_escape(metrics.value("data", std::string("?"))) << "</code>";
  if (metrics.contains("split")) s << " (" << html_escape(metrics["split"].get<std::string>()) << " split)";
  s << ", " << metrics.value("examples", int64_t(0)) << " examples; the model's accuracy on them is "
    << number(metrics.value("model_accuracy", NAN)) << " (chance " << number(metrics.value("chance", NAN))
    << "). The <code>random</code> row is a map of noise: the floor every method should clear. Written by mipin; "
    << "every number is also in metrics.json beside this file.</p>";
  s << "<p><a href=\"#heatmaps\">heatmaps</a> \u00b7 <a href=\"#metrics\">metrics</a> \u00b7 "
    << "<a href=\"#readings\">how to read them</a> \u00b7 <a href=\"#randomization\">randomization</a> \u00b7 "
    << "<a href=\"#deletion\">deletion/insertion</a> \u00b7 <a href=\"#road\">ROAD</a></p>";
  s << gallery_section(gallery);
  s << "<h2 id=\"metrics\">Every metric</h2><p>Best method per column in bold (the random map excluded). "
    << "A dash: the metric was not computed for that method.</p><div class=\"scroll\">" << table << "</div>";
  s << "<h2 id=\"readings\">How to read the metrics</h2>" << readings(methods, order, cols, used, metrics);
  const std::string randomization = randomization_section(methods, order);
  const std::string perturbation = perturbation_section(methods, order);
  if (!randomization.empty() || !perturbation.empty()) s << legend(legend_entries);
  s << randomization << perturbation;
  s << localization_section(methods, order) << reconstruction_section(methods) << fallback_section(methods, order);
  s << kImageCheck << "</body></html>\n";
  return s.str();
}

}  // namespace mipin
