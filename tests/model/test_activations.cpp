// Every activation's derivative against autograd's, whatever the memory
// formats of the signal and the input (a channels-last signal reaches an
// activation whose input a LibTorch kernel left contiguous).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/activations.h"

namespace mipin {
namespace {

TEST(Activations, DerivativeIsAutogradsInEveryMemoryFormat) {
  torch::manual_seed(4);
  // float32, as explanations run (LibTorch's float64 kernel is not affected).
  const at::Tensor z = torch::randn({2, 64, 7, 7}) * 3;
  const at::Tensor s = torch::randn({2, 64, 7, 7});
  for (const ActivationSpec& spec : activation_specs()) {
    at::Tensor input = z.clone().set_requires_grad(true);
    at::Tensor expected;
    {
      torch::AutoGradMode enable(true);
      expected = torch::autograd::grad({spec.f(input, spec.defaults)}, {input}, {s})[0];
    }
    const at::Tensor y = spec.f(z, spec.defaults);
    for (const bool signal_channels_last : {false, true}) {
      for (const bool input_channels_last : {false, true}) {
        auto format = [](bool last) { return last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous; };
        const at::Tensor got =
            activation_gradient(spec, spec.defaults, s.contiguous(format(signal_channels_last)),
                                z.contiguous(format(input_channels_last)), y.contiguous(format(input_channels_last)));
        EXPECT_LE((got - expected).abs().max().item<double>(), 1e-5)
            << spec.name << " signal channels-last " << signal_channels_last << ", input channels-last "
            << input_channels_last;
      }
    }
  }
}

}  // namespace
}  // namespace mipin
