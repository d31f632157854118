#include "attribution/op_parts.h"

#include <torch/torch.h>

#include "mipin/model/layers.h"
#include "mipin/model/network.h"
#include "mipin/util/error.h"
#include "torchscript/torch_op.h"

namespace mipin {

std::optional<LayerNormParts> layer_norm_parts(const Layer& layer) {
  const auto* op = dynamic_cast<const TorchOp*>(&layer);
  if (!op || op->op() != "aten::layer_norm") return std::nullopt;
  LayerNormParts parts;
  if (const auto shape = op->constant_argument(1); shape && shape->isIntList()) {
    parts.dims = int64_t(shape->toIntVector().size());
  }
  if (const auto w = op->constant_argument(2); w && w->isTensor()) parts.weight = w->toTensor();
  if (const auto b = op->constant_argument(3); b && b->isTensor()) parts.bias = b->toTensor();
  if (const auto eps = op->constant_argument(4); eps && eps->isDouble()) parts.eps = eps->toDouble();
  return parts;
}

std::vector<int64_t> normalised_axes(const LayerNormParts& parts, int64_t rank) {
  std::vector<int64_t> axes;
  for (int64_t d = rank - parts.dims; d < rank; ++d) axes.push_back(d);
  return axes;
}

at::Tensor layer_norm_sd(const LayerNormParts& parts, const at::Tensor& x) {
  return torch::sqrt(x.var(normalised_axes(parts, x.dim()), /*unbiased=*/false, /*keepdim=*/true) + parts.eps);
}

bool is_gate_value(const Network& network, size_t value) {
  while (value > 0) {
    const Layer& producer = network.layer(value - 1);
    if (producer.kind() == LayerKind::Activation) {
      const std::string& f = static_cast<const Activation&>(producer).function;
      return f == "sigmoid" || f == "hardsigmoid";
    }
    const std::string op = producer.op();
    if (op == "aten::softmax" || op == "aten::_softmax" || op == "aten::sigmoid") return true;
    const bool passes = producer.kind() == LayerKind::Dropout || producer.kind() == LayerKind::Reshape ||
                        (producer.kind() == LayerKind::Op && network.inputs(value - 1).size() == 1 &&
                         (producer.only_moves_values() || op == "aten::mul" || op == "aten::div"));
    if (!passes) return false;
    value = network.inputs(value - 1)[0];
  }
  return false;
}

Signals weighted_vjp(const RuleContext& context, const at::Tensor& signal, const std::vector<double>& weights) {
  static const std::shared_ptr<const Rule> vjp = autograd_rule();
  std::vector<double> w = weights;
  w.resize(std::max(weights.size(), size_t(1)), 1.0);
  bool any = false;
  for (double v : w) any = any || v != 0;
  if (!any) return Signals(w.size(), at::Tensor());
  Signals out = vjp->backward(context, signal);
  for (size_t k = 0; k < out.size() && k < w.size(); ++k) {
    if (w[k] == 0 || !out[k].defined()) {
      out[k] = at::Tensor();
    } else if (w[k] != 1) {
      out[k] = out[k] * w[k];
    }
  }
  return out;
}

std::vector<double> product_shares(const RuleContext& context) {
  const size_t n = std::max<size_t>(context.record.inputs.size(), 1);
  if (n == 1 || !context.network) return std::vector<double>(n, 1.0);
  const auto& inputs = context.network->inputs(context.index);
  std::vector<bool> gate(n, false);
  size_t gates = 0;
  for (size_t k = 0; k < n && k < inputs.size(); ++k) {
    gate[k] = is_gate_value(*context.network, inputs[k]);
    gates += gate[k];
  }
  std::vector<double> shares(n);
  for (size_t k = 0; k < n; ++k) {
    shares[k] = gates == 0 ? 1.0 / double(n) : gates == n ? 0.0 : gate[k] ? 0.0 : 1.0 / double(n - gates);
  }
  return shares;
}

std::optional<Signals> closed_form_vjp(const RuleContext& context, const at::Tensor& signal) {
  const auto* op = dynamic_cast<const TorchOp*>(&context.layer);
  if (!op) return std::nullopt;
  const std::vector<at::Tensor>& in = context.record.inputs;
  const std::string& name = op->op();
  if (name == "aten::softmax") {
    if (in.size() > 1 || !in.empty() && !in[0].defined()) return std::nullopt;
    const at::Tensor& x = in.empty() ? context.record.input : in[0];
    const auto dim = op->constant_argument(1), dtype = op->constant_argument(2);
    if (!x.defined() || !dim || !dim->isInt() || !dtype || !dtype->isNone()) return std::nullopt;
    // ATen's own kernels, one pass each, as autograd would run them.
    const at::Tensor y = at::_softmax(x, dim->toInt(), /*half_to_float=*/false);
    return Signals(at::_softmax_backward_data(signal.contiguous(), y, dim->toInt(), x.scalar_type()));
  }
  if (name == "aten::layer_norm") {
    if (in.size() > 1) return std::nullopt;
    const at::Tensor& x = in.empty() ? context.record.input : in[0];
    const auto parts = layer_norm_parts(*op);
    if (!x.defined() || !parts) return std::nullopt;
    const std::vector<int64_t> shape(x.sizes().end() - parts->dims, x.sizes().end());
    const auto forward = at::native_layer_norm(x.contiguous(), shape, parts->weight, parts->bias, parts->eps);
    const auto grads = at::native_layer_norm_backward(signal.contiguous(), x.contiguous(), shape, std::get<1>(forward),
                                                      std::get<2>(forward), parts->weight, parts->bias,
                                                      {true, false, false});
    return Signals(std::get<0>(grads));
  }
  if (name == "aten::matmul" || name == "aten::bmm") {
    if (in.size() != 2 || !in[0].defined() || !in[1].defined()) return std::nullopt;
    const at::Tensor &a = in[0], &b = in[1];
    if (a.dim() < 2 || a.dim() != b.dim() || a.sizes().slice(0, a.dim() - 2) != b.sizes().slice(0, b.dim() - 2) ||
        !a.is_floating_point() || !b.is_floating_point()) {
      return std::nullopt;
    }
    Signals out;
    out.push_back(torch::matmul(signal, b.transpose(-2, -1)));
    out.push_back(torch::matmul(a.transpose(-2, -1), signal));
    return out;
  }
  return std::nullopt;
}

}  // namespace mipin
