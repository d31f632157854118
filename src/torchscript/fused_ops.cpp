#include "torchscript/fused_ops.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/jit.h>

namespace mipin {
namespace {

// What the fused kernels compute (LibTorch 1.13, aten/src/ATen/native/
// transformers), in TorchScript: attention.cpp's _native_multi_head_attention
// with need_weights false and no mask, and transformer.cpp's encoder layer.
// Inputs and outputs are batch-first, [batch, tokens, features].
constexpr const char* kDecompositions = R"JIT(
def attention(query: Tensor, key: Tensor, value: Tensor, embed_dim: int, num_head: int,
              qkv_weight: Tensor, qkv_bias: Tensor, proj_weight: Tensor, proj_bias: Tensor) -> Tensor:
    head_dim = embed_dim // num_head
    w = torch.chunk(qkv_weight, 3, 0)
    b = torch.chunk(qkv_bias, 3, 0)
    q = torch.linear(query, w[0], b[0])
    k = torch.linear(key, w[1], b[1])
    v = torch.linear(value, w[2], b[2])
    q = q.reshape(q.size(0), q.size(1), num_head, head_dim).transpose(1, 2)
    k = k.reshape(k.size(0), k.size(1), num_head, head_dim).transpose(1, 2)
    v = v.reshape(v.size(0), v.size(1), num_head, head_dim).transpose(1, 2)
    q = q / (float(head_dim) ** 0.5)
    weights = torch.softmax(torch.matmul(q, k.transpose(2, 3)), 3)
    context = torch.matmul(weights, v).transpose(1, 2)
    context = context.reshape(context.size(0), context.size(1), embed_dim)
    return torch.linear(context, proj_weight, proj_bias)

def encoder_layer(src: Tensor, embed_dim: int, num_heads: int, qkv_weight: Tensor, qkv_bias: Tensor,
                  proj_weight: Tensor, proj_bias: Tensor, use_gelu: bool, norm_first: bool, eps: float,
                  norm_weight_1: Tensor, norm_bias_1: Tensor, norm_weight_2: Tensor, norm_bias_2: Tensor,
                  ffn_weight_1: Tensor, ffn_bias_1: Tensor, ffn_weight_2: Tensor, ffn_bias_2: Tensor) -> Tensor:
    x = src
    if norm_first:
        x = torch.layer_norm(x, [embed_dim], norm_weight_1, norm_bias_1, eps)
    x = attention(x, x, x, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias) + src
    if not norm_first:
        x = torch.layer_norm(x, [embed_dim], norm_weight_1, norm_bias_1, eps)
    residual = x
    if norm_first:
        x = torch.layer_norm(x, [embed_dim], norm_weight_2, norm_bias_2, eps)
    x = torch.linear(x, ffn_weight_1, ffn_bias_1)
    if use_gelu:
        x = torch.gelu(x)
    else:
        x = torch.relu(x)
    x = torch.linear(x, ffn_weight_2, ffn_bias_2) + residual
    if not norm_first:
        x = torch.layer_norm(x, [embed_dim], norm_weight_2, norm_bias_2, eps)
    return x
)JIT";

struct Decomposition {
  const char* op;        // the fused op
  const char* function;  // its decomposition in kDecompositions
  size_t inputs;         // the inputs the decomposition takes, the op's first ones
  size_t mask;           // the op's mask input, which must be None
};

const Decomposition kFused[] = {
    {"aten::_native_multi_head_attention", "attention", 9, 9},
    {"aten::_transformer_encoder_layer_fwd", "encoder_layer", 18, 18},
};

std::shared_ptr<torch::jit::Graph> decomposition_graph(const char* function) {
  static const std::shared_ptr<torch::jit::CompilationUnit> unit = torch::jit::compile(kDecompositions);
  std::shared_ptr<torch::jit::Graph> graph = torch::jit::toGraphFunction(unit->get_function(function)).graph()->copy();
  torch::jit::Inline(*graph);
  return graph;
}

bool is_none(const torch::jit::Value* v) { return v->mustBeNone(); }

}  // namespace

std::vector<std::string> decompose_fused_inference_ops(torch::jit::Graph& graph) {
  std::vector<std::string> rewritten;
  std::vector<torch::jit::Node*> nodes;
  for (torch::jit::Node* node : graph.nodes()) nodes.push_back(node);
  for (torch::jit::Node* node : nodes) {
    for (const Decomposition& d : kFused) {
      if (std::string(node->kind().toQualString()) != d.op) continue;
      if (node->inputs().size() <= d.mask || !is_none(node->input(d.mask))) break;
      // Attention's weights (output 1) are not computed by the rewrite.
      bool weights_used = false;
      for (size_t o = 1; o < node->outputs().size(); ++o) weights_used |= node->output(o)->hasUses();
      if (weights_used) break;
      const std::shared_ptr<torch::jit::Graph> parts = decomposition_graph(d.function);
      std::vector<torch::jit::Value*> inputs(node->inputs().begin(), node->inputs().begin() + d.inputs);
      torch::jit::WithInsertPoint guard(node);
      const std::vector<torch::jit::Value*> outputs = torch::jit::insertGraph(graph, *parts, inputs);
      node->output(0)->replaceAllUsesWith(outputs.at(0));
      node->destroy();
      rewritten.push_back(d.op);
      break;
    }
  }
  return rewritten;
}

}  // namespace mipin
