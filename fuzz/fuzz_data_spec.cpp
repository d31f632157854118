// The --data argument's parser.
#include "fuzz_input.h"
#include "mipin/data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  mipin::fuzz::expect_clear_errors([&] { mipin::parse_data_spec(text); });
  return 0;
}
