// One fit across processes from the command line (`--processes N`, and the
// torchrun variables): the same inverse as one process, a killed rank that
// stops the others with its name and no file, and a checkpointed fit that
// survives SIGKILL with the same bytes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "mipin/attribution/patterns.h"
#include "mipin/inverse/inverse.h"
#include "mipin/util/free_port.h"
#include "support/test_support.h"

namespace mipin {
namespace {
namespace fs = std::filesystem;

// Every operator (and fork weight) within `tolerance` relative (Frobenius).
void expect_same_inverse(const Inverse& a, const Inverse& b, double tolerance, const std::string& what) {
  ASSERT_EQ(a.operators().size(), b.operators().size()) << what;
  for (const auto& [i, op] : b.operators()) {
    const at::Tensor other = a.operators().at(i).to(torch::kDouble);
    const double error = ((other - op.to(torch::kDouble)).norm() / op.to(torch::kDouble).norm()).item<double>();
    EXPECT_LE(error, tolerance) << what << ": operator of node " << i;
  }
  ASSERT_EQ(a.forks().size(), b.forks().size()) << what;
  for (const auto& [v, w] : b.forks()) {
    EXPECT_LE(((a.forks().at(v) - w).norm() / w.norm()).item<double>(), tolerance) << what << ": fork " << v;
  }
}

// Random images in an npy data set of the residual test model's shape.
std::string residual_data(const test::TempDir& dir) {
  const auto made = test::run_python(
      "import numpy as np\nrng = np.random.default_rng(0)\n"
      "for split, n in (('train', 96), ('test', 16)):\n"
      "    np.save('" + dir.file("") + "' + split + '_x.npy', rng.random((n, 3, 12, 12), dtype=np.float32))\n"
      "    np.save('" + dir.file("") + "' + split + '_y.npy', rng.integers(0, 3, n).astype(np.int64))\n");
  EXPECT_EQ(made.exit_code, 0) << made.err;
  return " --data npy:" + dir.path();
}

TEST(JobCli, OneTwoAndFourProcessesFitTheSameInverse) {
  test::TempDir dir;
  const std::string cnn = " --model " + test::test_model("zoo_cnn.pt") + " --examples 512 --batch-size 64 --threads 1";
  const std::string residual = " --model " + test::test_model("residual_scripted.pt") + residual_data(dir) +
                               " --batch-size 12 --fork fitted --threads 1";
  struct Case {
    std::string name, flags;
  };
  for (const Case& c : {Case{"cnn", cnn}, Case{"cnn-iterative", cnn + " --solver iterative --iterations 4"},
                        Case{"residual", residual}}) {
    const auto one = test::run_cli("fit" + c.flags + " --out " + dir.file(c.name + "-1.mipin"));
    ASSERT_EQ(one.exit_code, 0) << one.err;
    const Inverse reference = Inverse::load(dir.file(c.name + "-1.mipin"));
    for (const int n : {2, 4}) {
      const std::string out = dir.file(c.name + "-" + std::to_string(n) + ".mipin");
      const auto r = test::run_cli("fit" + c.flags + " --processes " + std::to_string(n) + " --out " + out + " --json");
      ASSERT_EQ(r.exit_code, 0) << c.name << " on " << n << ": " << r.err;
      const auto j = nlohmann::json::parse(r.out);
      EXPECT_EQ(j["processes"], n);
      // The sums crossed between the processes, pass by pass.
      for (const auto& p : j["passes"]) EXPECT_GT(p["reduced_bytes"].get<int64_t>(), 0) << c.name;
      expect_same_inverse(Inverse::load(out), reference, 1e-6, c.name + " on " + std::to_string(n) + " processes");
    }
  }
}

TEST(JobCli, TorchrunLaunchesTheToolAsItLaunchesTraining) {
  test::TempDir dir;
  const std::string fit = " fit --model " + test::test_model("zoo_cnn.pt") +
                          " --examples 512 --batch-size 64 --threads 1 --out ";
  ASSERT_EQ(test::run_cli(fit + dir.file("one.mipin")).exit_code, 0);
  // The README's command (Debian's torchrun needs -r 2 -t 2), on a port the
  // kernel says is free; another program may take it before torchrun binds
  // it, so a port lost that way is tried again with a fresh one.
  test::CommandResult r;
  for (int attempt = 0; attempt < 3; ++attempt) {
    r = test::run_command(std::string(MIPIN_PYTHON) +
                          " -m torch.distributed.run --nproc_per_node 2 --no_python -r 2 -t 2 --master_port " +
                          std::to_string(free_port()) + " " + MIPIN_CLI + fit + dir.file("torchrun.mipin"));
    std::string said = r.out + r.err;
    std::transform(said.begin(), said.end(), said.begin(), [](unsigned char c) { return std::tolower(c); });
    if (r.exit_code == 0 || said.find("already in use") == std::string::npos) break;
  }
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  expect_same_inverse(Inverse::load(dir.file("torchrun.mipin")), Inverse::load(dir.file("one.mipin")), 1e-6,
                      "torchrun, 2 processes");
}

TEST(JobCli, TwoProcessesFitTheSamePatterns) {
  test::TempDir dir;
  const std::string flags = " --method pattern --model " + test::test_model("zoo_cnn.pt") +
                            " --examples 512 --batch-size 64 --threads 1 --out ";
  ASSERT_EQ(test::run_cli("fit" + flags + dir.file("1.patterns")).exit_code, 0);
  const auto two = test::run_cli("fit --processes 2" + flags + dir.file("2.patterns"));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const Patterns a = Patterns::load(dir.file("1.patterns")), b = Patterns::load(dir.file("2.patterns"));
  ASSERT_EQ(a.patterns.size(), b.patterns.size());
  for (const auto& [i, p] : a.patterns) {
    EXPECT_LE(((b.patterns.at(i) - p).norm() / p.norm()).item<double>(), 1e-6) << "layer " << i;
  }
}

// Every number within 1e-6 relative (or 1e-9 absolute), everything else equal.
void expect_same_numbers(const nlohmann::json& a, const nlohmann::json& b, const std::string& path = "") {
  ASSERT_EQ(a.type(), b.type()) << path;
  if (a.is_object()) {
    ASSERT_EQ(a.size(), b.size()) << path;
    for (const auto& [key, value] : a.items()) {
      ASSERT_TRUE(b.contains(key)) << path << "/" << key;
      expect_same_numbers(value, b[key], path + "/" + key);
    }
  } else if (a.is_array()) {
    ASSERT_EQ(a.size(), b.size()) << path;
    for (size_t i = 0; i < a.size(); ++i) expect_same_numbers(a[i], b[i], path + "/" + std::to_string(i));
  } else if (a.is_number()) {
    const double x = a.get<double>(), y = b.get<double>();
    EXPECT_LE(std::abs(x - y), std::max(1e-9, 1e-6 * std::abs(x))) << path;
  } else {
    EXPECT_EQ(a, b) << path;
  }
}

TEST(JobCli, TwoProcessesEvaluateTheSame) {
  test::TempDir dir;
  const std::string model = " --model " + test::test_model("zoo_cnn.pt") + " --threads 1";
  ASSERT_EQ(test::run_cli("fit" + model + " --examples 512 --out " + dir.file("cnn.mipin")).exit_code, 0);
  const std::string evaluate = "evaluate --json" + model + " --inverse " + dir.file("cnn.mipin") +
                               " --methods mipin,gradient --examples 300 --metrics "
                               "completeness,minimality,reconstruction,additivity,deletion";
  const auto one = test::run_cli(evaluate);
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const auto two = test::run_cli(evaluate + " --processes 2");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  expect_same_numbers(nlohmann::json::parse(one.out), nlohmann::json::parse(two.out));
}

// Starts a command in the background, and after `delay` seconds SIGKILLs
// the process `victim` names (a shell expression of the command's pid $P);
// prints "<exit code> <seconds from the kill to the exit>".
test::CommandResult kill_during(const std::string& command, double delay, const std::string& victim) {
  return test::run_command("{ " + command + " 2>&1 & P=$!; sleep " + std::to_string(delay) + "; V=" + victim +
                           "; kill -9 $V; T0=$(date +%s.%N); wait $P; RC=$?; "
                           "echo \"RESULT $RC $(awk \"BEGIN { print $(date +%s.%N) - $T0 }\")\"; }");
}

TEST(JobCli, AKilledRankStopsTheOthersNamingItAndLeavesNoFile) {
  test::TempDir dir;
  const std::string out = dir.file("cnn.mipin");
  const auto r = kill_during(std::string(MIPIN_CLI) + " fit --model " + test::test_model("zoo_cnn.pt") +
                                 " --examples 30000 --threads 1 --processes 2 --timeout 5 --out " + out,
                             4, "$(pgrep -P $P | head -1)");
  const size_t at = r.out.rfind("RESULT ");
  ASSERT_NE(at, std::string::npos) << r.out << r.err;
  int code = 0;
  double seconds = 0;
  std::sscanf(r.out.c_str() + at, "RESULT %d %lf", &code, &seconds);
  EXPECT_NE(code, 0) << r.out;
  EXPECT_LE(seconds, 5 + 10) << r.out;
  EXPECT_NE(r.out.find("lost rank 1"), std::string::npos) << r.out;
  // Nothing at all in the output's directory: no file, no temporary.
  EXPECT_TRUE(fs::is_empty(dir.path())) << r.out;
}

// Starts a fit in the background and SIGKILLs it `delay` seconds after it
// logs `line` (its own progress, so that the moment does not depend on how
// loaded the machine is).
void kill_after_line(const std::string& command, const std::string& line, double delay, const std::string& log) {
  test::run_command("{ " + command + " >" + log + " 2>&1 & P=$!; until grep -q '" + line + "' " + log +
                    " || ! kill -0 $P 2>/dev/null; do sleep 0.02; done; sleep " + std::to_string(delay) +
                    "; kill -9 $P; wait $P; }");
}

TEST(JobCli, AKilledFitResumesFromItsCheckpointToTheSameBytes) {
  test::TempDir dir;
  const std::string fit = std::string(MIPIN_CLI) + " fit --model " + test::test_model("zoo_cnn.pt") +
                          " --examples 2000 --batch-size 100 --threads 1";
  const auto whole = test::run_command(fit + " --out " + dir.file("whole.mipin"));
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  const std::string expected = test::read_text(dir.file("whole.mipin"));
  // Killed early, mid-way and late in the fit (its four passes fit layers
  // 9, 7, 3 and 0; the last two take seconds each); each rerun resumes.
  int resumed = 0;
  const std::pair<const char*, double> moments[] = {{"fitted layer 9", 0.2}, {"fitted layer 7", 1.0},
                                                    {"fitted layer 3", 1.0}};
  for (const auto& [line, delay] : moments) {
    const std::string name = "killed-after-layer-" + std::string(1, line[std::strlen(line) - 1]);
    const std::string run = fit + " --checkpoint " + dir.file(name) + " --checkpoint-every 0 --out " +
                            dir.file(name + ".mipin");
    kill_after_line(run, line, delay, dir.file(name + ".log"));
    EXPECT_FALSE(fs::exists(dir.file(name + ".mipin"))) << "the fit ended before the kill " << delay << " s after '"
                                                        << line << "'";
    const auto rerun = test::run_command(run);
    ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
    resumed += rerun.err.find("resuming from") != std::string::npos;
    EXPECT_EQ(test::read_text(dir.file(name + ".mipin")), expected) << "killed " << delay << " s after " << line;
    // Done: the checkpoint goes, so that a rerun starts afresh.
    EXPECT_FALSE(fs::exists(dir.file(name + "/inverse.checkpoint")));
  }
  EXPECT_EQ(resumed, 3);
}

TEST(JobCli, ACheckpointOfAnotherFitIsRefused) {
  test::TempDir dir;
  const std::string fit = std::string(MIPIN_CLI) + " fit --batch-size 100 --threads 1 --checkpoint " +
                          dir.file("ck") + " --checkpoint-every 0 --out " + dir.file("x.mipin");
  const std::string cnn = " --model " + test::test_model("zoo_cnn.pt");
  kill_after_line(fit + cnn + " --examples 2000", "fitted layer 9", 0.2, dir.file("killed.log"));
  ASSERT_TRUE(fs::exists(dir.file("ck/inverse.checkpoint")));
  test::expect_error(test::run_command(fit + cnn + " --examples 2000 --alpha 0.5"),
                     {"belongs to another fit", "options"});
  test::expect_error(test::run_command(fit + cnn + " --examples 1900"), {"belongs to another fit", "examples"});
  test::expect_error(test::run_command(fit + " --examples 2000 --model " + test::test_model("zoo_mlp.pt")),
                     {"belongs to another fit", "model_fingerprint"});
  EXPECT_FALSE(fs::exists(dir.file("x.mipin")));
}

TEST(JobCli, ProcessesWithDifferentModelsAreAnError) {
  test::TempDir dir;
  const std::string env = "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port()) + " WORLD_SIZE=2 ";
  const std::string fit = std::string(MIPIN_CLI) + " fit --examples 256 --threads 1 --timeout 20 --out " +
                          dir.file("x.mipin") + " --model ";
  const auto r = test::run_command("{ " + env + "RANK=0 " + fit + test::test_model("zoo_cnn.pt") + " & " + env +
                                   "RANK=1 " + fit + test::test_model("zoo_mlp.pt") +
                                   "; R1=$?; wait $!; R0=$?; echo \"RESULT $R0 $R1\"; }");
  EXPECT_NE(r.out.find("RESULT 1 1"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("disagree on the model"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("x.mipin")));
}

}  // namespace
}  // namespace mipin
