#include "torchscript/fused_ops.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/jit.h>

#include <cmath>
#include <map>
#include <optional>
#include <set>

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

// The number a constant holds, written as a float or as a 0-d tensor.
std::optional<double> number_constant(torch::jit::Value* v) {
  const auto value = torch::jit::toIValue(v);
  if (value && value->isDouble()) return value->toDouble();
  if (value && value->isTensor() && value->toTensor().dim() == 0) return value->toTensor().item<double>();
  return std::nullopt;
}

std::optional<int64_t> int_constant(torch::jit::Value* v) {
  const auto value = torch::jit::toIValue(v);
  if (!value || !value->isInt()) return std::nullopt;
  return value->toInt();
}

at::Tensor tensor_constant(torch::jit::Value* v) {
  const auto value = torch::jit::toIValue(v);
  if (!value || !value->isTensor()) return {};
  return value->toTensor();
}

bool is_kind(const torch::jit::Node* node, const char* kind) { return std::string(node->kind().toQualString()) == kind; }

// A transpose of axes 0 and 1, which nn.MultiheadAttention(batch_first=True)
// puts at both ends of its computation.
bool swaps_first_axes(torch::jit::Node* node) {
  if (!is_kind(node, "aten::transpose")) return false;
  const auto a = int_constant(node->input(1)), b = int_constant(node->input(2));
  return a && b && std::min(*a, *b) == 0 && std::max(*a, *b) == 1;
}

// A number computed from sizes (a batch size times the heads): the trace
// records it as a 0-d tensor.
bool is_size_arithmetic(torch::jit::Value* v) {
  torch::jit::Node* node = v->node();
  if (node->kind() == c10::prim::NumToTensor) return true;
  if (node->kind() == c10::prim::Constant) {
    const auto value = torch::jit::toIValue(v);
    return value && (!value->isTensor() || value->toTensor().dim() == 0);
  }
  if (!is_kind(node, "aten::div") && !is_kind(node, "aten::mul")) return false;
  for (torch::jit::Value* in : node->inputs()) {
    if (!is_size_arithmetic(in)) return false;
  }
  return true;
}

// One self-attention of nn.MultiheadAttention(batch_first=True) as a trace
// with autograd on records it (F.multi_head_attention_forward without a
// mask): transpose to [tokens, batch, features], the packed projection,
// the heads folded into the batch axis, bmm, softmax, bmm, the output
// projection, transpose back. mipin's values keep the batch axis first,
// so read as it stands the whole of it would be one op run by TorchScript.
struct TracedAttention {
  torch::jit::Node* exit = nullptr;  // the transpose back to batch-first
  torch::jit::Value* input = nullptr;
  int64_t embed_dim = 0, heads = 0;
  torch::jit::Value *qkv_weight = nullptr, *qkv_bias = nullptr, *proj_weight = nullptr, *proj_bias = nullptr;
};

std::optional<TracedAttention> match_traced_attention(torch::jit::Node* exit) {
  if (!swaps_first_axes(exit)) return std::nullopt;
  torch::jit::Node* unflatten = exit->input(0)->node();
  if (!is_kind(unflatten, "aten::view") && !is_kind(unflatten, "aten::reshape")) return std::nullopt;
  torch::jit::Node* projection = unflatten->input(0)->node();
  if (!is_kind(projection, "aten::linear")) return std::nullopt;
  const at::Tensor proj_weight = tensor_constant(projection->input(1));
  if (!proj_weight.defined() || proj_weight.dim() != 2 || proj_weight.size(0) != proj_weight.size(1) ||
      !tensor_constant(projection->input(2)).defined()) {
    return std::nullopt;
  }
  const int64_t embed_dim = proj_weight.size(0);
  const auto is_entry = [&](torch::jit::Node* node) {
    if (!swaps_first_axes(node)) return false;
    for (const torch::jit::Use& use : node->output()->uses()) {
      if (!is_kind(use.user, "aten::linear") || use.offset != 0) continue;
      const at::Tensor w = tensor_constant(use.user->input(1));
      if (w.defined() && w.dim() == 2 && w.size(0) == 3 * embed_dim && w.size(1) == embed_dim) return true;
    }
    return false;
  };

  // Everything the exit reads, back to the entry transpose, each node of a
  // kind the function records; anything else (a mask, a cross-attention's
  // second input) and the pattern is not this one.
  static const std::set<std::string> kinds{
      "aten::linear", "aten::chunk",    "aten::contiguous", "aten::view", "aten::reshape", "aten::transpose",
      "aten::div",    "aten::mul",      "aten::bmm",        "aten::softmax", "aten::dropout", "aten::size",
      "aten::Int",    "prim::NumToTensor", "prim::ListConstruct", "prim::ListUnpack"};
  std::set<torch::jit::Node*> region;
  torch::jit::Node* entry = nullptr;
  std::vector<torch::jit::Node*> pending{exit};
  while (!pending.empty()) {
    torch::jit::Node* node = pending.back();
    pending.pop_back();
    if (node->kind() == c10::prim::Constant || !region.insert(node).second) continue;
    if (!kinds.count(node->kind().toQualString()) || !node->blocks().empty()) return std::nullopt;
    if (node != exit && is_entry(node)) {
      if (entry && entry != node) return std::nullopt;
      entry = node;
      continue;
    }
    for (torch::jit::Value* in : node->inputs()) pending.push_back(in->node());
  }
  if (!entry) return std::nullopt;

  // Nothing but the exit is read from outside (the attention weights of
  // need_weights=True are not), and the products are attention's: one
  // chunked projection, two bmm around one softmax, one scaled query.
  std::map<std::string, int> count;
  std::optional<double> scale;
  for (torch::jit::Node* node : region) {
    for (torch::jit::Value* out : node->outputs()) {
      for (const torch::jit::Use& use : out->uses()) {
        if (node != exit && !region.count(use.user)) return std::nullopt;
      }
    }
    const std::string kind = node->kind().toQualString();
    ++count[kind];
    if (kind == "aten::dropout") {
      const auto train = torch::jit::toIValue(node->input(2));
      if (!train || !train->isBool() || train->toBool()) return std::nullopt;
    }
    if ((kind == "aten::div" || kind == "aten::mul") && !is_size_arithmetic(node->output())) {
      if (kind != "aten::div" || scale) return std::nullopt;
      scale = number_constant(node->input(1));
      if (!scale) return std::nullopt;
    }
  }
  if (count["aten::linear"] != 2 || count["aten::chunk"] != 1 || count["aten::bmm"] != 2 ||
      count["aten::softmax"] != 1 || !scale) {
    return std::nullopt;
  }
  // The scale is sqrt(head_dim), which gives the number of heads.
  const auto head_dim = static_cast<int64_t>(std::llround(*scale * *scale));
  if (head_dim < 1 || embed_dim % head_dim != 0 || std::abs(std::sqrt(double(head_dim)) - *scale) > 1e-9 * *scale) {
    return std::nullopt;
  }
  torch::jit::Node* packed = nullptr;
  for (const torch::jit::Use& use : entry->output()->uses()) {
    if (is_kind(use.user, "aten::linear")) packed = use.user;
  }
  if (!packed || !tensor_constant(packed->input(2)).defined()) return std::nullopt;
  torch::jit::Node* chunk = nullptr;
  for (const torch::jit::Use& use : packed->output()->uses()) chunk = use.user;
  if (packed->output()->uses().size() != 1 || !is_kind(chunk, "aten::chunk") || int_constant(chunk->input(1)) != 3) {
    return std::nullopt;
  }
  const auto chunk_dim = int_constant(chunk->input(2));
  if (!chunk_dim || (*chunk_dim != -1 && *chunk_dim != 2)) return std::nullopt;

  TracedAttention a;
  a.exit = exit;
  a.input = entry->input(0);
  a.embed_dim = embed_dim;
  a.heads = embed_dim / head_dim;
  a.qkv_weight = packed->input(1);
  a.qkv_bias = packed->input(2);
  a.proj_weight = projection->input(1);
  a.proj_bias = projection->input(2);
  return a;
}

}  // namespace

std::vector<std::string> rewrite_traced_attention(torch::jit::Graph& graph) {
  torch::jit::EliminateDeadCode(graph.block());
  std::vector<std::string> rewritten;
  std::vector<torch::jit::Node*> nodes;
  for (torch::jit::Node* node : graph.nodes()) nodes.push_back(node);
  for (torch::jit::Node* node : nodes) {
    const std::optional<TracedAttention> a = match_traced_attention(node);
    if (!a) continue;
    const std::shared_ptr<torch::jit::Graph> parts = decomposition_graph("attention");
    torch::jit::WithInsertPoint guard(node);
    torch::jit::Value* embed_dim = graph.insertConstant(a->embed_dim);
    torch::jit::Value* heads = graph.insertConstant(a->heads);
    const std::vector<torch::jit::Value*> outputs = torch::jit::insertGraph(
        graph, *parts,
        {a->input, a->input, a->input, embed_dim, heads, a->qkv_weight, a->qkv_bias, a->proj_weight, a->proj_bias});
    node->output(0)->replaceAllUsesWith(outputs.at(0));
    rewritten.push_back("nn.MultiheadAttention");
  }
  // The traced attention, now read by nothing.
  torch::jit::EliminateDeadCode(graph.block());
  return rewritten;
}

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
