// IDX reader and writer. The format (http://yann.lecun.com/exdb/mnist/) is a
// 4-byte magic 0x00 0x00 <type> <ndim>, then ndim big-endian uint32 sizes,
// then the elements in row-major order, big-endian.
#include "mipin/data/idx.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// gzread passes plain (uncompressed) files through unchanged, so one code
// path reads both "x-idx3-ubyte" and "x-idx3-ubyte.gz".
GzFile open_idx(const std::string& path) {
  std::error_code ec;
  MIPIN_CHECK_AS(not_found, std::filesystem::exists(path, ec), "IDX file not found: '", path, "'");
  MIPIN_CHECK(!std::filesystem::is_directory(path, ec),
              "expected an IDX file, found a directory: '", path, "'");
  GzFile file(gzopen(path.c_str(), "rb"));
  MIPIN_CHECK(file != nullptr, "cannot open IDX file '", path, "': ", std::strerror(errno));
  gzbuffer(file.get(), 1 << 20);
  return file;
}

// Reads up to `size` bytes; fewer only at the end of the data.
uint64_t read_up_to(gzFile_s* file, void* out, uint64_t size, const std::string& path) {
  uint64_t done = 0;
  while (done < size) {
    const auto chunk = static_cast<unsigned>(std::min<uint64_t>(size - done, 1u << 30));
    const int got = gzread(file, static_cast<char*>(out) + done, chunk);
    if (got < 0) {
      int code = 0;
      MIPIN_FAIL("cannot read IDX file '", path, "': ", gzerror(file, &code));
    }
    if (got == 0) break;
    done += static_cast<uint64_t>(got);
  }
  // A gzip stream cut short is not a hard error for gzread: it returns what it
  // could decompress and records Z_BUF_ERROR, which we must not ignore.
  int code = Z_OK;
  const char* message = gzerror(file, &code);
  MIPIN_CHECK(code == Z_OK || code == Z_STREAM_END, "cannot read IDX file '", path,
              "': the compressed data is damaged or truncated (", message, ")");
  return done;
}

// Deflate cannot expand data more than 1032-fold (a run of one byte value
// at its best); a header that declares more than that is lying.
constexpr uint64_t kMaxDeflateRatio = 1032;

uint32_t read_be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct IdxType {
  at::ScalarType dtype;
  size_t element_size;
  const char* name;
};

bool idx_type(unsigned char code, IdxType* out) {
  switch (code) {
    case 0x08:
      *out = {at::kByte, 1, "uint8"};
      return true;
    case 0x09:
      *out = {at::kChar, 1, "int8"};
      return true;
    case 0x0B:
      *out = {at::kShort, 2, "int16"};
      return true;
    case 0x0C:
      *out = {at::kInt, 4, "int32"};
      return true;
    case 0x0D:
      *out = {at::kFloat, 4, "float32"};
      return true;
    case 0x0E:
      *out = {at::kDouble, 8, "float64"};
      return true;
    default:
      return false;
  }
}

// IDX stores multi-byte elements big-endian; reverse each element in place.
void big_endian_to_native(unsigned char* data, size_t count, size_t element_size) {
  if (element_size == 1) return;
  for (size_t i = 0; i < count; ++i) {
    unsigned char* e = data + i * element_size;
    for (size_t a = 0, b = element_size - 1; a < b; ++a, --b) std::swap(e[a], e[b]);
  }
}

}  // namespace

// The header is checked against the file's length before anything is
// allocated, and the elements are then read straight into the tensor.
at::Tensor read_idx(const std::string& path) {
  GzFile owner = open_idx(path);
  gzFile_s* file = owner.get();
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  MIPIN_CHECK(!ec, "cannot read IDX file '", path, "': ", ec.message());

  unsigned char magic[4];
  const uint64_t got_magic = read_up_to(file, magic, 4, path);
  MIPIN_CHECK(got_magic == 4, "'", path,
              "' is not an IDX file: expected a 4-byte header, found ", got_magic, " bytes");
  MIPIN_CHECK(magic[0] == 0 && magic[1] == 0, "'", path,
              "' is not an IDX file: expected magic bytes 0x00 0x00, found 0x", std::hex,
              int{magic[0]}, " 0x", int{magic[1]});
  IdxType type{};
  MIPIN_CHECK(idx_type(magic[2], &type), "'", path, "': unsupported IDX element type 0x", std::hex,
              int{magic[2]},
              " (expected 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32 or 0x0E "
              "float64)");
  const size_t ndim = magic[3];
  MIPIN_CHECK(ndim >= 1, "'", path,
              "': expected at least one dimension in the IDX header, found 0");
  const uint64_t header_size = 4 + 4 * ndim;
  unsigned char size_bytes[4 * 255];
  const uint64_t got_sizes = read_up_to(file, size_bytes, 4 * ndim, path);
  MIPIN_CHECK(got_sizes == 4 * ndim, "'", path, "' is truncated: expected a ", header_size,
              "-byte IDX header, found ", 4 + got_sizes, " bytes");

  std::vector<int64_t> sizes(ndim);
  uint64_t count = 1;
  for (size_t d = 0; d < ndim; ++d) {
    sizes[d] = read_be32(size_bytes + 4 * d);
    // IDX sizes are uint32 and there are at most 255 of them: guard the product.
    MIPIN_CHECK(sizes[d] == 0 || count <= (uint64_t{1} << 48) / static_cast<uint64_t>(sizes[d]),
                "'", path, "': the IDX header declares an implausibly large array");
    count *= static_cast<uint64_t>(sizes[d]);
  }
  const uint64_t expected = count * type.element_size;
  const bool compressed = gzdirect(file) == 0;
  if (!compressed) {
    const uint64_t found = file_size - std::min(file_size, header_size);
    MIPIN_CHECK(found >= expected, "'", path, "' is truncated: expected ", expected, " bytes of ",
                type.name, " data after the header, found ", found);
    MIPIN_CHECK(found == expected, "'", path, "': expected ", expected, " bytes of ", type.name,
                " data after the header, found ", found, " (", found - expected,
                " unexpected trailing bytes)");
  } else {
    MIPIN_CHECK(expected <= kMaxDeflateRatio * file_size, "'", path, "': the IDX header declares ",
                count, " ", type.name, " elements (", expected, " bytes), more than a gzip file of ",
                file_size, " bytes can hold: the file is corrupt");
  }

  at::Tensor tensor = at::empty(sizes, at::TensorOptions().dtype(type.dtype));
  auto* out = static_cast<unsigned char*>(tensor.data_ptr());
  const uint64_t found = read_up_to(file, out, expected, path);
  MIPIN_CHECK(found == expected, "'", path, "' is truncated: expected ", expected, " bytes of ",
              type.name, " data after the header, found ", found);
  char extra[4096];
  const uint64_t trailing = read_up_to(file, extra, sizeof extra, path);
  MIPIN_CHECK(trailing == 0, "'", path, "': expected ", expected, " bytes of ", type.name,
              " data after the header, found ", trailing == sizeof extra ? "at least " : "",
              expected + trailing, " (unexpected trailing bytes)");
  big_endian_to_native(out, count, type.element_size);
  return tensor;
}

void write_idx(const std::string& path, const at::Tensor& tensor) {
  MIPIN_CHECK(tensor.defined(), "write_idx('", path,
              "'): expected a tensor, found an undefined one");
  MIPIN_CHECK(tensor.scalar_type() == at::kByte, "write_idx('", path,
              "'): expected a uint8 tensor, found ", tensor.scalar_type());
  MIPIN_CHECK(tensor.dim() >= 1 && tensor.dim() <= 255, "write_idx('", path,
              "'): expected 1 to 255 dimensions, found ", tensor.dim());
  const at::Tensor contiguous = tensor.contiguous().cpu();

  std::string bytes;
  bytes.reserve(4 + 4 * static_cast<size_t>(contiguous.dim()) +
                static_cast<size_t>(contiguous.numel()));
  bytes.push_back('\0');
  bytes.push_back('\0');
  bytes.push_back('\x08');
  bytes.push_back(static_cast<char>(contiguous.dim()));
  for (const int64_t size : contiguous.sizes()) {
    MIPIN_CHECK(size <= int64_t{UINT32_MAX}, "write_idx('", path, "'): dimension of size ", size,
                " does not fit IDX's uint32 sizes");
    const auto s = static_cast<uint32_t>(size);
    for (int shift = 24; shift >= 0; shift -= 8)
      bytes.push_back(static_cast<char>((s >> shift) & 0xFF));
  }
  if (contiguous.numel() > 0) {
    bytes.append(static_cast<const char*>(contiguous.data_ptr()),
                 static_cast<size_t>(contiguous.numel()));
  }
  write_file_atomically(path, bytes);
}

}  // namespace mipin
