#include "util/pickle_scan.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace mipin {
namespace {

// How an opcode's argument is laid out (Python's pickletools).
enum class Argument {
  kNone,
  kFixed,       // `size` bytes
  kLength,      // a `size`-byte little-endian length, then that many bytes
  kLine,        // up to a newline
  kTwoLines,    // two of them (GLOBAL, INST)
};

struct Layout {
  Argument argument;
  int size;
};

std::optional<Layout> layout(unsigned char op) {
  switch (op) {
    // No argument.
    case '(': case '.': case '0': case '1': case '2': case 'N': case 'Q': case 'R': case 'a': case 'b':
    case 'd': case '}': case 'e': case 'l': case ']': case 'o': case 's': case 't': case ')': case 'u':
    case 0x81: case 0x85: case 0x86: case 0x87: case 0x88: case 0x89: case 0x8f: case 0x90: case 0x91:
    case 0x92: case 0x93: case 0x94: case 0x97: case 0x98:
      return Layout{Argument::kNone, 0};
    case 0x80: case 'K': case 'h': case 'q': case 0x82: return Layout{Argument::kFixed, 1};
    case 'M': case 0x83: return Layout{Argument::kFixed, 2};
    case 'J': case 'j': case 'r': case 0x84: return Layout{Argument::kFixed, 4};
    case 'G': return Layout{Argument::kFixed, 8};
    case 'F': case 'I': case 'L': case 'P': case 'S': case 'V': case 'g': case 'p':
      return Layout{Argument::kLine, 0};
    case 'c': case 'i': return Layout{Argument::kTwoLines, 0};
    case 'U': case 'C': case 0x8c: case 0x8a: return Layout{Argument::kLength, 1};
    case 'T': case 'X': case 'B': case 0x8b: return Layout{Argument::kLength, 4};
    case 0x8d: case 0x8e: case 0x96: case 0x95: return Layout{Argument::kLength, 8};
    default: return std::nullopt;
  }
}

// What an opcode does to the unpickler's stack: it takes `pops` values (all
// down to the last mark when `to_mark`, plus `pops` below it) and leaves
// `pushes`; MARK (`mark`) sets a mark. From Python's pickletools.
struct StackEffect {
  int pops = 0;
  int pushes = 0;
  bool to_mark = false;
  bool mark = false;
};

StackEffect stack_effect(unsigned char op) {
  switch (op) {
    case '(': return {0, 0, false, true};                                          // MARK
    case '.': case '0': return {1, 0};                                             // STOP, POP
    case '1': return {0, 0, true};                                                 // POP_MARK
    case '2': return {1, 2};                                                       // DUP
    case 'Q': case 0x98: return {1, 1};                                            // BINPERSID, READONLY_BUFFER
    case 'R': case 'b': case 0x81: case 0x93: return {2, 1};                       // REDUCE, BUILD, NEWOBJ, STACK_GLOBAL
    case 0x92: return {3, 1};                                                      // NEWOBJ_EX
    case 'a': return {2, 1};                                                       // APPEND
    case 's': return {3, 1};                                                       // SETITEM
    case 'e': case 'u': case 0x90: return {1, 1, true};                            // APPENDS, SETITEMS, ADDITEMS
    case 'd': case 'l': case 't': case 0x91: case 'i': return {0, 1, true};        // DICT, LIST, TUPLE, FROZENSET, INST
    case 'o': return {0, 1, true};                                                 // OBJ
    case 0x85: return {1, 1};                                                      // TUPLE1
    case 0x86: return {2, 1};                                                      // TUPLE2
    case 0x87: return {3, 1};                                                      // TUPLE3
    case 'p': case 'q': case 'r': case 0x94: return {1, 1};                        // the puts, MEMOIZE
    case 0x80: case 0x95: return {0, 0};                                           // PROTO, FRAME
    default: return {0, 1};                                                        // everything that pushes a value
  }
}

std::string opcode_name(unsigned char op, uint64_t start) {
  const char* hex = "0123456789abcdef";
  return "opcode 0x" + std::string{hex[op >> 4], hex[op & 15]} + " at byte " + std::to_string(start);
}

}  // namespace

std::optional<std::string> pickle_problem(const std::string& pickle) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(pickle.data());
  const uint64_t size = pickle.size();
  // Memo slots are numbered in order (Python's pickler and LibTorch's both
  // take the next free one); the unpickler grows its memo table to the slot
  // named, so a put may name at most the next one.
  uint64_t memo_slots = 0;
  auto put = [&](uint64_t slot, unsigned char op, uint64_t start) -> std::optional<std::string> {
    if (slot > memo_slots) {
      return opcode_name(op, start) + " stores memo slot " + std::to_string(slot) + " where the next is " +
             std::to_string(memo_slots);
    }
    memo_slots = std::max(memo_slots, slot + 1);
    return std::nullopt;
  };
  // The stack's depth and its marks: LibTorch's unpickler takes values from
  // its stack without checking that they are there.
  uint64_t depth = 0;
  std::vector<uint64_t> marks;
  auto apply = [&](unsigned char op, uint64_t start) -> std::optional<std::string> {
    const StackEffect effect = stack_effect(op);
    if (effect.mark) {
      marks.push_back(depth);
      return std::nullopt;
    }
    if (effect.to_mark) {
      if (marks.empty()) return opcode_name(op, start) + " takes values down to a mark, and none is set";
      depth = marks.back();
      marks.pop_back();
    }
    const uint64_t floor = marks.empty() ? 0 : marks.back();
    if (depth - floor < uint64_t(effect.pops))
      return opcode_name(op, start) + " takes " + std::to_string(effect.pops) + " values from a stack of " +
             std::to_string(depth - floor);
    depth = depth - uint64_t(effect.pops) + uint64_t(effect.pushes);
    return std::nullopt;
  };
  uint64_t at = 0;
  while (at < size) {
    const unsigned char op = bytes[at];
    const uint64_t start = at++;
    const std::optional<Layout> how = layout(op);
    if (!how) return std::nullopt;  // left to the unpickler, which refuses it
    if (auto problem = apply(op, start)) return problem;
    if (op == '.') return std::nullopt;  // STOP: the unpickler reads no further
    if (op == 0x94) ++memo_slots;  // MEMOIZE
    switch (how->argument) {
      case Argument::kNone:
        break;
      case Argument::kFixed: {
        if (size - at < uint64_t(how->size)) return std::nullopt;
        if (op == 'q' || op == 'r') {  // BINPUT, LONG_BINPUT
          uint64_t slot = 0;
          for (int i = 0; i < how->size; ++i) slot |= uint64_t(bytes[at + i]) << (8 * i);
          if (auto problem = put(slot, op, start)) return problem;
        }
        at += uint64_t(how->size);
        break;
      }
      case Argument::kLine:
      case Argument::kTwoLines: {
        const uint64_t argument = at;
        for (int line = how->argument == Argument::kLine ? 1 : 2; line > 0; --line) {
          const void* end = at < size ? std::memchr(bytes + at, '\n', size - at) : nullptr;
          if (end == nullptr) return std::nullopt;  // the unpickler finds the end first
          at = uint64_t(static_cast<const unsigned char*>(end) - bytes) + 1;
        }
        if (op == 'p') {  // PUT, its slot in decimal
          uint64_t slot = 0;
          for (uint64_t i = argument; i + 1 < at && slot <= size; ++i) {
            if (bytes[i] < '0' || bytes[i] > '9') return std::nullopt;  // the unpickler refuses it
            slot = slot * 10 + (bytes[i] - '0');
          }
          if (auto problem = put(slot, op, start)) return problem;
        }
        break;
      }
      case Argument::kLength: {
        if (size - at < uint64_t(how->size)) return std::nullopt;
        uint64_t length = 0;
        for (int i = 0; i < how->size; ++i) length |= uint64_t(bytes[at + i]) << (8 * i);
        at += uint64_t(how->size);
        // A FRAME's length covers the opcodes that follow; the others' cover
        // their own bytes, which the walk steps over.
        if (length > size - at) {
          return opcode_name(op, start) + " declares " + std::to_string(length) + " bytes, and " +
                 std::to_string(size - at) + " follow";
        }
        if (op != 0x95) at += length;
        break;
      }
    }
  }
  return std::nullopt;
}

}  // namespace mipin
