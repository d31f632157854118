// The `mipin` command as a user meets it: help, info, train, and one clear
// message with a non-zero exit for every kind of bad input.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "mipin/data/idx.h"
#include "mipin/data/image_folder.h"
#include "mipin/data/npy.h"
#include "support/test_support.h"

namespace mipin {
namespace {
namespace fs = std::filesystem;

using test::expect_error;

// Nothing half-written: the directory holds no model and no temporary file.
void expect_no_output(const std::string& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(name.find(".pt"), std::string::npos) << "left behind: " << name;
  }
}

// A tiny npy:DIR data set of 1x8x8 images in 3 classes.
void write_npy_dataset(const std::string& dir, int64_t train_n, int64_t train_labels_n) {
  fs::create_directories(dir);
  torch::manual_seed(0);
  write_npy(dir + "/train_x.npy", torch::rand({train_n, 1, 8, 8}));
  write_npy(dir + "/train_y.npy", torch::randint(0, 3, {train_labels_n}, torch::kLong));
  write_npy(dir + "/test_x.npy", torch::rand({12, 1, 8, 8}));
  write_npy(dir + "/test_y.npy", torch::randint(0, 3, {12}, torch::kLong));
}

TEST(Cli, HelpTeachesEveryCommand) {
  const auto top = test::run_cli("--help");
  EXPECT_EQ(top.exit_code, 0);
  for (const char* cmd : {"train", "info", "check"}) {
    EXPECT_NE(top.out.find(cmd), std::string::npos) << top.out;
    const auto sub = test::run_cli(std::string(cmd) + " --help");
    EXPECT_EQ(sub.exit_code, 0);
    EXPECT_NE(sub.out.find("Example"), std::string::npos) << sub.out;
  }
  EXPECT_NE(test::run_cli("").exit_code, 0);
  EXPECT_NE(test::run_cli("frobnicate").exit_code, 0);
}

TEST(Cli, InfoListsVgg16Layers) {
  const auto r = test::run_cli("info --json " + test::test_model("vgg16.pt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["layer_counts"]["Conv2d"], 13);
  EXPECT_EQ(j["layer_counts"]["Linear"], 3);
  EXPECT_EQ(j["num_classes"], 1000);
  EXPECT_EQ(j["parameters"], 138357544);  // torchvision's VGG16
  EXPECT_EQ(j["layers"].back()["output_shape"], nlohmann::json::array({1000}));
  const auto human = test::run_cli("info " + test::test_model("vgg16.pt"));
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("13 Conv2d"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("[512, 14, 14]"), std::string::npos) << human.out;
}

TEST(Cli, InfoShowsVgg11BatchNormFolded) {
  const auto r = test::run_cli("info --json " + test::test_model("vgg11_bn.pt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["layer_counts"].contains("BatchNorm2d")) << j.dump();
  EXPECT_EQ(j["layer_counts"]["Conv2d"], 8);
  EXPECT_NE(j["notices"].dump().find("folded 8 BatchNorm2d"), std::string::npos) << j.dump();
}

TEST(Cli, InfoInputShapeOption) {
  const auto ok = test::run_cli("info --json --input-shape 3,16,16 " + test::test_model("view_cnn.pt"));
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  expect_error(test::run_cli("info --input-shape 3,2,2 " + test::test_model("view_cnn.pt")),
               {"cannot take inputs of shape [3, 2, 2]", "AvgPool2d"});
  expect_error(test::run_cli("info --input-shape 3,x " + test::test_model("view_cnn.pt")),
               {"expected a shape like"});
}

// A traced model without metadata: info lists its layers without shapes;
// explain takes the shape from a .npy input (one example or a batch) and
// says which it took, and refuses one the model cannot take.
TEST(Cli, NoQuestionTheInputAlreadyAnswers) {
  test::TempDir dir;
  const std::string model = dir.file("plain.pt");
  // Saved as a user does, with no mipin.json.
  const auto exported = test::run_python(
      "import torch\n"
      "m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),\n"
      "                        torch.nn.Flatten(), torch.nn.Linear(16, 5)).eval()\n"
      "torch.jit.trace(m, torch.zeros(1, 3, 16, 16)).save('" + model + "')\n");
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const auto info = test::run_cli("info --json " + model);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const auto j = nlohmann::json::parse(info.out);
  EXPECT_TRUE(j["input_shape"].is_null());
  EXPECT_GT(j["layers"].size(), 3u);
  EXPECT_TRUE(j["layers"][0]["output_shape"].is_null());
  EXPECT_NE(j["notices"].dump().find("--input-shape"), std::string::npos);
  const auto human = test::run_cli("info " + model);
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("Conv2d("), std::string::npos) << human.out;
  write_npy(dir.file("batch.npy"), torch::rand({2, 3, 16, 16}));
  write_npy(dir.file("one.npy"), torch::rand({3, 16, 16}));
  for (const char* file : {"batch.npy", "one.npy"}) {
    const auto r = test::run_cli("explain --model " + model + " --method gradient --input " + dir.file(file) +
                                 " --out " + dir.file(std::string(file) + ".out"));
    ASSERT_EQ(r.exit_code, 0) << file << ": " << r.err;
    EXPECT_NE(r.err.find("input shape [3, 16, 16] taken from"), std::string::npos) << r.err;
  }
  EXPECT_EQ(read_npy(dir.file("batch.npy.out/batch_1.npy")).sizes().vec(), (std::vector<int64_t>{3, 16, 16}));
  EXPECT_EQ(read_npy(dir.file("one.npy.out/one.npy")).sizes().vec(), (std::vector<int64_t>{3, 16, 16}));
  write_npy(dir.file("tiny.npy"), torch::rand({3, 2, 2}));
  expect_error(test::run_cli("explain --model " + model + " --method gradient --input " + dir.file("tiny.npy") +
                             " --out " + dir.file("tiny")),
               {"cannot take the inputs of", "tiny.npy", "[3, 2, 2]"});
}

TEST(Cli, BadModelFiles) {
  test::TempDir dir;
  expect_error(test::run_cli("info " + dir.file("missing.pt")), {"not found", "missing.pt"});
  // Truncated: the first half of a real archive.
  const std::string whole = test::read_text(test::test_model("zoo_cnn.pt"));
  test::write_text(dir.file("truncated.pt"), whole.substr(0, whole.size() / 2));
  expect_error(test::run_cli("info " + dir.file("truncated.pt")), {"truncated.pt", "truncated"});
  test::write_text(dir.file("text.pt"), "this is not a model");
  expect_error(test::run_cli("info " + dir.file("text.pt")), {"text.pt"});
}

TEST(Cli, TrainWritesAModelThatInfoAndPythonRead) {
  test::TempDir dir;
  write_npy_dataset(dir.file("data"), 96, 96);
  const std::string args = "train --arch mlp --data npy:" + dir.file("data") +
                           " --epochs 1 --batch-size 16 --seed 3 --json --out ";
  const auto r = test::run_cli(args + dir.file("a.pt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["train_examples"], 96);
  EXPECT_EQ(j["test_examples"], 12);
  EXPECT_GE(j["test_accuracy"].get<double>(), 0.0);
  // Same seed, same model.
  const auto again = test::run_cli(args + dir.file("b.pt"));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["fingerprint"], j["fingerprint"]);
  const auto info = test::run_cli("info --json " + dir.file("a.pt"));
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)["fingerprint"], j["fingerprint"]);
  const auto py = test::run_python("import torch\nm = torch.jit.load('" + dir.file("a.pt") +
                                   "')\nprint(tuple(m(torch.zeros(5, 1, 8, 8)).shape))\n");
  EXPECT_EQ(py.exit_code, 0) << py.err;
  EXPECT_NE(py.out.find("(5, 3)"), std::string::npos) << py.out;
}

TEST(Cli, TrainRefusesBadData) {
  test::TempDir dir;
  const std::string out = " --epochs 1 --out " + dir.file("model.pt");

  expect_error(test::run_cli("train --data npy:" + dir.file("nowhere") + out), {"nowhere"});

  // Labels whose count differs from the images.
  write_npy_dataset(dir.file("mismatch"), 20, 19);
  expect_error(test::run_cli("train --arch mlp --data npy:" + dir.file("mismatch") + out),
               {"20", "19"});

  // A corrupt .npy.
  write_npy_dataset(dir.file("corrupt"), 20, 20);
  test::write_text(dir.file("corrupt") + "/train_x.npy", "\x93NUMPY garbage");
  expect_error(test::run_cli("train --arch mlp --data npy:" + dir.file("corrupt") + out),
               {"train_x.npy"});

  // NaN in the data.
  write_npy_dataset(dir.file("nan"), 20, 20);
  at::Tensor x = torch::rand({20, 1, 8, 8});
  x[3][0][2][2] = std::nanf("");
  write_npy(dir.file("nan") + "/train_x.npy", x);
  expect_error(test::run_cli("train --arch mlp --data npy:" + dir.file("nan") + out), {"NaN"});

  // A truncated IDX file.
  const std::string idx = dir.file("idx");
  fs::create_directories(idx);
  write_idx(idx + "/train-images-idx3-ubyte", torch::randint(0, 255, {10, 8, 8}, torch::kByte));
  write_idx(idx + "/train-labels-idx1-ubyte", torch::randint(0, 3, {10}, torch::kByte));
  write_idx(idx + "/t10k-images-idx3-ubyte", torch::randint(0, 255, {4, 8, 8}, torch::kByte));
  write_idx(idx + "/t10k-labels-idx1-ubyte", torch::randint(0, 3, {4}, torch::kByte));
  const std::string images = test::read_text(idx + "/train-images-idx3-ubyte");
  test::write_text(idx + "/train-images-idx3-ubyte", images.substr(0, images.size() - 7));
  expect_error(test::run_cli("train --arch mlp --data idx:" + idx + out),
               {"train-images-idx3-ubyte"});

  // A corrupt image in an image folder.
  const std::string folder = dir.file("images");
  for (const char* split : {"train", "test"}) {
    for (const char* cls : {"a", "b"}) {
      fs::create_directories(folder + "/" + split + "/" + cls);
      write_png(folder + "/" + split + "/" + cls + "/0.png",
                torch::randint(0, 255, {1, 8, 8}, torch::kByte));
    }
  }
  test::write_text(folder + "/train/b/broken.png", "\x89PNG but not really");
  expect_error(test::run_cli("train --arch mlp --data folder:" + folder + out), {"broken.png"});

  expect_error(test::run_cli("train --arch mlp --data fashion-mnist?colour=blue" + out),
               {"colour"});
  expect_no_output(dir.path());
}

}  // namespace
}  // namespace mipin

namespace mipin {
namespace {

TEST(Cli, DataClutterWritesAnImageFolderWithBoxes) {
  test::TempDir dir;
  const std::string out = dir.file("clutter");
  const auto r = test::run_cli("data clutter --data fashion-mnist --out " + out +
                               " --train 30 --test 10 --canvas 40 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto boxes = nlohmann::json::parse(test::read_text(out + "/boxes.json"));
  ASSERT_EQ(boxes["train"].size(), 30u);
  ASSERT_EQ(boxes["test"].size(), 10u);
  const auto data = open_dataset("folder:" + out, Split::Test);
  EXPECT_EQ(data->size(), 10);
  EXPECT_EQ(data->sample_shape(), (std::vector<int64_t>{1, 40, 40}));
  for (const auto& e : boxes["test"]) {
    const auto b = e["box"];
    EXPECT_EQ(b[2].get<int64_t>() - b[0].get<int64_t>(), 28);
    EXPECT_LE(b[2].get<int64_t>(), 40);
    EXPECT_TRUE(fs::exists(out + "/" + e["file"].get<std::string>()));
  }
  expect_error(test::run_cli("data clutter --data fashion-mnist --out " + out + " --train 2 --test 2"),
               {"already exists"});
  expect_error(test::run_cli("data clutter --data fashion-mnist --out " + dir.file("big") +
                             " --canvas 20 --train 2 --test 2"),
               {"canvas"});
  EXPECT_FALSE(fs::exists(dir.file("big")));
}

// The motifs data set end to end: written as .npy series with spans, read
// back as [1, 1, T], a conv1d net trained on it, and the pointing game scored
// from the spans without naming them.
TEST(Cli, DataMotifsTrainsAConv1dNetAndScoresThePointingGame) {
  test::TempDir dir;
  const std::string out = dir.file("motifs");
  const auto r = test::run_cli("data motifs --out " + out + " --train 400 --test 50 --length 64 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto boxes = nlohmann::json::parse(test::read_text(out + "/boxes.json"));
  ASSERT_EQ(boxes["format"], "mipin-motifs/1");
  ASSERT_EQ(boxes["test"].size(), 50u);
  const auto data = open_dataset("npy:" + out, Split::Test);
  EXPECT_EQ(data->sample_shape(), (std::vector<int64_t>{1, 1, 64}));
  const at::Tensor y = read_npy(out + "/test_y.npy");
  for (const auto& e : boxes["test"]) {
    const int64_t i = e["index"].get<int64_t>();
    EXPECT_EQ(e["label"].get<int64_t>(), y[i].item<int64_t>());
    const auto span = e["span"].get<std::vector<int64_t>>();
    EXPECT_EQ(span[1] - span[0], 24);
    EXPECT_EQ(e["box"].get<std::vector<int64_t>>(), (std::vector<int64_t>{0, span[0], 1, span[1]}));
  }
  const std::string model = dir.file("conv1d.pt");
  const auto t = test::run_cli("train --arch conv1d --data npy:" + out + " --epochs 1 --out " + model);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const std::string report = dir.file("eval");
  const auto e = test::run_cli("evaluate --model " + model + " --data npy:" + out +
                               " --methods occlusion,random --metrics localization --out " + report);
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const auto metrics = nlohmann::json::parse(test::read_text(report + "/metrics.json"));
  const auto& located = metrics["methods"]["occlusion"]["localization"];
  EXPECT_NEAR(located["box_area_fraction"].get<double>(), 24.0 / 64.0, 1e-9);
  expect_error(test::run_cli("data motifs --out " + out), {"already exists"});
  expect_error(test::run_cli("data motifs --out " + dir.file("bad") + " --classes 12"), {"2 to 8 classes"});
  EXPECT_FALSE(fs::exists(dir.file("bad")));
}

}  // namespace
}  // namespace mipin
