// The fitted inverse (.mipin): read, checked against the model it names and
// used to explain two examples.
#include <torch/torch.h>

#include "fixed_model.h"
#include "fuzz_input.h"
#include "mipin/inverse/inverse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::optional<std::string> archive = mipin::fuzz::archive_bytes(data, size);
  if (!archive) return 0;
  const std::string path = mipin::fuzz::scratch_file(*archive, ".mipin");
  mipin::fuzz::expect_clear_errors([&] {
    const mipin::Inverse inverse = mipin::Inverse::load(path);
    inverse.check_compatible(mipin::fuzz::fixed_network());
    const mipin::Batch batch = mipin::fuzz::fixed_batch();
    inverse.explain(mipin::fuzz::fixed_network(), batch.inputs, batch.labels);
  });
  return 0;
}
