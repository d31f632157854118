// Image decoding (PNG and JPEG; the corpus has both), as the file's own
// channels and as grey and RGB resized, the three ways data sets read them.
#include "fuzz_input.h"
#include "mipin/data/image_folder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = mipin::fuzz::scratch_file(data, size, ".png");
  mipin::fuzz::expect_clear_errors([&] { mipin::read_image(path); });
  mipin::fuzz::expect_clear_errors([&] { mipin::read_image(path, 1, std::make_pair(int64_t{5}, int64_t{7})); });
  mipin::fuzz::expect_clear_errors([&] { mipin::read_image(path, 3); });
  return 0;
}
