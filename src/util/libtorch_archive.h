#pragma once
// Reading LibTorch archives (TorchScript models, and mipin's artifacts, which
// are saved modules) from files that may come from anywhere. LibTorch 1.13's
// reader was not written for hostile files; what fuzzing found in it is kept
// from it here:
// - its zip reader's state leaks when a file is a zip but no LibTorch
//   archive (no version record, say): libtorch_archive_problem checks what
//   the reader requires first, with minizip;
// - it allocates what a record declares, and what a string in a pickle
//   declares, before reading them: both are bounded by the bytes that hold
//   them (util/pickle_scan.h for pickles);
// - class bodies it dereferences missing parts of (util/libtorch_code_check.h);
// - a failed import leaves its classes, functions and graphs in cycles of
//   shared pointers: the module is imported into a compilation unit of its
//   own, emptied on failure;
// - its error messages quote the Python source through the archive's debug
//   records, read lazily, and end the process when those are corrupt: the
//   archive is imported without them.
#include <optional>
#include <string>

namespace torch::jit {
struct Module;
}

namespace mipin {

// How errors name an archive: `name` ("the inverse 'cnn.mipin'") and what
// it is when it is not what was expected ("not written by `mipin fit`").
struct LibTorchArchiveKind {
  std::string name;
  std::string if_foreign;
};

// The module saved in the archive at `path`, on the CPU, and the text of its
// extra record mipin.json when `metadata_json` is given. Every failure is a
// mipin::Error that names the file.
torch::jit::Module read_libtorch_archive(const std::string& path, const LibTorchArchiveKind& kind,
                                         std::string* metadata_json = nullptr);

// The same for an archive in memory.
torch::jit::Module read_libtorch_archive_in_memory(const std::string& bytes, const LibTorchArchiveKind& kind,
                                                   std::string* metadata_json = nullptr);

// Why LibTorch's reader would refuse the archive in the file at `path` after
// allocating for it, or nothing: not a zip, no records, records outside one
// folder, no version record, a version LibTorch does not read, a record
// that declares more bytes than it can hold, or a pickle that does.
std::optional<std::string> libtorch_archive_problem(const std::string& path);

// The same for an archive in memory.
std::optional<std::string> libtorch_archive_problem_in_memory(const std::string& bytes);

}  // namespace mipin
