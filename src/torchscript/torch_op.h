#pragma once
// An op of a TorchScript graph that mipin has no layer for, run as
// TorchScript runs it: a small graph holding the op and the shape
// arithmetic it reads (sizes of the batch, a token count), executed by
// LibTorch's interpreter. Methods without a rule for it take autograd's
// vector-Jacobian product of it (attribution/rule.h's fallback), so any
// op LibTorch can run and differentiate (LSTM, GRU, custom ops) is
// explained by the gradient family exactly.
#include <ATen/core/ivalue.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mipin/model/layer.h"

namespace torch {
namespace jit {
struct Graph;
struct Code;
}  // namespace jit
}  // namespace torch

namespace mipin {

class TorchOp final : public Layer {
 public:
  // What the graph's input k is: one of the node's activations (its k-th
  // value read), or one of its tensor constants.
  struct Slot {
    bool constant;
    size_t index;
  };
  // graph: one tensor output; its inputs as `slots` says. `op` names the
  // op ("aten::lstm"), `arguments` its constant arguments for describe().
  TorchOp(std::shared_ptr<torch::jit::Graph> graph, std::vector<Slot> slots, size_t activations,
          std::vector<NamedTensor> constants, std::string op, std::string arguments);

  LayerKind kind() const override { return LayerKind::Op; }
  size_t arity() const override { return activations_ == 1 ? 1 : 0; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  at::Tensor forward_of(const std::vector<at::Tensor>& inputs, LayerRecord* record) const override;
  Shape output_shape(const Shape& input_shape) const override;
  Shape output_shape_of(const std::vector<Shape>& input_shapes) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::string torchscript_of(const std::vector<std::string>& inputs, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override;
  std::vector<NamedTensor> tensors() const override { return constants_; }

  std::string op() const override { return op_; }
  // Its op is structural (attribution/rule.h) and the rest of its graph is
  // shape arithmetic: no other op computes on tensors.
  bool only_moves_values() const override;
  // The op's k-th argument where it is a constant (a number, a list, a
  // parameter tensor), or nothing where it is one of the node's activations
  // or the op is not found in the graph.
  std::optional<c10::IValue> constant_argument(size_t k) const;
  // The graph the op runs as, in TorchScript's IR text.
  std::string graph_text() const;

 private:
  std::shared_ptr<torch::jit::Graph> graph_;
  std::shared_ptr<torch::jit::Code> code_;
  std::vector<Slot> slots_;
  size_t activations_;
  std::vector<NamedTensor> constants_;
  std::string op_, arguments_;
  // Shapes found by running the op on zeros, per input shapes, and the
  // graph compiled for float64 inputs.
  struct ShapeCache;
  std::shared_ptr<ShapeCache> shapes_;
  // The code to run on inputs of this floating type.
  const torch::jit::Code& code_for(const std::vector<at::Tensor>& inputs) const;
};

}  // namespace mipin
