#pragma once
// Crafted model archives for the tests of what mipin refuses before LibTorch
// reads a file: the records of a real archive copied by Python's zipfile (not
// by mipin), changed on the way.
#include <string>

namespace mipin::test {

// Python that defines
//   copy(out, rename=..., change=..., method=zipfile.ZIP_STORED, keep=...)
// writing the records of the archive `source` to a new zip `out`: each kept
// record n (keep(n)) is stored under rename(n) with the bytes change(n, data).
inline std::string python_archive_copier(const std::string& source) {
  return "import zipfile\n"
         "src = zipfile.ZipFile('" + source + "')\n"
         "def copy(out, rename=lambda n: n, change=lambda n, d: d, method=zipfile.ZIP_STORED, keep=lambda n: True):\n"
         "    dst = zipfile.ZipFile(out, 'w', method)\n"
         "    for n in src.namelist():\n"
         "        if keep(n):\n"
         "            dst.writestr(rename(n), change(n, src.read(n)))\n"
         "    dst.close()\n";
}

}  // namespace mipin::test
