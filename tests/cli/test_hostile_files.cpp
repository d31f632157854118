// Files crafted to demand huge memory are refused with a clear message,
// before anything is allocated for them: the tool's peak stays near what
// loading LibTorch and a small model takes.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include <filesystem>

#include "mipin/data/npy.h"
#include "mipin/inverse/inverse.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/zoo/architectures.h"
#include "support/test_support.h"

namespace mipin {
namespace {
namespace fs = std::filesystem;

// What the issue allows a refusal of such a file to take. Under
// AddressSanitizer the allocator's own shadow and quarantine come on top.
#if defined(__SANITIZE_ADDRESS__) || (defined(__has_feature) && __has_feature(address_sanitizer))
constexpr double kPeakLimitMb = 1024;
#else
constexpr double kPeakLimitMb = 300;
#endif

std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)};
}

// A PNG chunk: length, type, data, CRC (zlib's crc32, as the format says).
std::string png_chunk(const std::string& type, const std::string& data) {
  const std::string body = type + data;
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size()));
  return be32(uint32_t(data.size())) + body + be32(uint32_t(crc));
}

// A valid PNG header declaring width x height RGB pixels, a few bytes of data.
std::string png_declaring(uint32_t width, uint32_t height) {
  std::string ihdr = be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  std::string raw(64, '\0');
  std::string idat(compressBound(uLong(raw.size())), '\0');
  uLongf n = uLongf(idat.size());
  compress(reinterpret_cast<Bytef*>(&idat[0]), &n, reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size()));
  idat.resize(n);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", idat) + png_chunk("IEND", "");
}

class HostileFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    torch::manual_seed(0);
    ModelMetadata metadata;
    metadata.input_shape = {1, 8, 8};
    save_torchscript(make_architecture("cnn", {1, 8, 8}, 3), dir_->file("cnn.pt"), metadata);
  }
  static void TearDownTestSuite() { delete dir_; }

  // `mipin explain` with `args`: refused, naming every fragment, within the
  // memory bound, and leaving no output behind.
  void expect_refused(const std::string& args, const std::vector<std::string>& fragments) {
    const std::string out = dir_->file("out");
    fs::remove_all(out);
    const std::string method = args.find("--method") == std::string::npos ? " --method gradient " : " ";
    const test::CommandResult r =
        test::run_cli("explain --model " + dir_->file("cnn.pt") + " --out " + out + method + args);
    test::expect_error(r, fragments);
    EXPECT_LT(r.peak_mb, kPeakLimitMb) << args << "\n" << r.err;
    EXPECT_TRUE(!fs::exists(out) || fs::is_empty(out)) << "left output behind: " << args;
    std::cout << "refused at " << r.peak_mb << " MB: " << r.err;
  }

  static test::TempDir* dir_;
};
test::TempDir* HostileFiles::dir_ = nullptr;

TEST_F(HostileFiles, NpyHeaderDeclaringATrillionElements) {
  // (1000000, 1000000) float32 in a 128-byte file.
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }";
  header.append(118 - 10 - header.size(), ' ');
  header.push_back('\n');
  const std::string path = dir_->file("huge.npy");
  test::write_text(path, std::string("\x93NUMPY\x01\x00", 8) + char(header.size()) + '\0' + header);
  expect_refused("--input " + path, {path, "truncated", "expected 4000000000000 bytes"});
}

TEST_F(HostileFiles, IdxHeaderDeclaringATrillionElements) {
  for (const bool gzipped : {false, true}) {
    const std::string data = dir_->file(gzipped ? "idx-gz" : "idx");
    fs::create_directories(data);
    // 10^6 images of 10^3 x 10^3 bytes, and labels that would fit them.
    const std::string images = std::string("\0\0\x08\x03", 4) + be32(1000000) + be32(1000) + be32(1000) + std::string(64, '\0');
    const std::string labels = std::string("\0\0\x08\x01", 4) + be32(1000000);
    for (const char* split : {"train", "t10k"}) {
      const std::string base = data + "/" + split;
      if (gzipped) {
        for (const auto& [name, bytes] : {std::make_pair(base + "-images-idx3-ubyte.gz", images),
                                          std::make_pair(base + "-labels-idx1-ubyte.gz", labels)}) {
          gzFile f = gzopen(name.c_str(), "wb");
          gzwrite(f, bytes.data(), unsigned(bytes.size()));
          gzclose(f);
        }
      } else {
        test::write_text(base + "-images-idx3-ubyte", images);
        test::write_text(base + "-labels-idx1-ubyte", labels);
      }
    }
    expect_refused("--data idx:" + data + " --index 0",
                   gzipped ? std::vector<std::string>{"declares 1000000000000 uint8 elements", "more than a gzip file"}
                           : std::vector<std::string>{"truncated", "expected 1000000000000 bytes"});
  }
}

TEST_F(HostileFiles, PngDeclaringTenBillionPixels) {
  const std::string path = dir_->file("huge.png");
  test::write_text(path, png_declaring(100000, 100000));
  expect_refused("--input " + path, {path, "100000x100000 pixels", "8192x8192"});
  // The same file in an image folder, whose first image sets the shape.
  const std::string folder = dir_->file("folder");
  for (const char* split : {"train/a", "train/b", "test/a"}) fs::create_directories(folder + "/" + split);
  test::write_text(folder + "/test/a/huge.png", png_declaring(100000, 100000));
  test::write_text(folder + "/train/a/huge.png", png_declaring(100000, 100000));
  expect_refused("--data folder:" + folder + " --index 0", {"huge.png", "100000x100000 pixels"});
}

TEST_F(HostileFiles, InverseWithAnOversizedTensor) {
  const std::string fingerprint = load_torchscript(dir_->file("cnn.pt")).network.fingerprint();
  // One stored float that claims to be 10^10 of them: by stride 0 (a view
  // LibTorch accepts as it is), and by sizes past its storage (a pickle
  // rewritten by hand).
  at::Tensor expanded = torch::zeros({1}).expand({100000, 100000});
  at::Tensor past_storage = torch::zeros({4});
  past_storage.unsafeGetTensorImpl()->set_sizes_contiguous({100000, 100000});
  for (const at::Tensor& huge : {expanded, past_storage}) {
    Inverse inverse(InverseOptions{}, fingerprint);
    inverse.set_operator(0, huge);
    LayerFit fit;
    fit.index = 0;
    inverse.fits().push_back(fit);
    const std::string path = dir_->file("huge.mipin");
    inverse.save(path);
    EXPECT_LT(fs::file_size(path), 4096u);
    write_npy(dir_->file("x.npy"), torch::rand({1, 8, 8}));
    expect_refused("--method mipin --inverse " + path + " --input " + dir_->file("x.npy"),
                   {path, "tensor 'operator_0'", "sizes [100000, 100000]", "corrupt"});
  }
}

}  // namespace
}  // namespace mipin
