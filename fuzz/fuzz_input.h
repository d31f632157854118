#pragma once
// What the harnesses share: the input as a file, the input as a LibTorch
// archive, and the one outcome a bad input may have.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "mipin/util/error.h"

namespace mipin::fuzz {

// This process's scratch path ending in `suffix` (under $TMPDIR or /tmp):
// the same one every call, removed with everything in it when the process
// exits.
std::string scratch_path(const std::string& suffix);

// Writes the input to this process's scratch file (under $TMPDIR or /tmp)
// and returns its path, the same one every call; `suffix` ends the name.
std::string scratch_file(const uint8_t* data, size_t size, const std::string& suffix = "");
std::string scratch_file(const std::string& bytes, const std::string& suffix);

// A LibTorch archive (.pt, .mipin, checkpoints) from the input: the input
// itself when it is a zip, or else the archive of the records it lists,
// each as its name, '\n', a 4-byte little-endian length and that many bytes.
// A zip's checksums turn almost every mutation of its bytes into a checksum
// error; a list of records lets the fuzzer reach the readers behind them
// (pickles, TorchScript code, metadata, tensors). Nothing when the list
// cannot make an archive (a name twice, one the writer refuses): no one
// reads such a file.
std::optional<std::string> archive_bytes(const uint8_t* data, size_t size);

// The record list of an archive, for seeds: archive_bytes' inverse.
std::string record_list(const std::string& archive);

// Runs `read`: a mipin::Error is the answer a bad file must get; anything
// else (another exception, a crash, a sanitizer report) escapes and is a
// defect.
template <class Read>
void expect_clear_errors(Read&& read) {
  try {
    read();
  } catch (const mipin::Error&) {
  }
}

}  // namespace mipin::fuzz
