// The check made before LibTorch opens an archive: it must refuse what
// LibTorch's reader refuses after allocating (and leaking) its zip state, and
// pass what LibTorch writes. The archives are written by Python's zipfile,
// not by mipin; the sanitized suite checks that none of them leaks.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mipin/torchscript/model_file.h"
#include "mipin/util/atomic_file.h"
#include "support/archive_copy.h"
#include "support/test_support.h"
#include "util/libtorch_archive.h"

namespace mipin {
namespace {

struct Crafted {
  std::string name;
  std::string python;    // writes the archive to the path in `out`
  std::string expected;  // in the reason given
};

TEST(LibTorchArchive, RefusesWhatLibTorchsReaderRefusesAfterOpeningTheZip) {
  test::TempDir dir;
  const std::string model = test::test_model("mlp_scripted.pt");
  // Each copies the model's records into a new zip, changing one thing.
  const std::string copy = test::python_archive_copier(model);
  const std::vector<Crafted> cases{
      {"empty", "zipfile.ZipFile(out, 'w').close()", "not a zip"},  // minizip opens none
      {"flat", "copy(out, rename=lambda n: n.split('/')[-1])", "is not in a folder"},
      {"no-version", "copy(out, keep=lambda n: not n.endswith('/version'))", "no version record"},
      {"version-word", "copy(out, change=lambda n, d: b'three\\n' if n.endswith('/version') else d)", "not a number"},
      {"version-99", "copy(out, change=lambda n, d: b'99\\n' if n.endswith('/version') else d)", "version 99"},
      {"bzip2", "copy(out, method=zipfile.ZIP_BZIP2)", "method 12"},
      {"pickle-string-past-its-end",
       "copy(out, change=lambda n, d: b'\\x80\\x02X\\xff\\xff\\xff\\x7fabc' if n.endswith('/data.pkl') else d)",
       "declares 2147483647 bytes, and 3 follow"},
      {"not-a-zip", "open(out, 'wb').write(b'PK\\x03\\x04' + bytes(100))", "not a zip"},
      // The version record marked encrypted (general purpose flag bit 0) in
      // its local header and in the directory.
      {"encrypted", "copy(out)\nb = bytearray(open(out, 'rb').read())\n"
                    "for sig, at in ((b'PK\\x03\\x04', 6), (b'PK\\x01\\x02', 8)):\n"
                    "    i = -1\n"
                    "    while True:\n"
                    "        i = b.find(sig, i + 1)\n"
                    "        if i < 0: break\n"
                    "        b[i + at] |= 1\n"
                    "open(out, 'wb').write(bytes(b))", "encrypted"},
  };
  for (const Crafted& c : cases) {
    const std::string out = dir.file(c.name + ".pt");
    const auto made = test::run_python(copy + "out = '" + out + "'\n" + c.python + "\n");
    ASSERT_EQ(made.exit_code, 0) << c.name << ": " << made.err;
    const auto from_file = libtorch_archive_problem(out);
    ASSERT_TRUE(from_file.has_value()) << c.name;
    EXPECT_NE(from_file->find(c.expected), std::string::npos) << c.name << ": " << *from_file;
    EXPECT_EQ(libtorch_archive_problem_in_memory(read_file(out)), from_file) << c.name;
    const std::string message = test::error_of([&] { load_torchscript(out); });
    EXPECT_NE(message.find(c.expected), std::string::npos) << c.name << ": " << message;
  }
  // What LibTorch and zipfile write passes, deflated or not.
  EXPECT_EQ(libtorch_archive_problem(model), std::nullopt);
  const std::string deflated = dir.file("deflated.pt");
  ASSERT_EQ(test::run_python(copy + "copy('" + deflated + "', method=zipfile.ZIP_DEFLATED)\n").exit_code, 0);
  EXPECT_EQ(libtorch_archive_problem(deflated), std::nullopt);
  EXPECT_EQ(libtorch_archive_problem_in_memory(read_file(deflated)), std::nullopt);
  EXPECT_NO_THROW(load_torchscript(deflated));
}

// A record may not declare more bytes than deflate can make of what it
// stores: LibTorch allocates the declared size before inflating.
TEST(LibTorchArchive, RecordDeclaringMoreThanItCanHoldIsRefused) {
  test::TempDir dir;
  const std::string out = dir.file("bomb.pt");
  // A deflated record of 1 MB of zeros (about 1 kB stored) whose central
  // directory entry then claims 4 GB.
  const auto made = test::run_python(
      "import struct, zipfile\n"
      "out = '" + out + "'\n"
      "z = zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED)\n"
      "z.writestr('a/version', '3\\n')\n"
      "z.writestr('a/data/0', bytes(1 << 20))\n"
      "z.close()\n"
      "b = bytearray(open(out, 'rb').read())\n"
      "at = b.rfind(b'PK\\x01\\x02')\n"
      "b[at + 24:at + 28] = struct.pack('<I', 0xFFFFFFF0)\n"
      "open(out, 'wb').write(bytes(b))\n");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const auto problem = libtorch_archive_problem(out);
  ASSERT_TRUE(problem.has_value());
  EXPECT_NE(problem->find("record 'a/data/0' declares 4294967280 bytes"), std::string::npos) << *problem;
}

// A storage whose pickle declares more elements than its record holds:
// LibTorch would make a buffer of the record's size and a storage of the
// declared one, and what reads it reads past the buffer.
TEST(LibTorchArchive, AStorageLargerThanItsRecordIsRefused) {
  test::TempDir dir;
  const std::string plain = dir.file("plain.pt"), crafted = dir.file("crafted.pt");
  const auto made = test::run_python(
      "import torch, zipfile\n"
      "class M(torch.nn.Module):\n"
      "    def __init__(self):\n"
      "        super().__init__()\n"
      "        self.w = torch.nn.Parameter(torch.ones(4))\n"
      "    def forward(self, x):\n"
      "        return x * self.w\n"
      "torch.jit.save(torch.jit.script(M()), '" + plain + "')\n"
      "src = zipfile.ZipFile('" + plain + "')\n"
      "dst = zipfile.ZipFile('" + crafted + "', 'w')\n"
      "changed = 0\n"
      "for n in src.namelist():\n"
      "    d = src.read(n)\n"
      "    if n.endswith('/data.pkl'):\n"
      "        # ('storage', FloatStorage, '0', 'cpu', 4): 4 elements become 1,000,000.\n"
      "        # the count, then TUPLE and BINPERSID\n"
      "        changed = d.count(b'K\\x04tQ')\n"
      "        d = d.replace(b'K\\x04tQ', b'J\\x40\\x42\\x0f\\x00tQ')\n"
      "    dst.writestr(n, d)\n"
      "dst.close()\n"
      "assert changed == 1, changed\n");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NO_THROW(read_libtorch_archive(plain, LibTorchArchiveKind{"plain.pt", "not an archive"}, nullptr));
  const std::string message = test::error_of([&] { read_libtorch_archive(crafted, LibTorchArchiveKind{"crafted.pt", "not an archive"}, nullptr); });
  EXPECT_NE(message.find("a tensor's storage declares 4000000 bytes, and its record holds 16"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace mipin
