#pragma once
// Small built-in models for the demo and the tests.
#include <cstdint>
#include <string>
#include <vector>

#include "mipin/model/network.h"

namespace mipin {

// Names accepted by make_architecture: "mlp", "cnn", "vgg-mini", "resnet", "conv1d".
std::vector<std::string> architecture_names();

// Architectures built from ops that have no mipin layer of their own
// (attention, LayerNorm, token arithmetic): TorchScript modules, trained and
// saved by train_module_architecture (zoo/trainer.h) and read back through
// the import, as a PyTorch user's model is.
//   vit: a vision transformer for 28x28 images: 4x4 patches embedded to width
//        64, a class token and learned position embeddings, 4 pre-norm blocks
//        of 4-head self-attention and an MLP (64 - 128 - 64, GELU), a final
//        LayerNorm and a linear head on the class token.
std::vector<std::string> module_architecture_names();

// A freshly initialised network (PyTorch's default initialisation, drawn from
// LibTorch's global generator: seed it first for reproducible weights).
//   mlp:      flatten - linear 256 - relu - linear 128 - relu - linear K
//   cnn:      conv 32 (3x3, pad 1) - relu - maxpool 2 - conv 64 - relu - maxpool 2
//             - flatten - linear 128 - relu - linear K   (the design's demo CNN)
//   vgg-mini: 2 x [conv - batchnorm - relu] x 2 blocks (16, 32 channels) with
//             max pooling, then linear 128 - relu - dropout - linear K
//   resnet:   conv 32 - batchnorm - relu, a basic residual block at 32
//             channels, a stride-2 basic block to 64 with a 1x1 stride-2
//             projection, global average pooling, linear K (a graph)
//   conv1d:   for series [C, 1, T] (`mipin data motifs`): conv 16 (kernel 7)
//             - relu - maxpool 2 - conv 32 (kernel 5) - relu - maxpool 2 - conv
//             32 (kernel 3) - relu - global max pooling - linear K. Its
//             1-D convolutions are 2-D ones with kernels of one row, so every
//             method has its own rule at every node.
// `activation` replaces every ReLU: "relu" or a name of the activation
// table (`mipin train --help` lists them), with PyTorch's default arguments.
Network make_architecture(const std::string& name, const std::vector<int64_t>& input_shape,
                          int64_t num_classes, const std::string& activation = "relu");
// The activations make_architecture accepts.
std::vector<std::string> activation_names();

}  // namespace mipin
