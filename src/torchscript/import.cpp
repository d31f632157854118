// TorchScript -> Network. The graph is frozen (weights and flags become
// constants), inlined and constant-folded, then walked op by op following the
// one activation that flows from the input to the output. Module names are
// never trusted: only the aten ops decide what a layer is.
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/script.h>

#include <filesystem>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "mipin/model/canonize.h"
#include "mipin/model/layers.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

using torch::jit::Node;
using torch::jit::Value;

const char* kSupported =
    "supported ops: conv2d/_convolution, linear/addmm/matmul(+add), relu, max_pool2d, avg_pool2d, "
    "adaptive_avg_pool2d, flatten/view/reshape, batch_norm, dropout, and a final "
    "softmax/log_softmax";

std::string first_line(const std::string& s) {
  const auto end = s.find('\n');
  return end == std::string::npos ? s : s.substr(0, end);
}

class GraphReader {
 public:
  GraphReader(std::string path, std::shared_ptr<torch::jit::Graph> graph)
      : path_(std::move(path)), graph_(std::move(graph)) {}

  Network read(std::vector<std::string>& notices) {
    const auto inputs = graph_->inputs();
    // inputs()[0] is the module itself.
    MIPIN_CHECK(inputs.size() == 2, "the model in '", path_, "' takes ", inputs.size() - 1,
                " inputs; mipin explains models with exactly one input tensor");
    current_ = inputs[1];
    activations_.insert(current_);
    for (Node* node : graph_->nodes()) visit(node);
    MIPIN_CHECK(graph_->outputs().size() == 1 && graph_->outputs()[0] == current_,
                "the model in '", path_,
                "' does not return the result of its last layer as a single tensor (found ",
                graph_->outputs().size() == 1
                    ? graph_->outputs()[0]->node()->kind().toQualString()
                    : "several outputs",
                " as the output)");
    if (!dropped_.empty()) {
      notices.push_back("dropped the final " + dropped_ +
                        ": attributions explain the logits, not probabilities");
    }
    MIPIN_CHECK(!network_.empty(), "the model in '", path_, "' has no layers that mipin can explain");
    return std::move(network_);
  }

 private:
  bool uses(Node* node, Value* v) const {
    for (Value* in : node->inputs()) {
      if (in == v) return true;
    }
    return false;
  }

  bool uses_any_activation(Node* node) const {
    for (Value* in : node->inputs()) {
      if (activations_.count(in)) return true;
    }
    for (auto* block : node->blocks()) {
      for (Node* inner : block->nodes()) {
        if (uses_any_activation(inner)) return true;
      }
      for (Value* out : block->outputs()) {
        if (activations_.count(out)) return true;
      }
    }
    return false;
  }

  [[noreturn]] void unsupported(Node* node, const std::string& why) const {
    MIPIN_FAIL("unsupported op '", node->kind().toQualString(), "' in '", path_, "' ",
               why.empty() ? std::string() : "(" + why + ") ", "after ", network_.size(),
               " mapped layers; ", kSupported);
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
  double double_arg(Node* node, size_t i) const { return constant(node, i).toDouble(); }
  bool bool_arg(Node* node, size_t i) const { return constant(node, i).toBool(); }
  int64_t int_arg(Node* node, size_t i) const { return constant(node, i).toInt(); }

  void advance(Node* node) {
    current_ = node->output(0);
    activations_.insert(current_);
  }
  void append(Node* node, std::unique_ptr<Layer> layer) {
    MIPIN_CHECK(dropped_.empty(), "the model in '", path_, "' applies ",
                node->kind().toQualString(), " after ", dropped_,
                "; only a softmax at the very end can be dropped");
    network_.add(std::move(layer));
    advance(node);
  }

  void visit(Node* node) {
    const bool on_current = uses(node, current_);
    bool on_earlier = false;
    for (Value* in : node->inputs()) {
      if (in != current_ && activations_.count(in)) on_earlier = true;
    }
    if (!on_current && !on_earlier) {
      if (!node->blocks().empty() && uses_any_activation(node)) {
        unsupported(node, "control flow that depends on the input");
      }
      return;  // constants and shape arithmetic
    }
    const std::string op = node->kind().toQualString();
    if (on_earlier) {
      unsupported(node, op.rfind("aten::add", 0) == 0 || op.rfind("aten::cat", 0) == 0
                            ? "it combines the activation with an earlier one: residual "
                              "connections and concatenations are not supported"
                            : "it reads an activation other than the current one");
    }
    if (node->inputs().size() > 0 && node->input(0) != current_) {
      // e.g. addmm(bias, x, W): the activation is not the first argument.
      if (op != "aten::addmm" && op != "aten::add" && op != "aten::add_") {
        unsupported(node, "the activation is not its first argument");
      }
    }
    dispatch(node, op);
  }

  void dispatch(Node* node, const std::string& op) {
    if (op == "aten::size" || op == "aten::dim" || op == "aten::numel" || op == "prim::shape") {
      return;  // shape queries do not change the activation
    }
    if (op == "aten::contiguous" || op == "aten::clone" || op == "aten::detach") {
      advance(node);
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
      if (node->input(1) != current_) unsupported(node, "the activation is not mat1");
      if (double_arg(node, 3) != 1.0 || double_arg(node, 4) != 1.0) {
        unsupported(node, "beta or alpha other than 1");
      }
      auto linear = std::make_unique<Linear>();
      linear->bias = tensor_arg(node, 0);
      linear->weight = tensor_arg(node, 2).t().contiguous();
      return append(node, std::move(linear));
    }
    if (op == "aten::matmul" || op == "aten::mm") {  // x @ W^T
      const at::Tensor w = tensor_arg(node, 1);
      if (w.dim() != 2) unsupported(node, "the right operand is not a matrix");
      auto linear = std::make_unique<Linear>();
      linear->weight = w.t().contiguous();
      return append(node, std::move(linear));
    }
    if (op == "aten::add" || op == "aten::add_") {
      return fold_bias_add(node);
    }
    if (op == "aten::relu" || op == "aten::relu_") {
      return append(node, std::make_unique<ReLU>());
    }
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
    if (op == "aten::flatten") {
      if (int_arg(node, 1) != 1 || int_arg(node, 2) != -1) {
        unsupported(node, "only flatten(x, 1) / flatten(x, 1, -1) keeps the batch axis");
      }
      return append(node, std::make_unique<Flatten>());
    }
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
      dropped_ = op;
      advance(node);
      return;
    }
    unsupported(node, "");
  }

  void append_conv(Node* node, std::unique_ptr<Conv2d> conv) {
    if (conv->weight.dim() != 4) unsupported(node, "only 2-D convolutions are supported");
    append(node, std::move(conv));
  }

  // A bias added after a matmul, or after a bias-free conv: part of that layer.
  void fold_bias_add(Node* node) {
    Layer* last = network_.empty() ? nullptr : &network_.layer(network_.size() - 1);
    const size_t other = node->input(0) == current_ ? 1 : 0;
    auto bias_value = torch::jit::toIValue(node->input(other));
    const bool alpha_one = node->inputs().size() < 3 || constant(node, 2).toDouble() == 1.0;
    if (last && bias_value && bias_value->isTensor() && alpha_one) {
      const at::Tensor bias = bias_value->toTensor().detach().to(at::kFloat);
      if (last->kind() == LayerKind::Linear) {
        auto& linear = static_cast<Linear&>(*last);
        if (!linear.bias.defined() && bias.numel() == linear.out_features()) {
          linear.bias = bias.reshape({-1}).clone();
          advance(node);
          return;
        }
      }
      if (last->kind() == LayerKind::Conv2d) {
        auto& conv = static_cast<Conv2d&>(*last);
        if (!conv.bias.defined() && bias.numel() == conv.out_channels()) {
          conv.bias = bias.reshape({-1}).clone();
          advance(node);
          return;
        }
      }
    }
    unsupported(node, "only a constant bias added right after a Linear or Conv2d is supported");
  }

  // view/reshape to [N, -1] (or [N, K]) is a flatten that keeps the batch axis.
  void append_view(Node* node) {
    Node* shape = node->input(1)->node();
    size_t rank = 0;
    if (auto list = torch::jit::toIValue(node->input(1))) {
      rank = list->toIntVector().size();
    } else if (shape->kind() == c10::prim::ListConstruct) {
      rank = shape->inputs().size();
    }
    if (rank != 2) unsupported(node, "only a reshape to [batch, features] is supported");
    append(node, std::make_unique<Flatten>());
  }

  std::string path_;
  std::shared_ptr<torch::jit::Graph> graph_;
  Network network_;
  Value* current_ = nullptr;
  std::unordered_set<Value*> activations_;
  std::string dropped_;
};

torch::jit::Module load_module(const std::string& path, std::string& metadata_json) {
  std::error_code ec;
  MIPIN_CHECK(std::filesystem::exists(path, ec), "model file not found: '", path, "'");
  MIPIN_CHECK(!std::filesystem::is_directory(path, ec), "expected a TorchScript file, found a directory: '", path, "'");
  torch::jit::ExtraFilesMap extra{{"mipin.json", ""}};
  try {
    auto module = torch::jit::load(path, torch::kCPU, extra);
    metadata_json = extra["mipin.json"];
    return module;
  } catch (const c10::Error& e) {
    MIPIN_FAIL("cannot read the TorchScript model '", path,
               "': the file is truncated, corrupt or not a TorchScript archive (",
               first_line(e.what_without_backtrace()), ")");
  } catch (const std::exception& e) {
    MIPIN_FAIL("cannot read the TorchScript model '", path, "': ", first_line(e.what()));
  }
}

}  // namespace

ImportedModel load_torchscript(const std::string& path, const ImportOptions& options) {
  ImportedModel result;
  result.path = path;
  std::string metadata_json;
  torch::jit::Module module = load_module(path, metadata_json);
  result.metadata = metadata_from_json(metadata_json, path);

  std::shared_ptr<torch::jit::Graph> graph;
  try {
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
  if (shape.empty() && result.network.layer(0).kind() == LayerKind::Linear) {
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

}  // namespace mipin
