#pragma once
// The fused inference ops PyTorch records when a model is traced under
// torch.no_grad() (nn.MultiheadAttention's and nn.TransformerEncoderLayer's
// fast paths), rewritten into the ops they fuse: linear maps, the heads'
// products, softmax, layer norms. Autograd cannot differentiate the fused
// ops; their parts it can, and each part becomes a node of its own.
#include <memory>
#include <string>
#include <vector>

namespace torch::jit {
struct Graph;
}

namespace mipin {

// Rewrites every fused op of `graph` it can in place and returns the names
// of those it rewrote, one per op. An op is left as it is where it reads a
// mask or its attention weights are used (import then runs it as
// TorchScript does, and autograd refuses it by name).
std::vector<std::string> decompose_fused_inference_ops(torch::jit::Graph& graph);

// Rewrites every self-attention of nn.MultiheadAttention(batch_first=True)
// that a trace with autograd on recorded op by op (transposed to
// [tokens, batch, features], the heads folded into the batch axis) into the
// same batch-first parts as the fused op's, so that each is a node of its
// own; returns one name per attention rewritten. Attention with a mask, a
// separate key or value, or no bias is left as it is.
std::vector<std::string> rewrite_traced_attention(torch::jit::Graph& graph);

}  // namespace mipin
