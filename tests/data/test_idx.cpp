// IDX files: round trips, files made by Python, the real Fashion-MNIST, errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <string>

#include "mipin/data/dataset.h"
#include "mipin/data/idx.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"
#include "support/test_support.h"

namespace mipin {
namespace {

using test::TempDir;
using test::error_of;

constexpr const char* kFashionMnist = "/usr/share/datasets/fashion-mnist";

void run_python_ok(const std::string& script) {
  const test::CommandResult result = test::run_python(script);
  ASSERT_EQ(result.exit_code, 0) << "python failed:\n" << result.out << result.err;
}

// gzip with Python's gzip module, i.e. independently of our zlib use.
void gzip_file(const std::string& from, const std::string& to) {
  run_python_ok("import gzip\nopen('" + to + "', 'wb').write(gzip.compress(open('" + from +
                "', 'rb').read()))\n");
}

at::Tensor random_bytes(at::IntArrayRef sizes) {
  return torch::randint(0, 256, sizes, torch::TensorOptions().dtype(at::kByte));
}

TEST(Idx, PlainRoundTrip) {
  TempDir dir;
  for (const at::Tensor& t :
       {random_bytes({3, 4, 5}), random_bytes({7}), random_bytes({2, 1, 3, 2})}) {
    write_idx(dir.file("a-idx"), t);
    const at::Tensor back = read_idx(dir.file("a-idx"));
    EXPECT_EQ(back.scalar_type(), at::kByte);
    EXPECT_TRUE(at::equal(back, t));
  }
  // The header is the documented 0 0 8 ndim + big-endian sizes.
  write_idx(dir.file("b-idx"), random_bytes({2, 258}));
  const std::string bytes = read_file(dir.file("b-idx"));
  EXPECT_EQ(bytes.substr(0, 12), std::string("\0\0\x08\x02\0\0\0\x02\0\0\x01\x02", 12));
  EXPECT_EQ(bytes.size(), 12u + 2 * 258);
}

TEST(Idx, GzipRoundTrip) {
  TempDir dir;
  const at::Tensor images = random_bytes({10, 6, 5});
  write_idx(dir.file("images-idx3-ubyte"), images);
  gzip_file(dir.file("images-idx3-ubyte"), dir.file("images-idx3-ubyte.gz"));
  const at::Tensor back = read_idx(dir.file("images-idx3-ubyte.gz"));
  EXPECT_EQ(back.sizes(), images.sizes());
  EXPECT_TRUE(at::equal(back, images));
}

TEST(Idx, ReadsBigEndianTypesWrittenByPython) {
  TempDir dir;
  run_python_ok(R"(
import struct, numpy as np
d = ")" + dir.path() +
                R"("
def write(name, code, arr, fmt):
    with open(d + "/" + name, "wb") as f:
        f.write(bytes([0, 0, code, arr.ndim]))
        f.write(struct.pack(">" + "I" * arr.ndim, *arr.shape))
        f.write(arr.astype(fmt).tobytes())
write("i8", 0x09, np.array([-128, -1, 0, 127]), ">i1")
write("i16", 0x0B, np.array([[-30000, 2], [3, 30000]]), ">i2")
write("i32", 0x0C, np.array([-2**31, 1, 2**31 - 1]), ">i4")
write("f32", 0x0D, np.array([[0.5, -1.25, 3e38]]), ">f4")
write("f64", 0x0E, np.array([1e-300, -2.5]), ">f8")
)");
  EXPECT_TRUE(at::equal(read_idx(dir.file("i8")), torch::tensor({-128, -1, 0, 127}, at::kChar)));
  EXPECT_TRUE(at::equal(read_idx(dir.file("i16")),
                        torch::tensor({-30000, 2, 3, 30000}, at::kShort).reshape({2, 2})));
  EXPECT_TRUE(
      at::equal(read_idx(dir.file("i32")), torch::tensor({INT32_MIN, 1, INT32_MAX}, at::kInt)));
  EXPECT_TRUE(at::equal(read_idx(dir.file("f32")),
                        torch::tensor({0.5f, -1.25f, 3e38f}, at::kFloat).reshape({1, 3})));
  EXPECT_TRUE(at::equal(read_idx(dir.file("f64")), torch::tensor({1e-300, -2.5}, at::kDouble)));
}

TEST(Idx, FashionMnist) {
  if (!std::filesystem::is_directory(kFashionMnist)) GTEST_SKIP() << kFashionMnist << " is absent";
  const std::string dir = kFashionMnist;
  const at::Tensor train_images = read_idx(dir + "/train-images-idx3-ubyte.gz");
  const at::Tensor train_labels = read_idx(dir + "/train-labels-idx1-ubyte.gz");
  const at::Tensor test_images = read_idx(dir + "/t10k-images-idx3-ubyte.gz");
  const at::Tensor test_labels = read_idx(dir + "/t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(train_images.sizes(), (std::vector<int64_t>{60000, 28, 28}));
  EXPECT_EQ(train_images.scalar_type(), at::kByte);
  EXPECT_EQ(train_labels.sizes(), (std::vector<int64_t>{60000}));
  EXPECT_EQ(test_images.sizes(), (std::vector<int64_t>{10000, 28, 28}));
  EXPECT_EQ(test_labels.sizes(), (std::vector<int64_t>{10000}));
  EXPECT_EQ(train_labels[0].item<int64_t>(), 9);  // the first image is an ankle boot
  for (const at::Tensor& labels : {train_labels, test_labels}) {
    EXPECT_EQ(labels.min().item<int64_t>(), 0);
    EXPECT_EQ(labels.max().item<int64_t>(), 9);
  }
  // Each class has 6000 training examples.
  EXPECT_TRUE(
      at::equal(at::bincount(train_labels.to(at::kLong)), torch::full({10}, 6000, at::kLong)));

  const auto train = open_dataset("fashion-mnist", Split::Train);
  EXPECT_EQ(train->size(), 60000);
  EXPECT_EQ(train->sample_shape(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(train->num_classes(), 10);
  const Batch batch = train->get(0, 2);
  EXPECT_EQ(batch.labels[0].item<int64_t>(), 9);
  EXPECT_TRUE(
      at::equal(batch.inputs[0][0], (train_images[0].to(at::kDouble) / 255).to(at::kFloat)));
  EXPECT_EQ(open_dataset("fashion-mnist", Split::Test)->size(), 10000);
}

TEST(Idx, TruncatedFileNamesFileAndSizes) {
  TempDir dir;
  const std::string path = dir.file("train-images-idx3-ubyte");
  write_idx(path, random_bytes({4, 5, 5}));
  const std::string bytes = read_file(path);
  test::write_text(path, bytes.substr(0, bytes.size() - 10));
  const std::string message = error_of([&] { read_idx(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  EXPECT_NE(message.find("expected 100 bytes"), std::string::npos) << message;
  EXPECT_NE(message.find("found 90"), std::string::npos) << message;

  test::write_text(path, bytes.substr(0, 9));  // inside the sizes
  EXPECT_NE(error_of([&] { read_idx(path); }).find(path), std::string::npos);
}

TEST(Idx, TruncatedGzipNamesFile) {
  TempDir dir;
  const std::string plain = dir.file("x-idx3-ubyte");
  const std::string gz = plain + ".gz";
  write_idx(plain, random_bytes({50, 20, 20}));
  gzip_file(plain, gz);
  const std::string bytes = read_file(gz);
  test::write_text(gz, bytes.substr(0, bytes.size() / 2));
  const std::string message = error_of([&] { read_idx(gz); });
  EXPECT_NE(message.find(gz), std::string::npos) << message;
}

TEST(Idx, NotIdxOrMissingNamesFile) {
  TempDir dir;
  const std::string path = dir.file("bogus");
  test::write_text(path, "GIF89a this is not an IDX file");
  const std::string message = error_of([&] { read_idx(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("not an IDX file"), std::string::npos) << message;

  const std::string missing = dir.file("missing-idx1-ubyte");
  EXPECT_NE(error_of([&] { read_idx(missing); }).find(missing), std::string::npos);
  EXPECT_NE(error_of([&] { write_idx(dir.file("f"), torch::zeros({3})); }).find("uint8"),
            std::string::npos);
}

TEST(Idx, LabelAndImageCountMismatchNamesBothCounts) {
  TempDir dir;
  write_idx(dir.file("train-images-idx3-ubyte"), random_bytes({5, 4, 4}));
  write_idx(dir.file("train-labels-idx1-ubyte"), torch::tensor({0, 1, 2, 1}, at::kByte));
  const std::string message = error_of([&] { open_dataset("idx:" + dir.path(), Split::Train); });
  EXPECT_NE(message.find("5 images"), std::string::npos) << message;
  EXPECT_NE(message.find("4 labels"), std::string::npos) << message;
}

TEST(Idx, DatasetFromPlainAndGzipFiles) {
  TempDir dir;
  const at::Tensor images = random_bytes({6, 3, 2});
  const at::Tensor labels = torch::tensor({0, 1, 2, 0, 1, 2}, at::kByte);
  write_idx(dir.file("train-images-idx3-ubyte"), images);
  write_idx(dir.file("train-labels-idx1-ubyte"), labels);
  // The test split is gzipped and lacks class 2: it still reports 3 classes.
  write_idx(dir.file("plain-images"), images.slice(0, 0, 2));
  write_idx(dir.file("plain-labels"), labels.slice(0, 0, 2));
  gzip_file(dir.file("plain-images"), dir.file("t10k-images-idx3-ubyte.gz"));
  gzip_file(dir.file("plain-labels"), dir.file("t10k-labels-idx1-ubyte.gz"));

  const auto train = open_dataset("idx:" + dir.path() + "?mean=0.5&std=0.5", Split::Train);
  EXPECT_EQ(train->size(), 6);
  EXPECT_EQ(train->sample_shape(), (std::vector<int64_t>{1, 3, 2}));
  EXPECT_EQ(train->num_classes(), 3);
  const Batch batch = train->get(0, 6);
  // Computed in float64 and rounded once, exactly as the data set does.
  EXPECT_TRUE(at::equal(batch.inputs,
                        ((images.unsqueeze(1).to(at::kDouble) / 255 - 0.5) / 0.5).to(at::kFloat)));
  EXPECT_TRUE(at::equal(batch.labels, labels.to(at::kLong)));

  const auto test = open_dataset("idx:" + dir.path(), Split::Test);
  EXPECT_EQ(test->size(), 2);
  EXPECT_EQ(test->num_classes(), 3);

  const std::string missing =
      error_of([&] { open_dataset("idx:" + dir.path() + "/nope", Split::Train); });
  EXPECT_NE(missing.find(dir.path() + "/nope"), std::string::npos) << missing;
}

}  // namespace
}  // namespace mipin
