#include "mipin/zoo/architectures.h"

#include <torch/torch.h>

#include <cmath>

#include "mipin/model/layers.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

// PyTorch's default: kaiming_uniform(a=sqrt(5)) for weights, which is
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for biases.
at::Tensor uniform(std::vector<int64_t> shape, int64_t fan_in) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return (torch::rand(shape) * 2 - 1) * bound;
}

Linear linear(int64_t in, int64_t out) {
  Linear l;
  l.weight = uniform({out, in}, in);
  l.bias = uniform({out}, in);
  return l;
}

Conv2d conv3x3(int64_t in, int64_t out) {
  Conv2d c;
  c.weight = uniform({out, in, 3, 3}, in * 9);
  c.bias = uniform({out}, in * 9);
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

}  // namespace

std::vector<std::string> architecture_names() { return {"mlp", "cnn", "vgg-mini"}; }

Network make_architecture(const std::string& name, const std::vector<int64_t>& input_shape,
                          int64_t num_classes) {
  MIPIN_CHECK(num_classes >= 2, "a classifier needs at least 2 classes, found ", num_classes);
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
  } else {
    std::string known;
    for (const auto& n : architecture_names()) known += (known.empty() ? "" : ", ") + n;
    MIPIN_FAIL("unknown architecture '", name, "'; expected one of: ", known);
  }
  net.set_input_shape(input_shape);
  return net;
}

}  // namespace mipin
