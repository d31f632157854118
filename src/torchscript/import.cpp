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
#include <torch/csrc/jit/passes/remove_mutation.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/script.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "mipin/model/canonize.h"
#include "mipin/model/layers.h"
#include "mipin/torchscript/model_file.h"
#include "mipin/util/error.h"
#include "model/activations.h"
#include "torchscript/fused_ops.h"
#include "torchscript/torch_op.h"
#include "util/libtorch_archive.h"
#include "util/stored_tensor.h"
#include "util/text.h"

namespace mipin {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// An op the first-class layers do not take as it is written: it is run as
// TorchScript runs it instead (a TorchOp node).
struct NoEntry {
  std::string why;
};

// Ops that read only an activation's shape, type or device: what they
// compute does not depend on the input's values (the batch size, a token
// count, zeros of the input's shape).
bool reads_metadata_only(const std::string& op) {
  static const std::set<std::string> ops{
      "aten::size",       "aten::dim",       "aten::numel",     "prim::shape",     "aten::sym_size",
      "prim::dtype",      "prim::device",    "prim::layout",    "aten::zeros_like", "aten::ones_like",
      "aten::empty_like", "aten::new_zeros", "aten::new_ones",  "aten::new_empty", "aten::new_full",
      "aten::full_like",  "aten::rand_like", "aten::randn_like"};
  return ops.count(op) > 0;
}

LibTorchArchiveKind model_archive(const std::string& name) {
  return {"the TorchScript model '" + name + "'", "not a TorchScript file"};
}

bool is_inplace(const std::string& op) { return !op.empty() && op.back() == '_' && op.rfind("aten::", 0) == 0; }

class GraphReader {
 public:
  // input_shape, when known, decides what the graph's types do not say;
  // parameter_data holds the storage of the module's parameters (freezing
  // keeps it), so that the tensors an op lifts from them count as trainable.
  GraphReader(std::string path, std::shared_ptr<torch::jit::Graph> graph, std::vector<int64_t> input_shape,
              std::unordered_set<const void*> parameter_data)
      : path_(std::move(path)),
        graph_(std::move(graph)),
        parameter_data_(std::move(parameter_data)),
        input_shape_(std::move(input_shape)) {}

  Network read(std::vector<std::string>& notices) {
    const auto inputs = graph_->inputs();
    // inputs()[0] is the module itself.
    MIPIN_CHECK(inputs.size() == 2, "the model in '", path_, "' takes ", inputs.size() - 1,
                " inputs; mipin explains models with exactly one input tensor");
    values_[inputs[1]] = 0;
    sources_.push_back(inputs[1]);
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
    if (!run_by_torchscript_.empty()) {
      std::string ops;
      for (const auto& [op, count] : run_by_torchscript_) {
        ops += (ops.empty() ? "" : ", ") + op + (count > 1 ? " (x" + std::to_string(count) + ")" : "");
      }
      notices.push_back("ran as TorchScript runs them, with autograd's gradient as the rule of methods that have "
                        "none of their own (mipin info lists them): " + ops);
    }
    return std::move(network_);
  }

  // The graph value each network value was read from (null where a node
  // stands for part of an op, as the pooling of a mean).
  const std::vector<Value*>& sources() const { return sources_; }

 private:
  bool is_activation(Value* v) const { return values_.count(v) > 0; }

  // An activation, or something computed from one's values that is not a
  // tensor (a list of them, an op's list or tuple of results).
  bool reads_activation(Value* v) const { return is_activation(v) || derived_.count(v) > 0; }

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

  // The op as written has no first-class layer: it runs as TorchScript runs it.
  [[noreturn]] void unsupported(Node*, const std::string& why) const { throw NoEntry{why}; }
  // What mipin cannot explain at all.
  [[noreturn]] void refuse(Node* node, const std::string& why) const {
    MIPIN_FAIL_AS(unsupported, "cannot import op '", node->kind().toQualString(), "' in '", path_, "' (", why,
                  ") after ", network_.size(), " mapped layers");
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

  // Adds a node and, while the input shape is known, its output's shape.
  size_t add_node(std::unique_ptr<Layer> layer, std::vector<size_t> inputs) {
    const size_t v = network_.add(std::move(layer), std::move(inputs));
    if (shapes_known_) {
      std::vector<Shape> in;
      for (size_t u : network_.inputs(v - 1)) in.push_back(shapes_.at(u));
      try {
        shapes_.resize(v + 1);
        shapes_[v] = network_.layer(v - 1).output_shape_of(in);
      } catch (const Error&) {
        shapes_known_ = false;  // set_input_shape names the layer
      }
    }
    return v;
  }

  // The rank of an activation with its batch axis, where known: from the
  // shapes so far, or from the sizes a trace recorded.
  std::optional<int64_t> rank(Value* v) const {
    if (shapes_known_ && is_activation(v)) return int64_t(shapes_.at(values_.at(v)).size()) + 1;
    if (const auto t = v->type()->cast<c10::TensorType>()) {
      if (const auto d = t->dim()) return int64_t(*d);
    }
    return std::nullopt;
  }
  // The layers below read inputs of one rank ([N, F], [N, C, H, W]); at
  // another (tokens, sequences) the op runs as TorchScript runs it.
  void require_rank(Node* node, size_t argument, int64_t expected) const {
    const auto r = rank(node->input(argument));
    if (r && *r != expected) unsupported(node, "a " + std::to_string(*r) + "-D input");
  }

  void require_min_rank(Node* node, size_t argument, int64_t least) const {
    const auto r = rank(node->input(argument));
    if (r && *r < least) unsupported(node, "a " + std::to_string(*r) + "-D input");
  }

  // Graph value `out` is network value v, and v's source for the
  // verification.
  void bind_value(Value* out, size_t v) {
    values_[out] = v;
    if (sources_.size() <= v) sources_.resize(v + 1, nullptr);
    sources_[v] = out;
  }
  // Nothing follows a dropped final softmax.
  void check_before_softmax(Node* node) const {
    MIPIN_CHECK(dropped_.empty(), "the model in '", path_, "' applies ", node->kind().toQualString(), " after ",
                dropped_, "; only a softmax at the very end can be dropped");
  }

  // The node's output is value v. An in-place op also rebinds its first
  // argument: later readers of it see the changed tensor.
  void bind(Node* node, size_t v) {
    bind_value(node->output(0), v);
    if (is_inplace(node->kind().toQualString()) && is_activation(node->input(0))) values_[node->input(0)] = v;
  }
  void append(Node* node, std::unique_ptr<Layer> layer, std::vector<size_t> inputs) {
    check_before_softmax(node);
    bind(node, add_node(std::move(layer), std::move(inputs)));
  }
  // A node reading the op's first argument.
  void append(Node* node, std::unique_ptr<Layer> layer) {
    const size_t input = value_of(node, 0);
    append(node, std::move(layer), {input});
  }

  void visit(Node* node) {
    const std::string op = node->kind().toQualString();
    if (!uses_any_activation(node)) return;  // constants and shape arithmetic
    if (!node->blocks().empty()) refuse(node, "control flow that depends on the input");
    if (reads_metadata_only(op)) return;  // read again by the op that uses it (a TorchOp's graph)
    // A list or tuple of activations is read by the op that takes it (cat,
    // or a TorchOp's graph).
    if (op == "prim::ListConstruct" || op == "prim::TupleConstruct") {
      derived_.insert(node->output());
      return;
    }
    const size_t before = network_.size();
    try {
      dispatch(node, op);
      return;
    } catch (const NoEntry&) {
    } catch (const c10::Error&) {
      // An argument of a kind the op's reader did not expect.
    }
    MIPIN_CHECK(network_.size() == before, "internal: a half-mapped ", op, " in '", path_, "'");
    append_torch_op(node);
  }

  // Every output the graph reads becomes a node computing it (an op with
  // several results, an LSTM's, runs once per result read); results that
  // are not tensors (a chunk's list) are read through the ops that unpack
  // them.
  void append_torch_op(Node* node) {
    const std::string op = node->kind().toQualString();
    for (Value* out : node->outputs()) {
      if (out->uses().empty()) continue;
      if (!out->type()->isSubtypeOf(*c10::TensorType::get())) {
        derived_.insert(out);
        continue;
      }
      check_before_softmax(node);
      OpGraph g(*this, node);
      Value* result = g.copy(out);
      g.graph->registerOutput(result);
      std::string arguments;
      for (Value* in : node->inputs()) {
        if (!arguments.empty()) arguments += ", ";
        arguments += describe_argument(in);
      }
      if (node->outputs().size() > 1) arguments += (arguments.empty() ? "" : "; ") + std::string("result ") +
                                                     std::to_string(out->offset());
      auto layer = std::make_unique<TorchOp>(g.graph, g.slots, g.activations.size(), g.constants, op, arguments);
      if (shapes_known_) {
        // A value of the network has the batch on its first axis; one that
        // does not (attention's [tokens, batch, features]) stays inside the
        // graphs of the ops that read it.
        std::vector<Shape> in;
        for (size_t a : g.activations) in.push_back(shapes_.at(a));
        try {
          layer->output_shape_of(in);
        } catch (const Error&) {
          derived_.insert(out);
          continue;
        }
      }
      bind_value(out, add_node(std::move(layer), g.activations));
      ++run_by_torchscript_[op];
    }
  }

  // The in-place ops that write into u, or into a view of it, before
  // `before`, in the graph's order.
  std::vector<Node*> writers_through_views(Value* u, Node* before) const {
    static const std::set<std::string> views{"aten::slice",     "aten::select",   "aten::view",   "aten::narrow",
                                             "aten::as_strided", "aten::transpose", "aten::permute", "aten::unsqueeze",
                                             "aten::squeeze",   "aten::expand",   "aten::t",      "aten::diagonal",
                                             "aten::unfold",    "aten::view_as",  "aten::alias"};
    std::vector<Node*> out;
    std::vector<Value*> pending{u};
    while (!pending.empty()) {
      Value* v = pending.back();
      pending.pop_back();
      for (const torch::jit::Use& use : v->uses()) {
        if (use.offset != 0) continue;
        const std::string kind = use.user->kind().toQualString();
        if (views.count(kind)) {
          pending.push_back(use.user->output(0));
        } else if (is_inplace(kind) && use.user->isBefore(before)) {
          out.push_back(use.user);
        }
      }
    }
    std::sort(out.begin(), out.end(), [](Node* a, Node* b) { return a->isBefore(b); });
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  std::string describe_argument(Value* v) const {
    if (is_activation(v)) return "%" + std::to_string(values_.at(v));
    if (auto c = torch::jit::toIValue(v)) {
      if (c->isTensor()) return "tensor" + shape_string(c->toTensor().sizes().vec());
      if (c->isTensorList()) return std::to_string(c->toTensorList().size()) + " tensors";
      std::ostringstream text;
      text << *c;
      return text.str();
    }
    return "(computed)";
  }

  // The graph a TorchOp runs: the op, and everything it reads that is
  // neither an activation (the graph's inputs) nor a constant, copied
  // recursively (shape arithmetic; an unpacked op's own node).
  struct OpGraph {
    OpGraph(const GraphReader& reader, Node* op) : reader(reader), op(op) {}
    const GraphReader& reader;
    Node* op;  // the node the graph computes
    std::set<Node*> writers;
    std::shared_ptr<torch::jit::Graph> graph = std::make_shared<torch::jit::Graph>();
    std::unordered_map<Value*, Value*> copies;
    std::unordered_map<size_t, Value*> activation_inputs;  // network value -> graph input
    std::vector<size_t> activations;
    std::vector<NamedTensor> constants;
    std::vector<TorchOp::Slot> slots;

    // A tensor constant is the node's own, converted with the network (to
    // float64) and part of its fingerprint: an input of the graph.
    Value* lift(const at::Tensor& t) {
      Value* input = graph->addInput();  // a Tensor, of no fixed shape
      slots.push_back({true, constants.size()});
      // A module parameter (the same storage) is trainable, so that counts
      // of parameters include the op's weights; other constants are not.
      const bool parameter = t.has_storage() && reader.parameter_data_.count(t.storage().data()) > 0;
      constants.push_back({"constant" + std::to_string(constants.size()), t.detach().clone(), parameter});
      return input;
    }

    Value* copy(Value* u) {
      if (auto it = copies.find(u); it != copies.end()) return it->second;
      Value* result = nullptr;
      if (auto a = reader.values_.find(u); a != reader.values_.end()) {
        auto known = activation_inputs.find(a->second);
        if (known != activation_inputs.end()) {
          result = known->second;
        } else {
          result = graph->addInput();
          slots.push_back({false, activations.size()});
          activations.push_back(a->second);
          activation_inputs[a->second] = result;
        }
      } else if (u->node()->kind() == c10::prim::Constant) {
        const auto value = torch::jit::toIValue(u);
        if (value && value->isTensor()) {
          result = lift(value->toTensor());
        } else if (value && value->isTensorList()) {
          // An LSTM's weights: each lifted, the list built in the graph.
          std::vector<Value*> items;
          for (const at::Tensor& t : value->toTensorVector()) items.push_back(lift(t));
          result = graph->insertNode(graph->createList(c10::TensorType::get(), items))->output();
        } else {
          Node* c = graph->createClone(u->node(), [](Value*) -> Value* { return nullptr; });
          graph->insertNode(c);
          result = c->output();
        }
      } else {
        Node* n = u->node();
        if (n->kind() == c10::prim::Param) {
          MIPIN_FAIL("internal: an op in '", reader.path_, "' reads the module itself");
        }
        if (!n->blocks().empty()) reader.refuse(n, "control flow that depends on the input");
        for (Value* in : n->inputs()) copy(in);
        Node* c = graph->createClone(n, [this](Value* v) { return copies.at(v); });
        graph->insertNode(c);
        for (size_t k = 0; k < n->outputs().size(); ++k) copies[n->output(k)] = c->output(k);
        result = copies.at(u);
        copies[u] = result;
        copy_writers_of(u);
      }
      copies[u] = result;
      return result;
    }

    // The in-place writes into u through views of it that the module makes
    // before the op (Swin's attention mask: zeros, then each window's
    // region filled through slices), copied right after u in the module's
    // order. A reader that saw u before a write would now see it after:
    // the verification refuses such a model rather than pass it.
    void copy_writers_of(Value* u) {
      for (Node* w : reader.writers_through_views(u, op)) {
        if (!writers.insert(w).second) continue;
        for (Value* in : w->inputs()) copy(in);
        Node* c = graph->createClone(w, [this](Value* v) { return copies.at(v); });
        graph->insertNode(c);
        for (size_t k = 0; k < w->outputs().size(); ++k) copies[w->output(k)] = c->output(k);
      }
    }
  };

  void dispatch(Node* node, const std::string& op) {
    if (op != "aten::addmm" && op != "aten::add" && op != "aten::add_" && op != "aten::mul" &&
        op != "aten::mul_" && op != "aten::cat" && !is_activation(node->input(0))) {
      // e.g. sub(1, x): the activation is not the first argument.
      unsupported(node, "the activation is not its first argument");
    }
    if (op == "aten::contiguous" || op == "aten::clone" || op == "aten::detach") {
      bind(node, value_of(node, 0));
      return;
    }
    if (op == "aten::_convolution" || op == "aten::conv2d" || op == "aten::max_pool2d" ||
        op == "aten::avg_pool2d" || op == "aten::adaptive_avg_pool2d" || op == "aten::batch_norm" ||
        op == "aten::mean") {
      require_rank(node, 0, 4);
    }
    // A Linear applies to the last axis: [N, F], or [N, tokens, F] per token.
    if (op == "aten::linear" || op == "aten::matmul") require_min_rank(node, 0, 2);
    if (op == "aten::mm") require_rank(node, 0, 2);
    if (op == "aten::addmm") require_rank(node, 1, 2);
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
      if (bool_arg(node, 5)) refuse(node, "batch norm in training mode: export the model after model.eval()");
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
      // With p = 0 it is the identity in either mode (torchvision's Swin
      // calls it so).
      if (bool_arg(node, 2) && double_arg(node, 1) != 0.0) {
        refuse(node, "dropout in training mode: export the model after model.eval()");
      }
      auto dropout = std::make_unique<Dropout>();
      dropout->p = double_arg(node, 1);
      return append(node, std::move(dropout));
    }
    if ((op == "aten::softmax" || op == "aten::log_softmax") && is_graph_output(node->output()) &&
        value_of(node, 0) == network_.size()) {
      MIPIN_CHECK(dropped_.empty(), "the model in '", path_, "' applies ", op, " twice");
      dropped_ = op;
      values_[node->output(0)] = value_of(node, 0);  // its source stays the logits
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
    if (gates.size() == 1) {
      mul->gate = gates[0];
    } else if (same_shape(node->input(0), node->input(1))) {
      // Neither operand is a gate: a product of two computed tensors.
      unsupported(node, "a product of two activations of one shape");
    }
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
    const size_t pooled = add_node(std::move(pool), {value_of(node, 0)});
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

  // Two activations have one shape: as a trace recorded it, or as the
  // shapes tracked from the model's input shape say.
  bool same_shape(Value* a, Value* b) const {
    const auto ta = a->type()->cast<c10::TensorType>(), tb = b->type()->cast<c10::TensorType>();
    if (ta && tb) {
      const auto sa = ta->sizes().concrete_sizes(), sb = tb->sizes().concrete_sizes();
      if (sa && sb) return *sa == *sb;
    }
    return shapes_known_ && shapes_.at(values_.at(a)) == shapes_.at(values_.at(b));
  }

  bool is_graph_output(Value* v) const {
    for (const auto& use : v->uses()) {
      if (use.user != graph_->return_node()) return false;
    }
    return !v->uses().empty();
  }

  std::string path_;
  std::shared_ptr<torch::jit::Graph> graph_;
  std::unordered_set<const void*> parameter_data_;
  std::vector<int64_t> input_shape_;
  bool shapes_known_ = !input_shape_.empty();
  std::vector<Shape> shapes_{input_shape_};  // per network value, while known
  Network network_;
  std::unordered_map<Value*, size_t> values_;  // activations: graph value -> network value
  std::vector<Value*> sources_;                // network value -> graph value
  std::set<Value*> derived_;                   // non-tensors computed from activations
  std::map<std::string, int> run_by_torchscript_;
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

// Where the network and the module part: the largest difference of the
// values, and both at the element where it lies. Empty where they agree
// to float32's rounding.
std::string difference(const at::Tensor& ours, const at::Tensor& theirs) {
  if (ours.sizes() != theirs.sizes()) {
    return "mipin computes shape " + shape_string(ours.sizes().vec()) + ", TorchScript " +
           shape_string(theirs.sizes().vec());
  }
  if (ours.numel() == 0) return "";
  const at::Tensor a = ours.to(at::kDouble), b = theirs.to(at::kDouble);
  const at::Tensor finite = b.isfinite();
  const double scale = torch::where(finite, b.abs(), torch::zeros_like(b)).max().item<double>();
  // Relative to the values' own scale: kernels may sum in another order.
  const double tolerance = 1e-3 * scale + 1e-6;
  const at::Tensor gap = torch::where(a.isfinite() == finite, (a - b).abs().nan_to_num(0.0, 0.0, 0.0),
                                      torch::full_like(a, std::numeric_limits<double>::infinity()));
  const int64_t at = gap.flatten().argmax().item<int64_t>();
  const double worst = gap.flatten()[at].item<double>();
  if (worst <= tolerance) return "";
  std::ostringstream text;
  text << "largest difference " << worst << " where the module's values reach " << scale << ": at element " << at
       << " mipin computes " << a.flatten()[at].item<double>() << ", TorchScript " << b.flatten()[at].item<double>();
  return text.str();
}

// A fixed probe, drawn from its own generator: loading a model leaves the
// caller's random stream alone.
at::Tensor probe_input(const std::vector<int64_t>& shape) {
  std::vector<int64_t> batched{2};
  batched.insert(batched.end(), shape.begin(), shape.end());
  auto generator = at::detail::createCPUGenerator(20261207);
  return at::randn(batched, generator);
}

// Runs the module's graph on the probe with every mapped value as an extra
// output (copied where it is computed, so that no later in-place op changes
// it), and compares each with the network's, in the network's order: the
// first node that differs is named with both values. Returns the module's
// value of the network's output.
at::Tensor verify_nodes(const std::shared_ptr<torch::jit::Graph>& graph, const c10::IValue& self,
                        const Network& network, const std::vector<Value*>& sources, const at::Tensor& probe,
                        const std::string& path) {
  const size_t outputs = graph->outputs().size();
  std::vector<size_t> checked;
  for (size_t v = 1; v < sources.size() && v <= network.size(); ++v) {
    Value* u = sources[v];
    if (!u || !u->type()->isSubtypeOf(*c10::TensorType::get())) continue;
    torch::jit::WithInsertPoint guard(u->node()->next());
    Value* none = graph->insertConstant(c10::IValue());
    Node* copy = graph->insertNode(graph->create(c10::aten::clone, {u, none}));
    graph->registerOutput(copy->output());
    checked.push_back(v);
  }
  torch::NoGradGuard no_grad;
  torch::jit::Stack stack{self, probe};
  try {
    torch::jit::Code code(graph, "verify");
    torch::jit::InterpreterState(code).run(stack);
  } catch (const c10::Error& e) {
    MIPIN_FAIL("the TorchScript model '", path, "' cannot run on a probe input of shape ",
               shape_string(probe.sizes().vec()), ": ", first_line(e.what_without_backtrace()));
  }
  ForwardRecord record;
  network.forward(probe, &record);
  at::Tensor output;
  for (size_t k = 0; k < checked.size(); ++k) {
    const size_t v = checked[k];
    const at::Tensor theirs = stack.at(outputs + k).toTensor();
    if (v == network.size()) output = theirs;
    const std::string gap = difference(record.value(v), theirs);
    MIPIN_CHECK(gap.empty(), "the network mipin built from '", path, "' differs from the TorchScript module at node ",
                v - 1, " (", network.layer(v - 1).describe(), ") on a probe input: ", gap,
                ". This is a defect of mipin's import: please report it with the model");
  }
  MIPIN_CHECK(output.defined(), "internal: the output of '", path, "' was not verified");
  return output;
}

// The module's graph as a Network; `path` names the model in messages.
ImportedModel import_module(torch::jit::Module module, const std::string& metadata_json, const std::string& path,
                            const ImportOptions& options) {
  ImportedModel result;
  result.path = path;
  result.metadata = metadata_from_json(metadata_json, path);

  std::shared_ptr<torch::jit::Graph> graph, module_graph;
  std::vector<std::string> fused, attention;
  std::unordered_set<const void*> parameter_data;
  c10::IValue self;
  try {
    check_module_tensors(module, path);
    module.eval();
    for (const at::Tensor& p : module.parameters(/*recurse=*/true)) {
      if (p.has_storage()) parameter_data.insert(p.storage().data());
    }
    torch::jit::Module frozen = torch::jit::freeze_module(module);
    self = frozen._ivalue();
    graph = frozen.get_method("forward").graph()->copy();
    torch::jit::Inline(*graph);
    fused = decompose_fused_inference_ops(*graph);
    attention = rewrite_traced_attention(*graph);
    // The module's own graph, kept to check the rewrites' output against.
    if (!fused.empty() || !attention.empty()) module_graph = frozen.get_method("forward").graph()->copy();
    torch::jit::ConstantPropagation(graph);
    // In-place ops made functional where that is safe: a value then means
    // one tensor's contents wherever it is read.
    torch::jit::RemoveListMutation(graph);
    torch::jit::RemoveTensorMutation(graph);
    torch::jit::EliminateDeadCode(graph);
  } catch (const c10::Error& e) {
    MIPIN_FAIL("cannot prepare the TorchScript model '", path, "' for import: ",
               first_line(e.what_without_backtrace()));
  }

  std::vector<int64_t> shape = options.input_shape;
  if (shape.empty()) shape = result.metadata.input_shape;
  GraphReader reader(path, graph, shape, std::move(parameter_data));
  result.network = reader.read(result.notices);

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
  if (!fused.empty()) {
    std::map<std::string, int> counts;
    for (const auto& op : fused) counts[op]++;
    std::string list;
    for (const auto& [op, n] : counts) list += (list.empty() ? "" : ", ") + std::to_string(n) + " " + op;
    result.notices.push_back("rewrote the fused inference ops a trace under torch.no_grad() records into the ops "
                             "they fuse (linear maps, the heads' products, softmax, layer norms): " + list);
  }
  if (!attention.empty()) {
    result.notices.push_back("read " + std::to_string(attention.size()) + " nn.MultiheadAttention, traced op by op "
                             "with the heads in the batch axis, as batch-first attention (linear maps, the heads' "
                             "products, softmax)");
  }
  if (options.after_mapping) options.after_mapping(result.network);

  // Every node against the module, then the canonized network's output.
  at::Tensor probe, expected;
  if (options.verify && !shape.empty()) {
    probe = probe_input(shape);
    expected = verify_nodes(graph, self, result.network, reader.sources(), probe, path);
    if (module_graph) {
      // The rewrites against the module's own ops.
      torch::NoGradGuard no_grad;
      torch::jit::Stack stack{self, probe};
      torch::jit::Code code(module_graph, "module");
      torch::jit::InterpreterState(code).run(stack);
      const std::string gap = difference(expected, stack.at(0).toTensor());
      MIPIN_CHECK(gap.empty(), "the attention of '", path, "', rewritten into its parts, differs from "
                  "the module's own ops on a probe input: ", gap, ". This is a defect of mipin's import: please report it "
                  "with the model");
    }
  } else if (options.verify) {
    result.notices.push_back("not verified against the TorchScript module: its input shape is unknown "
                             "(give its input shape)");
  }
  if (options.fold_batchnorm) {
    const int folded = fold_batchnorm(result.network);
    if (folded > 0) {
      result.notices.push_back("folded " + std::to_string(folded) +
                               " BatchNorm2d layer(s) into the preceding Conv2d");
      if (probe.defined()) {
        torch::NoGradGuard no_grad;
        const std::string gap = difference(result.network.forward(probe), expected);
        MIPIN_CHECK(gap.empty(), "folding BatchNorm into the convolutions of '", path,
                    "' changed its output on a probe input: ", gap);
      }
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
