// MIP-IN's readouts: each against its definition in terms of the class-wise
// source signals, and the additivity the README claims for it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mipin/attribution/registry.h"
#include "mipin/inverse/inverse.h"
#include "mipin/util/error.h"
#include "support/trained_models.h"

namespace mipin {
namespace {

double relative(const at::Tensor& a, const at::Tensor& b) { return ((a - b).norm() / b.norm()).item<double>(); }

at::Tensor readout(const std::string& name, const Inverse& inverse, const Network& net, const at::Tensor& x,
                   const at::Tensor& t) {
  MethodSettings s;
  s.inverse = &inverse;
  s.options.set("readout", name);
  return make_method("mipin", s)->attribute(net, x, t);
}

TEST(MipInReadout, EachReadoutIsItsDefinitionInTermsOfTheClassSignals) {
  const test::TrainedModel& d = test::trained_model("cnn");
  const Inverse inverse = fit_inverse(d.network, *d.train_data, InverseOptions{}.with_examples(500));
  const at::Tensor x = d.train_data->get(2000, 2012).inputs;
  const at::Tensor t = d.network.forward(x).argmax(1);
  std::vector<at::Tensor> per_class;
  for (int64_t c = 0; c < 10; ++c) per_class.push_back(inverse.explain(d.network, x, torch::full({12}, c, torch::kLong)));
  const at::Tensor all = torch::stack(per_class, 1);  // [N, K, C, H, W]
  const at::Tensor own = all.gather(1, t.view({-1, 1, 1, 1, 1}).expand({-1, 1, 1, 28, 28})).squeeze(1);
  const at::Tensor others = (all.sum(1) - own) / 9.0;

  EXPECT_TRUE(readout("signal", inverse, d.network, x, t).equal(inverse.explain(d.network, x, t)));
  EXPECT_LE(relative(readout("contrast", inverse, d.network, x, t), own - others), 1e-4);
  EXPECT_TRUE(readout("abs", inverse, d.network, x, t).equal(own.abs()) ||
              relative(readout("abs", inverse, d.network, x, t), own.abs()) <= 1e-6);
  EXPECT_LE(relative(readout("times-input", inverse, d.network, x, t), own * x), 1e-6);
  // The default is the readout the README's rule picked: the class signal
  // times the input.
  MethodSettings plain;
  plain.inverse = &inverse;
  EXPECT_LE(relative(make_method("mipin", plain)->attribute(d.network, x, t), own * x), 1e-6);
}

// What the README says is additive: summed over every class, signal gives
// the whole output's signal, contrast nothing, times-input the whole signal
// times x.
TEST(MipInReadout, LinearReadoutsAddUpOverTheClasses) {
  const test::TrainedModel& d = test::trained_model("cnn");
  const Inverse inverse = fit_inverse(d.network, *d.train_data, InverseOptions{}.with_examples(500));
  const at::Tensor x = d.train_data->get(2100, 2108).inputs;
  const at::Tensor full = inverse.source_signal(d.network, x);
  at::Tensor contrast = torch::zeros_like(full), times = torch::zeros_like(full), magnitude = torch::zeros_like(full);
  for (int64_t c = 0; c < 10; ++c) {
    const at::Tensor t = torch::full({8}, c, torch::kLong);
    contrast += readout("contrast", inverse, d.network, x, t);
    times += readout("times-input", inverse, d.network, x, t);
    magnitude += readout("abs", inverse, d.network, x, t);
  }
  EXPECT_LE((contrast.norm() / full.norm()).item<double>(), 1e-4);
  EXPECT_LE(relative(times, full * x), 1e-4);
  EXPECT_GT(relative(magnitude, full.abs()), 1e-2);  // abs is not additive
}

TEST(MipInReadout, AnUnknownReadoutAndAnOutOfRangeTargetAreRefused) {
  const test::TrainedModel& d = test::trained_model("cnn");
  const Inverse inverse = fit_inverse(d.network, *d.train_data, InverseOptions{}.with_examples(200));
  EXPECT_THROW(parse_mipin_readout("magnitude"), Error);
  const at::Tensor x = d.train_data->get(0, 2).inputs;
  EXPECT_THROW(inverse.explain_contrast(d.network, x, torch::tensor({0, 10}, torch::kLong)), Error);
}

}  // namespace
}  // namespace mipin
