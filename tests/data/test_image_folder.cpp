// PNG/JPEG decoding and the class-per-subfolder data set.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "mipin/data/dataset.h"
#include "mipin/data/image_folder.h"
#include "mipin/util/error.h"
#include "support/test_support.h"

namespace mipin {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::error_of;

// A [C, H, W] uint8 image of one colour.
at::Tensor solid(std::vector<int64_t> colour, int64_t height, int64_t width) {
  const auto c = static_cast<int64_t>(colour.size());
  return torch::tensor(colour, at::kLong)
      .to(at::kByte)
      .view({c, 1, 1})
      .expand({c, height, width})
      .contiguous();
}

// Writes a solid-colour JPEG with PIL; false when PIL is unavailable.
bool write_jpeg(const std::string& path, int r, int g, int b, int width, int height) {
  const test::CommandResult result = test::run_python(
      "from PIL import Image\nImage.new('RGB', (" + std::to_string(width) + ", " +
      std::to_string(height) + "), (" + std::to_string(r) + ", " + std::to_string(g) + ", " +
      std::to_string(b) + ")).save('" + path + "', quality=95)\n");
  return result.exit_code == 0;
}

TEST(ImageFile, PngRoundTrip) {
  TempDir dir;
  const at::Tensor rgb = torch::randint(0, 256, {3, 5, 7}, torch::TensorOptions().dtype(at::kByte));
  write_png(dir.file("rgb.png"), rgb);
  const at::Tensor back = read_image(dir.file("rgb.png"));
  EXPECT_EQ(back.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(back, rgb.to(at::kFloat)));

  const at::Tensor grey = torch::randint(0, 256, {4, 6}, torch::TensorOptions().dtype(at::kByte));
  write_png(dir.file("grey.png"), grey);
  EXPECT_TRUE(at::equal(read_image(dir.file("grey.png")), grey.unsqueeze(0).to(at::kFloat)));
  // Grey promoted to RGB repeats the channel.
  EXPECT_TRUE(
      at::equal(read_image(dir.file("grey.png"), 3), grey.to(at::kFloat).expand({3, 4, 6})));

  // RGBA drops the alpha channel by default.
  const at::Tensor rgba =
      torch::randint(0, 256, {4, 3, 3}, torch::TensorOptions().dtype(at::kByte));
  write_png(dir.file("rgba.png"), rgba);
  EXPECT_TRUE(at::equal(read_image(dir.file("rgba.png")), rgba.slice(0, 0, 3).to(at::kFloat)));
}

TEST(ImageFile, BilinearResizeMatchesAlignCornersFalse) {
  TempDir dir;
  write_png(dir.file("ramp.png"), torch::tensor({0, 255}, at::kLong).to(at::kByte).view({1, 2}));
  const at::Tensor wide =
      read_image(dir.file("ramp.png"), std::nullopt, std::make_pair(int64_t{1}, int64_t{4}));
  // Source positions (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped to [0, 1].
  EXPECT_TRUE(at::allclose(wide, torch::tensor({0.0f, 63.75f, 191.25f, 255.0f}).view({1, 1, 4})));

  write_png(dir.file("solid.png"), solid({10, 20, 30}, 10, 12));
  const at::Tensor small =
      read_image(dir.file("solid.png"), std::nullopt, std::make_pair(int64_t{3}, int64_t{5}));
  EXPECT_EQ(small.sizes(), (std::vector<int64_t>{3, 3, 5}));
  EXPECT_TRUE(at::allclose(small, solid({10, 20, 30}, 3, 5).to(at::kFloat)));
}

TEST(ImageFile, JpegWrittenByPil) {
  TempDir dir;
  if (!write_jpeg(dir.file("a.jpg"), 200, 100, 50, 8, 6))
    GTEST_SKIP() << "python3 PIL is unavailable";
  const at::Tensor image = read_image(dir.file("a.jpg"));
  EXPECT_EQ(image.sizes(), (std::vector<int64_t>{3, 6, 8}));
  EXPECT_TRUE(at::allclose(image, solid({200, 100, 50}, 6, 8).to(at::kFloat), 0, 4)) << image;
  EXPECT_EQ(read_image(dir.file("a.jpg"), 1).sizes(), (std::vector<int64_t>{1, 6, 8}));
}

// PIL, the reader most training pipelines use, decodes the same files and
// writes what it sees as plain 8-bit PNGs: the decoders and the colour
// conversions must agree with it pixel for pixel.
TEST(ImageFile, DecodingAndConversionsMatchPil) {
  TempDir dir;
  const test::CommandResult made = test::run_python(
      "import os, random\n"
      "from PIL import Image\n"
      "random.seed(0)\n"
      "d = '" + dir.path() + "'\n"
      "def noise(mode, size, n):\n"
      "    return Image.frombytes(mode, size, bytes(random.randrange(256) for _ in range(size[0] * size[1] * n)))\n"
      "rgb = noise('RGB', (13, 7), 3)\n"
      "rgb.save(d + '/rgb.png'); rgb.convert('L').save(d + '/rgb-as-grey.png')\n"
      "rgba = noise('RGBA', (5, 9), 4)\n"
      "rgba.save(d + '/rgba.png'); rgba.convert('RGB').save(d + '/rgba-as-rgb.png')\n"
      "pal = noise('P', (6, 6), 1); pal.putpalette([random.randrange(256) for _ in range(768)])\n"
      "pal.save(d + '/palette.png'); pal.convert('RGB').save(d + '/palette-as-rgb.png')\n"
      "photo = noise('RGB', (16, 12), 3).resize((64, 48), Image.BILINEAR)\n"
      "photo.save(d + '/photo.jpg', quality=90)\n"
      "Image.open(d + '/photo.jpg').convert('RGB').save(d + '/photo-decoded.png')\n"
      "photo.convert('L').save(d + '/grey.jpg', quality=90)\n"
      "Image.open(d + '/grey.jpg').save(d + '/grey-decoded.png')\n"
      "Image.open(d + '/photo.jpg').convert('L').save(d + '/photo-as-grey.png')\n"
      "Image.open(d + '/grey.jpg').convert('RGB').save(d + '/grey-as-rgb.png')\n");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto same = [&](const std::string& file, std::optional<int64_t> channels, const std::string& expected) {
    const at::Tensor got = read_image(dir.file(file), channels);
    const at::Tensor want = read_image(dir.file(expected));
    ASSERT_EQ(got.sizes(), want.sizes()) << file;
    EXPECT_EQ((got - want).abs().max().item<float>(), 0) << file << " as " << expected;
  };
  same("rgb.png", 1, "rgb-as-grey.png");
  same("rgba.png", std::nullopt, "rgba-as-rgb.png");
  same("palette.png", std::nullopt, "palette-as-rgb.png");
  same("photo.jpg", std::nullopt, "photo-decoded.png");
  same("grey.jpg", std::nullopt, "grey-decoded.png");
  same("photo.jpg", 1, "photo-as-grey.png");
  same("grey.jpg", 3, "grey-as-rgb.png");
}

// 16-bit samples become 8-bit ones by rounding v / 257 (v * 255 / 65535),
// with no gamma conversion: a file without gamma information is sRGB.
TEST(ImageFile, SixteenBitPngIsRescaledNotReEncoded) {
  TempDir dir;
  const test::CommandResult made = test::run_python(
      "import struct, zlib\n"
      "values = [0, 1, 128, 129, 257, 32767, 32768, 65406, 65535]\n"
      "raw = b''.join(b'\\x00' + struct.pack('>H', v) for v in values)\n"
      "def chunk(kind, data):\n"
      "    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))\n"
      "png = b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 1, len(values), 16, 0, 0, 0, 0))\n"
      "png += chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')\n"
      "open('" + dir.file("grey16.png") + "', 'wb').write(png)\n");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const at::Tensor image = read_image(dir.file("grey16.png"));
  const std::vector<float> expected{0, 0, 0, 1, 1, 127, 128, 254, 255};
  EXPECT_TRUE(at::equal(image.flatten(), torch::tensor(expected))) << image.flatten();
}

TEST(ImageFile, CorruptOrMissingFileNamesTheFile) {
  TempDir dir;
  const std::string path = dir.file("broken.png");
  test::write_text(path, std::string("\x89PNG\r\n\x1a\n", 8) + "garbage instead of chunks");
  const std::string message = error_of([&] { read_image(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("cannot decode image"), std::string::npos) << message;
  EXPECT_NE(error_of([&] { read_image(dir.file("none.png")); }).find(dir.file("none.png")),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              write_png(dir.file("x.png"), torch::zeros({2, 3, 3}));
            }).find("uint8"),
            std::string::npos);
}

// DIR/train/{cat,dog}, DIR/test/{cat,dog} with PNGs of assorted sizes and
// channel counts, plus a JPEG when PIL is available.
class ImageFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* d : {"train/cat", "train/dog/more", "test/cat", "test/dog"}) {
      fs::create_directories(dir_.file(d));
    }
    write_png(dir_.file("train/cat/a.png"), solid({10, 20, 30}, 10, 12));
    write_png(dir_.file("train/cat/b.PNG"), solid({40}, 6, 6).squeeze(0));    // grey
    write_png(dir_.file("train/dog/c.png"), solid({50, 60, 70, 255}, 4, 4));  // RGBA
    write_png(dir_.file("train/dog/more/e.png"), solid({1, 2, 3}, 8, 8));     // nested folder
    test::write_text(dir_.file("train/dog/notes.txt"), "not an image");
    have_jpeg_ = write_jpeg(dir_.file("train/dog/d.jpg"), 200, 100, 50, 9, 7);
    write_png(dir_.file("test/cat/f.png"), solid({5, 5, 5}, 8, 8));
    write_png(dir_.file("test/dog/g.png"), solid({6, 6, 6}, 8, 8));
  }
  std::string spec(const std::string& options) const { return "folder:" + dir_.path() + options; }

  TempDir dir_;
  bool have_jpeg_ = false;
};

TEST_F(ImageFolder, ShapesLabelsAndNormalisation) {
  const auto train =
      open_dataset(spec("?size=8x8&channels=3&mean=0.5,0.25,0&std=0.5,0.25,2"), Split::Train);
  const int64_t n = have_jpeg_ ? 5 : 4;
  EXPECT_EQ(train->size(), n);
  EXPECT_EQ(train->num_classes(), 2);
  EXPECT_EQ(train->sample_shape(), (std::vector<int64_t>{3, 8, 8}));

  const Batch batch = train->get(0, n);
  EXPECT_EQ(batch.inputs.sizes(), (std::vector<int64_t>{n, 3, 8, 8}));
  EXPECT_EQ(batch.inputs.scalar_type(), at::kFloat);
  // Sorted: cat/a.png, cat/b.PNG, dog/c.png, [dog/d.jpg], dog/more/e.png
  const std::vector<int64_t> labels =
      have_jpeg_ ? std::vector<int64_t>{0, 0, 1, 1, 1} : std::vector<int64_t>{0, 0, 1, 1};
  EXPECT_TRUE(at::equal(batch.labels, torch::tensor(labels, at::kLong)));

  const double mean[] = {0.5, 0.25, 0}, stdev[] = {0.5, 0.25, 2};
  auto expect_colour = [&](int64_t index, std::vector<double> rgb) {
    for (int64_t c = 0; c < 3; ++c) {
      const float expected = static_cast<float>((rgb[c] / 255 - mean[c]) / stdev[c]);
      const at::Tensor plane = batch.inputs[index][c];
      EXPECT_FLOAT_EQ(plane.min().item<float>(), expected) << "image " << index << " channel " << c;
      EXPECT_FLOAT_EQ(plane.max().item<float>(), expected) << "image " << index << " channel " << c;
    }
  };
  expect_colour(0, {10, 20, 30});
  expect_colour(1, {40, 40, 40});
  expect_colour(2, {50, 60, 70});
  expect_colour(n - 1, {1, 2, 3});
  if (have_jpeg_) {
    EXPECT_NEAR(batch.inputs[3][0].mean().item<float>(), (200.0 / 255 - 0.5) / 0.5, 0.05);
  }

  // gather picks in the given order; the test split shares the classes.
  const Batch picked = train->gather({2, 0});
  EXPECT_TRUE(at::equal(picked.inputs[0], batch.inputs[2]));
  EXPECT_TRUE(at::equal(picked.labels, torch::tensor({1, 0}, at::kLong)));
  const auto test = open_dataset(spec("?size=8x8&channels=3"), Split::Test);
  EXPECT_EQ(test->size(), 2);
  EXPECT_TRUE(at::equal(test->get(0, 2).labels, torch::tensor({0, 1}, at::kLong)));
  EXPECT_NE(error_of([&] { train->gather({n}); }).find("out of range"), std::string::npos);
}

TEST_F(ImageFolder, DefaultChannelsComeFromTheFirstImage) {
  const auto grey = open_dataset(spec("?size=4x4&channels=1"), Split::Train);
  EXPECT_EQ(grey->sample_shape(), (std::vector<int64_t>{1, 4, 4}));
  // The test split's first image (cat/f.png) is RGB and every image is 8x8,
  // so no option is needed; the bare directory form is the same as folder:.
  const auto test = open_dataset(dir_.path(), Split::Test);
  EXPECT_EQ(test->sample_shape(), (std::vector<int64_t>{3, 8, 8}));
  EXPECT_NEAR(test->get(0, 1).inputs.max().item<float>(), 5.0 / 255, 1e-7);
}

TEST_F(ImageFolder, DifferentSizesWithoutResizeNameTheFile) {
  const std::string message = error_of([&] { open_dataset(spec(""), Split::Train); });
  EXPECT_NE(message.find("b.PNG"), std::string::npos) << message;
  EXPECT_NE(message.find("size=HxW"), std::string::npos) << message;
}

TEST_F(ImageFolder, CorruptImageIsReportedWhenGathered) {
  const std::string corrupt = dir_.file("train/dog/zz.png");
  test::write_text(corrupt, "\x13\x37 random bytes that are not a PNG at all \xff\xfe");
  const auto train = open_dataset(spec("?size=8x8"), Split::Train);
  const std::string message = error_of([&] { train->get(0, train->size()); });
  EXPECT_NE(message.find(corrupt), std::string::npos) << message;
  EXPECT_NO_THROW(train->get(0, 1));
}

TEST_F(ImageFolder, LayoutErrors) {
  fs::remove_all(dir_.file("test"));
  const std::string missing = error_of([&] { open_dataset(spec("?size=8x8"), Split::Test); });
  EXPECT_NE(missing.find(dir_.file("test")), std::string::npos) << missing;
  EXPECT_NE(missing.find("DIR/train/<class>/<image>"), std::string::npos) << missing;

  fs::create_directories(dir_.file("test/cat"));
  const std::string empty = error_of([&] { open_dataset(spec("?size=8x8"), Split::Test); });
  EXPECT_NE(empty.find("found no .png, .jpg or .jpeg images"), std::string::npos) << empty;

  fs::create_directories(dir_.file("test/horse"));
  const std::string unknown = error_of([&] { open_dataset(spec("?size=8x8"), Split::Test); });
  EXPECT_NE(unknown.find("horse"), std::string::npos) << unknown;

  const std::string nodir =
      error_of([&] { open_dataset("folder:" + dir_.file("nowhere"), Split::Train); });
  EXPECT_NE(nodir.find(dir_.file("nowhere")), std::string::npos) << nodir;
}

TEST_F(ImageFolder, MeanPerChannelMustMatchChannels) {
  const std::string message =
      error_of([&] { open_dataset(spec("?size=8x8&channels=3&mean=0.1,0.2"), Split::Train); });
  EXPECT_NE(message.find("mean has 2 values"), std::string::npos) << message;
  EXPECT_NE(message.find("3 channels"), std::string::npos) << message;
}

}  // namespace
}  // namespace mipin
