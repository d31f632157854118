// The sums of a MIP-IN pass as a unit: two streams' sums added equal one
// stream's, and packing into one tensor (what crosses between processes and
// into checkpoints) loses nothing.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "inverse/normal_equations.h"
#include "mipin/model/layers.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

struct Stream {
  at::Tensor signal, target, scale_signal, scale_a, scale_b, fork_p, fork_q, fork_value;
};

Stream make_stream(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  Stream s;
  s.target = torch::randn({n, 3, 9, 9});
  s.signal = torch::randn({n, 4, 5, 5});
  s.scale_signal = torch::randn({n, 4, 3, 3});
  s.scale_a = torch::randn({n, 4, 3, 3});
  s.scale_b = torch::randn({n, 4, 3, 3});
  s.fork_p = torch::randn({n, 2, 3, 3});
  s.fork_q = torch::randn({n, 2, 3, 3});
  s.fork_value = torch::randn({n, 2, 3, 3});
  return s;
}

void accumulate(PassEquations& eq, const Network& net, const Stream& s, int64_t begin, int64_t end) {
  auto rows = [&](const at::Tensor& t) { return t.slice(0, begin, end); };
  eq.operators[0].add(net.layer(0), rows(s.signal), rows(s.target));
  eq.scales[7].add(rows(s.scale_signal), {rows(s.scale_a), rows(s.scale_b)});
  eq.forks[3].add({rows(s.fork_p), rows(s.fork_q)}, rows(s.fork_value));
}

Network strided_conv() {
  Network net;
  Conv2d conv;
  torch::manual_seed(0);
  conv.weight = torch::randn({4, 3, 3, 3});
  conv.stride = {2, 2};
  conv.padding = {1, 1};
  net.add(conv);
  net.set_input_shape({3, 9, 9});
  return net;
}

double relative(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).norm() / b.norm().clamp_min(1e-300)).item<double>();
}

TEST(NormalEquations, TwoStreamsAddUpToOne) {
  const Network net = strided_conv();
  const Stream s = make_stream(10, 1);
  // The same batches (a batch's own products are float32: a batch is the
  // unit that must not change between streams).
  PassEquations whole, first, second;
  accumulate(whole, net, s, 0, 4);
  accumulate(whole, net, s, 4, 10);
  accumulate(first, net, s, 0, 4);
  accumulate(second, net, s, 4, 10);
  EXPECT_EQ(first.layout(), whole.layout());
  // Every sum, names and all: a strided convolution has a problem per phase.
  EXPECT_EQ(whole.sums().count("operator/00000000/phase3/a"), 1u);
  const at::Tensor merged = first.pack() + second.pack();
  EXPECT_LE(relative(merged, whole.pack()), 1e-12);

  PassEquations total;
  accumulate(total, net, s, 0, 1);  // any batch gives the layout
  total.unpack(net, merged);
  LayerFit from_total, from_whole;
  EXPECT_LE(relative(total.operators.at(0).solve(net.layer(0), 1e-3, from_total),
                     whole.operators.at(0).solve(net.layer(0), 1e-3, from_whole)),
            1e-10);
  EXPECT_NEAR(from_total.r2, from_whole.r2, 1e-10);
  EXPECT_GT(from_whole.r2, 0.0);
  LayerFit a, b;
  EXPECT_LE(relative(total.scales.at(7).solve(1e-3, a), whole.scales.at(7).solve(1e-3, b)), 1e-6);
  EXPECT_NEAR(a.r2, b.r2, 1e-10);
  EXPECT_LE(relative(total.forks.at(3).solve(1e-3, a), whole.forks.at(3).solve(1e-3, b)), 1e-6);
  EXPECT_NEAR(a.r2, b.r2, 1e-10);
}

TEST(NormalEquations, SumsRestoreExactly) {
  const Network net = strided_conv();
  const Stream s = make_stream(6, 2);
  PassEquations eq;
  accumulate(eq, net, s, 0, 6);
  PassEquations restored;
  restored.restore(net, eq.sums());
  EXPECT_TRUE(restored.pack().equal(eq.pack()));
  EXPECT_EQ(restored.layout(), eq.layout());
  // And the same problem keeps accumulating from there.
  accumulate(eq, net, s, 0, 3);
  accumulate(restored, net, s, 0, 3);
  EXPECT_TRUE(restored.pack().equal(eq.pack()));
}

TEST(NormalEquations, UnpackRefusesAnotherLayout) {
  const Network net = strided_conv();
  PassEquations eq;
  accumulate(eq, net, make_stream(2, 3), 0, 2);
  const at::Tensor packed = eq.pack();
  EXPECT_THROW(eq.unpack(net, packed.slice(0, 1)), Error);
}

}  // namespace
}  // namespace mipin
