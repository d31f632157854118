// mipin._core: the C++ library as seen from Python. The Python package
// (python/mipin/__init__.py) gives it the Captum-style surface; this file
// only converts: tensors cross as they are (LibTorch is the one python3-torch
// uses), options are checked against each method's declaration, and
// mipin::Error becomes the Python exception of its kind.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/extension.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mipin/attribution/method_catalog.h"
#include "mipin/attribution/patterns.h"
#include "mipin/attribution/registry.h"
#include "mipin/data/dataset.h"
#include "mipin/data/image_folder.h"
#include "mipin/eval/suite.h"
#include "mipin/inverse/inverse.h"
#include "mipin/inverse/options.h"
#include "mipin/inverse/options_json.h"
#include "mipin/model/network.h"
#include "mipin/report/gallery.h"
#include "mipin/report/html_report.h"
#include "mipin/report/images.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"
#include "mipin/util/memory.h"

namespace py = pybind11;
namespace fs = std::filesystem;

namespace mipin::python {
namespace {

// The address of the last input attribute() handed to a method: the test
// that the caller's memory is read where it lies, not copied.
std::atomic<const void*> last_input{nullptr};

OptionValue option_value(const std::string& name, const py::handle& value) {
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>();
  if (py::isinstance<py::int_>(value)) return value.cast<int64_t>();
  if (py::isinstance<py::float_>(value)) return value.cast<double>();
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (THPVariable_Check(value.ptr())) return value.cast<at::Tensor>().contiguous();
  throw py::type_error("option " + name + ": expected a bool, int, float, str or tensor, found " +
                       std::string(py::str(py::type::of(value).attr("__name__"))));
}

MethodOptions method_options(const py::dict& options) {
  MethodOptions out;
  for (const auto& [key, value] : options) {
    const std::string name = key.cast<std::string>();
    out.set(name, option_value(name, value));
  }
  return out;
}

// A model: the network imported from TorchScript, and its name in messages.
struct Model {
  ImportedModel imported;
  std::string name;
  const Network& network() const { return imported.network; }
};

ImportOptions import_options(const std::optional<std::vector<int64_t>>& input_shape) {
  ImportOptions options;
  if (input_shape) options.with_input_shape(*input_shape);
  return options;
}

// The examples of a data set given as tensors: inputs as the model takes
// them (float32, normalised) and int64 labels.
std::unique_ptr<Dataset> tensor_dataset(const std::string& name, const at::Tensor& x, const at::Tensor& y,
                                        int64_t num_classes) {
  MIPIN_CHECK(x.dim() >= 2, "expected a batch of inputs [N, ...], found a tensor of shape ", x.sizes());
  MIPIN_CHECK(y.dim() == 1 && y.size(0) == x.size(0), "expected one label per input (", x.size(0),
              "), found labels of shape ", y.sizes());
  return make_tensor_dataset(name, x.to(at::kFloat), y.to(at::kLong), Normalization{}, num_classes);
}

// A data set as Python gives it: a --data spec, or (x, y) tensors.
std::unique_ptr<Dataset> open_data(const py::object& data, Split split, const Model& model) {
  if (py::isinstance<py::str>(data)) return open_dataset(data.cast<std::string>(), split);
  const auto pair = data.cast<std::pair<at::Tensor, at::Tensor>>();
  return tensor_dataset("tensors", pair.first, pair.second, model.network().num_classes());
}

void check_data_fits(const Dataset& data, const Model& model) {
  const auto& shape = model.network().input_shape();
  MIPIN_CHECK(shape.empty() || data.sample_shape() == shape, "shape mismatch: the data hold examples of shape ",
              shape_string(data.sample_shape()), "; the model '", model.name, "' takes ", shape_string(shape));
}

// One class per example: the predicted one (target < 0 with no tensor), one
// class for all, or the given classes.
at::Tensor targets_for(const Model& model, const at::Tensor& x, std::optional<int64_t> one,
                       const std::optional<at::Tensor>& each) {
  torch::NoGradGuard no_grad;
  if (each) {
    const at::Tensor t = each->to(at::kLong).flatten();
    MIPIN_CHECK_AS(out_of_range, t.numel() == x.size(0), "expected one target per example (", x.size(0),
                   "), found ", t.numel());
    const int64_t classes = model.network().num_classes();
    if (t.numel() > 0) {
      const int64_t lo = t.min().item<int64_t>(), hi = t.max().item<int64_t>();
      MIPIN_CHECK_AS(out_of_range, lo >= 0 && hi < classes, "a target class is out of range: the model has ", classes,
                     " classes (0 to ", classes - 1, "), found ", lo < 0 ? lo : hi);
    }
    return t;
  }
  if (one) {
    // One class for all: the range needs the class count, not a forward pass.
    const int64_t classes = model.network().num_classes();
    MIPIN_CHECK_AS(out_of_range, *one >= 0 && *one < classes, "target class ", *one,
                   " is out of range: the model has ", classes, " classes (0 to ", classes - 1, ")");
    return torch::full({x.size(0)}, *one, torch::kLong);
  }
  return resolve_targets(model.network().forward(x), std::nullopt);
}

// An attribution method made from its declaration and what the caller gave.
struct Method {
  std::string name;
  MethodSettings settings;
  std::shared_ptr<const Inverse> inverse;
  std::shared_ptr<const Patterns> patterns;
  std::unique_ptr<AttributionMethod> made;
  bool has_bounds = false;
  std::weak_ptr<const Model> checked;  // the model the fitted part was last found to fit

  // The fitted part refuses a model it was not fitted for (checked once per
  // model object: a fingerprint reads every weight).
  void check_fits(const std::shared_ptr<const Model>& model) {
    if (checked.lock() == model) return;
    if (inverse) inverse->check_compatible(model->network(), model->name);
    if (patterns) patterns->check_compatible(model->network(), model->name);
    checked = model;
  }

  // Made again only where the bounds it reads changed.
  const AttributionMethod& for_bounds(std::optional<std::pair<double, double>> bounds) {
    if (bounds && (!has_bounds || *bounds != settings.input_bounds)) {
      settings.input_bounds = *bounds;
      has_bounds = true;
      made.reset();
    }
    if (!made) made = make_method(name, settings);
    return *made;
  }
};

std::shared_ptr<Method> new_method(const std::string& name, const py::dict& options,
                                   std::shared_ptr<const Inverse> inverse,
                                   std::shared_ptr<const Patterns> patterns) {
  auto m = std::make_shared<Method>();
  m->name = name;
  const MethodEntry& entry = method_entry(name);
  // Checked here, so that a bad value fails where it is given; make_method
  // checks again and completes the defaults.
  m->settings.options = method_options(options);
  check_options(name, entry.options, m->settings.options);
  m->inverse = std::move(inverse);
  m->patterns = std::move(patterns);
  m->settings.inverse = m->inverse.get();
  m->settings.patterns = m->patterns.get();
  if (entry.fitted == FittedPart::inverse) {
    MIPIN_CHECK(m->inverse, "method '", name, "' needs an inverse: mipin.fit_inverse(model, data) or mipin.load_inverse(path, model)");
  }
  if (entry.fitted == FittedPart::patterns) {
    MIPIN_CHECK(m->patterns, "method '", name, "' needs patterns: mipin.fit_patterns(model, data) or mipin.load_patterns(path, model)");
  }
  if (!entry.reads_input_bounds) m->made = make_method(name, m->settings);
  return m;
}

at::Tensor attribute(Method& method, const std::shared_ptr<const Model>& model_ptr, const at::Tensor& x, std::optional<int64_t> one,
                     const std::optional<at::Tensor>& each) {
  last_input = x.data_ptr();
  const Model& model = *model_ptr;
  method.check_fits(model_ptr);
  MIPIN_CHECK(!x.isnan().any().item<bool>(), "the inputs contain NaN: the model cannot be explained on them");
  MIPIN_CHECK(x.isfinite().all().item<bool>(), "the inputs contain infinite values: the model cannot be explained on them");
  std::optional<std::pair<double, double>> bounds;
  if (method_entry(method.name).reads_input_bounds) {
    bounds = std::make_pair(x.min().item<double>(), x.max().item<double>());
  }
  const AttributionMethod& made = method.for_bounds(bounds);
  // As `mipin explain` calls it: targets and attribution outside autograd
  // (gradient methods switch it on for themselves).
  torch::NoGradGuard no_grad;
  const at::Tensor targets = targets_for(model, x, one, each);
  at::Tensor a = made.attribute(model.network(), x, targets);
  MIPIN_CHECK(a.isfinite().all().item<bool>(), "method '", method.name,
              "' gave non-finite values on this model (it overflowed float32)");
  return a;
}

std::shared_ptr<Inverse> fit(const Model& model, const Dataset& data, const MethodOptions& options, bool progress,
                             Reducer& reducer) {
  check_data_fits(data, model);
  const InverseOptions o = inverse_options(check_options("mipin", inverse_option_specs(), options));
  const FitRun run = FitRun{}.with_reducer(&reducer).with_progress(progress ? terminal_progress() : nullptr);
  auto inverse = std::make_shared<Inverse>(fit_inverse(model.network(), data, o, run));
  inverse->model_name = model.name;
  return inverse;
}

std::shared_ptr<Patterns> fit_patterns_of(const Model& model, const Dataset& data, const MethodOptions& options,
                                          bool progress, Reducer& reducer) {
  check_data_fits(data, model);
  const MethodOptions o = check_options("pattern", pattern_option_specs(), options);
  auto patterns = std::make_shared<Patterns>(
      fit_patterns(model.network(), data, o.integer("examples"), o.integer("batch_size"),
                   FitRun{}.with_reducer(&reducer).with_progress(progress ? terminal_progress() : nullptr)));
  patterns->model_name = model.name;
  return patterns;
}

py::list layer_fits(const Inverse& inverse) {
  py::list out;
  for (const LayerFit& f : inverse.fits()) {
    py::dict d;
    d["index"] = f.index;
    d["layer"] = f.layer;
    d["solver"] = f.solver;
    d["r2"] = f.r2;
    d["mse"] = f.mse;
    d["seconds"] = f.seconds;
    d["pass"] = f.pass;
    out.append(d);
  }
  return out;
}

// Sums across the processes of a torch.distributed job, through a Python
// function (mipin/__init__.py adds them in rank order on the job's Gloo
// group, as the tool does).
class PythonReducer final : public Reducer {
 public:
  PythonReducer(int rank, int world, py::object sum) : rank_(rank), world_(world), sum_(std::move(sum)) {}
  ~PythonReducer() override {
    py::gil_scoped_acquire gil;
    sum_ = py::object();
  }
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }

 protected:
  void sum_across(at::Tensor& values) override {
    py::gil_scoped_acquire gil;
    sum_(values);
  }

 private:
  int rank_, world_;
  py::object sum_;
};

// None (this process alone) or (rank, world size, sum function).
std::unique_ptr<Reducer> reducer_of(const py::object& job) {
  if (job.is_none()) return std::make_unique<Reducer>();
  const auto t = job.cast<py::tuple>();
  return std::make_unique<PythonReducer>(t[0].cast<int>(), t[1].cast<int>(), t[2]);
}

struct EvaluateArguments {
  std::vector<std::string> methods;  // empty: every method that can run
  std::vector<std::string> metrics;  // empty: all but localization without boxes
  MethodOptions options;  // each method takes those it declares
  std::shared_ptr<const Inverse> inverse;
  std::shared_ptr<const Patterns> patterns;
  int64_t examples = 1000, randomization_examples = 32, refit_examples = 2000, gallery = 8;
  bool progress = true;
  std::string out;
};

std::string evaluate(const Model& model, const Dataset& data, const Dataset* fit_data, EvaluateArguments a,
                     Reducer& reducer) {
  check_data_fits(data, model);
  if (a.inverse) a.inverse->check_compatible(model.network(), model.name);
  if (a.patterns) a.patterns->check_compatible(model.network(), model.name);
  SuiteOptions suite;
  suite.methods = a.methods.empty() ? suite_methods(a.inverse != nullptr, a.patterns != nullptr) : a.methods;
  for (const std::string& name : suite.methods) method_entry(name);  // an unknown name lists the known ones
  if (a.metrics.empty()) {
    for (const std::string& m : default_suite_metrics()) suite.metrics.insert(m);
  } else if (a.metrics == std::vector<std::string>{"all"}) {
    suite.metrics = all_suite_metrics();
    suite.metrics.erase("localization");
  } else {
    const auto known = all_suite_metrics();
    for (const std::string& m : a.metrics) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      MIPIN_CHECK(known.count(m), "unknown metric '", m, "'; expected some of ", list);
      suite.metrics.insert(m);
    }
    MIPIN_CHECK(!suite.metrics.count("localization"),
                "the localization metric needs boxes: evaluate on a data set made by `mipin data clutter` with the "
                "`mipin evaluate` command");
  }
  suite.settings.options = a.options;
  for (const auto& [option, value] : suite.settings.options.values()) {
    bool taken = false;
    for (const std::string& name : suite.methods) {
      for (const OptionSpec& spec : method_entry(name).options) taken = taken || spec.name == option;
    }
    MIPIN_CHECK(taken, "no method evaluated here takes the option ", option, " (mipin.methods() says which do)");
  }
  suite.settings.inverse = a.inverse.get();
  suite.settings.patterns = a.patterns.get();
  suite.fit_data = fit_data;
  suite.examples = a.examples;
  suite.randomization_examples = a.randomization_examples;
  suite.refit_examples = a.refit_examples;
  suite.progress = a.progress && reducer.rank() == 0 ? terminal_progress() : nullptr;
  suite.reducer = &reducer;
  {
    // The data's range for the methods that read it (as `mipin evaluate`).
    const Batch first = data.get(0, std::min<int64_t>(data.size(), 1000));
    suite.settings.input_bounds = {first.inputs.min().item<double>(), first.inputs.max().item<double>()};
  }
  nlohmann::json j = run_suite(model.network(), data, suite);
  j["model"] = model.name;
  for (auto& [name, entry] : j["methods"].items()) entry["examples"] = j["examples"];
  if (!a.out.empty() && reducer.rank() == 0) {
    const ReportGallery gallery = make_gallery(model.network(), data, suite.methods, suite.settings, a.gallery);
    fs::create_directories(a.out);
    write_file_atomically((fs::path(a.out) / "metrics.json").string(), j.dump(2));
    write_file_atomically((fs::path(a.out) / "report.html").string(), html_report(j, gallery));
  }
  return j.dump();
}

// Heatmap and overlay of one example, as RGB uint8 [H, W, 3].
std::pair<at::Tensor, at::Tensor> pictures(const at::Tensor& attribution, const at::Tensor& x,
                                           std::optional<int64_t> scale) {
  MIPIN_CHECK(attribution.sizes() == x.sizes(), "expected an attribution of the input's shape ", x.sizes(),
              ", found ", attribution.sizes());
  MIPIN_CHECK(x.dim() == 3 || x.dim() == 1, "expected one example: an image [C, H, W] or a vector [F], found ",
              x.sizes());
  const at::Tensor a = attribution.to(at::kFloat).contiguous(), input = x.to(at::kFloat).contiguous();
  const int64_t s = scale ? *scale : x.dim() == 3 ? display_scale(x.size(1), x.size(2)) : 1;
  MIPIN_CHECK(s >= 1, "expected a scale >= 1, found ", s);
  return {heatmap_picture(a, s).permute({1, 2, 0}).contiguous(),
          overlay_picture(input, a, s).permute({1, 2, 0}).contiguous()};
}

void translate(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const Error& e) {
    switch (e.kind()) {
      case ErrorKind::out_of_range: PyErr_SetString(PyExc_IndexError, e.what()); return;
      case ErrorKind::not_found: PyErr_SetString(PyExc_FileNotFoundError, e.what()); return;
      case ErrorKind::unsupported: PyErr_SetString(PyExc_NotImplementedError, e.what()); return;
      case ErrorKind::invalid: PyErr_SetString(PyExc_ValueError, e.what()); return;
    }
  }
}

}  // namespace
}  // namespace mipin::python

PYBIND11_MODULE(_core, m) {
  using namespace mipin;
  using namespace mipin::python;
  using Release = py::call_guard<py::gil_scoped_release>;
  m.doc() = "The mipin C++ core (use the mipin package, not this module).";
  m.attr("__version__") = MIPIN_VERSION;
  py::register_exception_translator(&translate);

  m.def("methods_json", [] { return methods_json().dump(); }, "Every method's declaration, as JSON text.");

  py::class_<Model, std::shared_ptr<Model>>(m, "Model")
      .def_static(
          "load",
          [](const std::string& path, std::optional<std::vector<int64_t>> shape) {
            auto model = std::make_shared<Model>();
            model->imported = load_torchscript(path, import_options(shape));
            model->name = path;
            return model;
          },
          py::arg("path"), py::arg("input_shape") = py::none(), Release())
      .def_static(
          "from_bytes",
          [](const py::bytes& bytes, const std::string& name, std::optional<std::vector<int64_t>> shape) {
            std::string data = bytes;
            py::gil_scoped_release release;
            auto model = std::make_shared<Model>();
            model->imported = load_torchscript_bytes(data, name, import_options(shape));
            model->name = name;
            return model;
          },
          py::arg("bytes"), py::arg("name"), py::arg("input_shape") = py::none())
      .def_property_readonly("name", [](const Model& model) { return model.name; })
      .def_property_readonly("input_shape", [](const Model& model) { return model.network().input_shape(); })
      .def("set_input_shape", [](Model& model, const std::vector<int64_t>& shape) {
        model.imported.network.set_input_shape(shape);
      })
      .def_property_readonly("num_classes", [](const Model& model) { return model.network().num_classes(); })
      .def_property_readonly("fingerprint", [](const Model& model) { return model.network().fingerprint(); })
      .def_property_readonly("notices", [](const Model& model) { return model.imported.notices; })
      .def_property_readonly("layers",
                             [](const Model& model) {
                               std::vector<std::string> out;
                               for (size_t i = 0; i < model.network().size(); ++i) {
                                 out.push_back(model.network().layer(i).describe());
                               }
                               return out;
                             })
      .def(
          "forward",
          [](const Model& model, const at::Tensor& x) {
            torch::NoGradGuard no_grad;
            return model.network().forward(x);
          },
          Release())
      .def("targets", &targets_for, py::arg("x"), py::arg("one") = py::none(), py::arg("each") = py::none(),
           Release());

  py::class_<Inverse, std::shared_ptr<Inverse>>(m, "Inverse")
      .def_static("load", [](const std::string& path) { return std::make_shared<Inverse>(Inverse::load(path)); },
                  Release())
      .def("save", &Inverse::save, Release())
      .def("check_compatible",
           [](const Inverse& inverse, const Model& model) { inverse.check_compatible(model.network(), model.name); })
      .def_property_readonly("fits", &layer_fits)
      .def_readonly("examples", &Inverse::examples)
      .def_readonly("seconds", &Inverse::seconds)
      .def_property_readonly("model_fingerprint", &Inverse::model_fingerprint)
      .def_property_readonly("operators", [](const Inverse& inverse) { return inverse.operators(); })
      .def_property_readonly("options", [](const Inverse& inverse) {
        return py::module_::import("json").attr("loads")(inverse_options_json(inverse.options()).dump());
      });

  py::class_<Patterns, std::shared_ptr<Patterns>>(m, "Patterns")
      .def_static("load", [](const std::string& path) { return std::make_shared<Patterns>(Patterns::load(path)); },
                  Release())
      .def("save", &Patterns::save, Release())
      .def("check_compatible",
           [](const Patterns& p, const Model& model) { p.check_compatible(model.network(), model.name); })
      .def_readonly("examples", &Patterns::examples)
      .def_property_readonly("patterns", [](const Patterns& p) { return p.patterns; });

  // A fit: the data and options converted with the GIL held, the fit without.
  auto def_fit = [&m](const char* name, auto fit_function) {
    m.def(
        name,
        [fit_function](const Model& model, const py::object& data, const py::dict& options, bool progress,
                       const py::object& job) {
          const auto d = open_data(data, Split::Train, model);
          const MethodOptions o = method_options(options);
          const auto reducer = reducer_of(job);
          py::gil_scoped_release release;
          return fit_function(model, *d, o, progress && reducer->rank() == 0, *reducer);
        },
        py::arg("model"), py::arg("data"), py::arg("options"), py::arg("progress"), py::arg("job") = py::none());
  };
  def_fit("fit_inverse", &fit);
  def_fit("fit_patterns", &fit_patterns_of);

  py::class_<Method, std::shared_ptr<Method>>(m, "Method")
      .def(py::init(&new_method), py::arg("name"), py::arg("options"), py::arg("inverse") = nullptr,
           py::arg("patterns") = nullptr)
      .def_readonly("name", &Method::name)
      .def("attribute", &attribute, py::arg("model"), py::arg("x"), py::arg("one") = py::none(),
           py::arg("each") = py::none(), Release())
      .def(
          "fallback_nodes",
          [](Method& method, const std::shared_ptr<const Model>& model) {
            std::vector<std::pair<size_t, std::string>> nodes;
            const Network& network = model->network();
            for (size_t i : method.for_bounds(std::nullopt).fallback_nodes(network)) {
              nodes.emplace_back(i, network.layer(i).describe());
            }
            return nodes;
          },
          py::arg("model"));

  m.def(
      "cpp_attribute_seconds",
      [](Method& method, const std::shared_ptr<const Model>& model, const at::Tensor& x, const at::Tensor& targets,
         int repeats) {
        // The C++ user's call, timed in C++: what the Python call's overhead is measured against.
        const AttributionMethod& made = method.for_bounds(std::nullopt);
        torch::NoGradGuard no_grad;
        std::vector<double> seconds;
        for (int i = 0; i < repeats; ++i) {
          const auto start = std::chrono::steady_clock::now();
          const at::Tensor a = made.attribute(model->network(), x, targets);
          seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
        return seconds;
      },
      py::arg("method"), py::arg("model"), py::arg("x"), py::arg("targets"), py::arg("repeats"), Release(),
      "Seconds of each of `repeats` C++ calls of the method (the benchmark's reference).");

  m.def("reuse_freed_memory", &reuse_freed_memory,
        "Makes glibc keep freed memory for reuse (see mipin/util/memory.h); process-wide.");

  m.def("last_input_address", [] { return reinterpret_cast<uintptr_t>(last_input.load()); },
        "Where the last input attribute() read lay in memory.");

  m.def(
      "load_data",
      [](const std::string& spec, const std::string& split, int64_t begin, std::optional<int64_t> end) {
        const auto data = open_dataset(spec, parse_split(split));
        const int64_t stop = end ? std::min(*end, data->size()) : data->size();
        MIPIN_CHECK_AS(out_of_range, begin >= 0 && begin < stop, "expected examples [begin, end) within 0..",
                       data->size(), ", found [", begin, ", ", stop, ")");
        Batch b = data->get(begin, stop);
        return py::make_tuple(b.inputs, b.labels, data->class_names());
      },
      py::arg("spec"), py::arg("split"), py::arg("begin"), py::arg("end"));

  py::class_<EvaluateArguments>(m, "EvaluateArguments")
      .def(py::init<>())
      .def_readwrite("methods", &EvaluateArguments::methods)
      .def_readwrite("metrics", &EvaluateArguments::metrics)
      .def("set_options", [](EvaluateArguments& a, const py::dict& options) { a.options = method_options(options); })
      .def_readwrite("inverse", &EvaluateArguments::inverse)
      .def_readwrite("patterns", &EvaluateArguments::patterns)
      .def_readwrite("examples", &EvaluateArguments::examples)
      .def_readwrite("randomization_examples", &EvaluateArguments::randomization_examples)
      .def_readwrite("refit_examples", &EvaluateArguments::refit_examples)
      .def_readwrite("gallery", &EvaluateArguments::gallery)
      .def_readwrite("progress", &EvaluateArguments::progress)
      .def_readwrite("out", &EvaluateArguments::out);
  m.def(
      "evaluate",
      [](const Model& model, const py::object& data, const py::object& fit_data, EvaluateArguments a,
         const py::object& job) {
        const auto d = open_data(data, Split::Test, model);
        std::unique_ptr<Dataset> f;
        if (!fit_data.is_none()) f = open_data(fit_data, Split::Train, model);
        const auto reducer = reducer_of(job);
        py::gil_scoped_release release;
        return evaluate(model, *d, f.get(), std::move(a), *reducer);
      },
      py::arg("model"), py::arg("data"), py::arg("fit_data"), py::arg("arguments"), py::arg("job") = py::none());

  m.def("pictures", &pictures, py::arg("attribution"), py::arg("x"), py::arg("scale") = py::none());
  m.def("write_png", [](const std::string& path, const at::Tensor& hwc) {
    write_png(path, hwc.permute({2, 0, 1}).contiguous());
  });
}
