#pragma once
// One abstraction over every data source: a labelled, indexable collection of
// examples that yields normalised float32 batches (NCHW, or N x features).
//
// The normalisation is part of the data set's description (DataSpec), so the
// same input always reaches the model the same way, whichever command reads it.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mipin {

enum class Split { Train, Test };
std::string to_string(Split split);
Split parse_split(const std::string& text);  // "train" | "test"

struct Batch {
  at::Tensor inputs;  // float32, [N, ...sample_shape]
  at::Tensor labels;  // int64, [N]
};

// How raw values become model inputs: x = (raw / scale - mean[c]) / std[c].
struct Normalization {
  std::optional<double> scale;  // default: 255 for uint8 sources, 1 otherwise
  std::vector<double> mean;     // empty: 0 for every channel
  std::vector<double> std;      // empty: 1 for every channel
};

// Applies the normalisation to raw [N, C, ...] (channels on axis 1; a 1-D
// [N] counts as one channel) and returns float32. default_scale applies when
// normalization.scale is unset. mean/std hold one value or one per channel.
at::Tensor normalize(const at::Tensor& raw, const Normalization& normalization,
                     double default_scale);

// A parsed --data argument; see docs/cli.md, "Data sets", for the syntax.
struct DataSpec {
  std::string text;     // as the user wrote it (used as the data set's name)
  std::string kind;     // "idx" | "folder" | "npy"
  std::string path;     // directory
  Normalization normalization;
  std::optional<std::pair<int64_t, int64_t>> resize;  // folder: HxW
  std::optional<int64_t> channels;                    // folder: 1 or 3
};

DataSpec parse_data_spec(const std::string& text);

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual std::vector<int64_t> sample_shape() const = 0;
  virtual int64_t num_classes() const = 0;
  // Examples at the given positions, normalised.
  virtual Batch gather(const std::vector<int64_t>& indices) const = 0;

  // Examples [begin, end), normalised.
  Batch get(int64_t begin, int64_t end) const;
  const std::string& name() const { return name_; }

  // Names of the classes by label (image folders: the folder names;
  // Fashion-MNIST: its ten garments), or empty when the data do not say.
  const std::vector<std::string>& class_names() const { return class_names_; }
  void set_class_names(std::vector<std::string> names) { class_names_ = std::move(names); }

 protected:
  explicit Dataset(std::string name) : name_(std::move(name)) {}

 private:
  std::string name_;
  std::vector<std::string> class_names_;
};

std::unique_ptr<Dataset> open_dataset(const DataSpec& spec, Split split);
std::unique_ptr<Dataset> open_dataset(const std::string& spec, Split split);

// An in-memory data set over raw tensors (uint8 or float) and int64 labels;
// the IDX and .npy readers produce these. Checks counts, label range and NaN.
std::unique_ptr<Dataset> make_tensor_dataset(std::string name, at::Tensor raw, at::Tensor labels,
                                             Normalization normalization,
                                             std::optional<int64_t> num_classes = std::nullopt);

}  // namespace mipin
