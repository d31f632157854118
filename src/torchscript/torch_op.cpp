#include "torchscript/torch_op.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "mipin/attribution/rule.h"
#include "mipin/model/network.h"
#include "mipin/util/error.h"

namespace mipin {

struct TorchOp::ShapeCache {
  std::mutex mutex;
  std::map<std::vector<Shape>, Shape> known;
  std::shared_ptr<torch::jit::Code> float64;
};

namespace {

// The graph with every float32 `dtype` argument made float64. A trace
// records the dtype of the tensors an op creates (an LSTM's zero initial
// state) as a constant; with float64 weights and inputs the op would mix
// the two, and LibTorch 1.13's LSTM kernel crashes on that. Only float64
// runs (the reference checks) take this graph: in float32 the op runs
// exactly as the module, a deliberate cast included.
std::shared_ptr<torch::jit::Graph> in_float64(torch::jit::Graph& graph) {
  std::shared_ptr<torch::jit::Graph> copy = graph.copy();
  std::vector<torch::jit::Block*> blocks{copy->block()};
  while (!blocks.empty()) {
    torch::jit::Block* block = blocks.back();
    blocks.pop_back();
    for (torch::jit::Node* node : block->nodes()) {
      for (torch::jit::Block* inner : node->blocks()) blocks.push_back(inner);
      const c10::FunctionSchema* schema = node->maybeSchema();
      if (!schema) continue;
      for (size_t i = 0; i < node->inputs().size() && i < schema->arguments().size(); ++i) {
        if (schema->arguments()[i].name() != "dtype") continue;
        const auto value = torch::jit::toIValue(node->input(i));
        if (!value || !value->isInt() || value->toInt() != static_cast<int64_t>(at::kFloat)) continue;
        torch::jit::WithInsertPoint guard(node);
        node->replaceInput(i, copy->insertConstant(static_cast<int64_t>(at::kDouble)));
      }
    }
  }
  return copy;
}

}  // namespace

TorchOp::TorchOp(std::shared_ptr<torch::jit::Graph> graph, std::vector<Slot> slots, size_t activations,
                 std::vector<NamedTensor> constants, std::string op, std::string arguments)
    : graph_(std::move(graph)),
      code_(std::make_shared<torch::jit::Code>(graph_, "mipin_op")),
      slots_(std::move(slots)),
      activations_(activations),
      constants_(std::move(constants)),
      op_(std::move(op)),
      arguments_(std::move(arguments)),
      shapes_(std::make_shared<ShapeCache>()) {}

at::Tensor TorchOp::forward(const at::Tensor& x, LayerRecord* record) const { return forward_of({x}, record); }

at::Tensor TorchOp::forward_of(const std::vector<at::Tensor>& inputs, LayerRecord*) const {
  MIPIN_CHECK(inputs.size() == activations_, describe(), " reads ", activations_, " value(s), found ", inputs.size());
  torch::jit::Stack stack;
  stack.reserve(slots_.size());
  for (const Slot& slot : slots_) {
    // Contiguous, as the module's own ops had them: a view in the graph
    // cannot read a transposed or channels-last value.
    stack.emplace_back(slot.constant ? constants_.at(slot.index).tensor : inputs.at(slot.index).contiguous());
  }
  try {
    torch::jit::InterpreterState(code_for(inputs)).run(stack);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    MIPIN_FAIL(describe(), " failed: ", what.substr(0, what.find('\n')));
  }
  MIPIN_CHECK(stack.size() == 1 && stack.back().isTensor(), describe(), " did not compute one tensor");
  return stack.back().toTensor();
}

const torch::jit::Code& TorchOp::code_for(const std::vector<at::Tensor>& inputs) const {
  const bool float64 = std::any_of(inputs.begin(), inputs.end(),
                                   [](const at::Tensor& t) { return t.scalar_type() == at::kDouble; });
  if (!float64) return *code_;
  std::lock_guard<std::mutex> lock(shapes_->mutex);
  if (!shapes_->float64) shapes_->float64 = std::make_shared<torch::jit::Code>(in_float64(*graph_), "mipin_op");
  return *shapes_->float64;
}

Shape TorchOp::output_shape(const Shape& input_shape) const { return output_shape_of({input_shape}); }

// Run on zeros at batch sizes 2 and 3: a batch of one would let squeeze()
// and the like take the batch axis for an example's, and two sizes tell the
// batch axis from an axis that happens to have its size.
Shape TorchOp::output_shape_of(const std::vector<Shape>& input_shapes) const {
  {
    std::lock_guard<std::mutex> lock(shapes_->mutex);
    if (auto it = shapes_->known.find(input_shapes); it != shapes_->known.end()) return it->second;
  }
  torch::NoGradGuard no_grad;
  Shape shape;
  for (int64_t batch : {2, 3}) {
    std::vector<at::Tensor> zeros;
    for (const Shape& s : input_shapes) {
      Shape batched{batch};
      batched.insert(batched.end(), s.begin(), s.end());
      zeros.push_back(torch::zeros(batched));
    }
    const at::Tensor out = forward_of(zeros, nullptr);
    MIPIN_CHECK(out.dim() >= 1 && out.size(0) == batch, describe(),
                " does not keep the batch axis first: inputs of shape ", shape_string(zeros[0].sizes().vec()),
                " give ", shape_string(out.sizes().vec()));
    const Shape example(out.sizes().begin() + 1, out.sizes().end());
    MIPIN_CHECK(batch == 2 || example == shape, describe(), " gives examples of another shape at another batch size");
    shape = example;
  }
  std::lock_guard<std::mutex> lock(shapes_->mutex);
  shapes_->known[input_shapes] = shape;
  return shape;
}

std::string TorchOp::describe() const { return op_ + "(" + arguments_ + ")"; }

std::string TorchOp::torchscript(const std::string& x, const std::string& prefix) const {
  return torchscript_of({x}, prefix);
}

std::string TorchOp::torchscript_of(const std::vector<std::string>&, const std::string&) const {
  MIPIN_FAIL("mipin cannot write ", describe(),
             " as TorchScript: a network with ops run by TorchScript is saved by the program that exported it");
}

std::unique_ptr<Layer> TorchOp::clone() const {
  auto copy = std::make_unique<TorchOp>(*this);
  for (auto& c : copy->constants_) c.tensor = c.tensor.detach().clone();
  return copy;
}

std::string TorchOp::graph_text() const { return graph_->toString(); }

bool TorchOp::only_moves_values() const {
  if (!is_structural_op(op_)) return false;
  for (torch::jit::Node* node : graph_->nodes()) {
    const std::string kind = node->kind().toQualString();
    if (kind == op_ || node->kind().is_prim()) continue;
    if (is_structural_op(kind) || kind == "aten::size" || kind == "aten::Int") continue;
    // Arithmetic on sizes (no tensor out) is shape arithmetic.
    bool tensor_out = false;
    for (const torch::jit::Value* out : node->outputs()) tensor_out = tensor_out || out->type()->cast<c10::TensorType>();
    if (tensor_out) return false;
  }
  return true;
}

std::optional<c10::IValue> TorchOp::constant_argument(size_t k) const {
  for (torch::jit::Node* node : graph_->nodes()) {
    if (node->kind().toQualString() != op_) continue;
    if (k >= node->inputs().size()) return std::nullopt;
    const torch::jit::Value* value = node->input(k);
    const auto& inputs = graph_->inputs();
    for (size_t g = 0; g < inputs.size(); ++g) {
      if (inputs[g] != value) continue;
      const Slot& slot = slots_.at(g);
      if (!slot.constant) return std::nullopt;
      return c10::IValue(constants_.at(slot.index).tensor);
    }
    if (const auto constant = torch::jit::toIValue(value)) return *constant;
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace mipin
