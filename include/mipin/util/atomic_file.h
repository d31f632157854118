#pragma once
// Every file mipin writes appears complete or not at all: it is written to a
// temporary name in the same directory and renamed into place.
#include <functional>
#include <string>

namespace mipin {

// Calls write(tmp_path), then renames tmp_path to path. If write throws, the
// temporary file (or directory, with what it holds) is removed and the
// exception propagates.
void write_atomically(const std::string& path,
                      const std::function<void(const std::string& tmp_path)>& write);

// Removes the temporary files of writes under way, for a process that must
// end at once (a distributed job that lost a process) and leave nothing
// half-written behind.
void remove_unfinished_files();

// Convenience for byte content.
void write_file_atomically(const std::string& path, const std::string& bytes);

// Reads a whole file; throws mipin::Error naming the file when it cannot.
std::string read_file(const std::string& path);

}  // namespace mipin
