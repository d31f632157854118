#include "mipin/zoo/trainer.h"
#include "zoo/train_loop.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>

#include "mipin/model/layers.h"
#include "mipin/util/error.h"
#include "mipin/util/progress.h"

namespace mipin {

namespace {

// BatchNorm's running statistics, as training leaves them, lag behind the
// weights (a moving average over the last batches, with weights that kept
// changing): re-estimated on the final weights they are the plain mean of
// the batch statistics, which is what the eval-mode network should use.
void reestimate_batchnorm(Network& network, const Dataset& data, int64_t n, int64_t batch_size) {
  std::vector<BatchNorm2d*> norms;
  for (size_t i = 0; i < network.size(); ++i) {
    if (network.layer(i).kind() == LayerKind::BatchNorm2d) norms.push_back(&static_cast<BatchNorm2d&>(network.layer(i)));
  }
  if (norms.empty()) return;
  torch::NoGradGuard no_grad;
  const int64_t examples = std::min<int64_t>(n, 10000);
  std::vector<double> momentum;
  for (BatchNorm2d* bn : norms) {
    momentum.push_back(bn->momentum);
    bn->running_mean.zero_();
    bn->running_var.fill_(1);
    bn->set_training(true);
  }
  int64_t k = 0;
  for (int64_t begin = 0; begin < examples; begin += batch_size, ++k) {
    // Momentum 1 / (k + 1): the running value is the mean over batches so far.
    for (BatchNorm2d* bn : norms) bn->momentum = 1.0 / double(k + 1);
    network.forward(data.get(begin, std::min(examples, begin + batch_size)).inputs);
  }
  for (size_t i = 0; i < norms.size(); ++i) {
    norms[i]->momentum = momentum[i];
    norms[i]->set_training(false);
  }
}

}  // namespace

TrainResult train_parameters(const std::function<at::Tensor(const at::Tensor&)>& forward,
                             std::vector<at::Tensor> parameters, const std::function<void(bool)>& set_training,
                             const Dataset& data, const TrainOptions& options) {
  MIPIN_CHECK(options.epochs >= 1, "epochs must be at least 1, found ", options.epochs);
  MIPIN_CHECK(options.batch_size >= 1, "batch size must be at least 1, found ", options.batch_size);
  MIPIN_CHECK(data.size() > 0, "the training data '", data.name(), "' is empty");
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = options.max_examples > 0 ? std::min(options.max_examples, data.size())
                                             : data.size();
  torch::manual_seed(options.seed);
  std::mt19937_64 shuffle_rng(options.seed);

  torch::AutoGradMode enable_grad(true);
  for (auto& p : parameters) p.set_requires_grad(true);
  torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(options.learning_rate));
  set_training(true);

  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  const int64_t batches = (n + options.batch_size - 1) / options.batch_size;
  TrainResult result;
  result.examples_seen = n;
  for (int64_t epoch = 0; epoch < options.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), shuffle_rng);
    std::unique_ptr<Progress> progress;
    if (options.show_progress) {
      progress = std::make_unique<Progress>(
          "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs), batches);
    }
    double loss_sum = 0;
    for (int64_t b = 0; b < batches; ++b) {
      const auto first = order.begin() + b * options.batch_size;
      const auto last = order.begin() + std::min((b + 1) * options.batch_size, n);
      const Batch batch = data.gather(std::vector<int64_t>(first, last));
      optimizer.zero_grad();
      const at::Tensor loss = torch::cross_entropy_loss(forward(batch.inputs), batch.labels);
      loss.backward();
      optimizer.step();
      const double l = loss.item<double>();
      MIPIN_CHECK(std::isfinite(l), "training diverged (loss ", l, ") in epoch ", epoch + 1,
                  "; try a smaller learning rate");
      loss_sum += l * static_cast<double>(last - first);
      if (progress) {
        char status[32];
        std::snprintf(status, sizeof status, "loss %.4f", l);
        progress->set_status(status);
        progress->advance();
      }
    }
    result.final_loss = loss_sum / static_cast<double>(n);
    if (options.show_progress && !Progress::drawing()) {
      std::fprintf(stderr, "epoch %lld/%lld: mean training loss %.4f\n",
                   static_cast<long long>(epoch + 1), static_cast<long long>(options.epochs),
                   result.final_loss);
    }
  }
  set_training(false);
  for (auto& p : parameters) p.set_requires_grad(false);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

TrainResult train(Network& network, const Dataset& data, const TrainOptions& options) {
  MIPIN_CHECK(data.num_classes() <= network.num_classes(), "the data '", data.name(), "' has ",
              data.num_classes(), " classes but the model outputs ", network.num_classes());
  const auto start = std::chrono::steady_clock::now();
  TrainResult result = train_parameters([&](const at::Tensor& x) { return network.forward(x); },
                                        network.trainable_parameters(),
                                        [&](bool training) { network.set_training(training); }, data, options);
  const int64_t n = result.examples_seen;
  reestimate_batchnorm(network, data, n, options.batch_size);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

Network train_linear_classifier(const Dataset& data, int64_t epochs) {
  const auto shape = data.sample_shape();
  MIPIN_CHECK(shape.size() == 1, "a linear classifier takes flat inputs, found examples of shape ",
              shape_string(shape));
  Network net;
  Linear layer;
  layer.weight = torch::zeros({data.num_classes(), shape[0]});
  layer.bias = torch::zeros({data.num_classes()});
  net.add(layer);
  net.set_input_shape(shape);
  torch::AutoGradMode enable(true);
  train(net, data, TrainOptions{}.with_epochs(epochs).with_learning_rate(1e-2).with_progress(false));
  return net;
}

double accuracy(const Network& network, const Dataset& data, int64_t max_examples,
                int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const int64_t n = max_examples > 0 ? std::min(max_examples, data.size()) : data.size();
  MIPIN_CHECK(n > 0, "cannot measure accuracy on the empty data set '", data.name(), "'");
  int64_t correct = 0;
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const Batch batch = data.get(begin, std::min(begin + batch_size, n));
    correct += network.forward(batch.inputs).argmax(1).eq(batch.labels).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

}  // namespace mipin
