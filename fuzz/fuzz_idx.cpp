// The IDX reader, on raw and gzipped files (the corpus has both).
#include "fuzz_input.h"
#include "mipin/data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = mipin::fuzz::scratch_file(data, size);
  mipin::fuzz::expect_clear_errors([&] { mipin::read_idx(path); });
  return 0;
}
