#include "util/libtorch_archive.h"

#include <c10/util/string_utils.h>
#include <caffe2/serialize/file_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/versions.h>
#include <minizip/unzip.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/frontend/error_report.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/script.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <iterator>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "mipin/util/error.h"
#include "util/libtorch_code_check.h"
#include "util/pickle_scan.h"
#include "util/text.h"

namespace mipin {
namespace {

// minizip reads an archive in memory through these callbacks: `stream` is the
// Memory itself.
struct Memory {
  const std::string* bytes;
  uint64_t position = 0;
};

voidpf ZCALLBACK open_memory(voidpf opaque, const void*, int) { return opaque; }

uLong ZCALLBACK read_memory(voidpf, voidpf stream, void* buffer, uLong size) {
  auto* memory = static_cast<Memory*>(stream);
  const uint64_t left = memory->bytes->size() - std::min<uint64_t>(memory->position, memory->bytes->size());
  const uint64_t n = std::min<uint64_t>(size, left);
  if (n == 0) return 0;
  std::memcpy(buffer, memory->bytes->data() + memory->position, n);
  memory->position += n;
  return static_cast<uLong>(n);
}

uLong ZCALLBACK write_memory(voidpf, voidpf, const void*, uLong) { return 0; }

ZPOS64_T ZCALLBACK tell_memory(voidpf, voidpf stream) { return static_cast<Memory*>(stream)->position; }

long ZCALLBACK seek_memory(voidpf, voidpf stream, ZPOS64_T offset, int origin) {
  auto* memory = static_cast<Memory*>(stream);
  const uint64_t size = memory->bytes->size();
  uint64_t base = 0;
  if (origin == ZLIB_FILEFUNC_SEEK_CUR) base = memory->position;
  if (origin == ZLIB_FILEFUNC_SEEK_END) base = size;
  if (offset > size || base > size - offset) return -1;
  memory->position = base + offset;
  return 0;
}

int ZCALLBACK close_memory(voidpf, voidpf) { return 0; }
int ZCALLBACK error_memory(voidpf, voidpf) { return 0; }

using Zip = std::unique_ptr<void, int (*)(unzFile)>;

// The longest version record read: LibTorch writes "3\n"; anything far
// longer is no version.
constexpr uint64_t kMaxVersionBytes = 64;

// Deflate expands a byte to at most 1032 (zlib's technical notes): a record
// that declares more than that of what it stores is corrupt, and LibTorch
// would allocate what it declares before inflating.
constexpr uint64_t kMaxDeflateRatio = 1032;

// The current record's bytes; false when they cannot be read or fail their CRC.
bool read_current(unzFile zip, uint64_t size, std::string* out) {
  out->assign(size, '\0');
  if (unzOpenCurrentFile(zip) != UNZ_OK) return false;
  const int read = size == 0 ? 0 : unzReadCurrentFile(zip, out->data(), unsigned(size));
  // Closing checks the CRC.
  return unzCloseCurrentFile(zip) == UNZ_OK && read == int(size);
}

// The largest pickle walked: a model's data.pkl is kilobytes to megabytes.
constexpr uint64_t kMaxPickleBytes = uint64_t{256} << 20;

// One pass over the records: what each declares (flags, compression, sizes)
// and every pickle LibTorch reads (the structure and constants), walked for
// what would make its unpickler allocate or crash (util/pickle_scan.h).
std::optional<std::string> records_problem(unzFile zip, uint64_t archive_size) {
  for (int status = unzGoToFirstFile(zip); status != UNZ_END_OF_LIST_OF_FILE; status = unzGoToNextFile(zip)) {
    if (status != UNZ_OK) return "its zip directory is corrupt";
    unz_file_info64 info{};
    std::string name(4096, '\0');
    if (unzGetCurrentFileInfo64(zip, &info, name.data(), name.size(), nullptr, 0, nullptr, 0) != UNZ_OK)
      return "its zip directory is corrupt";
    name.resize(std::min<size_t>(info.size_filename, name.size() - 1));
    // Encrypted (bits 0 and 6), patch data (5) or a masked directory (13):
    // LibTorch's zip reader reads none of these.
    if ((info.flag & (0x1 | 0x20 | 0x40 | 0x2000)) != 0)
      return "record '" + name + "' is encrypted or uses a zip feature LibTorch does not read (flags " +
             std::to_string(info.flag) + ")";
    const bool stored = info.compression_method == 0;
    if (!stored && info.compression_method != Z_DEFLATED)
      return "record '" + name + "' is compressed with method " + std::to_string(info.compression_method) +
             ", which LibTorch does not read";
    const uint64_t most = stored ? info.compressed_size : info.compressed_size * kMaxDeflateRatio + 64;
    if (info.compressed_size > archive_size || info.uncompressed_size > most)
      return "record '" + name + "' declares " + std::to_string(info.uncompressed_size) + " bytes over " +
             std::to_string(info.compressed_size) + " stored in a file of " + std::to_string(archive_size);
    // The debug records (.debug_pkl) are dropped before LibTorch reads the
    // archive (without_debug_records).
    if (!ends_with(name, ".pkl")) continue;
    if (info.uncompressed_size > kMaxPickleBytes)
      return "record '" + name + "' is a pickle of " + std::to_string(info.uncompressed_size) + " bytes";
    std::string pickle;
    if (!read_current(zip, info.uncompressed_size, &pickle)) return "record '" + name + "' is corrupt";
    if (auto problem = pickle_problem(pickle)) return "record '" + name + "' is corrupt: " + *problem;
  }
  return std::nullopt;
}

// The checks PyTorchStreamReader::init makes once its zip reader is open,
// and the sizes of every record.
std::optional<std::string> problem(unzFile opened, uint64_t archive_size) {
  if (opened == nullptr) return "not a zip archive (or a truncated one)";
  const Zip zip(opened, unzClose);
  unz_global_info64 global{};
  if (unzGetGlobalInfo64(zip.get(), &global) != UNZ_OK) return "its zip directory cannot be read";
  if (global.number_entry == 0) return "the archive holds no records";
  // Records live in one folder, named by the first record's path.
  if (unzGoToFirstFile(zip.get()) != UNZ_OK) return "its first record cannot be read";
  unz_file_info64 info{};
  std::string name(4096, '\0');
  if (unzGetCurrentFileInfo64(zip.get(), &info, name.data(), name.size(), nullptr, 0, nullptr, 0) != UNZ_OK)
    return "its first record cannot be read";
  if (info.size_filename >= name.size()) return "its first record's name is too long";
  name.resize(info.size_filename);
  const size_t slash = name.find('/');
  if (slash == std::string::npos) return "its first record '" + name + "' is not in a folder";
  const std::string folder = name.substr(0, slash + 1);
  if (auto records = records_problem(zip.get(), archive_size)) return records;
  // LibTorch looks records up ignoring case (miniz's default); minizip's 2 does too.
  if (unzLocateFile(zip.get(), (folder + ".data/version").c_str(), 2) != UNZ_OK &&
      unzLocateFile(zip.get(), (folder + "version").c_str(), 2) != UNZ_OK)
    return "it has no version record";
  if (unzGetCurrentFileInfo64(zip.get(), &info, nullptr, 0, nullptr, 0, nullptr, 0) != UNZ_OK)
    return "its version record cannot be read";
  if (info.uncompressed_size > kMaxVersionBytes)
    return "its version record is " + std::to_string(info.uncompressed_size) + " bytes long";
  std::string text;
  if (!read_current(zip.get(), info.uncompressed_size, &text)) return "its version record is corrupt";
  uint64_t version = 0;
  try {
    version = c10::stoull(text);  // as LibTorch parses it
  } catch (const std::exception&) {
    return "its version record '" + text + "' is not a number";
  }
  if (version < caffe2::serialize::kMinSupportedFileFormatVersion ||
      version > caffe2::serialize::kMaxSupportedFileFormatVersion) {
    return "it is archive format version " + std::to_string(version) + ", and this LibTorch reads " +
           std::to_string(caffe2::serialize::kMinSupportedFileFormatVersion) + " to " +
           std::to_string(caffe2::serialize::kMaxSupportedFileFormatVersion);
  }
  return std::nullopt;
}

// Where each read of the archive went and how many bytes it brought: a
// storage LibTorch reads from a stored record (every record of the copy it
// imports is stored) is one read into the storage's own new buffer.
using Reads = std::map<const void*, size_t>;

// An archive in memory, read by LibTorch without a copy: a view of bytes
// that outlive it, or bytes of its own; `reads`, when given, receives every
// read.
class MemoryAdapter final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit MemoryAdapter(const std::string& view) : bytes_(&view) {}
  MemoryAdapter(std::string&& owned, Reads* reads) : owned_(std::move(owned)), bytes_(&owned_), reads_(reads) {}
  size_t size() const override { return bytes_->size(); }
  size_t read(uint64_t position, void* buffer, size_t n, const char*) const override {
    if (position >= bytes_->size()) return 0;
    n = std::min<size_t>(n, bytes_->size() - position);
    std::memcpy(buffer, bytes_->data() + position, n);
    if (reads_ != nullptr) {
      size_t& most = (*reads_)[buffer];
      most = std::max(most, n);
    }
    return n;
  }

 private:
  std::string owned_;
  const std::string* bytes_;
  Reads* reads_ = nullptr;
};

// Every tensor an imported value holds, through lists, tuples, dicts and
// objects (a module is one: its parameters, buffers, attributes and
// submodules are its slots).
void each_tensor(const c10::IValue& v, const std::function<void(const at::Tensor&)>& f,
                 std::set<const void*>& seen) {
  if (v.isTensor()) {
    f(v.toTensor());
  } else if (v.isList()) {
    for (const c10::IValue& e : v.toListRef()) each_tensor(e, f, seen);
  } else if (v.isTuple()) {
    for (const c10::IValue& e : v.toTupleRef().elements()) each_tensor(e, f, seen);
  } else if (v.isGenericDict()) {
    for (const auto& entry : v.toGenericDict()) {
      each_tensor(entry.key(), f, seen);
      each_tensor(entry.value(), f, seen);
    }
  } else if (v.isObject()) {
    const auto object = v.toObject();
    if (!seen.insert(object.get()).second) return;
    for (size_t i = 0; i < object->slots().size(); ++i) each_tensor(object->getSlot(i), f, seen);
  }
}

// LibTorch sizes a storage by the element count its pickle declares and
// fills it from the storage's record, which may hold less: the rest of the
// buffer is memory past what it read (a crafted checkpoint made saving it
// read past the buffer, found by fuzz_checkpoint). Each storage must lie
// within what was read into it. The tensors of the code's constants come
// from the same records.
std::optional<std::string> storages_problem(const torch::jit::Module& module, const torch::jit::CompilationUnit& unit,
                                            const Reads& reads) {
  std::optional<std::string> problem;
  auto check = [&](const at::Tensor& t) {
    if (problem || !t.defined() || !t.has_storage() || t.storage().nbytes() == 0) return;
    const auto read = reads.find(t.storage().data());
    if (read != reads.end() && t.storage().nbytes() > read->second) {
      problem = "a tensor's storage declares " + std::to_string(t.storage().nbytes()) + " bytes, and its record holds " +
                std::to_string(read->second);
    }
  };
  std::set<const void*> seen;
  each_tensor(module._ivalue(), check, seen);
  std::function<void(const torch::jit::Block*)> constants = [&](const torch::jit::Block* block) {
    for (const torch::jit::Node* node : block->nodes()) {
      if (node->kind() == c10::prim::Constant && node->output()->type()->kind() == c10::TypeKind::TensorType) {
        if (auto value = torch::jit::toIValue(node->output())) each_tensor(*value, check, seen);
      }
      for (const torch::jit::Block* inner : node->blocks()) constants(inner);
    }
  };
  for (torch::jit::Function* function : unit.get_functions()) {
    if (auto* graph = dynamic_cast<torch::jit::GraphFunction*>(function)) constants(graph->graph()->block());
  }
  return problem;
}

// The archive rewritten without its debug records (code/...debug_pkl, which
// map the serialized code back to the Python source). LibTorch reads them
// lazily, to quote that source in an error message, and its reading of a
// corrupt one ends the process: ErrorReport::what() throws out of a noexcept
// function, SourceRange::highlight dereferences null (found by fuzz_model).
// mipin shows none of them.
std::string without_debug_records(caffe2::serialize::PyTorchStreamReader& reader) {
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
    out.append(static_cast<const char*>(data), n);
    return n;
  });
  writer.setMinVersion(reader.version());
  for (const std::string& name : reader.getAllRecords()) {
    if (ends_with(name, ".debug_pkl") || name == "version" || name == ".data/version") continue;  // the writer adds the version
    const auto [data, size] = reader.getRecord(name);
    writer.writeRecord(name, data.get(), size);
  }
  writer.writeEndOfFile();
  return out;
}

// Imports an archive into a compilation unit of its own, emptied when
// LibTorch fails part way (its cycles would outlive the error); LibTorch's
// exceptions pass through.
torch::jit::Module import_archive(std::string archive, std::string& metadata_json, const std::string& what) {
  torch::jit::ExtraFilesMap extra{{"mipin.json", ""}};
  auto unit = std::make_shared<torch::jit::CompilationUnit>();
  try {
    Reads reads;
    std::shared_ptr<caffe2::serialize::ReadAdapterInterface> source =
        std::make_shared<MemoryAdapter>(std::move(archive), &reads);
    torch::jit::Module module = torch::jit::import_ir_module(unit, source, torch::kCPU, extra);
    if (auto problem = storages_problem(module, *unit, reads)) MIPIN_FAIL(what, "the file is corrupt: ", *problem);
    metadata_json = extra["mipin.json"];
    return module;
  } catch (...) {
    unit->_clear_python_cu();
    unit->drop_all_functions();
    throw;
  }
}

// The first line that says something: a TorchScript compile error starts
// with an empty one.
std::string summary_line(const std::string& s) {
  const size_t start = s.find_first_not_of("\n");
  return start == std::string::npos ? s : first_line(s.substr(start));
}

// Reads an archive that LibTorch's reader can open (libtorch_archive_problem
// says nothing against it), from `source`.
torch::jit::Module read_checked(const std::shared_ptr<caffe2::serialize::ReadAdapterInterface>& source,
                                const LibTorchArchiveKind& kind, std::string* metadata_json) {
  const std::string what = "cannot read " + kind.name + ": ";
  try {
    std::string stripped;
    {
      caffe2::serialize::PyTorchStreamReader reader(source);
      if (auto problem = code_libtorch_crashes_on(reader)) MIPIN_FAIL(what, "its TorchScript code is corrupt: ", *problem);
      stripped = without_debug_records(reader);
    }
    std::string metadata;
    torch::jit::Module module = import_archive(std::move(stripped), metadata, what);
    if (metadata_json != nullptr) *metadata_json = metadata;
    return module;
  } catch (const Error&) {
    throw;
  } catch (const torch::jit::ErrorReport& e) {  // safe to ask what(): no debug records are left
    MIPIN_FAIL(what, "its TorchScript code does not compile: ", summary_line(e.what()));
  } catch (const c10::Error& e) {
    MIPIN_FAIL(what, "the file is truncated, corrupt or ", kind.if_foreign, " (",
               first_line(e.what_without_backtrace()).substr(0, 200), ")");
  } catch (const std::exception& e) {  // the parser throws its own types besides ErrorReport
    MIPIN_FAIL(what, summary_line(e.what()));
  }
}

}  // namespace

torch::jit::Module read_libtorch_archive(const std::string& path, const LibTorchArchiveKind& kind,
                                         std::string* metadata_json) {
  if (auto problem = libtorch_archive_problem(path))
    MIPIN_FAIL("cannot read ", kind.name, ": ", *problem, " (", kind.if_foreign, ")");
  std::shared_ptr<caffe2::serialize::ReadAdapterInterface> file;
  try {
    file = std::make_shared<caffe2::serialize::FileAdapter>(path);
  } catch (const c10::Error& e) {
    MIPIN_FAIL("cannot open ", kind.name, ": ", first_line(e.what_without_backtrace()));
  }
  return read_checked(file, kind, metadata_json);
}

torch::jit::Module read_libtorch_archive_in_memory(const std::string& bytes, const LibTorchArchiveKind& kind,
                                                   std::string* metadata_json) {
  if (auto problem = libtorch_archive_problem_in_memory(bytes))
    MIPIN_FAIL("cannot read ", kind.name, ": ", *problem, " (", kind.if_foreign, ")");
  return read_checked(std::make_shared<MemoryAdapter>(bytes), kind, metadata_json);
}

std::optional<std::string> libtorch_archive_problem(const std::string& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return "cannot read the file (" + ec.message() + ")";
  return problem(unzOpen64(path.c_str()), size);
}

std::optional<std::string> libtorch_archive_problem_in_memory(const std::string& bytes) {
  Memory memory{&bytes};
  zlib_filefunc64_def functions{};
  functions.zopen64_file = open_memory;
  functions.zread_file = read_memory;
  functions.zwrite_file = write_memory;
  functions.ztell64_file = tell_memory;
  functions.zseek64_file = seek_memory;
  functions.zclose_file = close_memory;
  functions.zerror_file = error_memory;
  functions.opaque = &memory;
  return problem(unzOpen2_64("memory", &functions), bytes.size());
}

}  // namespace mipin
