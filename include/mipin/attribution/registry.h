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
#include "mipin/attribution/method_options.h"

namespace mipin {

class Inverse;
struct Patterns;

// What a method is made with: the options it declares (method_options.h)
// and what the caller's data and fitting give it.
struct MethodSettings {
  MethodOptions options;  // checked against the method's declarations by make_method
  // The data's range after normalisation: lrp-composite's z-box bounds.
  std::pair<double, double> input_bounds{0.0, 1.0};
  const Inverse* inverse = nullptr;    // for methods whose fitted part is an inverse
  const Patterns* patterns = nullptr;  // for methods whose fitted part is patterns
};

// What a method needs fitted to the model (from training data) before it
// explains: nothing, an inverse (`mipin fit`) or patterns (`mipin fit
// --method pattern`).
enum class FittedPart { none, inverse, patterns };

// A method as the registry knows it: its name, what it does, the options it
// takes and what it is, so that callers ask it instead of testing its name.
struct MethodEntry {
  std::string name;
  std::string summary;  // one line: what it does
  std::vector<OptionSpec> options;
  // Makes the method; the settings' options are checked and complete.
  std::function<std::unique_ptr<AttributionMethod>(const MethodSettings&)> make;
  FittedPart fitted = FittedPart::none;
  // It reads images [N, C, H, W] only (feature maps, spatial patches).
  bool images_only = false;
  // Its maps are a signal in the input's own units (a part of x), not a
  // relevance or a sensitivity.
  bool output_in_input_units = false;
  // Its maps are some factor times the input (relevance that sums to about
  // f(x)), as Captum's multiplies_by_inputs says.
  bool multiplies_by_input = false;
  // It carries no information about the model: the floor every metric is
  // read against (listed last).
  bool floor = false;
  // It reads the data's range (MethodSettings::input_bounds): a caller
  // without a data set passes the range of the inputs it explains.
  bool reads_input_bounds = false;
  // Its maps are a sensitivity of the target logit to the input (the
  // gradient, or a backward pass that changes the gradient's rules):
  // SmoothGrad, integrated gradients and input-times can be taken over it.
  bool gradient_like = false;

  MethodEntry& fitted_with(FittedPart part) {
    fitted = part;
    return *this;
  }
  MethodEntry& for_images_only() {
    images_only = true;
    return *this;
  }
  MethodEntry& in_input_units() {
    output_in_input_units = true;
    return *this;
  }
  MethodEntry& times_input() {
    multiplies_by_input = true;
    return *this;
  }
  MethodEntry& with_input_bounds() {
    reads_input_bounds = true;
    return *this;
  }
  MethodEntry& as_gradient_like() {
    gradient_like = true;
    return *this;
  }
  MethodEntry& as_floor() {
    floor = true;
    return *this;
  }
};

// All registered methods, sorted by name.
std::vector<MethodEntry> registered_methods();

// A method as a list of methods may name it: its name, or a variant with
// options of its own, "NAME:OPTION=VALUE[:OPTION=VALUE...]" (dashes or
// underscores in OPTION), so that one evaluation can set one method up
// several ways side by side: "mipin:readout=contrast".
struct MethodVariant {
  std::string name;       // the registered method
  MethodOptions options;  // the variant's own, as text
};
// Throws mipin::Error for a malformed variant.
MethodVariant parse_method_variant(const std::string& text);

// The entry of a method or of a variant's method. Throws mipin::Error
// listing the known names when it is not one.
const MethodEntry& method_entry(const std::string& name);
// A method or a variant (its options over the settings' own). Throws
// mipin::Error listing the known names when `name` is not one, and as
// check_options does for an option it does not take (unless
// ignore_undeclared: one set of settings for several methods; a variant's
// own options must always be declared) or a value it does not accept.
std::unique_ptr<AttributionMethod> make_method(const std::string& name, const MethodSettings& settings,
                                               bool ignore_undeclared = false);

// The option of a wrapper (SmoothGrad, integrated gradients, input-times)
// that names the gradient-like method it is taken over; "gradient" by default.
OptionSpec inner_method_option(const std::string& help);
// The gradient-like method the option names, made with its defaults; throws
// mipin::Error for a method that is not gradient-like.
std::unique_ptr<AttributionMethod> make_inner_method(const std::string& wrapper, const MethodOptions& options);

// A static RegisterMethod in a method's source file adds it at start-up.
struct RegisterMethod {
  explicit RegisterMethod(MethodEntry entry);
};

}  // namespace mipin
