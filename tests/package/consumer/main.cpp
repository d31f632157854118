// Explaining inside a native program starts with a forward pass through the
// library: build a zoo network and run it.
#include <torch/torch.h>

#include <iostream>

#include "mipin/model/network.h"
#include "mipin/zoo/architectures.h"

int main() {
  torch::manual_seed(0);
  const mipin::Network net = mipin::make_architecture("cnn", {1, 28, 28}, 10);
  const at::Tensor logits = net.forward(torch::randn({2, 1, 28, 28}));
  std::cout << "consumer: logits " << mipin::shape_string(logits.sizes().vec()) << std::endl;
  return logits.isfinite().all().item<bool>() ? 0 : 1;
}
