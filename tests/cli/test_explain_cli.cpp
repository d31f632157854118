// mipin fit / explain / evaluate from the command line, and their refusals.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "mipin/data/image_folder.h"
#include "mipin/data/npy.h"
#include "support/test_support.h"

namespace mipin {
namespace {
namespace fs = std::filesystem;

using test::expect_error;

// Two trained CNNs on a small image data set, and an inverse for the first.
// Made by the first test process that asks and shared, read-only, by the
// others (ctest runs each test in a process of its own; training in every
// one was a minute of the suite, three under the sanitizers). The directory
// is named after the tool's build, so a rebuilt tool makes them afresh.
class ExplainCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const fs::path tool(MIPIN_CLI);
    const auto built = static_cast<uint64_t>(fs::last_write_time(tool).time_since_epoch().count());
    dir_ = new std::string(std::string(MIPIN_TEST_MODELS_DIR) + "/explain-cli-" + std::to_string(built) + "-" +
                           std::to_string(fs::file_size(tool)));
    if (!fs::exists(*dir_)) make_shared_files();
    fit_json_ = new nlohmann::json(nlohmann::json::parse(test::read_text(file("fit.json"))));
  }
  // Made aside and renamed into place whole: a process that finds the
  // directory finds everything in it, and of two that race, one wins.
  static void make_shared_files() {
    // Beside the directory, on its file system: a rename does not cross one.
    const std::string made = *dir_ + ".making-" + std::to_string(::getpid());
    struct Cleanup {
      std::string path;
      ~Cleanup() { fs::remove_all(path); }
    } cleanup{made};
    const std::string data = made + "/data";
    fs::create_directories(data);
    torch::manual_seed(0);
    for (const char* split : {"train", "test"}) {
      const int64_t n = std::string(split) == "train" ? 256 : 32;
      at::Tensor labels = torch::randint(0, 3, {n}, torch::kLong);
      // Class c is a bright square in corner c.
      at::Tensor x = torch::rand({n, 1, 12, 12}) * 0.2;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t c = labels[i].item<int64_t>();
        x[i].slice(1, c * 4, c * 4 + 4).slice(2, c * 4, c * 4 + 4) += 0.8;
      }
      write_npy(data + "/" + split + "_x.npy", x);
      write_npy(data + "/" + split + "_y.npy", labels);
    }
    for (const char* seed : {"1", "2"}) {
      const auto r = test::run_cli("train --arch cnn --data npy:" + data + " --epochs 2 --seed " + seed +
                                   " --out " + made + "/cnn" + seed + ".pt");
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    const auto fit = test::run_cli("fit --model " + made + "/cnn1.pt --data npy:" + data + " --out " + made +
                                   "/cnn1.mipin --json");
    ASSERT_EQ(fit.exit_code, 0) << fit.err;
    test::write_text(made + "/fit.json", fit.out);
    std::error_code lost_the_race;  // the other's files are the same
    fs::rename(made, *dir_, lost_the_race);
  }
  static void TearDownTestSuite() {
    delete fit_json_;
    delete dir_;
  }
  static std::string file(const std::string& name) { return *dir_ + "/" + name; }
  static std::string data() { return "npy:" + file("data"); }
  static std::string model() { return file("cnn1.pt"); }
  static std::string inverse() { return file("cnn1.mipin"); }

  static std::string* dir_;
  static nlohmann::json* fit_json_;
};
std::string* ExplainCli::dir_ = nullptr;
nlohmann::json* ExplainCli::fit_json_ = nullptr;

TEST_F(ExplainCli, FitReportsEveryLayer) {
  const auto& j = *fit_json_;
  EXPECT_EQ(j["examples"], 256);
  ASSERT_EQ(j["layers"].size(), 4u);
  for (const auto& l : j["layers"]) {
    EXPECT_EQ(l["solver"], "exact");
    EXPECT_GT(l["r2"].get<double>(), 0.0) << l.dump();
  }
}

TEST_F(ExplainCli, ExplainWritesArraysPicturesAndJson) {
  test::TempDir out;
  const auto r = test::run_cli("explain --model " + model() + " --method mipin --inverse " + inverse() +
                               " --data " + data() + " --split test --index 2:6 --json --out " + out.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["explanations"].size(), 4u);
  for (const auto& e : j["explanations"]) {
    const at::Tensor a = read_npy(e["files"]["attribution"]);
    EXPECT_EQ(a.sizes().vec(), (std::vector<int64_t>{1, 12, 12}));
    EXPECT_EQ(e["target"], e["prediction"]);
    EXPECT_TRUE(fs::exists(e["files"]["heatmap"].get<std::string>()));
    EXPECT_EQ(read_image(e["files"]["overlay"]).size(0), 3);
    EXPECT_TRUE(fs::exists(out.file(e["name"].get<std::string>() + ".json")));
  }
  const at::Tensor grid = read_image(j["grid"]);
  EXPECT_EQ(grid.size(0), 3);
  EXPECT_GT(grid.size(2), grid.size(1));  // one column per example, three rows
  // The gradient works the same way, from a PNG input too.
  write_png(out.file("in.png"), torch::randint(0, 255, {1, 12, 12}).to(torch::kByte));
  const auto g = test::run_cli("explain --model " + model() + " --method gradient --input " +
                               out.file("in.png") + " --target 2 --out " + out.file("grad"));
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_TRUE(fs::exists(out.file("grad/in.npy")));
  EXPECT_TRUE(fs::exists(out.file("grad/grid.png")));
}

TEST_F(ExplainCli, ExplainStreamsAWholeSplitInBatches) {
  test::TempDir out;
  // 256 training examples in batches of 16: every one listed, and the same
  // bytes as runs over some of the batches alone (a batch's maps depend on
  // its size through the kernels' blocking, so the runs share batches).
  const std::string args = "explain --model " + model() + " --method gradient --data " + data() +
                           " --split train --batch-size 16 --out ";
  const auto r = test::run_cli(args + out.file("all") + " --index all --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["explanations"].size(), 256u);
  EXPECT_EQ(j, nlohmann::json::parse(test::read_text(out.file("all/explanations.json"))));
  for (int64_t i = 0; i < 256; ++i) EXPECT_EQ(j["explanations"][size_t(i)]["index"], i);
  const auto part = test::run_cli(args + out.file("part") + " --index 192:240");
  ASSERT_EQ(part.exit_code, 0) << part.err;
  for (int64_t i = 192; i < 240; ++i) {
    const std::string name = "train_00" + std::to_string(i) + ".npy";
    EXPECT_TRUE(at::equal(read_npy(out.file("all/" + name)), read_npy(out.file("part/" + name)))) << name;
  }
  EXPECT_NE(part.out.find("explained 48 input(s)"), std::string::npos) << part.out;
  EXPECT_NE(part.out.find("... and 16 more"), std::string::npos) << part.out;
  // The grid shows the first 32.
  const auto first = test::run_cli(args + out.file("first") + " --index 0:32");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_TRUE(at::equal(read_image(j["grid"]), read_image(out.file("first/grid.png"))));
}

TEST_F(ExplainCli, AFailedExplanationLeavesNothingBehind) {
  test::TempDir out;
  // 40 images, the 36th cut short after its header: the third batch of 16
  // fails to decode after two were written.
  const std::string data = out.file("images");
  for (const char* split : {"train/a", "train/b", "train/c", "test/a"}) fs::create_directories(data + "/" + split);
  for (int i = 0; i < 40; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/test/a/%03d.png", i);
    write_png(data + name, torch::randint(0, 255, {1, 12, 12}).to(torch::kByte));
    if (i == 35) test::write_text(data + name, test::read_text(data + name).substr(0, 40));
  }
  for (const char* c : {"a", "b", "c"}) {
    write_png(data + "/train/" + c + "/0.png", torch::randint(0, 255, {1, 12, 12}).to(torch::kByte));
  }
  const std::string args = "explain --model " + model() + " --method gradient --data folder:" + data +
                           " --index 0:40 --batch-size 16 --out ";
  test::expect_error(test::run_cli(args + out.file("maps")), {"035.png"});
  EXPECT_FALSE(fs::exists(out.file("maps")));
  // Into a folder that was there: what the run wrote goes, what was there stays.
  fs::create_directories(out.file("kept"));
  test::write_text(out.file("kept/notes.txt"), "mine");
  test::expect_error(test::run_cli(args + out.file("kept")), {"035.png"});
  EXPECT_EQ(std::distance(fs::directory_iterator(out.file("kept")), fs::directory_iterator()), 1);
  // The first 32 alone explain fine.
  const auto r = test::run_cli("explain --model " + model() + " --method gradient --data folder:" + data +
                               " --index 0:32 --batch-size 16 --out " + out.file("maps"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out.file("maps/test_00031.npy")));
}

TEST_F(ExplainCli, EvaluateWritesTheDocumentedKeys) {
  const auto r = test::run_cli("evaluate --model " + model() + " --inverse " + inverse() + " --data " +
                               data() + " --metrics completeness,minimality,reconstruction --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto& m = j["methods"]["mipin"];
  EXPECT_EQ(j["examples"], 32);
  for (const char* key : {"agreement", "accuracy"}) EXPECT_TRUE(m["completeness"].contains(key));
  for (const char* key : {"accuracy", "agreement", "chance"}) EXPECT_TRUE(m["minimality"].contains(key));
  EXPECT_DOUBLE_EQ(m["minimality"]["chance"].get<double>(), 1.0 / 3.0);
  EXPECT_EQ(m["reconstruction"]["layers"].size(), 10u);
  EXPECT_FALSE(m.contains("additivity"));
}

TEST_F(ExplainCli, EvaluateWritesEveryMetricOfEveryMethodAndTheReport) {
  test::TempDir out;
  // Boxes on the bright corner square that decides each test example's class.
  const auto labels = read_npy(file("data/test_y.npy"));
  nlohmann::json boxes = {{"format", "mipin-clutter/1"}, {"train", nlohmann::json::array()},
                          {"test", nlohmann::json::array()}};
  for (int64_t i = 0; i < labels.size(0); ++i) {
    const int64_t c = labels[i].item<int64_t>();
    char file[16];
    std::snprintf(file, sizeof file, "%03lld", static_cast<long long>(i));
    boxes["test"].push_back({{"file", file}, {"box", {c * 4, c * 4, c * 4 + 4, c * 4 + 4}}});
  }
  test::write_text(out.file("boxes.json"), boxes.dump());
  const auto r = test::run_cli("evaluate --model " + model() + " --inverse " + inverse() + " --data " + data() +
                               " --methods mipin,gradient,random --metrics all --randomization-examples 8"
                               " --refit-examples 128 --gallery 3 --boxes " + out.file("boxes.json") +
                               " --out " + out.file("eval"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("report.html"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(test::read_text(out.file("eval/metrics.json")));
  for (const char* name : {"mipin", "gradient", "random"}) {
    const auto& m = j["methods"][name];
    for (const char* key : {"completeness", "minimality", "deletion", "insertion", "localization",
                            "randomization", "ground_truth"}) {
      EXPECT_TRUE(m.contains(key)) << name << " lacks " << key;
    }
    EXPECT_EQ(m["randomization"].size(), 4u) << name;
    EXPECT_EQ(m["deletion"]["curve"].size(), 21u) << name;
  }
  EXPECT_TRUE(j["methods"]["mipin"].contains("reconstruction"));
  EXPECT_TRUE(j["methods"]["mipin"].contains("additivity"));
  const std::string html = test::read_text(out.file("eval/report.html"));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  size_t images = 0;
  for (size_t at = html.find("<img "); at != std::string::npos; at = html.find("<img ", at + 1)) ++images;
  EXPECT_EQ(images, 3u + 3u * 3u);
}

TEST_F(ExplainCli, EveryMethodRunsFromTheCommandLine) {
  const auto list = test::run_cli("methods --json");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  const auto methods = nlohmann::json::parse(list.out)["methods"];
  EXPECT_GE(methods.size(), 17u);
  test::TempDir out;
  const auto fit = test::run_cli("fit --method pattern --model " + model() + " --data " + data() +
                                 " --out " + out.file("cnn1.patterns") + " --json");
  ASSERT_EQ(fit.exit_code, 0) << fit.err;
  EXPECT_EQ(nlohmann::json::parse(fit.out)["layers"], 4);
  for (const auto& m : methods) {
    const std::string name = m["name"];
    const auto r = test::run_cli("explain --model " + model() + " --method " + name + " --inverse " +
                                 inverse() + " --patterns " + out.file("cnn1.patterns") + " --data " +
                                 data() + " --index 0:3" +
                                 test::method_flags(m, {{"steps", "8"}, {"samples", "4"}, {"patch", "3"},
                                                        {"stride", "3"}, {"baseline", "mean"}}) +
                                 " --out " + out.file(name));
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
    EXPECT_EQ(read_npy(out.file(name + "/test_00001.npy")).sizes().vec(), (std::vector<int64_t>{1, 12, 12}))
        << name;
  }
  expect_error(test::run_cli("explain --model " + model() + " --method patternnet --data " + data() +
                             " --out " + out.file("none")),
               {"--patterns"});
  expect_error(test::run_cli("explain --model " + model() + " --method sharpness --data " + data() +
                             " --out " + out.file("none")),
               {"unknown method 'sharpness'", "lrp-epsilon"});
}

TEST_F(ExplainCli, RefusesAnInverseFittedForAnotherModel) {
  test::TempDir out;
  expect_error(test::run_cli("explain --model " + file("cnn2.pt") + " --inverse " + inverse() +
                             " --data " + data() + " --out " + out.path()),
               {"another model", "cnn1.mipin", "mipin fit"});
  expect_error(test::run_cli("evaluate --model " + file("cnn2.pt") + " --inverse " + inverse() +
                             " --data " + data()),
               {"another model"});
  EXPECT_TRUE(fs::is_empty(out.path()));
}

TEST_F(ExplainCli, RefusesATruncatedInverse) {
  test::TempDir out;
  const std::string whole = test::read_text(inverse());
  test::write_text(out.file("cut.mipin"), whole.substr(0, whole.size() / 2));
  expect_error(test::run_cli("explain --model " + model() + " --inverse " + out.file("cut.mipin") +
                             " --data " + data() + " --out " + out.file("maps")),
               {"cut.mipin", "truncated"});
  EXPECT_FALSE(fs::exists(out.file("maps")));
}

TEST_F(ExplainCli, RefusesATargetOutOfRange) {
  test::TempDir out;
  expect_error(test::run_cli("explain --model " + model() + " --inverse " + inverse() + " --data " +
                             data() + " --target 3 --out " + out.file("maps")),
               {"target class 3 is out of range", "3 classes"});
  expect_error(test::run_cli("explain --model " + model() + " --inverse " + inverse() + " --data " +
                             data() + " --target -1 --out " + out.file("maps")),
               {"out of range"});
  EXPECT_FALSE(fs::exists(out.file("maps")));
}

TEST_F(ExplainCli, RefusesNaNAndMisshapenInputs) {
  test::TempDir out;
  at::Tensor x = torch::rand({1, 12, 12});
  x[0][3][3] = std::nanf("");
  write_npy(out.file("nan.npy"), x);
  expect_error(test::run_cli("explain --model " + model() + " --inverse " + inverse() + " --input " +
                             out.file("nan.npy") + " --out " + out.file("maps")),
               {"nan.npy", "NaN"});
  write_npy(out.file("wide.npy"), torch::rand({1, 12, 13}));
  expect_error(test::run_cli("explain --model " + model() + " --inverse " + inverse() + " --input " +
                             out.file("wide.npy") + " --out " + out.file("maps")),
               {"shape mismatch", "[1, 12, 12]"});
  expect_error(test::run_cli("explain --model " + model() + " --inverse " + inverse() +
                             " --data fashion-mnist --out " + out.file("maps")),
               {"shape mismatch", "[1, 28, 28]", "[1, 12, 12]"});
  expect_error(test::run_cli("explain --model " + model() + " --method mipin --data " + data() +
                             " --out " + out.file("maps")),
               {"--inverse"});
  EXPECT_FALSE(fs::exists(out.file("maps")));
}

// Where the data set names its classes (Fashion-MNIST does), explain says
// them next to the numbers, on the terminal and in the JSON.
TEST(ExplainClasses, NamesTheClassesWhereTheDataSetHasThem) {
  test::TempDir out;
  const auto r = test::run_cli("explain --model " + test::test_model("zoo_cnn.pt") +
                               " --method gradient --data fashion-mnist --index 0:2 --out " + out.file("maps"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(test::read_text(out.file("maps/test_00000.json")));
  EXPECT_EQ(j["label"], 9);  // the first Fashion-MNIST test image is an ankle boot
  EXPECT_EQ(j["label_name"], "Ankle boot");
  const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                       "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  EXPECT_EQ(j["prediction_name"], names.at(j["prediction"].get<size_t>()));
  EXPECT_NE(r.out.find("label 9 (Ankle boot)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("prediction " + std::to_string(j["prediction"].get<int>()) + " (" +
                       j["prediction_name"].get<std::string>() + ")"),
            std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace mipin
