// mipin's forward and gradient against autograd, node by node.
#include "mipin/torchscript/model_check.h"

#include <torch/script.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <limits>

#include "mipin/attribution/engine.h"
#include "mipin/attribution/gradient.h"
#include "mipin/model/canonize.h"
#include "mipin/util/error.h"
#include "util/libtorch_archive.h"

namespace mipin {
namespace {

double relative(const at::Tensor& ours, const at::Tensor& reference) {
  const at::Tensor ref = reference.to(at::kDouble);
  const double scale = ref.numel() ? ref.abs().max().item<double>() : 0.0;
  const double gap = ref.numel() ? (ours.to(at::kDouble) - ref).abs().max().item<double>() : 0.0;
  if (scale == 0) return gap == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return gap / scale;
}

// Every value of a forward pass through the network's nodes under autograd,
// and the gradient of the targets' logits at each.
struct AutogradPass {
  std::vector<at::Tensor> values;
  std::vector<at::Tensor> gradients;
};

AutogradPass autograd_through(const Network& net, const at::Tensor& x, const at::Tensor& targets) {
  torch::AutoGradMode enable(true);
  std::vector<at::Tensor> values{x.detach().clone().set_requires_grad(true)};
  for (size_t i = 0; i < net.size(); ++i) {
    std::vector<at::Tensor> in;
    for (size_t v : net.inputs(i)) in.push_back(values[v]);
    at::Tensor out = net.layer(i).forward_of(in, nullptr);
    if (out.requires_grad()) out.retain_grad();
    values.push_back(out);
  }
  values.back().gather(1, targets.unsqueeze(1)).sum().backward();
  AutogradPass pass;
  for (const at::Tensor& v : values) {
    pass.gradients.push_back(v.grad().defined() ? v.grad().detach() : at::zeros_like(v).detach());
    pass.values.push_back(v.detach());
  }
  return pass;
}

// The gradient at every value by mipin's backward pass (the gradient's rules).
std::vector<at::Tensor> propagated(const Network& net, const at::Tensor& x, const at::Tensor& targets) {
  torch::NoGradGuard no_grad;
  ForwardRecord record;
  const at::Tensor logits = net.forward(x, &record);
  const at::Tensor top = at::zeros_like(logits).scatter_(1, targets.unsqueeze(1), 1.0);
  std::vector<at::Tensor> signals;
  propagate(net, record, gradient_composite(), top, 0, &signals);
  signals.resize(net.size() + 1);
  return signals;
}

// Autograd of the TorchScript module at its input, or nothing where it
// cannot run in this dtype (a trace can fix one: an LSTM's initial state).
at::Tensor module_gradient(torch::jit::Module module, const at::Tensor& x, const at::Tensor& targets) {
  try {
    torch::AutoGradMode enable(true);
    // Module::to would convert integer buffers too (Swin's position index).
    for (const auto& t : module.parameters()) t.set_data(t.to(x.scalar_type()));
    for (const auto& t : module.buffers()) {
      if (t.is_floating_point()) t.set_data(t.to(x.scalar_type()));
    }
    at::Tensor input = x.detach().clone().set_requires_grad(true);
    at::Tensor out = module.forward({input}).toTensor();
    out.gather(1, targets.unsqueeze(1)).sum().backward();
    return input.grad().defined() ? input.grad().detach() : at::zeros_like(input);
  } catch (const std::exception&) {  // c10::Error, or the interpreter's own
    return {};
  }
}

}  // namespace

ModelCheck check_model(const std::string& path, const ImportOptions& options, int64_t examples, uint64_t seed) {
  ImportOptions unfolded = options;
  unfolded.with_fold_batchnorm(false);
  ImportedModel imported = load_torchscript(path, unfolded);
  Network net64 = imported.network;
  net64.to(at::kDouble);
  Network& net32 = imported.network;
  if (options.fold_batchnorm) {
    fold_batchnorm(net32);
    fold_batchnorm(net64);
  }
  MIPIN_CHECK(!net32.input_shape().empty(), "the input shape of '", path,
              "' is unknown: give one (the input shape of one example, 3,224,224 say)");
  MIPIN_CHECK(examples > 0, "check_model: expected a positive number of examples, found ", examples);
  std::vector<int64_t> shape{examples};
  for (int64_t d : net32.input_shape()) shape.push_back(d);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor x = at::randn(shape, generator, at::kFloat);
  const at::Tensor x64 = x.to(at::kDouble);

  const Network& module32 = net32.as_module();
  const Network& module64 = net64.as_module();
  at::Tensor targets;
  {
    torch::NoGradGuard no_grad;
    targets = module64.forward(x64).argmax(1);
  }
  const AutogradPass reference = autograd_through(module64, x64, targets);
  const AutogradPass autograd32 = autograd_through(module32, x, targets);
  const std::vector<at::Tensor> ours64 = propagated(module64, x64, targets);
  const std::vector<at::Tensor> ours32 = propagated(module32, x, targets);
  ForwardRecord record32;
  {
    torch::NoGradGuard no_grad;
    module32.forward(x, &record32);
  }

  ModelCheck check;
  check.notices = imported.notices;
  check.targets.assign(targets.data_ptr<int64_t>(), targets.data_ptr<int64_t>() + targets.numel());
  for (size_t v = 0; v <= module32.size(); ++v) {
    ValueCheck c;
    c.value = v;
    c.layer = v == 0 ? std::string("input") : module32.layer(v - 1).describe();
    c.forward_float32 = relative(record32.value(v), reference.values[v]);
    c.gradient_float64 = relative(ours64[v], reference.gradients[v]);
    c.gradient_float32 = relative(ours32[v], reference.gradients[v]);
    c.autograd_float32 = relative(autograd32.gradients[v], reference.gradients[v]);
    check.values.push_back(c);
  }

  torch::jit::Module module =
      read_libtorch_archive(path, {"the TorchScript model '" + path + "'", "not a TorchScript file"});
  module.eval();
  const at::Tensor module_at_input64 = module_gradient(module.deepcopy(), x64, targets);
  const at::Tensor module_at_input32 = module_gradient(module.deepcopy(), x, targets);
  const at::Tensor exact = module_at_input64.defined() ? module_at_input64 : reference.gradients[0];
  if (module_at_input64.defined()) {
    check.module_gradient_float64 = relative(ours64[0], module_at_input64);
    check.module_gradient_float32 = relative(ours32[0], module_at_input64);
    if (module_at_input32.defined()) check.module_autograd_float32 = relative(module_at_input32, module_at_input64);
  }
  if (&module32 != &net32) {
    check.folded_gradient_float64 = relative(propagated(net64, x64, targets)[0], exact);
    check.folded_gradient_float32 = relative(propagated(net32, x, targets)[0], exact);
  }
  return check;
}

}  // namespace mipin
