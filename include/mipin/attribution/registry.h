#pragma once
// Every attribution method by name. A method registers itself from its own
// source file (RegisterMethod below), so adding one means adding files:
// nothing else in the library or the command-line tool changes.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mipin/attribution/method.h"

namespace mipin {

class Inverse;
struct Patterns;

// Every knob a method may read; each method documents which it uses.
struct MethodSettings {
  bool absolute = false;             // gradient: |gradient|
  int64_t samples = 32;              // smoothgrad
  double noise = 0.15;               // smoothgrad: fraction of the input range
  at::Tensor baseline;               // integrated gradients, deeplift: [input shape]; zero if undefined
  int64_t steps = 64;                // integrated gradients
  std::string integration = "riemann";  // integrated gradients: riemann | gauss-legendre
  int64_t internal_batch = 64;       // integrated gradients, smoothgrad: inputs per pass
  double epsilon = 1e-6;             // lrp-epsilon
  double alpha = 1.0, beta = 0.0;    // lrp-alpha-beta
  std::pair<double, double> input_bounds{0.0, 1.0};  // lrp-composite: z-box bounds
  int64_t patch = 4, stride = 4;     // occlusion
  double fill = 0.0;                 // occlusion
  std::optional<size_t> layer;       // grad-cam: conv layer index (default: the last)
  uint64_t seed = 0;                 // random, smoothgrad
  const Inverse* inverse = nullptr;    // mipin
  const Patterns* patterns = nullptr;  // patternnet, patternattribution
};

// What a method needs fitted to the model (from training data) before it
// explains: nothing, an inverse (`mipin fit`) or patterns (`mipin fit
// --method pattern`).
enum class FittedPart { none, inverse, patterns };

struct MethodEntry {
  std::string name;
  std::string summary;  // one line: what it does
  std::string options;  // the settings it reads, as command-line options
  std::function<std::unique_ptr<AttributionMethod>(const MethodSettings&)> make;
  FittedPart fitted = FittedPart::none;
  // It reads images [N, C, H, W] only (feature maps, spatial patches).
  bool images_only = false;
};

// All registered methods, sorted by name.
std::vector<MethodEntry> registered_methods();
// Throws mipin::Error listing the known names when `name` is not one.
const MethodEntry& method_entry(const std::string& name);
// Throws mipin::Error listing the known names when `name` is not one.
std::unique_ptr<AttributionMethod> make_method(const std::string& name,
                                               const MethodSettings& settings);

// A static RegisterMethod in a method's source file adds it at start-up.
struct RegisterMethod {
  explicit RegisterMethod(MethodEntry entry);
};

}  // namespace mipin
