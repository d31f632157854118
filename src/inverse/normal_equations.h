#pragma once
// The sums a MIP-IN pass accumulates, as a unit of their own: per fitted
// node its least-squares problem's sufficient statistics (accumulate), the
// sums of two streams added (merge), every sum as one float64 tensor to add
// across processes or keep in a checkpoint (pack), and the fitted
// parameters with their R^2 (solve, score).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mipin/inverse/inverse.h"
#include "mipin/model/network.h"
#include "mipin/util/r_squared.h"

namespace mipin {

// Named float64 sums.
using Sums = std::map<std::string, at::Tensor>;

// Columns of one group's least-squares problem of a Linear or Conv2d layer:
// the units of a group times the taps each reads.
int64_t design_width(const Layer& layer);

// A Linear or Conv2d layer's operator U, ridge least squares of its input
// from the signal at its output: per output phase of a strided layer, per
// group, A = sum p p^T and B = sum x p^T over the transposed map's patches p.
class OperatorEquations {
 public:
  void add(const Layer& layer, const at::Tensor& signal, const at::Tensor& target);
  // The operator in the layer's weight shape; fills fit.r2 and fit.mse.
  at::Tensor solve(const Layer& layer, double alpha, LayerFit& fit) const;

  void collect(const std::string& prefix, Sums& out) const;
  void restore(const Layer& layer, const std::string& prefix, const Sums& in);

  // The output positions of one phase and the kernel taps they read.
  struct Phase {
    int64_t first[2] = {0, 0};     // its first position on each axis (then every stride-th)
    std::vector<int64_t> taps[2];  // the taps it reads on each axis
  };
  // One phase's problem, per group.
  struct Problem {
    at::Tensor a;     // sum p p^T  [groups, width, width]
    at::Tensor b;     // sum x p^T  [groups, q, width]
    RSquared spread;  // of the targets x, per (group, feature)
  };

 private:
  std::vector<Phase> phases_;
  std::vector<Problem> problems_;
};

// The axis an add's scales and a fork's weights run along in a value of
// this rank (batch included): the channels (axis 1) of images and of
// flat features, the features (last axis) of tokens [N, tokens, F].
inline int64_t unit_axis(int64_t rank) { return rank == 3 ? 2 : 1; }

// Per-channel scales d_k = sum(x_k s) / (sum(s s) + lambda), one per input
// k of an add (or the one input of a BatchNorm, whose channels are axis 1).
class ChannelScales {
 public:
  void add(const at::Tensor& signal, const std::vector<at::Tensor>& targets, int64_t axis = 1);
  at::Tensor solve(double alpha, LayerFit& fit) const;
  void collect(const std::string& prefix, Sums& out) const;
  void restore(const std::string& prefix, const Sums& in);

 private:
  at::Tensor xs_, ss_;  // [inputs, C], [C]
  RSquared spread_;     // of the targets, per (input, channel); a row is a position
};

// Per-channel weights w_k of the signals s_k a fork's readers send back,
// fitted jointly so that sum_k w_k s_k reconstructs the forked value.
class ForkWeights {
 public:
  void add(const std::vector<at::Tensor>& parts, const at::Tensor& value);
  at::Tensor solve(double alpha, LayerFit& fit) const;
  void collect(const std::string& prefix, Sums& out) const;
  void restore(const std::string& prefix, const Sums& in);

 private:
  at::Tensor gram_, xs_;  // [C, k, k], [C, k]
  RSquared spread_;       // of the forked value, per channel
};

// Everything one pass accumulates: a problem per node and per fork.
struct PassEquations {
  std::map<size_t, OperatorEquations> operators;
  std::map<size_t, ChannelScales> scales;
  std::map<size_t, ForkWeights> forks;

  // Every sum by name, in a fixed order.
  Sums sums() const;
  // The same problems from sums() of this network (a checkpoint).
  void restore(const Network& network, const Sums& sums);
  // Every sum as one flat float64 tensor; unpack() takes it back into
  // problems with the same layout (another process's, or a total).
  at::Tensor pack() const;
  void unpack(const Network& network, const at::Tensor& packed);
  // The names and sizes of the sums: equal on every process of a job.
  std::string layout() const;
};

}  // namespace mipin
