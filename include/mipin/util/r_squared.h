#pragma once
// R^2 = 1 - SSE / SST, accumulated over a stream of batches. SST is the
// spread of the targets about their per-feature means; SSE comes from the
// caller, who may know it from residuals or from sufficient statistics
// (a least-squares fit's normal equations).
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mipin {

class RSquared {
 public:
  // Targets [rows, ...features]: every leading index is a row, the rest one
  // feature each.
  void add_targets(const at::Tensor& targets);
  // Targets and their reconstruction: the residual's squares add to SSE.
  void add(const at::Tensor& targets, const at::Tensor& reconstruction);
  // The targets' sufficient statistics, where the caller has them: the
  // per-feature sum, the sum of squares and the number of rows.
  void add_sums(const at::Tensor& sum, double sum_of_squares, int64_t rows);
  void add_squared_error(double sse) { sse_ += sse; }
  // Another stream's sums (another phase of the same problem).
  void merge(const RSquared& other);

  // Every sum as one float64 tensor, [sum of squares, SSE, rows, per-feature
  // sums...], to add across processes or keep in a checkpoint; and back.
  at::Tensor packed() const;
  static RSquared from_packed(const at::Tensor& packed);

  double sst() const;
  double sse() const { return sse_; }
  double sum_of_squares() const { return sum_sq_; }
  int64_t rows() const { return rows_; }
  // Values counted: rows times features.
  int64_t values() const { return sum_.defined() ? rows_ * sum_.numel() : 0; }
  // 0 when the targets do not vary.
  double r2() const;
  double mse() const;

 private:
  at::Tensor sum_;  // per feature, double
  double sum_sq_ = 0, sse_ = 0;
  int64_t rows_ = 0;
};

}  // namespace mipin
