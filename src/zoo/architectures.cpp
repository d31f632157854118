#include "mipin/zoo/architectures.h"

#include <torch/torch.h>

#include <cmath>

#include "mipin/model/layers.h"
#include "mipin/util/error.h"
#include "model/activations.h"
#include "zoo/initialisation.h"

namespace mipin {
namespace {

Linear linear(int64_t in, int64_t out) {
  Linear l;
  l.weight = default_uniform({out, in}, in);
  l.bias = default_uniform({out}, in);
  return l;
}

Conv2d conv3x3(int64_t in, int64_t out) {
  Conv2d c;
  c.weight = default_uniform({out, in, 3, 3}, in * 9);
  c.bias = default_uniform({out}, in * 9);
  c.padding = {1, 1};
  return c;
}

BatchNorm2d batchnorm(int64_t channels) {
  BatchNorm2d bn;
  bn.weight = torch::ones({channels});
  bn.bias = torch::zeros({channels});
  bn.running_mean = torch::zeros({channels});
  bn.running_var = torch::ones({channels});
  return bn;
}

MaxPool2d maxpool2() { return MaxPool2d{}; }

int64_t flat_size(const Network& net, const std::vector<int64_t>& input_shape) {
  const auto s = net.shapes(input_shape).back();
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  Conv2d c;
  c.weight = default_uniform({out, in, kernel, kernel}, in * kernel * kernel);
  c.stride = {stride, stride};
  c.padding = {kernel / 2, kernel / 2};
  return c;  // no bias: a BatchNorm follows
}

// conv - BN, appended to the graph after value `from`; returns the BN's output value.
size_t conv_bn(Network& net, size_t from, int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  const size_t c = net.add(std::make_unique<Conv2d>(conv(in, out, kernel, stride)), {from});
  return net.add(std::make_unique<BatchNorm2d>(batchnorm(out)), {c});
}

// A basic residual block (He et al. 2016): conv-BN-ReLU-conv-BN plus the
// block's input (through a 1x1 conv-BN projection where the shape changes),
// then ReLU. Returns the block's output value.
size_t basic_block(Network& net, size_t from, int64_t in, int64_t out, int64_t stride) {
  const size_t a = conv_bn(net, from, in, out, 3, stride);
  const size_t r = net.add(std::make_unique<ReLU>(), {a});
  const size_t b = conv_bn(net, r, out, out, 3, 1);
  const size_t skip = stride == 1 && in == out ? from : conv_bn(net, from, in, out, 1, stride);
  const size_t sum = net.add(std::make_unique<Add>(), {b, skip});
  return net.add(std::make_unique<ReLU>(), {sum});
}

// A 1-D convolution over a series stored as [C, 1, T]: a kernel of one row.
Conv2d conv_1xk(int64_t in, int64_t out, int64_t kernel) {
  Conv2d c;
  c.weight = default_uniform({out, in, 1, kernel}, in * kernel);
  c.bias = default_uniform({out}, in * kernel);
  c.padding = {0, kernel / 2};
  return c;
}

MaxPool2d maxpool_1x2() {
  MaxPool2d p;
  p.kernel = {1, 2};
  p.stride = {1, 2};
  return p;
}

}  // namespace

std::vector<std::string> architecture_names() { return {"mlp", "cnn", "vgg-mini", "resnet", "conv1d"}; }

std::vector<std::string> activation_names() {
  std::vector<std::string> names{"relu"};
  for (const auto& spec : activation_specs()) names.push_back(spec.name);
  return names;
}

Network make_architecture(const std::string& name, const std::vector<int64_t>& input_shape,
                          int64_t num_classes, const std::string& activation) {
  MIPIN_CHECK(num_classes >= 2, "a classifier needs at least 2 classes, found ", num_classes);
  const auto names = activation_names();
  if (std::find(names.begin(), names.end(), activation) == names.end()) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    MIPIN_FAIL("unknown activation '", activation, "'; expected one of: ", known);
  }
  const auto modules = module_architecture_names();
  MIPIN_CHECK(std::find(modules.begin(), modules.end(), name) == modules.end(), "architecture '", name,
              "' is a TorchScript module, not a network of mipin's layers: train it with "
              "train_module_architecture (`mipin train --arch ", name, "`)");
  Network net;
  if (name == "mlp") {
    net.add(Flatten{});
    net.add(linear(flat_size(net, input_shape), 256));
    net.add(ReLU{});
    net.add(linear(256, 128));
    net.add(ReLU{});
    net.add(linear(128, num_classes));
  } else if (name == "cnn" || name == "vgg-mini") {
    MIPIN_CHECK(input_shape.size() == 3, "architecture '", name,
                "' takes images [C, H, W], found input shape ", shape_string(input_shape));
    if (name == "cnn") {
      net.add(conv3x3(input_shape[0], 32));
      net.add(ReLU{});
      net.add(maxpool2());
      net.add(conv3x3(32, 64));
      net.add(ReLU{});
      net.add(maxpool2());
    } else {
      int64_t in = input_shape[0];
      for (int64_t width : {16, 32}) {
        for (int rep = 0; rep < 2; ++rep) {
          net.add(conv3x3(in, width));
          net.add(batchnorm(width));
          net.add(ReLU{});
          in = width;
        }
        net.add(maxpool2());
      }
    }
    net.add(Flatten{});
    net.add(linear(flat_size(net, input_shape), 128));
    net.add(ReLU{});
    if (name == "vgg-mini") net.add(Dropout{});
    net.add(linear(128, num_classes));
  } else if (name == "resnet") {
    MIPIN_CHECK(input_shape.size() == 3, "architecture '", name,
                "' takes images [C, H, W], found input shape ", shape_string(input_shape));
    size_t v = conv_bn(net, 0, input_shape[0], 32, 3, 1);
    v = net.add(std::make_unique<ReLU>(), {v});
    v = basic_block(net, v, 32, 32, 1);
    v = basic_block(net, v, 32, 64, 2);
    AdaptiveAvgPool2d pool;
    pool.output_size = {1, 1};
    net.add(pool);
    net.add(Flatten{});
    net.add(linear(64, num_classes));
  } else if (name == "conv1d") {
    MIPIN_CHECK(input_shape.size() == 3 && input_shape[1] == 1,
                "architecture 'conv1d' takes series [C, 1, T] (a height of one, as `mipin data motifs` "
                "writes them), found input shape ", shape_string(input_shape));
    net.add(conv_1xk(input_shape[0], 16, 7));
    net.add(ReLU{});
    net.add(maxpool_1x2());
    net.add(conv_1xk(16, 32, 5));
    net.add(ReLU{});
    net.add(maxpool_1x2());
    net.add(conv_1xk(32, 32, 3));
    net.add(ReLU{});
    // Global max pooling over time: a motif is one event, and a mean over
    // the whole series would dilute it.
    MaxPool2d pool;
    const int64_t steps = net.shapes(input_shape).back()[2];
    pool.kernel = {1, steps};
    pool.stride = {1, steps};
    net.add(pool);
    net.add(Flatten{});
    net.add(linear(32, num_classes));
  } else {
    std::string known;
    for (const auto& n : architecture_names()) known += (known.empty() ? "" : ", ") + n;
    MIPIN_FAIL("unknown architecture '", name, "'; expected one of: ", known);
  }
  if (activation != "relu") {
    // Every ReLU becomes the activation asked for.
    Network with;
    for (size_t i = 0; i < net.size(); ++i) {
      if (net.layer(i).kind() != LayerKind::ReLU) {
        with.add(net.layer(i).clone(), net.inputs(i));
        continue;
      }
      Activation a;
      a.function = activation;
      a.parameters = activation_spec(activation).defaults;
      with.add(std::make_unique<Activation>(a), net.inputs(i));
    }
    net = std::move(with);
  }
  net.set_input_shape(input_shape);
  return net;
}

}  // namespace mipin
