// NumPy .npy files, read and written by hand (no dependency on cnpy & co).
// Layout (numpy/lib/format.py): "\x93NUMPY", major, minor, header length
// (uint16 LE for 1.0, uint32 LE for 2.0 and 3.0), then a Python dict literal
// such as {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), },
// padded with spaces and ending in '\n', then the raw C-order data.
#include "mipin/data/npy.h"

#include <ATen/ATen.h>

#include <cctype>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"

// Data is copied to and from tensors byte for byte, and tensors hold native
// byte order; only little-endian descriptors are supported, so the host must be too.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npy I/O assumes a little-endian host");

namespace mipin {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
// numpy aligns the data to 64 bytes so that it can be memory-mapped.
constexpr size_t kAlign = 64;

struct DType {
  const char* descr;
  at::ScalarType scalar_type;
  size_t item_size;
};

// What we read and write. uint8 is '|u1' in numpy's output; '<u1' is the
// same thing and is accepted on read.
constexpr DType kDTypes[] = {
    {"<f4", at::kFloat, 4}, {"<f8", at::kDouble, 8}, {"|u1", at::kByte, 1},
    {"<i4", at::kInt, 4},   {"<i8", at::kLong, 8},
};
constexpr const char* kSupported =
    "'<f4' (float32), '<f8' (float64), '|u1' (uint8), '<i4' (int32), '<i8' (int64)";

// For messages: printable ASCII as is, other bytes as \xNN, and the header's
// trailing padding (spaces and the final newline) dropped.
std::string printable(const std::string& bytes) {
  static const char kHex[] = "0123456789abcdef";
  size_t length = bytes.size();
  while (length > 0 && (bytes[length - 1] == ' ' || bytes[length - 1] == '\n')) --length;
  std::string out;
  for (size_t i = 0; i < length; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7F) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

// The subset of Python literals that numpy writes in a header.
struct PyValue {
  enum class Kind { String, Bool, None, Int, Sequence } kind = Kind::None;
  std::string text;
  bool flag = false;
  int64_t number = 0;
  std::vector<PyValue> items;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& path) : text_(text), path_(path) {}

  // Returns the dict as (key, value) pairs.
  std::vector<std::pair<std::string, PyValue>> parse_dict() {
    std::vector<std::pair<std::string, PyValue>> entries;
    expect('{');
    while (!consume('}')) {
      PyValue key = parse_value();
      if (key.kind != PyValue::Kind::String) fail("a string key");
      expect(':');
      entries.emplace_back(key.text, parse_value());
      if (!consume(',')) {
        expect('}');
        break;
      }
    }
    skip_space();
    if (pos_ != text_.size()) fail("the end of the header after the dict");
    return entries;
  }

 private:
  PyValue parse_value() {
    skip_space();
    if (pos_ >= text_.size()) fail("a value");
    const char c = text_[pos_];
    PyValue value;
    if (c == '\'' || c == '"') {
      ++pos_;
      value.kind = PyValue::Kind::String;
      while (pos_ < text_.size() && text_[pos_] != c) {
        if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
        value.text.push_back(text_[pos_++]);
      }
      if (pos_ >= text_.size()) fail("a closing quote");
      ++pos_;
    } else if (c == '(' || c == '[') {
      const char close = c == '(' ? ')' : ']';
      ++pos_;
      value.kind = PyValue::Kind::Sequence;
      while (!consume(close)) {
        value.items.push_back(parse_value());
        if (!consume(',')) {
          expect(close);
          break;
        }
      }
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '-') {
      value.kind = PyValue::Kind::Int;
      size_t used = 0;
      try {
        value.number = std::stoll(text_.substr(pos_), &used);
      } catch (const std::exception&) {
        fail("an integer");
      }
      pos_ += used;
      // Python 2 wrote long integers as e.g. 3L.
      if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;
    } else if (consume_word("True")) {
      value.kind = PyValue::Kind::Bool;
      value.flag = true;
    } else if (consume_word("False")) {
      value.kind = PyValue::Kind::Bool;
    } else if (consume_word("None")) {
      value.kind = PyValue::Kind::None;
    } else {
      fail("a string, number, tuple, True, False or None");
    }
    return value;
  }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!consume(c)) fail(std::string("'") + c + "'");
  }
  bool consume_word(const char* word) {
    const size_t n = std::strlen(word);
    if (text_.compare(pos_, n, word) != 0) return false;
    pos_ += n;
    return true;
  }
  [[noreturn]] void fail(const std::string& expected) const {
    MIPIN_FAIL("'", path_, "': malformed .npy header: expected ", expected, " at character ", pos_,
               ", found \"", printable(text_.substr(pos_, 20)), "\" in header ", printable(text_));
  }

  const std::string& text_;
  const std::string& path_;
  size_t pos_ = 0;
};

uint32_t read_le(const std::string& bytes, size_t offset, size_t width) {
  uint32_t value = 0;
  for (size_t i = 0; i < width; ++i) {
    value |= uint32_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  }
  return value;
}

const DType& dtype_for_descr(const std::string& descr, const std::string& path) {
  const std::string canonical = descr == "<u1" ? "|u1" : descr;
  for (const DType& d : kDTypes) {
    if (canonical == d.descr) return d;
  }
  MIPIN_CHECK(descr.empty() || descr[0] != '>', "'", path, "': big-endian arrays (dtype '", descr,
              "') are not supported; save a little-endian copy, e.g. "
              "arr.astype(arr.dtype.newbyteorder('<'))");
  MIPIN_FAIL_AS(unsupported, "'", path, "': unsupported dtype '", descr, "'; expected one of ", kSupported);
}

std::string shape_repr(const std::vector<int64_t>& shape) {
  // Python's tuple repr: (), (3,), (3, 4)
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

}  // namespace

at::Tensor read_npy(const std::string& path) {
  const std::string bytes = read_file(path);

  MIPIN_CHECK(
      bytes.size() >= kMagicSize + 2 && bytes.compare(0, kMagicSize, kMagic, kMagicSize) == 0, "'",
      path, "' is not a .npy file: expected it to start with \"\\x93NUMPY\", found ", "\"",
      printable(bytes.substr(0, kMagicSize + 2)), "\"");
  const int major = static_cast<unsigned char>(bytes[6]);
  const int minor = static_cast<unsigned char>(bytes[7]);
  MIPIN_CHECK(major >= 1 && major <= 3, "'", path, "': unsupported .npy format version ", major,
              ".", minor, " (expected 1.0, 2.0 or 3.0)");
  const size_t length_width = major == 1 ? 2 : 4;
  const size_t header_start = kMagicSize + 2 + length_width;
  MIPIN_CHECK(bytes.size() >= header_start, "'", path, "' is truncated: expected at least ",
              header_start, " bytes of .npy preamble, found ", bytes.size());
  const size_t header_length = read_le(bytes, kMagicSize + 2, length_width);
  const size_t data_start = header_start + header_length;
  MIPIN_CHECK(bytes.size() >= data_start, "'", path, "' is truncated: expected a ", header_length,
              "-byte .npy header, found ", bytes.size() - header_start, " bytes");

  const std::string header = bytes.substr(header_start, header_length);
  std::string descr;
  bool have_descr = false, have_order = false, have_shape = false, fortran_order = false;
  std::vector<int64_t> shape;
  for (const auto& [key, value] : HeaderParser(header, path).parse_dict()) {
    if (key == "descr") {
      MIPIN_CHECK(
          value.kind == PyValue::Kind::String, "'", path,
          "': structured (record) arrays are not supported; expected a plain dtype, one of ",
          kSupported);
      descr = value.text;
      have_descr = true;
    } else if (key == "fortran_order") {
      MIPIN_CHECK(value.kind == PyValue::Kind::Bool, "'", path,
                  "': malformed .npy header: expected 'fortran_order' to be True or False in ",
                  printable(header));
      fortran_order = value.flag;
      have_order = true;
    } else if (key == "shape") {
      MIPIN_CHECK(value.kind == PyValue::Kind::Sequence, "'", path,
                  "': malformed .npy header: expected 'shape' to be a tuple in ",
                  printable(header));
      for (const PyValue& item : value.items) {
        MIPIN_CHECK(item.kind == PyValue::Kind::Int && item.number >= 0, "'", path,
                    "': malformed .npy header: expected non-negative integer sizes in ",
                    printable(header));
        shape.push_back(item.number);
      }
      have_shape = true;
    }
  }
  MIPIN_CHECK(
      have_descr && have_order && have_shape, "'", path,
      "': malformed .npy header: expected keys 'descr', 'fortran_order' and 'shape', found ",
      printable(header));
  MIPIN_CHECK(!fortran_order, "'", path,
              "': Fortran-ordered arrays are not supported; save a C-ordered copy with "
              "numpy.save(path, numpy.ascontiguousarray(arr))");
  const DType& dtype = dtype_for_descr(descr, path);

  uint64_t count = 1;
  for (const int64_t size : shape) {
    MIPIN_CHECK(size == 0 || count <= (uint64_t{1} << 48) / static_cast<uint64_t>(size), "'", path,
                "': the .npy header declares an implausibly large array ", shape_repr(shape));
    count *= static_cast<uint64_t>(size);
  }
  const uint64_t expected = count * dtype.item_size;
  const uint64_t found = bytes.size() - data_start;
  MIPIN_CHECK(found >= expected, "'", path, "' is truncated: expected ", expected, " bytes of ",
              descr, " data for shape ", shape_repr(shape), ", found ", found);
  MIPIN_CHECK(found == expected, "'", path, "': expected ", expected, " bytes of ", descr,
              " data for shape ", shape_repr(shape), ", found ", found, " (trailing bytes)");

  at::Tensor tensor = at::empty(shape, at::TensorOptions().dtype(dtype.scalar_type));
  if (expected > 0) std::memcpy(tensor.data_ptr(), bytes.data() + data_start, expected);
  return tensor;
}

void write_npy(const std::string& path, const at::Tensor& tensor) {
  MIPIN_CHECK(tensor.defined(), "write_npy('", path,
              "'): expected a tensor, found an undefined one");
  const DType* dtype = nullptr;
  for (const DType& d : kDTypes) {
    if (d.scalar_type == tensor.scalar_type()) dtype = &d;
  }
  MIPIN_CHECK(dtype != nullptr, "write_npy('", path, "'): unsupported tensor type ",
              tensor.scalar_type(), "; expected float32, float64, uint8, int32 or int64");
  const at::Tensor data = tensor.contiguous().cpu();

  std::string header = std::string("{'descr': '") + dtype->descr +
                       "', 'fortran_order': False, 'shape': " + shape_repr(data.sizes().vec()) +
                       ", }";
  // As numpy's _wrap_header: pad with spaces so that magic + version + length
  // + header + '\n' is a multiple of 64 (always at least one space).
  const size_t preamble = kMagicSize + 2 + 2;
  const size_t pad = kAlign - (preamble + header.size() + 1) % kAlign;
  header.append(pad, ' ');
  header.push_back('\n');
  MIPIN_CHECK(header.size() <= 0xFFFF, "write_npy('", path, "'): header of ", header.size(),
              " bytes does not fit format 1.0 (too many dimensions)");

  const size_t data_bytes = static_cast<size_t>(data.numel()) * dtype->item_size;
  std::string bytes;
  bytes.reserve(preamble + header.size() + data_bytes);
  bytes.append(kMagic, kMagicSize);
  bytes.push_back('\x01');
  bytes.push_back('\x00');
  bytes.push_back(static_cast<char>(header.size() & 0xFF));
  bytes.push_back(static_cast<char>(header.size() >> 8));
  bytes += header;
  if (data_bytes > 0) bytes.append(static_cast<const char*>(data.data_ptr()), data_bytes);
  write_file_atomically(path, bytes);
}

}  // namespace mipin
