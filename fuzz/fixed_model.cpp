#include "fixed_model.h"

#include <torch/torch.h>

#include "mipin/model/layers.h"

namespace mipin::fuzz {
namespace {

Conv2d conv3x3(int64_t in, int64_t out) {
  Conv2d c;
  c.weight = torch::randn({out, in, 3, 3}) * 0.3;
  c.bias = torch::randn({out}) * 0.1;
  c.padding = {1, 1};
  return c;
}

BatchNorm2d batchnorm(int64_t channels) {
  BatchNorm2d b;
  b.weight = torch::rand({channels}) + 0.5;
  b.bias = torch::randn({channels}) * 0.1;
  b.running_mean = torch::randn({channels}) * 0.1;
  b.running_var = torch::rand({channels}) + 0.5;
  return b;
}

}  // namespace

// Small enough that a checkpoint's sums take kilobytes, not megabytes:
// conv 1->4, BatchNorm, ReLU, a residual block at 4 channels (a fork and an
// add), ReLU, max pooling, linear 64->3.
const Network& fixed_network() {
  static const Network network = [] {
    torch::manual_seed(0);
    Network net;
    size_t v = net.add(std::make_unique<Conv2d>(conv3x3(1, 4)), {0});
    v = net.add(std::make_unique<BatchNorm2d>(batchnorm(4)), {v});
    v = net.add(std::make_unique<ReLU>(), {v});
    size_t a = net.add(std::make_unique<Conv2d>(conv3x3(4, 4)), {v});
    a = net.add(std::make_unique<ReLU>(), {a});
    a = net.add(std::make_unique<Conv2d>(conv3x3(4, 4)), {a});
    size_t s = net.add(std::make_unique<Add>(), {a, v});
    s = net.add(std::make_unique<ReLU>(), {s});
    s = net.add(std::make_unique<MaxPool2d>(), {s});
    s = net.add(std::make_unique<Flatten>(), {s});
    Linear out;
    out.weight = torch::randn({3, 64}) * 0.2;
    out.bias = torch::zeros({3});
    net.add(std::make_unique<Linear>(out), {s});
    net.set_input_shape({1, 8, 8});
    return net;
  }();
  return network;
}

const Dataset& fixed_data() {
  static const std::unique_ptr<Dataset> data = [] {
    torch::manual_seed(1);
    at::Tensor raw = torch::randint(0, 256, {16, 1, 8, 8}, at::kByte);
    at::Tensor labels = torch::arange(16, at::kLong).remainder(3);
    return make_tensor_dataset("fuzz", raw, labels, Normalization{}, 3);
  }();
  return *data;
}

InverseOptions fixed_options() {
  InverseOptions o;
  o.batch_size = 8;
  return o;
}

Batch fixed_batch() { return fixed_data().get(0, 2); }

}  // namespace mipin::fuzz
