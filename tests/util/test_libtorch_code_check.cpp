// TorchScript code that LibTorch 1.13's importer crashes on (a segmentation
// fault, measured with torch.jit.load in Python) is refused with a message
// before LibTorch reads it; code it handles itself is left to it.
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "mipin/torchscript/model_file.h"
#include "support/archive_copy.h"
#include "support/test_support.h"
#include "util/libtorch_code_check.h"

namespace mipin {
namespace {

// mlp_scripted.pt with `line` added to the class body of its first Linear.
std::string with_class_line(const test::TempDir& dir, const std::string& file, const std::string& line) {
  const std::string out = dir.file(file);
  const auto made = test::run_python(
      test::python_archive_copier(test::test_model("mlp_scripted.pt")) +
      "def add_line(n, d):\n"
      "    if n.endswith('.py') and b'class Linear' in d:\n"
      "        return d.replace(b'  __buffers__ = []\\n', b'  __buffers__ = []\\n  " + line + "\\n', 1)\n"
      "    return d\n"
      "copy('" + out + "', change=add_line)\n");
  EXPECT_EQ(made.exit_code, 0) << made.err;
  return out;
}

TEST(CodeCheck, ClassBodyStatementsLibTorchCrashesOnAreRefused) {
  test::TempDir dir;
  const std::vector<std::pair<std::string, std::string>> crashing{
      {"foo = 3", "gives 'foo' a value without a type"},
      {"__parameters__ : int", "declares __parameters__ without a value"},
      {"__forward_hooks__ : int", "declares __forward_hooks__ without a value"},
      {"__annotations__[\"a\"] : int", "__annotations__ entry without a type"},
  };
  int index = 0;
  for (const auto& [line, reason] : crashing) {
    const std::string path = with_class_line(dir, "crash" + std::to_string(index++) + ".pt", line);
    caffe2::serialize::PyTorchStreamReader reader(path);
    const auto problem = code_libtorch_crashes_on(reader);
    ASSERT_TRUE(problem.has_value()) << line;
    EXPECT_NE(problem->find(reason), std::string::npos) << *problem;
    const std::string message = test::error_of([&] { load_torchscript(path); });
    EXPECT_NE(message.find("its TorchScript code is corrupt"), std::string::npos) << message;
  }
  // Lines LibTorch refuses with an error of its own pass the check, and the
  // error is LibTorch's.
  for (const std::string line : {"foo : int = 3", "x.y = 3", "__parameters__ = 3"}) {
    const std::string path = with_class_line(dir, "refused.pt", line);
    caffe2::serialize::PyTorchStreamReader reader(path);
    EXPECT_EQ(code_libtorch_crashes_on(reader), std::nullopt) << line;
    const std::string message = test::error_of([&] { load_torchscript(path); });
    EXPECT_NE(message.find("cannot read the TorchScript model"), std::string::npos) << message;
    EXPECT_EQ(message.find("its TorchScript code is corrupt"), std::string::npos) << message;
  }
}

// An enum's members are values without types: its body is not a module's.
TEST(CodeCheck, EnumsAndModelsAsExportedPass) {
  test::TempDir dir;
  const std::string out = dir.file("enum.pt");
  const auto made = test::run_python(
      "import enum, torch\n"
      "class Mode(enum.Enum):\n"
      "    SCALE = 2\n"
      "    KEEP = 1\n"
      "class M(torch.nn.Module):\n"
      "    def forward(self, x):\n"
      "        return x * Mode.SCALE.value\n"
      "torch.jit.save(torch.jit.script(M()), '" + out + "')\n");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  // torch::save's archive of tensors opens its entries with `__annotations__ = []`.
  const std::string saved = dir.file("saved.pt");
  torch::save(std::vector<at::Tensor>{torch::ones({2}), torch::zeros({3})}, saved);
  for (const std::string path : {out, saved, test::test_model("resnet18.pt"), test::test_model("mlp_scripted.pt")}) {
    caffe2::serialize::PyTorchStreamReader reader(path);
    EXPECT_EQ(code_libtorch_crashes_on(reader), std::nullopt) << path;
  }
}

}  // namespace
}  // namespace mipin
