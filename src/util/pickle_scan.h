#pragma once
// A walk over the opcodes of a pickle (Python's serialization, which LibTorch
// archives use for their structure: data.pkl, constants.pkl, the debug
// records) that checks every length the pickle declares against the bytes
// that follow it. LibTorch's unpickler reserves a string of the declared
// length before reading it, so a few bytes could make it allocate gigabytes
// (found by fuzz_inverse).
#include <optional>
#include <string>

namespace mipin {

// Why `pickle` declares more than it holds (naming the opcode and its
// offset), or nothing. The walk stops at STOP, and at an opcode it does not
// know, which the unpickler refuses by itself.
std::optional<std::string> pickle_length_problem(const std::string& pickle);

}  // namespace mipin
