// mipin info: the layer list mipin imported from a TorchScript file.
#include <algorithm>
#include <iostream>

#include "common.h"
#include "mipin/attribution/registry.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/error.h"

namespace mipin::cli {
namespace {

struct InfoOptions {
  std::string model;
  std::string input_shape;
  CommonOptions common;
};

// The methods asked, and for each node those that have no rule of their
// own for it and take the gradient's (autograd's vector-Jacobian product)
// there. Methods with a fitted part are asked with an empty one: which
// nodes they fit is known from the graph alone.
struct MethodRules {
  std::vector<std::string> asked;
  std::map<size_t, std::vector<std::string>> fallback;
};

MethodRules method_rules(const Network& net, const std::string& fingerprint) {
  MethodRules out;
  const Inverse inverse(InverseOptions{}, fingerprint);
  const Patterns patterns;
  MethodSettings settings;
  settings.inverse = &inverse;
  settings.patterns = &patterns;
  for (const MethodEntry& entry : registered_methods()) {
    std::unique_ptr<AttributionMethod> method;
    try {
      method = make_method(entry.name, settings);
    } catch (const Error&) {
      continue;  // needs what only a caller can give (a reference input)
    }
    out.asked.push_back(entry.name);
    for (size_t i : method->fallback_nodes(net)) out.fallback[i].push_back(entry.name);
  }
  return out;
}

void run_info(const InfoOptions& o) {
  apply_common_options(o.common);
  ImportOptions import;
  if (!o.input_shape.empty()) import.with_input_shape(parse_shape(o.input_shape));
  ImportedModel m = load_torchscript(o.model, import);
  const Network& net = m.network;
  // Without an input shape (no mipin.json, no Linear first layer) the layers
  // are still listed, without their output shapes.
  const bool shaped = !net.input_shape().empty();
  if (!shaped) {
    m.notices.push_back("the input shape is unknown (no mipin.json metadata, no Linear first layer): "
                        "output shapes need --input-shape, e.g. --input-shape 3,224,224");
  }
  const auto shapes = shaped ? net.shapes(net.input_shape()) : std::vector<std::vector<int64_t>>();
  auto shape_of = [&](size_t value) { return shaped ? shape_string(shapes[value]) : std::string("?"); };
  nlohmann::json classes = nullptr;
  try {
    classes = net.num_classes();
  } catch (const Error&) {
    // Unknown without a final Linear layer or an input shape.
  }

  nlohmann::json layers = nlohmann::json::array();
  std::map<std::string, int> counts;
  const std::string fingerprint = net.fingerprint();
  const MethodRules rules = method_rules(net, fingerprint);
  const auto& fallback = rules.fallback;
  for (size_t i = 0; i < net.size(); ++i) {
    const Layer& layer = net.layer(i);
    counts[to_string(layer.kind())]++;
    const auto it = fallback.find(i);
    const std::vector<std::string> without = it == fallback.end() ? std::vector<std::string>{} : it->second;
    std::vector<std::string> with;
    for (const auto& name : rules.asked) {
      if (std::find(without.begin(), without.end(), name) == without.end()) with.push_back(name);
    }
    layers.push_back({{"index", i},
                      {"type", to_string(layer.kind())},
                      {"description", layer.describe()},
                      {"inputs", net.inputs(i)},
                      {"output_shape", shaped ? nlohmann::json(shapes[i + 1]) : nlohmann::json(nullptr)},
                      {"parameters", layer.parameter_count()},
                      {"methods_with_rule", with},
                      {"methods_with_fallback", without}});
  }
  if (o.common.json) {
    print_json({{"model", o.model},
                {"input_shape", shaped ? nlohmann::json(net.input_shape()) : nlohmann::json(nullptr)},
                {"num_classes", classes},
                {"parameters", net.parameter_count()},
                {"fingerprint", fingerprint},
                {"layer_counts", counts},
                {"notices", m.notices},
                {"layers", layers}});
    return;
  }
  std::cout << o.model << ": " << net.size() << " layers, " << net.parameter_count() << " parameters, input "
            << (shaped ? shape_string(net.input_shape()) : "?") << ", "
            << (classes.is_null() ? "?" : std::to_string(classes.get<int64_t>())) << " classes\n";
  for (const auto& notice : m.notices) std::cout << "note: " << notice << "\n";
  std::cout << "\n";
  char line[256];
  // A graph names what each node reads where it is not the node before it:
  // "<- 3, 7" is the outputs of layers 3 and 7, "<- input" the model's input.
  const bool graph = !net.is_chain();
  std::snprintf(line, sizeof line, graph ? "%4s  %-58s %-14s %-18s %12s\n" : "%4s  %-58s%s %-18s %12s\n", "#",
                "layer", graph ? "reads" : "", "output", "parameters");
  std::cout << line;
  for (size_t i = 0; i < net.size(); ++i) {
    std::string reads;
    if (graph && net.inputs(i) != std::vector<size_t>{i}) {
      for (size_t v : net.inputs(i)) reads += (reads.empty() ? "<- " : ", ") + (v == 0 ? "input" : std::to_string(v - 1));
    }
    std::snprintf(line, sizeof line, graph ? "%4zu  %-58s %-14s %-18s %12lld\n" : "%4zu  %-58s%s %-18s %12lld\n", i,
                  net.layer(i).describe().c_str(), reads.c_str(), shape_of(i + 1).c_str(),
                  static_cast<long long>(net.layer(i).parameter_count()));
    std::cout << line;
  }
  std::cout << "\n";
  bool first = true;
  for (const auto& [kind, count] : counts) {
    std::cout << (first ? "" : ", ") << count << " " << kind;
    first = false;
  }
  std::cout << "\nfingerprint " << fingerprint << "\n";
  if (!fallback.empty()) {
    std::cout << "\nNodes where a method has no rule of its own and takes the gradient's (autograd's\n"
                 "vector-Jacobian product of the node); every other method has a rule for them:\n";
    for (const auto& [i, names] : fallback) {
      std::string list;
      for (const auto& name : names) list += (list.empty() ? "" : ", ") + name;
      std::cout << "  " << i << " " << net.layer(i).describe() << ": " << list << "\n";
    }
  }
}

}  // namespace

void register_info_command(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "info",
      "Show the layers mipin imports from a TorchScript model, with output shapes and\n"
      "parameter counts. BatchNorm is folded into the convolution before it and a final\n"
      "softmax is dropped, exactly as every other command sees the model. For a graph\n"
      "(residual adds, concatenations, gates) each layer also shows which layers' outputs\n"
      "it reads where that is not the layer just before it. Ops mipin has no layer for\n"
      "(an LSTM, a layer norm, attention) run as TorchScript runs them; the list at the\n"
      "end says which methods have no rule of their own for such a node and take the\n"
      "gradient's there (the gradient family is exact on every node).\n\n"
      "Example: mipin info cnn.pt\n"
      "         mipin info vgg16.pt --input-shape 3,224,224 --json");
  cmd->add_option("model", options->model, "TorchScript file (torch.jit.trace/script + save)")
      ->required();
  cmd->add_option("--input-shape", options->input_shape,
                  "Shape of one input, e.g. 3,224,224 (default: stored in the file by mipin or "
                  "the export script, or the first Linear layer's width)");
  add_common_options(*cmd, options->common);
  cmd->callback([options] { run_info(*options); });
}

}  // namespace mipin::cli
