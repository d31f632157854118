// The --data syntax, normalisation and the tensor / .npy data sets.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>

#include "mipin/data/dataset.h"
#include "mipin/data/npy.h"
#include "mipin/util/error.h"
#include "support/test_support.h"

namespace mipin {
namespace {

using test::TempDir;
using test::error_of;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(DataSpec, SplitNames) {
  EXPECT_EQ(to_string(Split::Train), "train");
  EXPECT_EQ(to_string(Split::Test), "test");
  EXPECT_EQ(parse_split("train"), Split::Train);
  EXPECT_EQ(parse_split("test"), Split::Test);
  EXPECT_TRUE(contains(error_of([] { parse_split("validation"); }), "'train' or 'test'"));
}

TEST(DataSpec, EveryForm) {
  const DataSpec fashion = parse_data_spec("fashion-mnist");
  EXPECT_EQ(fashion.text, "fashion-mnist");
  EXPECT_EQ(fashion.kind, "idx");
  EXPECT_EQ(fashion.path, "/usr/share/datasets/fashion-mnist");
  EXPECT_FALSE(fashion.normalization.scale);
  EXPECT_TRUE(fashion.normalization.mean.empty());
  EXPECT_TRUE(fashion.normalization.std.empty());

  const DataSpec idx = parse_data_spec("idx:/data/mnist");
  EXPECT_EQ(idx.kind, "idx");
  EXPECT_EQ(idx.path, "/data/mnist");
  const DataSpec npy = parse_data_spec("npy:relative/dir");
  EXPECT_EQ(npy.kind, "npy");
  EXPECT_EQ(npy.path, "relative/dir");
  const DataSpec folder = parse_data_spec("folder:/pets");
  EXPECT_EQ(folder.kind, "folder");
  EXPECT_EQ(folder.path, "/pets");
  EXPECT_FALSE(folder.resize);
  EXPECT_FALSE(folder.channels);

  TempDir dir;
  const DataSpec bare = parse_data_spec(dir.path() + "?size=4x6");
  EXPECT_EQ(bare.kind, "folder");
  EXPECT_EQ(bare.path, dir.path());
  EXPECT_EQ(bare.resize, std::make_pair(int64_t{4}, int64_t{6}));

  const std::string unknown = error_of([] { parse_data_spec("/no/such/dir"); });
  EXPECT_TRUE(contains(unknown, "fashion-mnist, idx:DIR, folder:DIR, npy:DIR")) << unknown;
  EXPECT_TRUE(contains(unknown, "'/no/such/dir' is not a directory")) << unknown;
  EXPECT_TRUE(contains(error_of([] { parse_data_spec("npy:"); }), "expected a directory"));
  EXPECT_TRUE(contains(error_of([] { parse_data_spec(""); }), "fashion-mnist"));
}

TEST(DataSpec, EveryOption) {
  const DataSpec spec = parse_data_spec(
      "folder:/x?mean=0.485,0.456,0.406&std=0.229,0.224,0.225&scale=65535&size=224X112&channels=1");
  EXPECT_EQ(
      spec.text,
      "folder:/x?mean=0.485,0.456,0.406&std=0.229,0.224,0.225&scale=65535&size=224X112&channels=1");
  EXPECT_EQ(spec.path, "/x");
  EXPECT_EQ(spec.normalization.mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(spec.normalization.std, (std::vector<double>{0.229, 0.224, 0.225}));
  EXPECT_EQ(spec.normalization.scale, 65535.0);
  EXPECT_EQ(spec.resize, std::make_pair(int64_t{224}, int64_t{112}));
  EXPECT_EQ(spec.channels, 1);

  const DataSpec single = parse_data_spec("fashion-mnist?mean=0.2860&std=0.3530&scale=1");
  EXPECT_EQ(single.normalization.mean, (std::vector<double>{0.2860}));
  EXPECT_EQ(single.normalization.std, (std::vector<double>{0.3530}));
  EXPECT_EQ(single.normalization.scale, 1.0);
  EXPECT_EQ(parse_data_spec("npy:/d?mean=-1.5e-1").normalization.mean,
            (std::vector<double>{-0.15}));
  EXPECT_EQ(parse_data_spec("folder:/d?channels=3").channels, 3);
}

TEST(DataSpec, BadOptionsListTheValidOnes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"fashion-mnist?colour=red", "unknown option 'colour'"},
      {"fashion-mnist?mean", "expected key=value"},
      {"fashion-mnist?mean=abc", "comma-separated numbers"},
      {"fashion-mnist?mean=0.1,,0.3", "comma-separated numbers"},
      {"fashion-mnist?mean=nan", "comma-separated numbers"},
      {"fashion-mnist?std=0", "positive"},
      {"fashion-mnist?std=0.5,-1", "positive"},
      {"fashion-mnist?scale=0", "positive number"},
      {"fashion-mnist?scale=inf", "positive number"},
      {"fashion-mnist?scale=", "positive number"},
      {"fashion-mnist?mean=0.1&mean=0.2", "given twice"},
      {"fashion-mnist?mean=0.1&", "expected key=value"},
      {"fashion-mnist?", "expected options"},
      {"fashion-mnist?size=28x28", "only to image folders"},
      {"npy:/d?channels=1", "only to image folders"},
      {"folder:/d?size=32", "expected HxW"},
      {"folder:/d?size=0x4", "expected HxW"},
      {"folder:/d?size=4x-4", "expected HxW"},
      {"folder:/d?size=axb", "expected HxW"},
      {"folder:/d?channels=2", "expected 1 or 3"},
  };
  for (const auto& [text, why] : cases) {
    const std::string message = error_of([&, text = text] { parse_data_spec(text); });
    EXPECT_TRUE(contains(message, why)) << text << ": " << message;
    EXPECT_TRUE(contains(message, "valid options: mean=a[,b,c], std=a[,b,c], scale=S, size=HxW"))
        << message;
    EXPECT_TRUE(contains(message, text.substr(0, text.find('?')))) << message;
  }
}

TEST(Normalize, ExactPerChannel) {
  // raw uint8 [N=2, C=3, H=1, W=2]
  const at::Tensor raw = torch::tensor({0, 17, 255, 128, 3, 99, 200, 1, 64, 65, 254, 7}, at::kLong)
                             .to(at::kByte)
                             .view({2, 3, 1, 2});
  Normalization n;
  n.mean = {0.485, 0.456, 0.406};
  n.std = {0.229, 0.224, 0.225};
  const at::Tensor x = normalize(raw, n, 255.0);
  ASSERT_EQ(x.scalar_type(), at::kFloat);
  ASSERT_EQ(x.sizes(), raw.sizes());
  const auto r = raw.accessor<uint8_t, 4>();
  const auto got = x.accessor<float, 4>();
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t c = 0; c < 3; ++c) {
      for (int64_t w = 0; w < 2; ++w) {
        const float expected = static_cast<float>((r[i][c][0][w] / 255.0 - n.mean[c]) / n.std[c]);
        EXPECT_EQ(got[i][c][0][w], expected) << i << "," << c << "," << w;
      }
    }
  }

  // One value applies to every channel; an explicit scale beats the default.
  Normalization one;
  one.mean = {0.5};
  one.std = {0.25};
  one.scale = 2.0;
  const at::Tensor y = normalize(torch::tensor({1.0, 3.0, -2.0}).view({3, 1}), one, 255.0);
  EXPECT_TRUE(at::equal(y, torch::tensor({0.0f, 4.0f, -6.0f}).view({3, 1})));

  // Defaults: divide by the default scale only; 1-D data is one channel.
  EXPECT_TRUE(at::equal(normalize(torch::tensor({2.0f, 4.0f}), Normalization{}, 2.0),
                        torch::tensor({1.0f, 2.0f})));

  Normalization wrong;
  wrong.std = {1, 2};
  EXPECT_TRUE(contains(error_of([&] { normalize(raw, wrong, 255.0); }),
                       "std has 2 values but the data has 3 channels"));
}

TEST(TensorDataset, GetGatherAndNormalisation) {
  const at::Tensor raw = torch::arange(24, at::kLong).to(at::kByte).view({4, 2, 3});
  const at::Tensor labels = torch::tensor({3, 0, 1, 3}, at::kLong);
  Normalization n;
  n.mean = {0.1, 0.2};
  const auto data = make_tensor_dataset("toy", raw, labels, n);
  EXPECT_EQ(data->name(), "toy");
  EXPECT_EQ(data->size(), 4);
  EXPECT_EQ(data->sample_shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(data->num_classes(), 4);
  EXPECT_EQ(make_tensor_dataset("toy", raw, labels, n, 10)->num_classes(), 10);

  const Batch all = data->get(0, 4);
  EXPECT_TRUE(at::equal(all.inputs, (raw.to(at::kDouble) / 255 -
                                     torch::tensor({0.1, 0.2}, at::kDouble).view({1, 2, 1}))
                                        .to(at::kFloat)));
  EXPECT_TRUE(at::equal(all.labels, labels));
  const Batch some = data->gather({3, 1});
  EXPECT_TRUE(at::equal(some.inputs[0], all.inputs[3]));
  EXPECT_TRUE(at::equal(some.labels, torch::tensor({3, 0}, at::kLong)));
  EXPECT_EQ(data->get(2, 2).inputs.sizes(), (std::vector<int64_t>{0, 2, 3}));

  // Float inputs default to scale 1.
  const auto floats =
      make_tensor_dataset("f", torch::full({2, 5}, 0.5), torch::tensor({0, 1}, at::kLong), {});
  EXPECT_TRUE(at::equal(floats->get(0, 2).inputs, torch::full({2, 5}, 0.5f)));

  EXPECT_TRUE(contains(error_of([&] { data->gather({4}); }), "index 4 is out of range"));
  EXPECT_TRUE(contains(error_of([&] { data->gather({-1}); }), "index -1 is out of range"));
  EXPECT_TRUE(contains(error_of([&] { data->get(3, 5); }), "0 <= begin <= end <= 4"));
}

TEST(TensorDataset, ChecksLabelsAndValues) {
  const at::Tensor raw = torch::zeros({5, 3});
  const std::string count =
      error_of([&] { make_tensor_dataset("c", raw, torch::zeros({4}, at::kLong), {}); });
  EXPECT_TRUE(contains(count, "5 inputs but 4 labels")) << count;
  const std::string type =
      error_of([&] { make_tensor_dataset("t", raw, torch::zeros({5}, at::kInt), {}); });
  EXPECT_TRUE(contains(type, "1-D int64 labels")) << type;
  const std::string negative = error_of([&] {
    make_tensor_dataset("n", raw, torch::tensor({0, 1, -2, 0, 1}, at::kLong), {});
  });
  EXPECT_TRUE(contains(negative, "found -2 at index 2")) << negative;
  const std::string range = error_of([&] {
    make_tensor_dataset("r", raw, torch::tensor({0, 1, 2, 0, 1}, at::kLong), {}, 2);
  });
  EXPECT_TRUE(contains(range, "found label 2")) << range;
  const std::string ints = error_of(
      [&] { make_tensor_dataset("i", raw.to(at::kInt), torch::zeros({5}, at::kLong), {}); });
  EXPECT_TRUE(contains(ints, "uint8 or floating-point")) << ints;

  at::Tensor bad = torch::zeros({5, 3});
  bad[1][2] = std::numeric_limits<float>::quiet_NaN();
  bad[3][0] = std::numeric_limits<float>::infinity();
  bad[4][1] = std::numeric_limits<float>::quiet_NaN();
  const std::string nan =
      error_of([&] { make_tensor_dataset("nan", bad, torch::zeros({5}, at::kLong), {}); });
  EXPECT_TRUE(contains(nan, "3 NaN or infinite values (2 NaN, 1 infinite)")) << nan;
  EXPECT_TRUE(contains(nan, "first is in example 1 (flat index 5)")) << nan;

  Normalization wrong;
  wrong.mean = {0, 0};
  const std::string channels =
      error_of([&] { make_tensor_dataset("m", raw, torch::zeros({5}, at::kLong), wrong); });
  EXPECT_TRUE(contains(channels, "mean has 2 values but the data has 3 channels")) << channels;
}

TEST(NpyDataset, OpensAndNormalises) {
  TempDir dir;
  const at::Tensor train_x = torch::arange(5 * 16, at::kLong).to(at::kByte).view({5, 4, 4});
  write_npy(dir.file("train_x.npy"), train_x);
  write_npy(dir.file("train_y.npy"), torch::tensor({0, 1, 2, 3, 4}, at::kLong));
  write_npy(dir.file("test_x.npy"), torch::rand({2, 3, 7}, at::kFloat).view({2, 3, 7}));
  write_npy(dir.file("test_y.npy"), torch::tensor({1, 0}, at::kInt));  // int32 accepted

  const auto train = open_dataset("npy:" + dir.path() + "?mean=0.5&std=0.5", Split::Train);
  EXPECT_EQ(train->sample_shape(), (std::vector<int64_t>{1, 4, 4}));
  EXPECT_EQ(train->num_classes(), 5);
  EXPECT_TRUE(at::equal(train->get(0, 5).inputs,
                        ((train_x.unsqueeze(1).to(at::kDouble) / 255 - 0.5) / 0.5).to(at::kFloat)));

  const auto test = open_dataset("npy:" + dir.path(), Split::Test);
  EXPECT_EQ(test->sample_shape(), (std::vector<int64_t>{1, 3, 7}));
  EXPECT_EQ(test->num_classes(), 5);  // from the train labels
  EXPECT_TRUE(
      at::equal(test->get(0, 2).inputs, read_npy(dir.file("test_x.npy")).unsqueeze(1)));  // scale 1
  EXPECT_TRUE(at::equal(test->get(0, 2).labels, torch::tensor({1, 0}, at::kLong)));
}

TEST(NpyDataset, Errors) {
  TempDir dir;
  at::Tensor x = torch::zeros({3, 2}, at::kFloat);
  x[2][1] = std::numeric_limits<float>::quiet_NaN();
  write_npy(dir.file("train_x.npy"), x);
  write_npy(dir.file("train_y.npy"), torch::zeros({3}, at::kLong));
  const std::string nan = error_of([&] { open_dataset("npy:" + dir.path(), Split::Train); });
  EXPECT_TRUE(contains(nan, "NaN")) << nan;
  EXPECT_TRUE(contains(nan, "npy:" + dir.path())) << nan;

  const std::string missing = error_of([&] { open_dataset("npy:" + dir.path(), Split::Test); });
  EXPECT_TRUE(contains(missing, dir.file("test_x.npy"))) << missing;

  write_npy(dir.file("train_y.npy"), torch::zeros({4}, at::kLong));
  const std::string count = error_of([&] { open_dataset("npy:" + dir.path(), Split::Train); });
  EXPECT_TRUE(contains(count, "3 examples")) << count;
  EXPECT_TRUE(contains(count, "4 labels")) << count;

  write_npy(dir.file("train_y.npy"), torch::zeros({3}, at::kFloat));
  const std::string labels = error_of([&] { open_dataset("npy:" + dir.path(), Split::Train); });
  EXPECT_TRUE(contains(labels, dir.file("train_y.npy"))) << labels;
  EXPECT_TRUE(contains(labels, "int64")) << labels;

  write_npy(dir.file("train_x.npy"), torch::zeros({3, 2}, at::kInt));
  write_npy(dir.file("train_y.npy"), torch::zeros({3}, at::kLong));
  const std::string inputs = error_of([&] { open_dataset("npy:" + dir.path(), Split::Train); });
  EXPECT_TRUE(contains(inputs, dir.file("train_x.npy"))) << inputs;

  // size= and channels= on a programmatically built non-folder spec.
  DataSpec spec = parse_data_spec("npy:" + dir.path());
  spec.channels = 3;
  EXPECT_TRUE(
      contains(error_of([&] { open_dataset(spec, Split::Train); }), "only to image folders"));
}

TEST(FashionMnistSpec, MissingPackageSaysHowToInstall) {
  if (std::filesystem::is_directory("/usr/share/datasets/fashion-mnist")) {
    GTEST_SKIP() << "Fashion-MNIST is installed; the real data is tested in Idx.FashionMnist";
  }
  const std::string message = error_of([] { open_dataset("fashion-mnist", Split::Train); });
  EXPECT_TRUE(contains(message, "apt-get install dataset-fashion-mnist")) << message;
}

}  // namespace
}  // namespace mipin
