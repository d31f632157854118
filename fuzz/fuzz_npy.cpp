// The .npy reader.
#include "fuzz_input.h"
#include "mipin/data/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = mipin::fuzz::scratch_file(data, size, ".npy");
  mipin::fuzz::expect_clear_errors([&] { mipin::read_npy(path); });
  return 0;
}
