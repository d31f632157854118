// Fitted patterns: read, checked against the model they name and used by
// PatternAttribution on two examples.
#include <torch/torch.h>

#include "fixed_model.h"
#include "fuzz_input.h"
#include "mipin/attribution/patterns.h"
#include "mipin/attribution/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::optional<std::string> archive = mipin::fuzz::archive_bytes(data, size);
  if (!archive) return 0;
  const std::string path = mipin::fuzz::scratch_file(*archive, ".patterns");
  mipin::fuzz::expect_clear_errors([&] {
    const mipin::Patterns patterns = mipin::Patterns::load(path);
    patterns.check_compatible(mipin::fuzz::fixed_network());
    mipin::MethodSettings settings;
    settings.patterns = &patterns;
    const mipin::Batch batch = mipin::fuzz::fixed_batch();
    mipin::make_method("patternattribution", settings)->attribute(mipin::fuzz::fixed_network(), batch.inputs, batch.labels);
  });
  return 0;
}
