// TorchScript -> Network. The graph is frozen (weights and flags become
// constants), inlined and constant-folded, then walked op by op in its own
// (topological) order: every op that reads an activation becomes a node
// reading the values it reads, so residual adds, branches, concatenations
// and gates map as they are. Module names are never trusted: only the aten
// ops decide what a node is.
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/script.h>

#include <filesystem>
#include <functional>
#include <sstream>
#include <unordered_map>

#include "mipin/model/canonize.h"
#include "mipin/model/layers.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/error.h"
#include "model/activations.h"
#include "util/libtorch_archive.h"
#include "util/stored_tensor.h"
#include "util/text.h"

namespace mipin {
namespace {

using torch::jit::Node;
using torch::jit::Value;

std::string supported_ops() {
  std::string activations;
  for (const auto& spec : activation_specs()) activations += spec.name + ", ";
  return "supported ops: conv2d/_convolution, linear/addmm/matmul(+add), relu, " + activations +
         "max_pool2d, avg_pool2d, adaptive_avg_pool2d, mean over H and W, flatten/view/reshape, "
         "batch_norm, dropout, add of two activations (residual), cat, mul by a gate, in-place "
         "variants, and a final softmax/log_softmax";
}

LibTorchArchiveKind model_archive(const std::string& name) {
  return {"the TorchScript model '" + name + "'", "not a TorchScript file"};
}

bool is_inplace(const std::string& op) { return !op.empty() && op.back() == '_' && op.rfind("aten::", 0) == 0; }

class GraphReader {
 public:
  GraphReader(std::string path, std::shared_ptr<torch::jit::Graph> graph)
      : path_(std::move(path)), graph_(std::move(graph)) {}

  Network read(std::vector<std::string>& notices) {
    const auto inputs = graph_->inputs();
    // inputs()[0] is the module itself.
    MIPIN_CHECK(inputs.size() == 2, "the model in '", path_, "' takes ", inputs.size() - 1,
                " inputs; mipin explains models with exactly one input tensor");
    values_[inputs[1]] = 0;
    for (Node* node : graph_->nodes()) visit(node);
    MIPIN_CHECK(!network_.empty(), "the model in '", path_, "' has no layers that mipin can explain");
    const auto outputs = graph_->outputs();
    const auto out = outputs.size() == 1 ? values_.find(outputs[0]) : values_.end();
    MIPIN_CHECK(out != values_.end() && out->second == network_.size(), "the model in '", path_,
                "' does not return the result of its last layer as a single tensor (found ",
                outputs.size() == 1 ? outputs[0]->node()->kind().toQualString() : "several outputs",
                " as the output", out == values_.end() ? std::string() : ", the output of layer " + std::to_string(out->second - 1) + " of " + std::to_string(network_.size()),
                ")");
    if (!dropped_.empty()) {
      notices.push_back("dropped the final " + dropped_ +
                        ": attributions explain the logits, not probabilities");
    }
    return std::move(network_);
  }

 private:
  bool is_activation(Value* v) const { return values_.count(v) > 0; }

  // An activation, or a list built of some (cat's argument).
  bool reads_activation(Value* v) const {
    if (is_activation(v)) return true;
    if (v->node()->kind() != c10::prim::ListConstruct) return false;
    for (Value* in : v->node()->inputs()) {
      if (is_activation(in)) return true;
    }
    return false;
  }

  bool uses_any_activation(Node* node) const {
    for (Value* in : node->inputs()) {
      if (reads_activation(in)) return true;
    }
    for (auto* block : node->blocks()) {
      for (Node* inner : block->nodes()) {
        if (uses_any_activation(inner)) return true;
      }
      for (Value* out : block->outputs()) {
        if (is_activation(out)) return true;
      }
    }
    return false;
  }

  [[noreturn]] void unsupported(Node* node, const std::string& why) const {
    MIPIN_FAIL_AS(unsupported, "unsupported op '", node->kind().toQualString(), "' in '", path_, "' ",
               why.empty() ? std::string() : "(" + why + ") ", "after ", network_.size(),
               " mapped layers; ", supported_ops());
  }

  c10::IValue constant(Node* node, size_t i) const {
    auto value = torch::jit::toIValue(node->input(i));
    if (!value) {
      unsupported(node, "argument " + std::to_string(i) + " is not a constant");
    }
    return *value;
  }
  at::Tensor tensor_arg(Node* node, size_t i) const {
    const auto v = constant(node, i);
    if (v.isNone()) return {};
    if (!v.isTensor()) unsupported(node, "argument " + std::to_string(i) + " is not a tensor");
    return v.toTensor().detach().to(at::kFloat).clone();
  }
  Pair pair_arg(Node* node, size_t i, Pair if_empty = {0, 0}) const {
    const auto v = constant(node, i);
    if (v.isInt()) return {v.toInt(), v.toInt()};
    const auto list = v.toIntVector();
    if (list.empty()) return if_empty;
    if (list.size() == 1) return {list[0], list[0]};
    if (list.size() != 2) unsupported(node, "expected 2 spatial dimensions");
    return {list[0], list[1]};
  }
  // A number, whichever way the graph wrote it (alpha=1 is an int).
  double double_arg(Node* node, size_t i) const {
    const auto v = constant(node, i);
    if (v.isInt()) return static_cast<double>(v.toInt());
    if (!v.isDouble()) unsupported(node, "argument " + std::to_string(i) + " is not a number");
    return v.toDouble();
  }
  bool bool_arg(Node* node, size_t i) const { return constant(node, i).toBool(); }
  int64_t int_arg(Node* node, size_t i) const { return constant(node, i).toInt(); }

  size_t value_of(Node* node, size_t i) const {
    const auto it = values_.find(node->input(i));
    if (it == values_.end()) unsupported(node, "argument " + std::to_string(i) + " is not an activation");
    return it->second;
  }

  // The node's output is value v. An in-place op also rebinds its first
  // argument: later readers of it see the changed tensor.
  void bind(Node* node, size_t v) {
    values_[node->output(0)] = v;
    if (is_inplace(node->kind().toQualString()) && is_activation(node->input(0))) values_[node->input(0)] = v;
  }
  void append(Node* node, std::unique_ptr<Layer> layer, std::vector<size_t> inputs) {
    MIPIN_CHECK(dropped_.empty(), "the model in '", path_, "' applies ",
                node->kind().toQualString(), " after ", dropped_,
                "; only a softmax at the very end can be dropped");
    bind(node, network_.add(std::move(layer), std::move(inputs)));
  }
  // A node reading the op's first argument.
  void append(Node* node, std::unique_ptr<Layer> layer) {
    const size_t input = value_of(node, 0);
    append(node, std::move(layer), {input});
  }

  void visit(Node* node) {
    const std::string op = node->kind().toQualString();
    if (!uses_any_activation(node)) return;  // constants and shape arithmetic
    if (!node->blocks().empty()) unsupported(node, "control flow that depends on the input");
    // A list of activations is read by the op that takes it (cat).
    if (op == "prim::ListConstruct") return;
    try {
      dispatch(node, op);
    } catch (const c10::Error& e) {
      // An argument of a kind the op's reader did not expect.
      unsupported(node, first_line(e.what_without_backtrace()));
    }
  }

  void dispatch(Node* node, const std::string& op) {
    if (op == "aten::size" || op == "aten::dim" || op == "aten::numel" || op == "prim::shape") {
      return;  // shape queries do not change the activation
    }
    if (op != "aten::addmm" && op != "aten::add" && op != "aten::add_" && op != "aten::mul" &&
        op != "aten::mul_" && op != "aten::cat" && !is_activation(node->input(0))) {
      // e.g. sub(1, x): the activation is not the first argument.
      unsupported(node, "the activation is not its first argument");
    }
    if (op == "aten::contiguous" || op == "aten::clone" || op == "aten::detach") {
      bind(node, value_of(node, 0));
      return;
    }
    if (op == "aten::_convolution") {
      if (bool_arg(node, 6)) unsupported(node, "transposed convolution");
      auto conv = std::make_unique<Conv2d>();
      conv->weight = tensor_arg(node, 1);
      conv->bias = tensor_arg(node, 2);
      conv->stride = pair_arg(node, 3, {1, 1});
      conv->padding = pair_arg(node, 4);
      conv->dilation = pair_arg(node, 5, {1, 1});
      conv->groups = int_arg(node, 8);
      return append_conv(node, std::move(conv));
    }
    if (op == "aten::conv2d") {
      if (constant(node, 4).isString()) unsupported(node, "string padding ('same'/'valid')");
      auto conv = std::make_unique<Conv2d>();
      conv->weight = tensor_arg(node, 1);
      conv->bias = tensor_arg(node, 2);
      conv->stride = pair_arg(node, 3, {1, 1});
      conv->padding = pair_arg(node, 4);
      conv->dilation = pair_arg(node, 5, {1, 1});
      conv->groups = int_arg(node, 6);
      return append_conv(node, std::move(conv));
    }
    if (op == "aten::linear") {
      auto linear = std::make_unique<Linear>();
      linear->weight = tensor_arg(node, 1);
      linear->bias = tensor_arg(node, 2);
      if (linear->weight.dim() != 2) unsupported(node, "weight is not a matrix");
      return append(node, std::move(linear));
    }
    if (op == "aten::addmm") {  // addmm(bias, x, W^T, beta, alpha)
      if (!is_activation(node->input(1)) || is_activation(node->input(0)) || is_activation(node->input(2))) {
        unsupported(node, "the activation is not mat1");
      }
      if (double_arg(node, 3) != 1.0 || double_arg(node, 4) != 1.0) {
        unsupported(node, "beta or alpha other than 1");
      }
      auto linear = std::make_unique<Linear>();
      linear->bias = tensor_arg(node, 0);
      linear->weight = tensor_arg(node, 2).t().contiguous();
      return append(node, std::move(linear), {value_of(node, 1)});
    }
    if (op == "aten::matmul" || op == "aten::mm") {  // x @ W^T
      const at::Tensor w = tensor_arg(node, 1);
      if (w.dim() != 2) unsupported(node, "the right operand is not a matrix");
      auto linear = std::make_unique<Linear>();
      linear->weight = w.t().contiguous();
      return append(node, std::move(linear));
    }
    if (op == "aten::add" || op == "aten::add_") {
      if (is_activation(node->input(0)) && is_activation(node->input(1))) return append_add(node);
      return fold_bias_add(node);
    }
    if (op == "aten::mul" || op == "aten::mul_") return append_mul(node);
    if (op == "aten::cat") return append_cat(node);
    if (op == "aten::relu" || op == "aten::relu_") {
      return append(node, std::make_unique<ReLU>());
    }
    if (const ActivationSpec* spec = activation_for_op(op)) return append_activation(node, *spec);
    if (op == "aten::max_pool2d") {
      auto pool = std::make_unique<MaxPool2d>();
      pool->kernel = pair_arg(node, 1);
      pool->stride = pair_arg(node, 2, pool->kernel);
      pool->padding = pair_arg(node, 3);
      pool->dilation = pair_arg(node, 4, {1, 1});
      pool->ceil_mode = bool_arg(node, 5);
      return append(node, std::move(pool));
    }
    if (op == "aten::avg_pool2d") {
      if (!constant(node, 6).isNone()) unsupported(node, "divisor_override");
      auto pool = std::make_unique<AvgPool2d>();
      pool->kernel = pair_arg(node, 1);
      pool->stride = pair_arg(node, 2, pool->kernel);
      pool->padding = pair_arg(node, 3);
      pool->ceil_mode = bool_arg(node, 4);
      pool->count_include_pad = bool_arg(node, 5);
      return append(node, std::move(pool));
    }
    if (op == "aten::adaptive_avg_pool2d") {
      auto pool = std::make_unique<AdaptiveAvgPool2d>();
      pool->output_size = pair_arg(node, 1);
      return append(node, std::move(pool));
    }
    if (op == "aten::mean") return append_mean(node);
    if (op == "aten::flatten") return append_flatten(node);
    if (op == "aten::view" || op == "aten::reshape") {
      return append_view(node);
    }
    if (op == "aten::batch_norm") {
      if (bool_arg(node, 5)) unsupported(node, "batch norm in training mode");
      auto bn = std::make_unique<BatchNorm2d>();
      bn->running_mean = tensor_arg(node, 3);
      bn->running_var = tensor_arg(node, 4);
      if (!bn->running_mean.defined()) unsupported(node, "no running statistics");
      bn->weight = tensor_arg(node, 1);
      bn->bias = tensor_arg(node, 2);
      if (!bn->weight.defined()) bn->weight = torch::ones_like(bn->running_mean);
      if (!bn->bias.defined()) bn->bias = torch::zeros_like(bn->running_mean);
      bn->momentum = double_arg(node, 6);
      bn->eps = double_arg(node, 7);
      return append(node, std::move(bn));
    }
    if (op == "aten::dropout" || op == "aten::dropout_" || op == "aten::feature_dropout" ||
        op == "aten::feature_dropout_" || op == "aten::alpha_dropout") {
      if (bool_arg(node, 2)) unsupported(node, "dropout in training mode");
      auto dropout = std::make_unique<Dropout>();
      dropout->p = double_arg(node, 1);
      return append(node, std::move(dropout));
    }
    if (op == "aten::softmax" || op == "aten::log_softmax") {
      MIPIN_CHECK(dropped_.empty(), "the model in '", path_, "' applies ", op, " twice");
      MIPIN_CHECK(value_of(node, 0) == network_.size(), "the model in '", path_, "' applies ", op,
                  " to an activation other than its last: only a softmax at the very end can be dropped");
      dropped_ = op;
      bind(node, value_of(node, 0));
      return;
    }
    unsupported(node, "");
  }

  void append_conv(Node* node, std::unique_ptr<Conv2d> conv) {
    if (conv->weight.dim() != 4) unsupported(node, "only 2-D convolutions are supported");
    append(node, std::move(conv));
  }

  void require_alpha_one(Node* node) const {
    if (node->inputs().size() >= 3 && double_arg(node, 2) != 1.0) {
      unsupported(node, "add with alpha other than 1");
    }
  }

  // Two activations added: a residual connection.
  void append_add(Node* node) {
    require_alpha_one(node);
    append(node, std::make_unique<Add>(), {value_of(node, 0), value_of(node, 1)});
  }

  // A bias added after a matmul, or after a bias-free conv, that nothing
  // else reads unbiased: part of that layer.
  void fold_bias_add(Node* node) {
    const size_t which = is_activation(node->input(0)) ? 0 : 1;
    const size_t v = value_of(node, which);
    Layer* last = v == 0 ? nullptr : &network_.layer(v - 1);
    auto bias_value = torch::jit::toIValue(node->input(1 - which));
    require_alpha_one(node);
    const bool only_reader = node->input(which)->uses().size() == 1;
    if (last && bias_value && bias_value->isTensor() && only_reader) {
      const at::Tensor bias = bias_value->toTensor().detach().to(at::kFloat);
      if (last->kind() == LayerKind::Linear) {
        auto& linear = static_cast<Linear&>(*last);
        if (!linear.bias.defined() && bias.numel() == linear.out_features()) {
          linear.bias = bias.reshape({-1}).clone();
          bind(node, v);
          return;
        }
      }
      if (last->kind() == LayerKind::Conv2d) {
        auto& conv = static_cast<Conv2d&>(*last);
        if (!conv.bias.defined() && bias.numel() == conv.out_channels()) {
          conv.bias = bias.reshape({-1}).clone();
          bind(node, v);
          return;
        }
      }
    }
    unsupported(node, "a constant added to an activation is supported only as the bias of the Linear or Conv2d "
                      "right before it; two activations added make a residual connection");
  }

  // a * g, g a gate computed in the network: the input a sigmoid-like
  // activation computed, else (decided by shape) the one that broadcasts.
  void append_mul(Node* node) {
    if (!is_activation(node->input(0)) || !is_activation(node->input(1))) {
      unsupported(node, "only a product of an activation and a gate computed from the network is supported");
    }
    auto mul = std::make_unique<Mul>();
    std::vector<int> gates;
    for (int k = 0; k < 2; ++k) {
      const size_t v = value_of(node, k);
      if (v == 0) continue;
      const Layer& producer = network_.layer(v - 1);
      if (producer.kind() == LayerKind::Activation &&
          activation_spec(static_cast<const Activation&>(producer).function).gate_like) {
        gates.push_back(k);
      }
    }
    if (gates.size() == 1) mul->gate = gates[0];
    append(node, std::move(mul), {value_of(node, 0), value_of(node, 1)});
  }

  void append_cat(Node* node) {
    Node* list = node->input(0)->node();
    if (list->kind() != c10::prim::ListConstruct) unsupported(node, "the tensors are not a list built in the graph");
    std::vector<size_t> inputs;
    for (Value* v : list->inputs()) {
      const auto it = values_.find(v);
      if (it == values_.end()) unsupported(node, "it concatenates a constant with activations");
      inputs.push_back(it->second);
    }
    auto cat = std::make_unique<Concat>();
    cat->dim = int_arg(node, 1);
    if (cat->dim == 0) unsupported(node, "concatenation along the batch axis");
    if (inputs.size() == 1) {
      bind(node, inputs[0]);  // a list of one: the identity
      return;
    }
    append(node, std::move(cat), inputs);
  }

  void append_activation(Node* node, const ActivationSpec& spec) {
    auto a = std::make_unique<Activation>();
    a->function = spec.name;
    for (size_t i = 0; i < spec.parameter_names.size(); ++i) {
      if (node->inputs().size() <= i + 1) unsupported(node, "missing argument " + spec.parameter_names[i]);
      const c10::IValue v = constant(node, i + 1);
      if (v.isString()) {
        const std::string text = v.toStringRef();
        if (text != "none" && text != "tanh") unsupported(node, spec.parameter_names[i] + " '" + text + "'");
        a->parameters.push_back(text == "tanh" ? 1 : 0);
      } else {
        a->parameters.push_back(double_arg(node, i + 1));
      }
    }
    append(node, std::move(a));
  }

  // mean over H and W: global average pooling (then a flatten without keepdim).
  void append_mean(Node* node) {
    if (node->inputs().size() < 4) unsupported(node, "only the mean over H and W is supported");
    const auto dims = constant(node, 1);
    if (!dims.isIntList()) unsupported(node, "only the mean over H and W is supported");
    std::vector<int64_t> d = dims.toIntVector();
    for (auto& x : d) x = x < 0 ? x + 4 : x;
    std::sort(d.begin(), d.end());
    if (d != std::vector<int64_t>{2, 3}) unsupported(node, "only the mean over H and W (dims 2 and 3) is supported");
    if (!constant(node, 3).isNone()) unsupported(node, "a mean with a dtype");
    auto pool = std::make_unique<AdaptiveAvgPool2d>();
    pool->output_size = {1, 1};
    if (bool_arg(node, 2)) return append(node, std::move(pool));
    const size_t pooled = network_.add(std::move(pool), {value_of(node, 0)});
    append(node, std::make_unique<Flatten>(), {pooled});
  }

  void append_flatten(Node* node) {
    const int64_t start = int_arg(node, 1), end = int_arg(node, 2);
    if (end != -1 || start < 1) {
      unsupported(node, "only flatten(x, start, -1) with start >= 1 keeps the batch axis");
    }
    if (start == 1) return append(node, std::make_unique<Flatten>());
    auto reshape = std::make_unique<Reshape>();
    for (int64_t k = 1; k < start; ++k) reshape->shape.push_back(Reshape::input_dim(k));
    reshape->shape.push_back(-1);
    append(node, std::move(reshape));
  }

  // view/reshape keeping the batch axis: to [batch, features] a flatten;
  // otherwise each size a constant, -1, or a size of the input itself.
  void append_view(Node* node) {
    std::vector<int64_t> sizes;
    if (auto list = torch::jit::toIValue(node->input(1))) {
      sizes = list->toIntVector();
      if (sizes.size() == 2) return append(node, std::make_unique<Flatten>());
      // A traced view records the example's batch size as a constant.
      if (!sizes.empty()) sizes.erase(sizes.begin());
      auto reshape = std::make_unique<Reshape>();
      reshape->shape = sizes;
      return append(node, std::move(reshape));
    }
    Node* shape = node->input(1)->node();
    if (shape->kind() != c10::prim::ListConstruct || shape->inputs().empty()) {
      unsupported(node, "a shape computed in a way mipin cannot read");
    }
    if (shape->inputs().size() == 2) return append(node, std::make_unique<Flatten>());
    auto reshape = std::make_unique<Reshape>();
    for (size_t i = 1; i < shape->inputs().size(); ++i) {
      Value* d = shape->inputs()[i];
      if (auto c = torch::jit::toIValue(d)) {
        reshape->shape.push_back(c->toInt());
        continue;
      }
      Node* size = d->node();
      if (size->kind() == c10::aten::size && size->inputs().size() == 2 && size->input(0) == node->input(0)) {
        if (auto k = torch::jit::toIValue(size->input(1)); k && k->toInt() >= 1) {
          reshape->shape.push_back(Reshape::input_dim(k->toInt()));
          continue;
        }
      }
      unsupported(node, "a size that is neither a constant nor a size of the viewed input");
    }
    append(node, std::move(reshape));
  }

  std::string path_;
  std::shared_ptr<torch::jit::Graph> graph_;
  Network network_;
  std::unordered_map<Value*, size_t> values_;  // activations: graph value -> network value
  std::string dropped_;
};

torch::jit::Module load_module(const std::string& path, std::string& metadata_json) {
  std::error_code ec;
  MIPIN_CHECK_AS(not_found, std::filesystem::exists(path, ec), "model file not found: '", path, "'");
  MIPIN_CHECK(!std::filesystem::is_directory(path, ec), "expected a TorchScript file, found a directory: '", path, "'");
  return read_libtorch_archive(path, model_archive(path), &metadata_json);
}

void check_constants(const torch::jit::Block& block, const std::string& what) {
  for (const Node* node : block.nodes()) {
    for (const torch::jit::Block* inner : node->blocks()) check_constants(*inner, what);
    if (node->kind() != c10::prim::Constant || node->outputs().size() != 1) continue;
    if (!node->output()->type()->isSubtypeOf(*c10::TensorType::get())) continue;
    const auto value = torch::jit::toIValue(node->output());
    if (value && value->isTensor()) check_stored_tensor(value->toTensor(), what);
  }
}

// Every tensor the module holds and every tensor constant of its code is
// checked before anything reads one: freezing and constant folding compute
// with them inside LibTorch.
void check_module_tensors(const torch::jit::Module& module, const std::string& path) {
  const std::string what = "a tensor in the TorchScript model '" + path + "'";
  c10::IValue(module._ivalue()).visit([&](const c10::IValue& v) {
    if (v.isTensor()) check_stored_tensor(v.toTensor(), what);
    return false;  // and look inside lists, tuples, dicts and objects
  });
  for (const torch::jit::Module& m : module.modules()) {
    for (const torch::jit::Method& method : m.get_methods()) check_constants(*method.graph()->block(), what);
  }
}

// The module's graph as a Network; `path` names the model in messages.
ImportedModel import_module(torch::jit::Module module, const std::string& metadata_json, const std::string& path,
                            const ImportOptions& options) {
  ImportedModel result;
  result.path = path;
  result.metadata = metadata_from_json(metadata_json, path);

  std::shared_ptr<torch::jit::Graph> graph;
  try {
    check_module_tensors(module, path);
    module.eval();
    torch::jit::Module frozen = torch::jit::freeze_module(module);
    graph = frozen.get_method("forward").graph()->copy();
    torch::jit::Inline(*graph);
    torch::jit::ConstantPropagation(graph);
    torch::jit::EliminateDeadCode(graph);
  } catch (const c10::Error& e) {
    MIPIN_FAIL("cannot prepare the TorchScript model '", path, "' for import: ",
               first_line(e.what_without_backtrace()));
  }
  result.network = GraphReader(path, graph).read(result.notices);

  if (options.fold_batchnorm) {
    const int folded = fold_batchnorm(result.network);
    if (folded > 0) {
      result.notices.push_back("folded " + std::to_string(folded) +
                               " BatchNorm2d layer(s) into the preceding Conv2d");
    }
  }

  std::vector<int64_t> shape = options.input_shape;
  if (shape.empty()) shape = result.metadata.input_shape;
  if (shape.empty() && result.network.inputs(0) == std::vector<size_t>{0} &&
      result.network.readers(0) == 1 && result.network.layer(0).kind() == LayerKind::Linear) {
    shape = {static_cast<const Linear&>(result.network.layer(0)).in_features()};
    result.notices.push_back("input shape " + shape_string(shape) + " taken from the first layer");
  }
  if (!shape.empty()) {
    try {
      result.network.set_input_shape(shape);
    } catch (const Error& e) {
      MIPIN_FAIL("the model in '", path, "' cannot take inputs of shape ", shape_string(shape),
                 ": ", e.what());
    }
  }
  result.metadata.input_shape = result.network.input_shape();
  return result;
}

}  // namespace

ImportedModel load_torchscript(const std::string& path, const ImportOptions& options) {
  std::string metadata_json;
  torch::jit::Module module = load_module(path, metadata_json);
  return import_module(std::move(module), metadata_json, path, options);
}

ImportedModel load_torchscript_bytes(const std::string& bytes, const std::string& name,
                                     const ImportOptions& options) {
  std::string metadata_json;
  torch::jit::Module module = read_libtorch_archive_in_memory(bytes, model_archive(name), &metadata_json);
  return import_module(std::move(module), metadata_json, name, options);
}

}  // namespace mipin
