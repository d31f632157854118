#pragma once
// TorchScript code that LibTorch 1.13's importer crashes on instead of
// refusing, found by fuzz_model; checked before it reads the code.
#include <istream>
#include <optional>
#include <string>

namespace mipin {

// Why LibTorch would crash importing the code of the TorchScript archive in
// `in` (which LibTorch's reader must already be able to open:
// libtorch_archive_problem), or nothing. Code that does not parse is left to
// LibTorch, whose parser refuses it with a message.
std::optional<std::string> code_libtorch_crashes_on(std::istream& in);

}  // namespace mipin
