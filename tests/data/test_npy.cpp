// .npy reading and writing, checked against numpy itself in both directions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <string>

#include "mipin/data/npy.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"
#include "support/test_support.h"

namespace mipin {
namespace {

using test::TempDir;
using test::error_of;

void expect_identical(const at::Tensor& actual, const at::Tensor& expected) {
  EXPECT_EQ(actual.scalar_type(), expected.scalar_type());
  EXPECT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(at::equal(actual, expected)) << actual << "\nvs\n" << expected;
}

void run_python_ok(const std::string& script) {
  const test::CommandResult result = test::run_python(script);
  ASSERT_EQ(result.exit_code, 0) << "python failed:\n" << result.out << result.err;
}

TEST(Npy, RoundTripsEveryDtype) {
  TempDir dir;
  const at::Tensor base = torch::arange(24).reshape({2, 3, 4});
  const std::vector<at::Tensor> tensors = {
      base.to(at::kFloat) / 7,
      base.to(at::kDouble) / 7,
      (base * 10).to(at::kByte),
      (base - 12).to(at::kInt) * 100000,
      (base - 12).to(at::kLong) * int64_t{1000000000000},
  };
  for (const at::Tensor& t : tensors) {
    const std::string path = dir.file(std::string(c10::toString(t.scalar_type())) + ".npy");
    write_npy(path, t);
    expect_identical(read_npy(path), t);
  }
}

TEST(Npy, RoundTripsScalarsEmptyAndNonContiguous) {
  TempDir dir;
  const at::Tensor scalar = torch::tensor(3.5, at::kDouble).reshape({});
  write_npy(dir.file("scalar.npy"), scalar);
  expect_identical(read_npy(dir.file("scalar.npy")), scalar);

  const at::Tensor empty = torch::zeros({0, 5}, at::kFloat);
  write_npy(dir.file("empty.npy"), empty);
  expect_identical(read_npy(dir.file("empty.npy")), empty);

  const at::Tensor transposed = torch::arange(6, at::kInt).reshape({2, 3}).t();
  write_npy(dir.file("t.npy"), transposed);
  expect_identical(read_npy(dir.file("t.npy")), transposed.contiguous());
}

TEST(Npy, HeaderIsVersion1AlignedTo64Bytes) {
  TempDir dir;
  for (int64_t n : {1, 7, 123456}) {
    write_npy(dir.file("a.npy"), torch::zeros({n, 2}, at::kFloat));
    const std::string bytes = read_file(dir.file("a.npy"));
    ASSERT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
    const size_t header =
        static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    EXPECT_EQ((10 + header) % 64, 0u);
    EXPECT_EQ(bytes[10 + header - 1], '\n');
    EXPECT_EQ(bytes.size(), 10 + header + static_cast<size_t>(n) * 2 * 4);
  }
}

TEST(Npy, ReadsFilesWrittenByNumpy) {
  TempDir dir;
  run_python_ok(R"(
import numpy as np
d = ")" + dir.path() +
                R"("
np.save(d + "/f32.npy", (np.arange(120, dtype=np.float32) / np.float32(7)).reshape(2, 3, 4, 5))
np.save(d + "/f64.npy", np.arange(6, dtype=np.float64).reshape(3, 2) / 3)
np.save(d + "/u8.npy", (np.arange(20) * 13 % 256).astype(np.uint8).reshape(4, 5))
np.save(d + "/i64.npy", np.array([-5, 0, 7, 2**40], dtype=np.int64))
np.save(d + "/i32.npy", np.array([[-1, 2], [3, -4]], dtype=np.int32))
with open(d + "/v2.npy", "wb") as f:
    np.lib.format.write_array(f, np.arange(12, dtype=np.float32).reshape(3, 4), version=(2, 0))
with open(d + "/v3.npy", "wb") as f:
    np.lib.format.write_array(f, np.arange(4, dtype=np.int64), version=(3, 0))
)");
  expect_identical(read_npy(dir.file("f32.npy")),
                   (torch::arange(120, at::kFloat) / 7).reshape({2, 3, 4, 5}));
  expect_identical(read_npy(dir.file("f64.npy")),
                   torch::arange(6, at::kDouble).reshape({3, 2}) / 3);
  expect_identical(read_npy(dir.file("u8.npy")),
                   (torch::arange(20, at::kLong) * 13 % 256).to(at::kByte).reshape({4, 5}));
  expect_identical(read_npy(dir.file("i64.npy")),
                   torch::tensor(std::vector<int64_t>{-5, 0, 7, int64_t{1} << 40}));
  expect_identical(read_npy(dir.file("i32.npy")),
                   torch::tensor({-1, 2, 3, -4}, at::kInt).reshape({2, 2}));
  expect_identical(read_npy(dir.file("v2.npy")), torch::arange(12, at::kFloat).reshape({3, 4}));
  expect_identical(read_npy(dir.file("v3.npy")), torch::arange(4, at::kLong));
}

TEST(Npy, NumpyReadsOurFiles) {
  TempDir dir;
  write_npy(dir.file("f32.npy"), (torch::arange(120, at::kFloat) / 7).reshape({2, 3, 4, 5}));
  write_npy(dir.file("f64.npy"), torch::arange(6, at::kDouble) / 3);
  write_npy(dir.file("u8.npy"),
            (torch::arange(20, at::kLong) * 13 % 256).to(at::kByte).reshape({4, 5}));
  write_npy(dir.file("i32.npy"), torch::tensor({-1, 2, 3, -4}, at::kInt).reshape({2, 2}));
  write_npy(dir.file("i64.npy"), torch::tensor(std::vector<int64_t>{-5, int64_t{1} << 40}));
  write_npy(dir.file("scalar.npy"), torch::tensor(2.5, at::kDouble).reshape({}));
  run_python_ok(R"(
import numpy as np
d = ")" + dir.path() +
                R"("
def check(name, expected):
    got = np.load(d + "/" + name)
    assert got.dtype == expected.dtype, (name, got.dtype, expected.dtype)
    assert got.shape == expected.shape, (name, got.shape, expected.shape)
    assert np.array_equal(got, expected), (name, got, expected)
check("f32.npy", (np.arange(120, dtype=np.float32) / np.float32(7)).reshape(2, 3, 4, 5))
check("f64.npy", np.arange(6, dtype=np.float64) / 3)
check("u8.npy", (np.arange(20) * 13 % 256).astype(np.uint8).reshape(4, 5))
check("i32.npy", np.array([[-1, 2], [3, -4]], dtype=np.int32))
check("i64.npy", np.array([-5, 2**40], dtype=np.int64))
check("scalar.npy", np.array(2.5))
)");
}

TEST(Npy, TruncatedFileNamesTheFile) {
  TempDir dir;
  const std::string path = dir.file("cut.npy");
  write_npy(path, torch::zeros({10, 10}, at::kFloat));
  const std::string bytes = read_file(path);
  test::write_text(path, bytes.substr(0, bytes.size() - 3));
  const std::string message = error_of([&] { read_npy(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  EXPECT_NE(message.find("400"), std::string::npos) << message;  // expected bytes
  EXPECT_NE(message.find("397"), std::string::npos) << message;  // found bytes

  test::write_text(path, bytes.substr(0, 40));  // cut inside the header
  EXPECT_NE(error_of([&] { read_npy(path); }).find(path), std::string::npos);
}

TEST(Npy, FortranOrderIsRejected) {
  TempDir dir;
  const std::string path = dir.file("fortran.npy");
  run_python_ok("import numpy as np\nnp.save('" + path +
                "', np.asfortranarray(np.ones((3, 4), np.float32)))\n");
  const std::string message = error_of([&] { read_npy(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("Fortran"), std::string::npos) << message;
}

TEST(Npy, WrongMagicNamesTheFile) {
  TempDir dir;
  const std::string path = dir.file("not.npy");
  test::write_text(path, "PK\x03\x04 this is a zip archive, not an array");
  const std::string message = error_of([&] { read_npy(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("NUMPY"), std::string::npos) << message;

  EXPECT_NE(error_of([&] { read_npy(dir.file("missing.npy")); }).find(dir.file("missing.npy")),
            std::string::npos);
}

TEST(Npy, UnsupportedDtypesAreRejected) {
  TempDir dir;
  run_python_ok(R"(
import numpy as np
d = ")" + dir.path() +
                R"("
np.save(d + "/big.npy", np.arange(4, dtype=">f4"))
np.save(d + "/bool.npy", np.array([True, False]))
np.save(d + "/rec.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
)");
  const std::string big = error_of([&] { read_npy(dir.file("big.npy")); });
  EXPECT_NE(big.find("big-endian"), std::string::npos) << big;
  EXPECT_NE(big.find(dir.file("big.npy")), std::string::npos) << big;
  const std::string boolean = error_of([&] { read_npy(dir.file("bool.npy")); });
  EXPECT_NE(boolean.find("unsupported dtype '|b1'"), std::string::npos) << boolean;
  const std::string record = error_of([&] { read_npy(dir.file("rec.npy")); });
  EXPECT_NE(record.find("structured"), std::string::npos) << record;
}

TEST(Npy, WriteRejectsUnsupportedTensors) {
  TempDir dir;
  const std::string message =
      error_of([&] { write_npy(dir.file("h.npy"), torch::zeros({2}, at::kHalf)); });
  EXPECT_NE(message.find("unsupported tensor type"), std::string::npos) << message;
}

}  // namespace
}  // namespace mipin
