#pragma once
// PNG (libpng) and JPEG (libjpeg-turbo) decoding, and PNG encoding: the only
// code that reads or writes image bytes. Both libraries are maintained with
// malformed files in mind and fuzzed upstream; on top of that every size a
// header declares is bounded here before they allocate for it.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace mipin::image_codecs {

// The most pixels an image may declare (8192 x 8192): far above what image
// classifiers read, and a bound on what a file can make a decoder allocate.
constexpr int64_t kMaxPixels = int64_t{1} << 26;

struct Header {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;  // 1 (grey) or 3 (colour); an alpha channel is not counted
};

// What the header at the start of `bytes` declares (the file's first part is
// enough). A mipin::Error naming `path` when `bytes` starts no PNG or JPEG
// file, or declares more than kMaxPixels.
Header read_header(const std::string& bytes, const std::string& path);

// The whole file as [channels, H, W] uint8, `channels` 1 or 3: colour to grey
// as ITU-R 601 luma (PIL's convert("L")), grey to colour by repeating it; an
// alpha channel is dropped, not composited.
at::Tensor decode(const std::string& bytes, const std::string& path, int64_t channels);

// PNG bytes of `height` x `width` pixels of `channels` interleaved bytes each
// (1 grey, 3 RGB, 4 RGBA).
std::string encode_png(const uint8_t* pixels, int64_t height, int64_t width, int64_t channels);

}  // namespace mipin::image_codecs
