#pragma once
// TorchScript code that LibTorch 1.13's importer crashes on instead of
// refusing, found by fuzz_model; checked before it reads the code.
#include <optional>
#include <string>

namespace caffe2::serialize {
class PyTorchStreamReader;
}

namespace mipin {

// Why LibTorch would crash importing the code of the archive `reader` reads,
// or nothing. Code that does not parse is left to LibTorch, whose parser
// refuses it with a message.
std::optional<std::string> code_libtorch_crashes_on(caffe2::serialize::PyTorchStreamReader& reader);

}  // namespace mipin
