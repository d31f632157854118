// A fit's checkpoint: the fit resumes from it and runs to its end.
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>

#include "fixed_model.h"
#include "fuzz_input.h"
#include "mipin/inverse/inverse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::optional<std::string> archive = mipin::fuzz::archive_bytes(data, size);
  if (!archive) return 0;
  static const std::string dir = [] {
    const std::string d = mipin::fuzz::scratch_path("-checkpoint");
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::string file = mipin::fit_checkpoint_file(dir);
  std::FILE* out = std::fopen(file.c_str(), "wb");
  if (!out) std::abort();
  std::fwrite(archive->data(), 1, archive->size(), out);
  std::fclose(out);
  mipin::fuzz::expect_clear_errors([&] {
    mipin::fit_inverse(mipin::fuzz::fixed_network(), mipin::fuzz::fixed_data(), mipin::fuzz::fixed_options(),
                       mipin::FitRun().with_checkpoint(dir, 1e9));
  });
  return 0;
}
