// mipin data clutter | motifs: data sets with known ground truth (the
// cluttered canvas as image folders, planted motifs as .npy series).
#include <filesystem>
#include <iostream>

#include "common.h"
#include "mipin/data/image_folder.h"
#include "mipin/data/npy.h"
#include "mipin/data/synthetic.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"

namespace mipin::cli {
namespace {
namespace fs = std::filesystem;

struct ClutterCommandOptions {
  std::string data = "fashion-mnist", out;
  int64_t train = 10000, test = 2000;
  ClutterOptions clutter;
  CommonOptions common;
};

// Writes one split's PNGs under root/split/<class>/ and returns its box list.
nlohmann::json write_split(const std::string& root, const std::string& split,
                           const ClutteredCanvas& c, int64_t num_classes) {
  const int width = static_cast<int>(std::to_string(std::max<int64_t>(0, num_classes - 1)).size());
  nlohmann::json entries = nlohmann::json::array();
  for (int64_t i = 0; i < c.images.size(0); ++i) {
    const int64_t label = c.labels[i].item<int64_t>();
    char cls[32], name[32];
    std::snprintf(cls, sizeof cls, "%0*lld", width, static_cast<long long>(label));
    std::snprintf(name, sizeof name, "%06lld.png", static_cast<long long>(i));
    const std::string relative = split + "/" + cls + "/" + name;
    fs::create_directories(fs::path(root) / split / cls);
    write_png((fs::path(root) / relative).string(),
              (c.images[i] * 255).round().clamp(0, 255).to(torch::kByte));
    const auto b = c.boxes[i];
    entries.push_back({{"file", relative},
                       {"label", label},
                       {"box", {b[0].item<int64_t>(), b[1].item<int64_t>(), b[2].item<int64_t>(),
                                b[3].item<int64_t>()}}});
  }
  return entries;
}

void run_clutter(const ClutterCommandOptions& o) {
  apply_common_options(o.common);
  MIPIN_CHECK(!fs::exists(o.out), "'", o.out, "' already exists: choose a new directory for the data set");
  const DataSpec spec = parse_data_spec(o.data);
  const auto train_objects = open_dataset(spec, Split::Train);
  const auto test_objects = open_dataset(spec, Split::Test);
  const int64_t classes = train_objects->num_classes();
  // Written under a temporary name and renamed when complete.
  write_atomically(o.out, [&](const std::string& tmp) {
    ClutterOptions train_options = o.clutter, test_options = o.clutter;
    test_options.seed = o.clutter.seed + 1;
    nlohmann::json boxes = {{"format", "mipin-clutter/1"},
                            {"source", spec.text},
                            {"canvas", o.clutter.canvas},
                            {"box_order", "top, left, bottom, right (bottom and right exclusive)"}};
    boxes["train"] = write_split(tmp, "train", make_cluttered_canvas(*train_objects, o.train, train_options), classes);
    boxes["test"] = write_split(tmp, "test", make_cluttered_canvas(*test_objects, o.test, test_options), classes);
    write_file_atomically(tmp + "/boxes.json", boxes.dump(1));
  });
  if (o.common.json) {
    print_json({{"out", o.out}, {"train", o.train}, {"test", o.test}, {"canvas", o.clutter.canvas},
                {"boxes", o.out + "/boxes.json"}});
  } else {
    std::printf("wrote %lld training and %lld test canvases (%lldx%lld) to %s; boxes in %s/boxes.json\n"
                "use it as --data folder:%s\n",
                static_cast<long long>(o.train), static_cast<long long>(o.test),
                static_cast<long long>(o.clutter.canvas), static_cast<long long>(o.clutter.canvas),
                o.out.c_str(), o.out.c_str(), o.out.c_str());
  }
}

struct MotifsCommandOptions {
  std::string out;
  int64_t train = 10000, test = 2000;
  MotifOptions motifs;
  CommonOptions common;
};

// One split's series and labels as .npy, and its spans as box entries.
nlohmann::json write_motif_split(const std::string& root, const std::string& split, const MotifSeries& m) {
  write_npy(root + "/" + split + "_x.npy", m.series);
  write_npy(root + "/" + split + "_y.npy", m.labels);
  nlohmann::json entries = nlohmann::json::array();
  for (int64_t i = 0; i < m.labels.size(0); ++i) {
    const int64_t s = m.spans[i][0].item<int64_t>(), e = m.spans[i][1].item<int64_t>();
    // A series reads back as an image of height one, [1, 1, length]: its
    // span is the box of rows [0, 1) and columns [s, e).
    entries.push_back({{"index", i}, {"label", m.labels[i].item<int64_t>()}, {"span", {s, e}}, {"box", {0, s, 1, e}}});
  }
  return entries;
}

void run_motifs(const MotifsCommandOptions& o) {
  apply_common_options(o.common);
  MIPIN_CHECK(!fs::exists(o.out), "'", o.out, "' already exists: choose a new directory for the data set");
  write_atomically(o.out, [&](const std::string& tmp) {
    MotifOptions train_options = o.motifs, test_options = o.motifs;
    test_options.seed = o.motifs.seed + 1;
    const MotifSeries train = make_motif_series(o.train, train_options);
    const MotifSeries test = make_motif_series(o.test, test_options);
    fs::create_directories(tmp);
    nlohmann::json boxes = {{"format", "mipin-motifs/1"},
                            {"length", o.motifs.length},
                            {"motif_length", o.motifs.motif_length},
                            {"classes", o.motifs.classes},
                            {"amplitude", o.motifs.amplitude},
                            {"noise", o.motifs.noise},
                            {"seed", o.motifs.seed},
                            {"span_order", "first sample, one past the last"},
                            {"box_order", "top, left, bottom, right (bottom and right exclusive)"}};
    boxes["train"] = write_motif_split(tmp, "train", train);
    boxes["test"] = write_motif_split(tmp, "test", test);
    write_file_atomically(tmp + "/boxes.json", boxes.dump(1));
  });
  if (o.common.json) {
    print_json({{"out", o.out}, {"train", o.train}, {"test", o.test}, {"length", o.motifs.length},
                {"classes", o.motifs.classes}, {"boxes", o.out + "/boxes.json"}});
  } else {
    std::printf("wrote %lld training and %lld test series (%lld samples, %lld classes) to %s; spans in %s/boxes.json\n"
                "use it as --data npy:%s (each series reads as [1, 1, %lld]: one channel, a height of one, time)\n",
                static_cast<long long>(o.train), static_cast<long long>(o.test),
                static_cast<long long>(o.motifs.length), static_cast<long long>(o.motifs.classes),
                o.out.c_str(), o.out.c_str(), o.out.c_str(), static_cast<long long>(o.motifs.length));
  }
}

void register_motifs(CLI::App& data) {
  auto o = std::make_shared<MotifsCommandOptions>();
  CLI::App* cmd = data.add_subcommand(
      "motifs",
      "Write the planted-motifs data set: each series is Gaussian noise with one class-specific\n"
      "motif (a windowed sine of k + 1 cycles for class k) added at a random position. The\n"
      "series go to DIR/{train,test}_x.npy as [N, 1, length], the labels to {train,test}_y.npy,\n"
      "and each motif's span to DIR/boxes.json, so `mipin evaluate` scores the pointing game on\n"
      "it as it does on the cluttered canvas.\n\n"
      "Example: mipin data motifs --out motifs && mipin train --arch conv1d --data npy:motifs --out conv1d.pt");
  cmd->add_option("--out", o->out, "New directory to write")->required();
  cmd->add_option("--train", o->train, "Training series")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--test", o->test, "Test series")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--length", o->motifs.length, "Samples per series")->capture_default_str();
  cmd->add_option("--motif-length", o->motifs.motif_length, "Samples per motif")->capture_default_str();
  cmd->add_option("--classes", o->motifs.classes, "Classes (2 to 8)")->capture_default_str();
  cmd->add_option("--amplitude", o->motifs.amplitude, "Peak of a motif")->capture_default_str();
  cmd->add_option("--noise", o->motifs.noise, "Standard deviation of the noise")->capture_default_str();
  cmd->add_option("--seed", o->motifs.seed, "Seed (the test split uses seed + 1)")->capture_default_str();
  add_common_options(*cmd, o->common);
  cmd->callback([o] { run_motifs(*o); });
}

}  // namespace

void register_data_command(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Make data sets with known ground truth.");
  data->require_subcommand(1);
  auto o = std::make_shared<ClutterCommandOptions>();
  CLI::App* cmd = data->add_subcommand(
      "clutter",
      "Write the cluttered-canvas data set: each image is an object from --data placed at a\n"
      "random position on a larger canvas with distractor patches cut from other images; the\n"
      "label is the object's and its box goes to DIR/boxes.json. DIR uses the image-folder\n"
      "layout, so it reads back as --data folder:DIR.\n\n"
      "Example: mipin data clutter --data fashion-mnist --out clutter --train 10000 --test 2000");
  cmd->add_option("--data", o->data, "Source of the objects (see docs/cli.md, \"Data sets\")")->capture_default_str();
  cmd->add_option("--out", o->out, "New directory to write")->required();
  cmd->add_option("--train", o->train, "Training canvases")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--test", o->test, "Test canvases")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--canvas", o->clutter.canvas, "Canvas side in pixels")->capture_default_str();
  cmd->add_option("--distractors", o->clutter.distractors, "Distractor patches per canvas")
      ->capture_default_str();
  cmd->add_option("--patch", o->clutter.patch, "Side of a distractor patch")->capture_default_str();
  cmd->add_option("--seed", o->clutter.seed, "Seed")->capture_default_str();
  add_common_options(*cmd, o->common);
  cmd->callback([o] { run_clutter(*o); });
  register_motifs(*data);
}

}  // namespace mipin::cli
