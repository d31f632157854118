// mipin train: a zoo architecture trained with Adam, saved as TorchScript.
#include <torch/torch.h>

#include <iostream>

#include "common.h"
#include "mipin/data/dataset.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/error.h"
#include "mipin/zoo/architectures.h"
#include "mipin/zoo/trainer.h"

namespace mipin::cli {
namespace {

struct TrainCommandOptions {
  std::string arch = "cnn";
  std::string activation = "relu";
  std::string data = "fashion-mnist";
  std::string out;
  int64_t epochs = 3;
  int64_t batch_size = 64;
  double learning_rate = 1e-3;
  uint64_t seed = 1;
  int64_t examples = 0;
  CommonOptions common;
};

// A module architecture (vit): trained as a TorchScript module, then read
// back through the import as any user's model is, which checks mipin's
// forward against the module's.
void run_train_module(const TrainCommandOptions& o, const DataSpec& spec, const Dataset& train_data,
                      const Dataset& test_data) {
  MIPIN_CHECK(o.activation == "relu", "--activation applies to the networks of mipin's layers; '", o.arch,
              "' has its own (GELU)");
  if (!o.common.json) {
    std::cout << "training " << o.arch << " on " << spec.text << ": " << train_data.size()
              << " training examples, " << test_data.size() << " test examples\n";
  }
  ModelMetadata metadata;
  metadata.data = spec.text;
  const ModuleTrainResult r = train_module_architecture(o.arch, train_data, test_data,
                                                        TrainOptions{}
                                                            .with_epochs(o.epochs)
                                                            .with_batch_size(o.batch_size)
                                                            .with_learning_rate(o.learning_rate)
                                                            .with_seed(o.seed)
                                                            .with_max_examples(o.examples),
                                                        o.out, metadata);
  const ImportedModel imported = load_torchscript(o.out);
  if (o.common.json) {
    print_json({{"model", o.out},
                {"architecture", o.arch},
                {"activation", "gelu"},
                {"data", spec.text},
                {"epochs", o.epochs},
                {"seed", o.seed},
                {"parameters", r.parameters},
                {"train_examples", r.examples_seen},
                {"test_examples", test_data.size()},
                {"final_train_loss", r.final_loss},
                {"test_accuracy", r.test_accuracy},
                {"seconds", r.seconds},
                {"nodes", imported.network.size()},
                {"fingerprint", imported.network.fingerprint()}});
  } else {
    std::printf("final training loss %.4f, test accuracy %.4f (%lld images), %.1f s, %lld parameters\n"
                "saved %s (read back by mipin as %zu nodes)\n",
                r.final_loss, r.test_accuracy, static_cast<long long>(test_data.size()), r.seconds,
                static_cast<long long>(r.parameters), o.out.c_str(), imported.network.size());
  }
}

void run_train(const TrainCommandOptions& o) {
  apply_common_options(o.common);
  const DataSpec spec = parse_data_spec(o.data);
  const auto train_data = open_dataset(spec, Split::Train);
  const auto test_data = open_dataset(spec, Split::Test);
  const auto modules = module_architecture_names();
  if (std::find(modules.begin(), modules.end(), o.arch) != modules.end()) {
    run_train_module(o, spec, *train_data, *test_data);
    return;
  }
  torch::manual_seed(o.seed);
  Network net = make_architecture(o.arch, train_data->sample_shape(), train_data->num_classes(), o.activation);
  if (!o.common.json) {
    std::cout << "training " << o.arch << " (" << net.parameter_count() << " parameters) on "
              << spec.text << ": " << train_data->size() << " training examples, "
              << test_data->size() << " test examples\n";
  }
  const TrainResult r = train(net, *train_data,
                              TrainOptions{}
                                  .with_epochs(o.epochs)
                                  .with_batch_size(o.batch_size)
                                  .with_learning_rate(o.learning_rate)
                                  .with_seed(o.seed)
                                  .with_max_examples(o.examples));
  const double test_accuracy = accuracy(net, *test_data);
  ModelMetadata metadata;
  metadata.input_shape = net.input_shape();
  metadata.architecture = o.arch;
  metadata.data = spec.text;
  metadata.test_accuracy = test_accuracy;
  save_torchscript(net, o.out, metadata);
  if (o.common.json) {
    print_json({{"model", o.out},
                {"architecture", o.arch},
                {"activation", o.activation},
                {"data", spec.text},
                {"epochs", o.epochs},
                {"seed", o.seed},
                {"train_examples", r.examples_seen},
                {"test_examples", test_data->size()},
                {"final_train_loss", r.final_loss},
                {"test_accuracy", test_accuracy},
                {"seconds", r.seconds},
                {"fingerprint", net.fingerprint()}});
  } else {
    std::printf("final training loss %.4f, test accuracy %.4f (%lld images), %.1f s\nsaved %s\n",
                r.final_loss, test_accuracy, static_cast<long long>(test_data->size()), r.seconds,
                o.out.c_str());
  }
}

}  // namespace

void register_train_command(CLI::App& app) {
  auto options = std::make_shared<TrainCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Train a built-in model with Adam and save it as TorchScript, the same format a\n"
      "PyTorch user exports with torch.jit.trace/script. The same seed gives the same model.\n\n"
      "Example: mipin train --arch cnn --data fashion-mnist --epochs 3 --seed 1 --out cnn.pt");
  cmd->add_option("--arch", options->arch,
                  "Architecture: mlp, cnn, vgg-mini, resnet (a small residual CNN: basic blocks "
                  "with BatchNorm, a strided block with a 1x1 projection, global average pooling) "
                  "conv1d (three 1-D convolutions and global max pooling, for the series of "
                  "`mipin data motifs`) or vit (a vision transformer for 28x28 images: 4x4 patches, "
                  "width 64, 4 blocks of 4-head attention, a class token; a TorchScript module)")
      ->check(CLI::IsMember([] {
        auto names = architecture_names();
        for (const auto& n : module_architecture_names()) names.push_back(n);
        return names;
      }()))
      ->capture_default_str();
  cmd->add_option("--activation", options->activation,
                  "The nonlinearity in place of every ReLU (PyTorch's default arguments)")
      ->check(CLI::IsMember(activation_names()))
      ->capture_default_str();
  cmd->add_option("--data", options->data,
                  "Data set: fashion-mnist, idx:DIR, folder:DIR, npy:DIR (see docs/cli.md, \"Data sets\")")
      ->capture_default_str();
  cmd->add_option("--out", options->out, "Where to write the TorchScript model (.pt)")->required();
  cmd->add_option("--epochs", options->epochs, "Passes over the training data")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--batch-size", options->batch_size, "Examples per optimizer step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--lr", options->learning_rate, "Adam learning rate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--seed", options->seed, "Seed for initialisation and shuffling")
      ->capture_default_str();
  cmd->add_option("--examples", options->examples,
                  "Train on the first N training examples only (default: all)")
      ->check(CLI::NonNegativeNumber);
  add_common_options(*cmd, options->common);
  cmd->callback([options] { run_train(*options); });
}

}  // namespace mipin::cli
