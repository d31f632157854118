// A model file's mipin.json.
#include "fuzz_input.h"
#include "mipin/torchscript/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  mipin::fuzz::expect_clear_errors([&] { mipin::metadata_from_json(text, "model.pt"); });
  return 0;
}
