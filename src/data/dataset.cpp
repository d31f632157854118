// Data sets: the --data syntax, normalisation, and the in-memory tensor data
// set behind the IDX and .npy sources.
//
// Data set specifications (--data)
// --------------------------------
//   fashion-mnist   Fashion-MNIST from the Debian package dataset-fashion-mnist
//                   (same as idx:/usr/share/datasets/fashion-mnist).
//   idx:DIR         MNIST-style IDX files: DIR/train-images-idx3-ubyte,
//                   DIR/train-labels-idx1-ubyte, DIR/t10k-images-idx3-ubyte and
//                   DIR/t10k-labels-idx1-ubyte, each optionally gzipped (.gz).
//                   Images [N, H, W] become [N, 1, H, W].
//   folder:DIR      Image folders: DIR/train/<class>/<image> and
//                   DIR/test/<class>/<image>, images .png, .jpg or .jpeg (any
//                   case), searched recursively. Classes are the sorted folder
//                   names under DIR/train.
//   DIR             Same as folder:DIR, when DIR is an existing directory.
//   npy:DIR         NumPy arrays: DIR/train_x.npy, DIR/train_y.npy, DIR/test_x.npy,
//                   DIR/test_y.npy. x is float32, float64 or uint8 of shape
//                   [N, ...] (a 3-D [N, H, W] gets a channel axis: [N, 1, H, W]);
//                   y is int64 or int32 of shape [N], labels 0..K-1.
//
// Options follow the first '?' (so DIR cannot contain one), separated by '&',
// e.g. folder:pets?size=64x64&mean=0.5&std=0.25
//   mean=a[,b,c]    subtracted after scaling: one value, or one per channel
//   std=a[,b,c]     divided by after subtracting the mean: one value or one per channel
//   scale=S         raw values are divided by S first; default 255 for uint8
//                   sources (IDX, uint8 .npy) and image files, 1 for float .npy
//   size=HxW        (folder only) resize every image bilinearly to H x W
//   channels=1|3    (folder only) convert images to grey (1) or RGB (3);
//                   default: the channels of the first image
// Every model input is x = (raw / scale - mean[c]) / std[c]. The class count
// is the highest label + 1 over the train and requested splits (or the number
// of class folders), so train and test always agree.
#include "mipin/data/dataset.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <sstream>
#include <utility>

#include "mipin/data/idx.h"
#include "mipin/data/image_folder.h"
#include "mipin/data/npy.h"
#include "mipin/util/error.h"

namespace mipin {
namespace fs = std::filesystem;

namespace {

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
constexpr const char* kValidOptions =
    "valid options: mean=a[,b,c], std=a[,b,c], scale=S, size=HxW (folder only), channels=1|3 "
    "(folder only)";
constexpr const char* kSpecForms =
    "fashion-mnist, idx:DIR, folder:DIR, npy:DIR or an existing directory of image folders";

std::vector<std::string> split_text(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string::size_type start = 0;
  while (true) {
    const auto end = text.find(separator, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

// Strict number parsing: the whole text must be the number.
bool parse_double(const std::string& text, double* out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && std::isfinite(*out);
}

bool parse_positive_int(const std::string& text, int64_t* out) {
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  if (text.size() > 9) return false;  // far beyond any sensible image size
  *out = std::stoll(text);
  return *out > 0;
}

[[noreturn]] void bad_option(const std::string& spec, const std::string& option,
                             const std::string& why) {
  MIPIN_FAIL("data set '", spec, "': ", why, " in option '", option, "'; ", kValidOptions);
}

std::vector<double> parse_values(const std::string& spec, const std::string& option,
                                 const std::string& value, bool positive) {
  std::vector<double> values;
  for (const std::string& part : split_text(value, ',')) {
    double v = 0;
    if (!parse_double(part, &v))
      bad_option(spec, option, "expected comma-separated numbers, found '" + value + "'");
    if (positive && v <= 0)
      bad_option(spec, option, "expected positive numbers, found '" + part + "'");
    values.push_back(v);
  }
  return values;
}

std::string shape_string(at::IntArrayRef sizes) {
  std::ostringstream out;
  out << sizes;
  return out.str();
}

int64_t max_label(const at::Tensor& labels) {
  return labels.numel() == 0 ? -1 : labels.max().item<int64_t>();
}

class TensorDataset final : public Dataset {
 public:
  TensorDataset(std::string name, at::Tensor raw, at::Tensor labels, Normalization normalization,
                int64_t num_classes)
      : Dataset(std::move(name)),
        raw_(std::move(raw)),
        labels_(std::move(labels)),
        normalization_(std::move(normalization)),
        num_classes_(num_classes),
        default_scale_(raw_.scalar_type() == at::kByte ? 255.0 : 1.0) {}

  int64_t size() const override { return raw_.size(0); }
  std::vector<int64_t> sample_shape() const override {
    return std::vector<int64_t>(raw_.sizes().begin() + 1, raw_.sizes().end());
  }
  int64_t num_classes() const override { return num_classes_; }

  Batch gather(const std::vector<int64_t>& indices) const override {
    for (const int64_t i : indices) {
      MIPIN_CHECK(i >= 0 && i < size(), "data set '", name(), "': index ", i,
                  " is out of range (expected 0 <= index < ", size(), ")");
    }
    const at::Tensor index = at::tensor(at::ArrayRef<int64_t>(indices), at::kLong);
    return {normalize(raw_.index_select(0, index), normalization_, default_scale_),
            labels_.index_select(0, index)};
  }

 private:
  at::Tensor raw_;
  at::Tensor labels_;
  Normalization normalization_;
  int64_t num_classes_;
  double default_scale_;
};

// ---- IDX ------------------------------------------------------------------

std::string find_idx_file(const fs::path& dir, const std::string& stem) {
  for (const char* suffix : {"", ".gz"}) {
    const fs::path candidate = dir / (stem + suffix);
    if (fs::is_regular_file(candidate)) return candidate.string();
  }
  MIPIN_FAIL("IDX data set in '", dir.string(), "': expected the file '", stem, "' or '", stem,
             ".gz', found neither");
}

at::Tensor read_idx_labels(const std::string& path) {
  const at::Tensor labels = read_idx(path);
  MIPIN_CHECK(labels.dim() == 1 && !labels.is_floating_point(), "'", path,
              "': expected 1-D integer labels, found ", labels.scalar_type(), " of shape ",
              shape_string(labels.sizes()));
  return labels.to(at::kLong);
}

std::unique_ptr<Dataset> open_idx(const DataSpec& spec, Split split) {
  const fs::path dir(spec.path);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    if (fs::absolute(dir, ec) == fs::path(kFashionMnistDir)) {
      MIPIN_FAIL_AS(not_found, "Fashion-MNIST not found: expected the directory ", kFashionMnistDir,
                 "; install it with `apt-get install dataset-fashion-mnist`");
    }
    MIPIN_FAIL_AS(not_found, "IDX data set '", spec.text, "': expected a directory '", spec.path,
               "', found none");
  }
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const std::string images_path = find_idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte");

  at::Tensor images = read_idx(images_path);
  const at::Tensor labels = read_idx_labels(labels_path);
  MIPIN_CHECK(images.dim() >= 2 && images.dim() <= 4, "'", images_path,
              "': expected images [N, H, W] (or [N, features] / [N, C, H, W]), found shape ",
              shape_string(images.sizes()));
  MIPIN_CHECK(images.size(0) == labels.size(0), "IDX data set '", spec.text, "': '", images_path,
              "' holds ", images.size(0), " images but '", labels_path, "' holds ", labels.size(0),
              " labels");
  if (images.dim() == 3) images = images.unsqueeze(1);

  // Both splits report the same class count even if the test split happens
  // to lack the highest class.
  int64_t top = max_label(labels);
  if (split == Split::Test) {
    for (const char* suffix : {"", ".gz"}) {
      const fs::path train_labels = dir / (std::string("train-labels-idx1-ubyte") + suffix);
      if (fs::is_regular_file(train_labels)) {
        top = std::max(top, max_label(read_idx_labels(train_labels.string())));
        break;
      }
    }
  }
  auto dataset = make_tensor_dataset(spec.text, images, labels, spec.normalization, top + 1);
  if (fs::absolute(dir, ec) == fs::path(kFashionMnistDir) && top + 1 == 10) {
    dataset->set_class_names({"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                              "Sneaker", "Bag", "Ankle boot"});
  }
  return dataset;
}

// ---- .npy -----------------------------------------------------------------

at::Tensor read_npy_labels(const std::string& path) {
  const at::Tensor labels = read_npy(path);
  MIPIN_CHECK(
      labels.dim() == 1 && (labels.scalar_type() == at::kLong || labels.scalar_type() == at::kInt),
      "'", path, "': expected 1-D int64 (or int32) labels, found ", labels.scalar_type(),
      " of shape ", shape_string(labels.sizes()));
  return labels.to(at::kLong);
}

std::unique_ptr<Dataset> open_npy(const DataSpec& spec, Split split) {
  const fs::path dir(spec.path);
  std::error_code ec;
  MIPIN_CHECK_AS(not_found, fs::is_directory(dir, ec), ".npy data set '", spec.text, "': expected a directory '",
              spec.path, "', found none");
  const std::string name = to_string(split);
  const std::string x_path = (dir / (name + "_x.npy")).string();
  const std::string y_path = (dir / (name + "_y.npy")).string();

  at::Tensor x = read_npy(x_path);
  const at::Tensor y = read_npy_labels(y_path);
  const auto type = x.scalar_type();
  MIPIN_CHECK(type == at::kByte || type == at::kFloat || type == at::kDouble, "'", x_path,
              "': expected float32, float64 or uint8 inputs, found ", type);
  MIPIN_CHECK(x.dim() >= 1, "'", x_path, "': expected inputs of shape [N, ...], found a scalar");
  MIPIN_CHECK(x.size(0) == y.size(0), ".npy data set '", spec.text, "': '", x_path, "' holds ",
              x.size(0), " examples but '", y_path, "' holds ", y.size(0), " labels");
  if (x.dim() == 3) x = x.unsqueeze(1);

  int64_t top = max_label(y);
  const fs::path train_y = dir / "train_y.npy";
  if (split == Split::Test && fs::is_regular_file(train_y)) {
    top = std::max(top, max_label(read_npy_labels(train_y.string())));
  }
  return make_tensor_dataset(spec.text, x, y, spec.normalization, top + 1);
}

}  // namespace

// ---- public -----------------------------------------------------------------

std::string to_string(Split split) { return split == Split::Train ? "train" : "test"; }

Split parse_split(const std::string& text) {
  if (text == "train") return Split::Train;
  if (text == "test") return Split::Test;
  MIPIN_FAIL("unknown split '", text, "': expected 'train' or 'test'");
}

at::Tensor normalize(const at::Tensor& raw, const Normalization& normalization,
                     double default_scale) {
  MIPIN_CHECK(raw.defined() && raw.dim() >= 1, "normalize: expected a batch [N, ...], found ",
              raw.defined() ? "a scalar" : "an undefined tensor");
  const double scale = normalization.scale.value_or(default_scale);
  MIPIN_CHECK(std::isfinite(scale) && scale > 0, "expected a positive scale, found ", scale);
  const int64_t channels = raw.dim() >= 2 ? raw.size(1) : 1;

  // One value, or one per channel shaped [1, C, 1, ...] to broadcast over axis 1.
  auto per_channel = [&](const std::vector<double>& values, const char* what) {
    MIPIN_CHECK(values.size() == 1 || static_cast<int64_t>(values.size()) == channels, what,
                " has ", values.size(), " values but the data has ", channels,
                " channels (expected one value or one per channel)");
    std::vector<int64_t> shape(static_cast<size_t>(raw.dim()), 1);
    if (values.size() > 1) shape[1] = channels;
    return at::tensor(at::ArrayRef<double>(values), at::kDouble).view(shape);
  };

  // Computed in float64 and rounded once, so every result is the correctly
  // rounded value of the formula whatever the order of operations; the float64
  // temporary only ever holds one batch.
  at::Tensor x = raw.to(at::kDouble);
  if (scale != 1.0) x.div_(scale);
  if (!normalization.mean.empty()) x.sub_(per_channel(normalization.mean, "mean"));
  if (!normalization.std.empty()) {
    for (const double s : normalization.std)
      MIPIN_CHECK(s > 0, "expected positive std values, found ", s);
    x.div_(per_channel(normalization.std, "std"));
  }
  return x.to(at::kFloat);
}

Batch Dataset::get(int64_t begin, int64_t end) const {
  MIPIN_CHECK(0 <= begin && begin <= end && end <= size(), "data set '", name(),
              "': expected a range 0 <= begin <= end <= ", size(), ", found [", begin, ", ", end,
              ")");
  std::vector<int64_t> indices(static_cast<size_t>(end - begin));
  std::iota(indices.begin(), indices.end(), begin);
  return gather(indices);
}

DataSpec parse_data_spec(const std::string& text) {
  DataSpec spec;
  spec.text = text;
  const auto question = text.find('?');
  const std::string base = text.substr(0, question);
  const std::string options = question == std::string::npos ? "" : text.substr(question + 1);

  auto with_prefix = [&](const char* prefix) {
    const std::string p(prefix);
    return base.compare(0, p.size(), p) == 0;
  };
  if (base == "fashion-mnist") {
    spec.kind = "idx";
    spec.path = kFashionMnistDir;
  } else if (with_prefix("idx:") || with_prefix("folder:") || with_prefix("npy:")) {
    const auto colon = base.find(':');
    spec.kind = base.substr(0, colon);
    spec.path = base.substr(colon + 1);
    MIPIN_CHECK(!spec.path.empty(), "data set '", text, "': expected a directory after '",
                spec.kind, ":', found nothing");
  } else {
    std::error_code ec;
    MIPIN_CHECK(!base.empty() && fs::is_directory(base, ec), "unknown data set '", text,
                "': expected ", kSpecForms,
                (base.empty() ? "" : "; '" + base + "' is not a directory"));
    spec.kind = "folder";
    spec.path = base;
  }

  if (question == std::string::npos) return spec;
  MIPIN_CHECK(!options.empty(), "data set '", text, "': expected options after '?', found none; ",
              kValidOptions);
  std::vector<std::string> seen;
  for (const std::string& option : split_text(options, '&')) {
    const auto equals = option.find('=');
    if (equals == std::string::npos) bad_option(text, option, "expected key=value");
    const std::string key = option.substr(0, equals);
    const std::string value = option.substr(equals + 1);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      bad_option(text, option, "'" + key + "' is given twice");
    }
    seen.push_back(key);

    if (key == "mean") {
      spec.normalization.mean = parse_values(text, option, value, false);
    } else if (key == "std") {
      spec.normalization.std = parse_values(text, option, value, true);
    } else if (key == "scale") {
      double scale = 0;
      if (!parse_double(value, &scale) || scale <= 0) {
        bad_option(text, option, "expected a positive number, found '" + value + "'");
      }
      spec.normalization.scale = scale;
    } else if (key == "size" || key == "channels") {
      if (spec.kind != "folder") {
        bad_option(text, option,
                   "'" + key + "' applies only to image folders, not to " + spec.kind + " data");
      }
      if (key == "size") {
        const auto x = value.find_first_of("xX");
        int64_t height = 0, width = 0;
        if (x == std::string::npos || !parse_positive_int(value.substr(0, x), &height) ||
            !parse_positive_int(value.substr(x + 1), &width)) {
          bad_option(text, option,
                     "expected HxW with positive integers (e.g. 32x32), found '" + value + "'");
        }
        spec.resize = std::make_pair(height, width);
      } else {
        if (value != "1" && value != "3")
          bad_option(text, option, "expected 1 or 3, found '" + value + "'");
        spec.channels = value == "1" ? 1 : 3;
      }
    } else {
      bad_option(text, option, "unknown option '" + key + "'");
    }
  }
  return spec;
}

std::unique_ptr<Dataset> open_dataset(const DataSpec& spec, Split split) {
  if (spec.kind == "folder") return open_image_folder(spec, split);
  MIPIN_CHECK(!spec.resize && !spec.channels, "data set '", spec.text,
              "': size= and channels= apply only to image folders, found them for ", spec.kind,
              " data");
  if (spec.kind == "idx") return open_idx(spec, split);
  if (spec.kind == "npy") return open_npy(spec, split);
  MIPIN_FAIL("data set '", spec.text, "': unknown kind '", spec.kind,
             "' (expected idx, folder or npy)");
}

std::unique_ptr<Dataset> open_dataset(const std::string& spec, Split split) {
  return open_dataset(parse_data_spec(spec), split);
}

std::unique_ptr<Dataset> make_tensor_dataset(std::string name, at::Tensor raw, at::Tensor labels,
                                             Normalization normalization,
                                             std::optional<int64_t> num_classes) {
  MIPIN_CHECK(raw.defined() && raw.dim() >= 1, "data set '", name,
              "': expected inputs of shape [N, ...], found ", raw.defined() ? "a scalar" : "none");
  MIPIN_CHECK(raw.scalar_type() == at::kByte || raw.is_floating_point(), "data set '", name,
              "': expected uint8 or floating-point inputs, found ", raw.scalar_type());
  MIPIN_CHECK(labels.defined() && labels.dim() == 1 && labels.scalar_type() == at::kLong,
              "data set '", name, "': expected 1-D int64 labels, found ",
              labels.defined() ? c10::toString(labels.scalar_type()) : "none", " of shape ",
              labels.defined() ? shape_string(labels.sizes()) : "[]");
  MIPIN_CHECK(raw.size(0) == labels.size(0), "data set '", name,
              "': expected one label per input, found ", raw.size(0), " inputs but ",
              labels.size(0), " labels");
  MIPIN_CHECK(raw.size(0) > 0, "data set '", name, "': expected at least one example, found none");
  raw = raw.contiguous().cpu();
  labels = labels.contiguous().cpu();

  const at::Tensor negative = labels.lt(0);
  if (negative.any().item<bool>()) {
    const int64_t first = negative.nonzero()[0][0].item<int64_t>();
    MIPIN_FAIL("data set '", name, "': expected labels >= 0, found ", labels[first].item<int64_t>(),
               " at index ", first);
  }
  if (raw.is_floating_point()) {
    const at::Tensor bad = at::isfinite(raw).logical_not_().flatten();
    const int64_t count = bad.sum().item<int64_t>();
    if (count > 0) {
      const int64_t first = bad.nonzero()[0][0].item<int64_t>();
      const int64_t nans = at::isnan(raw).sum().item<int64_t>();
      MIPIN_FAIL("data set '", name, "': expected finite input values, found ", count,
                 " NaN or infinite values (", nans, " NaN, ", count - nans,
                 " infinite); the first is in example ", first / (raw.numel() / raw.size(0)),
                 " (flat index ", first, ")");
    }
  }
  const int64_t top = max_label(labels);
  if (num_classes) {
    MIPIN_CHECK(top < *num_classes, "data set '", name, "': expected labels below the class count ",
                *num_classes, ", found label ", top);
  }
  const int64_t classes = num_classes.value_or(top + 1);

  auto dataset = std::make_unique<TensorDataset>(name, raw, labels, normalization, classes);
  // Check mean/std against the channel count now, not at the first batch.
  try {
    dataset->get(0, 1);
  } catch (const Error& e) {
    MIPIN_FAIL("data set '", name, "': ", e.what());
  }
  return dataset;
}

}  // namespace mipin
