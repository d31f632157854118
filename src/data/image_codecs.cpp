#include "data/image_codecs.h"

#include <ATen/ATen.h>
#include <png.h>
#include <turbojpeg.h>

#include <cstring>
#include <memory>
#include <vector>

#include "mipin/util/error.h"

namespace mipin::image_codecs {
namespace {

[[noreturn]] void fail_decode(const std::string& path, const std::string& why) {
  MIPIN_FAIL("cannot decode image '", path, "': ", why);
}

bool is_png(const std::string& bytes) {
  static const unsigned char kSignature[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return bytes.size() >= sizeof kSignature && std::memcmp(bytes.data(), kSignature, sizeof kSignature) == 0;
}

// A PNG's header is its first chunk, IHDR, read here directly: libpng reads
// on to the first image data, and sizing a data set needs no more than the
// header (a file cut short after it fails when it is decoded).
Header png_header(const std::string& bytes, const std::string& path) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 33 || std::memcmp(b + 8, "\0\0\0\x0dIHDR", 8) != 0)
    fail_decode(path, "its PNG header (IHDR) is missing or cut short (a corrupt PNG file)");
  auto be32 = [&](size_t at) {
    return (uint32_t(b[at]) << 24) | (uint32_t(b[at + 1]) << 16) | (uint32_t(b[at + 2]) << 8) | b[at + 3];
  };
  const unsigned colour_type = b[25];
  // Colour types 2 (RGB), 3 (palette) and 6 (RGBA) have colour; 0 and 4 are grey.
  return {int64_t(be32(20)), int64_t(be32(16)), (colour_type & 2) ? 3 : 1};
}

bool is_jpeg(const std::string& bytes) {
  return bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
         static_cast<unsigned char>(bytes[1]) == 0xD8 && static_cast<unsigned char>(bytes[2]) == 0xFF;
}

void check_size(const std::string& path, int64_t width, int64_t height) {
  MIPIN_CHECK(width > 0 && height > 0, "cannot decode image '", path, "': it declares ", width, "x",
              height, " pixels");
  MIPIN_CHECK(width <= kMaxPixels / height, "cannot decode image '", path, "': it declares ", width,
              "x", height, " pixels, more than the ", kMaxPixels,
              " (8192x8192) that mipin reads; scale it down first");
}

// libpng's simplified API, which reports errors in the image instead of
// jumping out of the caller; the header is read on construction.
class PngFile {
 public:
  PngFile(const std::string& bytes, const std::string& path) : header_(png_header(bytes, path)), path_(path) {
    image_.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image_, bytes.data(), bytes.size())) {
      const std::string message = image_.message;
      png_image_free(&image_);  // no destructor runs for a constructor that throws
      fail_decode(path_, message + " (a corrupt PNG file)");
    }
    // 16-bit samples without gamma information are sRGB like 8-bit ones (as
    // every other reader takes them), not linear light to re-encode.
    image_.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  }
  ~PngFile() { png_image_free(&image_); }
  PngFile(const PngFile&) = delete;
  PngFile& operator=(const PngFile&) = delete;

  const Header& header() const { return header_; }

  // Interleaved grey+alpha or RGBA bytes: asking libpng for no alpha would
  // composite the pixels onto a background instead of dropping it.
  std::vector<uint8_t> pixels(int64_t* per_pixel) {
    MIPIN_CHECK(int64_t(image_.width) == header_.width && int64_t(image_.height) == header_.height,
                "cannot decode image '", path_, "': libpng reads another size than its header");
    const bool colour = header_.channels == 3;
    image_.format = colour ? PNG_FORMAT_RGBA : PNG_FORMAT_GA;
    *per_pixel = colour ? 4 : 2;
    std::vector<uint8_t> out(PNG_IMAGE_SIZE(image_));
    if (!png_image_finish_read(&image_, nullptr, out.data(), 0, nullptr)) fail();
    return out;
  }

 private:
  [[noreturn]] void fail() const { fail_decode(path_, std::string(image_.message) + " (a corrupt PNG file)"); }

  Header header_;
  png_image image_{};
  std::string path_;
};

class JpegFile {
 public:
  JpegFile(const std::string& bytes, const std::string& path)
      : bytes_(bytes), path_(path), handle_(tjInitDecompress(), tjDestroy) {
    if (handle_ == nullptr) fail_decode(path, tjGetErrorStr2(nullptr));
    int width = 0, height = 0, subsampling = 0, colourspace = 0;
    if (tjDecompressHeader3(handle_.get(), data(), bytes_.size(), &width, &height, &subsampling, &colourspace) != 0) fail();
    header_ = {height, width, colourspace == TJCS_GRAY ? 1 : 3};
  }

  const Header& header() const { return header_; }

  std::vector<uint8_t> pixels() {
    std::vector<uint8_t> out(size_t(header_.height * header_.width * header_.channels));
    // At most 500 progressive scans: a small file may declare thousands,
    // each a pass over the whole image.
    const int format = header_.channels == 1 ? TJPF_GRAY : TJPF_RGB;
    const int status = tjDecompress2(handle_.get(), data(), bytes_.size(), out.data(), int(header_.width), 0,
                                     int(header_.height), format, TJFLAG_LIMITSCANS);
    // A warning (a truncated file, extra bytes) still gives the whole image,
    // as other readers of the same file see it.
    if (status != 0 && tjGetErrorCode(handle_.get()) != TJERR_WARNING) fail();
    return out;
  }

 private:
  const unsigned char* data() const { return reinterpret_cast<const unsigned char*>(bytes_.data()); }
  [[noreturn]] void fail() const { fail_decode(path_, std::string(tjGetErrorStr2(handle_.get())) + " (a corrupt JPEG file)"); }

  const std::string& bytes_;
  std::string path_;
  std::unique_ptr<void, int (*)(tjhandle)> handle_;  // destroyed even when the constructor throws
  Header header_;
};

// [channels, H, W] from interleaved bytes whose first `colours` (1 or 3) of
// every `per_pixel` are grey or RGB, written straight into the result: an
// image may be 8192 x 8192, and every whole-image temporary costs its size
// again (integer luma planes alone would be 12 bytes a pixel).
at::Tensor planes(const std::vector<uint8_t>& pixels, int64_t height, int64_t width, int64_t per_pixel,
                  int64_t colours, int64_t channels) {
  const int64_t count = height * width;
  at::Tensor out = at::empty({channels, height, width}, at::kByte);
  uint8_t* plane = out.data_ptr<uint8_t>();
  const uint8_t* in = pixels.data();
  if (channels == 1 && colours == 3) {
    // PIL's fixed-point ITU-R 601-2 luma: (19595 R + 38470 G + 7471 B + 2^15) >> 16.
    for (int64_t i = 0; i < count; ++i, in += per_pixel) {
      plane[i] = uint8_t((19595u * in[0] + 38470u * in[1] + 7471u * in[2] + 32768u) >> 16);
    }
    return out;
  }
  for (int64_t c = 0; c < channels; ++c) {
    // Grey read as colour repeats the grey sample in every plane.
    const uint8_t* sample = in + (colours == 3 ? c : 0);
    uint8_t* dst = plane + c * count;
    for (int64_t i = 0; i < count; ++i, sample += per_pixel) dst[i] = *sample;
  }
  return out;
}

}  // namespace

Header read_header(const std::string& bytes, const std::string& path) {
  Header header;
  if (is_png(bytes)) {
    header = png_header(bytes, path);
  } else if (is_jpeg(bytes)) {
    header = JpegFile(bytes, path).header();
  } else {
    fail_decode(path, "not a PNG or JPEG file");
  }
  check_size(path, header.width, header.height);
  return header;
}

at::Tensor decode(const std::string& bytes, const std::string& path, int64_t channels) {
  MIPIN_CHECK(channels == 1 || channels == 3, "cannot decode image '", path,
              "': expected 1 or 3 channels, found ", channels);
  if (is_png(bytes)) {
    PngFile png(bytes, path);
    const Header header = png.header();
    check_size(path, header.width, header.height);
    int64_t per_pixel = 0;
    std::vector<uint8_t> pixels = png.pixels(&per_pixel);
    return planes(pixels, header.height, header.width, per_pixel, header.channels, channels);
  }
  if (is_jpeg(bytes)) {
    JpegFile jpeg(bytes, path);
    const Header header = jpeg.header();
    check_size(path, header.width, header.height);
    std::vector<uint8_t> pixels = jpeg.pixels();
    return planes(pixels, header.height, header.width, header.channels, header.channels, channels);
  }
  fail_decode(path, "not a PNG or JPEG file");
}

std::string encode_png(const uint8_t* pixels, int64_t height, int64_t width, int64_t channels) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
  // The first call measures, the second writes.
  png_alloc_size_t size = 0;
  bool ok = png_image_write_to_memory(&image, nullptr, &size, 0, pixels, 0, nullptr);
  std::string png(size, '\0');
  ok = ok && png_image_write_to_memory(&image, png.data(), &size, 0, pixels, 0, nullptr);
  const std::string message = image.message;
  png_image_free(&image);
  MIPIN_CHECK(ok, "encode_png: PNG encoding failed: ", message);
  png.resize(size);
  return png;
}

}  // namespace mipin::image_codecs
