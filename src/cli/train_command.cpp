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

void run_train(const TrainCommandOptions& o) {
  apply_common_options(o.common);
  const DataSpec spec = parse_data_spec(o.data);
  const auto train_data = open_dataset(spec, Split::Train);
  const auto test_data = open_dataset(spec, Split::Test);
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
                  "or conv1d (three 1-D convolutions and global max pooling, for the series of "
                  "`mipin data motifs`)")
      ->check(CLI::IsMember(architecture_names()))
      ->capture_default_str();
  cmd->add_option("--activation", options->activation,
                  "The nonlinearity in place of every ReLU (PyTorch's default arguments)")
      ->check(CLI::IsMember(activation_names()))
      ->capture_default_str();
  cmd->add_option("--data", options->data,
                  "Data set: fashion-mnist, idx:DIR, folder:DIR, npy:DIR (see README)")
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
