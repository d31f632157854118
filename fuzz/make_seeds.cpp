// Writes the seeds of the corpus that mipin makes itself: IDX (raw and
// gzipped), .npy, PNG, --data specs, mipin.json, and the archives (the
// fixed model as TorchScript, an inverse, patterns and a fit's checkpoints,
// each also as a record list; fuzz_input.h). Models given after the
// directory are added as they are and as record lists. With --check, writes
// nothing and fails unless the archive seeds still reach past the model
// check (a changed fingerprint or format would leave the fuzzers at the door).
//   fuzz_seeds fuzz/corpus [model.pt ...]
//   fuzz_seeds --check fuzz/corpus
#include <torch/torch.h>
#include <zlib.h>

#include <filesystem>
#include <functional>
#include <stdexcept>
#include <fstream>
#include <iostream>

#include "fixed_model.h"
#include "fuzz_input.h"
#include "mipin/attribution/patterns.h"
#include "mipin/data/idx.h"
#include "mipin/data/image_folder.h"
#include "mipin/data/npy.h"
#include "mipin/inverse/inverse.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"

namespace fs = std::filesystem;
using namespace mipin;

namespace {

std::string root;

std::string seed(const std::string& harness, const std::string& name) {
  fs::create_directories(root + "/" + harness);
  return root + "/" + harness + "/" + name;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// An archive seed and its record list.
void archive_seed(const std::string& harness, const std::string& name, const std::string& archive_path) {
  const std::string bytes = read_file(archive_path);
  write_bytes(seed(harness, name), bytes);
  write_bytes(seed(harness, name + ".records"), fuzz::record_list(bytes));
}

void gzip(const std::string& from, const std::string& to) {
  const std::string bytes = read_file(from);
  gzFile out = gzopen(to.c_str(), "wb9");
  gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(out);
}

}  // namespace

// Every archive seed, as it is and zipped again from its record list, is
// read and accepted by the fixed model.
int check(const std::string& corpus) {
  int bad = 0;
  auto each = [&](const std::string& harness, const std::function<void(const std::string&)>& accept) {
    int n = 0;
    for (const auto& entry : fs::directory_iterator(corpus + "/" + harness)) {
      const std::string bytes = read_file(entry.path().string());
      const auto archive = fuzz::archive_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      try {
        if (!archive) throw std::runtime_error("not an archive nor a record list");
        accept(fuzz::scratch_file(*archive, "." + harness));
        ++n;
      } catch (const std::exception& e) {
        std::cerr << entry.path().string() << ": " << e.what() << "\n";
        ++bad;
      }
    }
    std::cout << harness << ": " << n << " seeds accepted\n";
    if (n == 0) ++bad;
  };
  const Network& net = fuzz::fixed_network();
  each("inverse", [&](const std::string& path) { Inverse::load(path).check_compatible(net); });
  each("patterns", [&](const std::string& path) { Patterns::load(path).check_compatible(net); });
  each("checkpoint", [&](const std::string& path) {
    const std::string dir = path + ".d";
    fs::create_directories(dir);
    fs::copy_file(path, fit_checkpoint_file(dir), fs::copy_options::overwrite_existing);
    bool resumed = false;
    fit_inverse(net, fuzz::fixed_data(), fuzz::fixed_options(),
                FitRun().with_checkpoint(dir, 1e9).with_progress([&](const ProgressEvent& e) {
                  resumed = resumed || e.text.find("resum") != std::string::npos;
                }));
    fs::remove_all(dir);
    if (!resumed) throw std::runtime_error("the fit did not resume from it");
  });
  // A model may be refused for an op mipin does not map: the importer read it.
  each("model", [&](const std::string& path) {
    try {
      load_torchscript(path);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::unsupported) throw;
    }
  });
  return bad == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--check") return check(argv[2]);
  if (argc < 2) {
    std::cerr << "usage: fuzz_seeds CORPUS_DIR [model.pt ...] | fuzz_seeds --check CORPUS_DIR\n";
    return 2;
  }
  root = argv[1];
  torch::manual_seed(2);

  write_idx(seed("idx", "images-idx3-ubyte"), torch::randint(0, 256, {3, 4, 5}, at::kByte));
  write_idx(seed("idx", "labels-idx1-ubyte"), torch::tensor({0, 1, 2, 1, 9}, at::kByte));
  gzip(seed("idx", "images-idx3-ubyte"), seed("idx", "images-idx3-ubyte.gz"));
  gzip(seed("idx", "labels-idx1-ubyte"), seed("idx", "labels-idx1-ubyte.gz"));
  // float32 [2] = {1.5, -2}: type 0x0D, big-endian elements.
  write_bytes(seed("idx", "floats-idx1"), std::string("\0\0\x0D\x01\0\0\0\x02\x3F\xC0\0\0\xC0\0\0\0", 16));

  write_npy(seed("npy", "f4.npy"), torch::randn({2, 3}));
  write_npy(seed("npy", "f8.npy"), torch::randn({4}, at::kDouble));
  write_npy(seed("npy", "u1.npy"), torch::randint(0, 256, {2, 2, 2}, at::kByte));
  write_npy(seed("npy", "i4.npy"), torch::tensor({3, -1, 7}, at::kInt));
  write_npy(seed("npy", "i8-empty.npy"), torch::zeros({0, 2}, at::kLong));

  write_png(seed("image", "grey.png"), torch::randint(0, 256, {5, 7}, at::kByte));
  write_png(seed("image", "rgb.png"), torch::randint(0, 256, {3, 4, 4}, at::kByte));
  write_png(seed("image", "rgba.png"), torch::randint(0, 256, {4, 3, 3}, at::kByte));

  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"builtin", "fashion-mnist"},
           {"idx", "idx:/data/mnist?mean=0.1307&std=0.3081"},
           {"folder", "folder:/data/pets?size=64x48&channels=3&mean=0.485,0.456,0.406&std=0.229,0.224,0.225"},
           {"npy", "npy:/data/arrays?scale=1"}}) {
    write_bytes(seed("data_spec", name), text);
  }

  ModelMetadata metadata;
  metadata.input_shape = {1, 8, 8};
  metadata.architecture = "resnet";
  metadata.data = "fuzz";
  metadata.test_accuracy = 0.5;
  write_bytes(seed("metadata", "full.json"), metadata_to_json(metadata));
  write_bytes(seed("metadata", "shape.json"), "{\"input_shape\": [3, 224, 224]}");

  const std::string scratch = (fs::temp_directory_path() / ("mipin-seeds-" + std::to_string(getpid()))).string();
  fs::create_directories(scratch);
  save_torchscript(fuzz::fixed_network(), scratch + "/model.pt", metadata);
  archive_seed("model", "resnet.pt", scratch + "/model.pt");
  for (int i = 2; i < argc; ++i) archive_seed("model", fs::path(argv[i]).filename().string(), argv[i]);

  const Inverse inverse = fit_inverse(fuzz::fixed_network(), fuzz::fixed_data(), fuzz::fixed_options());
  inverse.save(scratch + "/inverse.mipin");
  archive_seed("inverse", "fitted.mipin", scratch + "/inverse.mipin");
  InverseOptions forks = fuzz::fixed_options();
  forks.fork = ForkCombine::Fitted;
  fit_inverse(fuzz::fixed_network(), fuzz::fixed_data(), forks).save(scratch + "/forks.mipin");
  archive_seed("inverse", "forks.mipin", scratch + "/forks.mipin");

  fit_patterns(fuzz::fixed_network(), fuzz::fixed_data(), 0, 8).save(scratch + "/fitted.patterns");
  archive_seed("patterns", "fitted.patterns", scratch + "/fitted.patterns");

  // The checkpoint as it stands at each step of the fit.
  const std::string checkpoint = fit_checkpoint_file(scratch + "/checkpoint");
  int step = 0;
  fit_inverse(fuzz::fixed_network(), fuzz::fixed_data(), fuzz::fixed_options(),
              FitRun()
                  .with_checkpoint(scratch + "/checkpoint", 0)
                  .with_progress([&](const ProgressEvent& e) {
                    if (e.kind != ProgressEvent::Kind::advance || !fs::exists(checkpoint)) return;
                    archive_seed("checkpoint", "step" + std::to_string(++step) + ".checkpoint", checkpoint);
                  }));
  fs::remove_all(scratch);
  std::cout << "seeds written under " << root << "\n";
  return 0;
}
