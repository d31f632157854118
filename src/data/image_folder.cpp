// Image files (PNG and JPEG, through data/image_codecs.h) and the
// class-per-subfolder data set over them.
#include "mipin/data/image_folder.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <utility>
#include <vector>

#include "data/image_codecs.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"

namespace mipin {
namespace fs = std::filesystem;

namespace {

void check_channels(int64_t channels, const std::string& context) {
  MIPIN_CHECK(channels == 1 || channels == 3, context,
              ": expected channels 1 (grey) or 3 (RGB), found ", channels);
}

bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

class ImageFolderDataset final : public Dataset {
 public:
  ImageFolderDataset(std::string name, std::vector<std::string> files, std::vector<int64_t> labels,
                     int64_t num_classes, int64_t channels, std::pair<int64_t, int64_t> size,
                     std::optional<std::pair<int64_t, int64_t>> resize, Normalization normalization)
      : Dataset(std::move(name)),
        files_(std::move(files)),
        labels_(std::move(labels)),
        num_classes_(num_classes),
        channels_(channels),
        size_(size),
        resize_(resize),
        normalization_(std::move(normalization)) {}

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  std::vector<int64_t> sample_shape() const override {
    return {channels_, size_.first, size_.second};
  }
  int64_t num_classes() const override { return num_classes_; }

  Batch gather(const std::vector<int64_t>& indices) const override {
    const auto count = static_cast<int64_t>(indices.size());
    for (const int64_t i : indices) {
      MIPIN_CHECK(i >= 0 && i < size(), "data set '", name(), "': index ", i,
                  " is out of range (expected 0 <= index < ", size(), ")");
    }
    at::Tensor raw = at::empty({count, channels_, size_.first, size_.second}, at::kFloat);
    at::Tensor labels = at::empty({count}, at::kLong);
    auto* label_out = labels.data_ptr<int64_t>();
    const std::vector<int64_t> shape = sample_shape();
    // Decoding dominates; images are independent, so decode them in parallel.
    at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const auto i = static_cast<size_t>(indices[static_cast<size_t>(k)]);
        const at::Tensor image = read_image(files_[i], channels_, resize_);
        MIPIN_CHECK(image.sizes() == at::IntArrayRef(shape), "data set '", name(), "': '",
                    files_[i], "' has shape ", image.sizes(),
                    " but the data set's images have shape ", at::IntArrayRef(shape),
                    "; give size=HxW to resize every image");
        raw[k].copy_(image);
        label_out[k] = labels_[i];
      }
    });
    return {normalize(raw, normalization_, 255.0), labels};
  }

 private:
  std::vector<std::string> files_;
  std::vector<int64_t> labels_;
  int64_t num_classes_;
  int64_t channels_;
  std::pair<int64_t, int64_t> size_;  // H, W of every sample
  std::optional<std::pair<int64_t, int64_t>> resize_;
  Normalization normalization_;
};

// The header of an image file, read from the file's first part (where PNG
// and JPEG headers are) unless it needs more: sizing a data set reads every
// file's header, and decoding whole files for that would read it all twice.
image_codecs::Header image_info(const std::string& path) {
  constexpr std::streamsize kFirstPart = 256 * 1024;
  std::ifstream in(path, std::ios::binary);
  MIPIN_CHECK(in.good(), "cannot read image '", path, "': cannot open the file");
  std::string head(kFirstPart, '\0');
  in.read(head.data(), kFirstPart);
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.size() < static_cast<size_t>(kFirstPart)) return image_codecs::read_header(head, path);
  try {
    return image_codecs::read_header(head, path);
  } catch (const Error&) {
    return image_codecs::read_header(read_file(path), path);
  }
}

// Listing errors (permissions, a vanished folder) become mipin::Error rather
// than std::filesystem_error; broken symbolic links are skipped.
std::vector<std::string> sorted_subfolders(const fs::path& dir) {
  std::error_code ec;
  std::vector<std::string> names;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code ignored;
    if (it->is_directory(ignored)) names.push_back(it->path().filename().string());
  }
  MIPIN_CHECK(!ec, "cannot list the folder '", dir.string(), "': ", ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

// Image files anywhere under dir, sorted by path for a deterministic order.
std::vector<std::string> sorted_images(const fs::path& dir) {
  std::error_code ec;
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ignored;
    if (it->is_regular_file(ignored) && is_image_file(it->path()))
      files.push_back(it->path().string());
  }
  MIPIN_CHECK(!ec, "cannot list the images in '", dir.string(), "': ", ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

at::Tensor read_image(const std::string& path, std::optional<int64_t> channels,
                      std::optional<std::pair<int64_t, int64_t>> size) {
  if (channels) check_channels(*channels, "read_image('" + path + "')");
  if (size) {
    MIPIN_CHECK(size->first > 0 && size->second > 0, "read_image('", path,
                "'): expected a positive size HxW, found ", size->first, "x", size->second);
  }
  const std::string bytes = read_file(path);
  const int64_t wanted = channels ? *channels : image_codecs::read_header(bytes, path).channels;
  at::Tensor image = image_codecs::decode(bytes, path, wanted).to(at::kFloat);
  const int64_t height = image.size(1), width = image.size(2);
  if (size && (size->first != height || size->second != width)) {
    // As torch.nn.functional.interpolate(mode="bilinear", align_corners=False).
    image =
        at::upsample_bilinear2d(image.unsqueeze(0), {size->first, size->second}, false).squeeze(0);
  }
  return image;
}

std::string encode_png(const at::Tensor& image) {
  MIPIN_CHECK(image.defined() && image.scalar_type() == at::kByte,
              "encode_png: expected a uint8 tensor, found ",
              image.defined() ? c10::toString(image.scalar_type()) : "none");
  MIPIN_CHECK(image.dim() == 2 || (image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3 ||
                                                        image.size(0) == 4)),
              "encode_png: expected [H, W] or [C, H, W] with C = 1, 3 or 4, found shape ", image.sizes());
  const at::Tensor hwc =
      (image.dim() == 2 ? image.unsqueeze(2) : image.permute({1, 2, 0})).contiguous().cpu();
  const int height = static_cast<int>(hwc.size(0));
  const int width = static_cast<int>(hwc.size(1));
  const int comp = static_cast<int>(hwc.size(2));
  MIPIN_CHECK(height > 0 && width > 0, "encode_png: expected a non-empty image, found shape ", image.sizes());

  return image_codecs::encode_png(hwc.data_ptr<uint8_t>(), height, width, comp);
}

void write_png(const std::string& path, const at::Tensor& image) {
  std::string png;
  try {
    png = encode_png(image);
  } catch (const Error& e) {
    MIPIN_FAIL("cannot write '", path, "': ", e.what());
  }
  write_file_atomically(path, png);
}

std::unique_ptr<Dataset> open_image_folder(const DataSpec& spec, Split split) {
  const std::string layout =
      "expected DIR/train/<class>/<image> and DIR/test/<class>/<image> with "
      ".png, .jpg or .jpeg images";
  const fs::path root(spec.path);
  std::error_code ec;
  MIPIN_CHECK_AS(not_found, fs::is_directory(root, ec), "image folder data set '", spec.text, "': directory '",
              spec.path, "' not found (", layout, ")");
  const fs::path split_dir = root / to_string(split);
  MIPIN_CHECK(fs::is_directory(split_dir, ec), "image folder data set '", spec.text,
              "': expected a '", to_string(split), "' folder '", split_dir.string(),
              "', found none (", layout, ")");
  if (spec.channels) check_channels(*spec.channels, "image folder data set '" + spec.text + "'");

  // Class indices come from the train split so that both splits agree.
  const fs::path class_root = fs::is_directory(root / "train", ec) ? root / "train" : split_dir;
  const std::vector<std::string> classes = sorted_subfolders(class_root);
  MIPIN_CHECK(!classes.empty(), "image folder data set '", spec.text,
              "': expected one subfolder per class in '", class_root.string(), "', found none (",
              layout, ")");
  for (const std::string& folder : sorted_subfolders(split_dir)) {
    MIPIN_CHECK(std::binary_search(classes.begin(), classes.end(), folder),
                "image folder data set '", spec.text, "': '", (split_dir / folder).string(),
                "' is not one of the classes in '", class_root.string(), "'");
  }

  std::vector<std::string> files;
  std::vector<int64_t> labels;
  for (size_t c = 0; c < classes.size(); ++c) {
    const fs::path class_dir = split_dir / classes[c];
    if (!fs::is_directory(class_dir, ec)) continue;  // a class may be absent from one split
    const std::vector<std::string> found = sorted_images(class_dir);
    files.insert(files.end(), found.begin(), found.end());
    labels.insert(labels.end(), found.size(), static_cast<int64_t>(c));
  }
  MIPIN_CHECK(!files.empty(), "image folder data set '", spec.text,
              "': found no .png, .jpg or .jpeg images in '", split_dir.string(), "/<class>/'");

  const image_codecs::Header first = image_info(files[0]);
  const int64_t channels = spec.channels.value_or(first.channels);
  const int64_t height = first.height, width = first.width;
  std::pair<int64_t, int64_t> size{height, width};
  if (spec.resize) {
    MIPIN_CHECK(spec.resize->first > 0 && spec.resize->second > 0, "image folder data set '",
                spec.text, "': expected a positive size HxW, found ", spec.resize->first, "x",
                spec.resize->second);
    size = *spec.resize;
  } else {
    // Without size= every image must already have the first one's size; the
    // headers tell without decoding, so a mismatch surfaces before training.
    for (const std::string& file : files) {
      const image_codecs::Header header = image_info(file);
      const int64_t h = header.height, w = header.width;
      MIPIN_CHECK(h == height && w == width, "image folder data set '", spec.text, "': '", file,
                  "' is ", h, "x", w, " but '", files[0], "' is ", height, "x", width,
                  "; all images must have the same size (give size=HxW to resize them)");
    }
  }

  auto dataset = std::make_unique<ImageFolderDataset>(
      spec.text, std::move(files), std::move(labels), static_cast<int64_t>(classes.size()),
      channels, size, spec.resize, spec.normalization);
  dataset->set_class_names(classes);
  // Check mean/std against the channel count now, not at the first batch.
  try {
    normalize(at::zeros({1, channels, size.first, size.second}), spec.normalization, 255.0);
  } catch (const Error& e) {
    MIPIN_FAIL("image folder data set '", spec.text, "': ", e.what());
  }
  return dataset;
}

}  // namespace mipin
