#pragma once
// A walk over the opcodes of a pickle (Python's serialization, which LibTorch
// archives use for their structure: data.pkl, constants.pkl) that checks
// what LibTorch's unpickler allocates for before reading: every length the
// pickle declares against the bytes that follow it (it reserves a string of
// that length), every memo slot against the slots stored so far (it grows
// its memo table to the slot named), and every value an opcode takes from
// the stack against what is on it (it does not check). A few bytes could
// otherwise make it allocate gigabytes or read before its stack (found by
// fuzz_inverse and fuzz_model).
#include <optional>
#include <string>

namespace mipin {

// Why `pickle` declares more than it holds, names a memo slot out of order
// or takes a value from an empty stack (naming the opcode and its offset),
// or nothing. The walk stops at STOP, and at an opcode it does not
// know, which the unpickler refuses by itself.
std::optional<std::string> pickle_problem(const std::string& pickle);

}  // namespace mipin
