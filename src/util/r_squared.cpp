#include "mipin/util/r_squared.h"

#include <torch/torch.h>

#include <cmath>

#include "mipin/util/error.h"

namespace mipin {

void RSquared::add_targets(const at::Tensor& targets) {
  const at::Tensor x = targets.to(at::kDouble);
  add_sums(x.sum(0), x.square().sum().item<double>(), x.size(0));
}

void RSquared::add_sums(const at::Tensor& sum, double sum_of_squares, int64_t rows) {
  const at::Tensor s = sum.to(at::kDouble).flatten();  // flat: as packed() keeps it
  sum_ = sum_.defined() ? sum_ + s : s;
  sum_sq_ += sum_of_squares;
  rows_ += rows;
}

void RSquared::add(const at::Tensor& targets, const at::Tensor& reconstruction) {
  add_targets(targets);
  sse_ += (targets.to(at::kDouble) - reconstruction.to(at::kDouble)).square().sum().item<double>();
}

void RSquared::merge(const RSquared& other) {
  if (other.sum_.defined()) sum_ = sum_.defined() ? sum_ + other.sum_ : other.sum_;
  sum_sq_ += other.sum_sq_;
  sse_ += other.sse_;
  rows_ += other.rows_;
}

at::Tensor RSquared::packed() const {
  const at::Tensor head = torch::tensor({sum_sq_, sse_, double(rows_)}, torch::kDouble);
  return sum_.defined() ? torch::cat({head, sum_.flatten()}) : head;
}

RSquared RSquared::from_packed(const at::Tensor& packed) {
  const at::Tensor p = packed.to(torch::kDouble).contiguous();
  MIPIN_CHECK(p.dim() == 1 && p.numel() >= 3, "packed R^2 sums: expected [3 + features] values, found shape ",
              p.sizes());
  RSquared r;
  r.sum_sq_ = p[0].item<double>();
  r.sse_ = p[1].item<double>();
  // A row count as a double: whole, and within what a double counts exactly
  // (anything else is no count, and converting it would be undefined).
  const double rows = p[2].item<double>();
  MIPIN_CHECK(rows >= 0 && rows <= 9007199254740992.0 && rows == std::floor(rows),
              "packed R^2 sums: a row count of ", rows);
  r.rows_ = int64_t(rows);
  if (p.numel() > 3) r.sum_ = p.slice(0, 3).clone();
  return r;
}

double RSquared::sst() const {
  if (rows_ == 0) return 0;
  return sum_sq_ - (sum_ * sum_).sum().item<double>() / double(rows_);
}

double RSquared::r2() const {
  const double total = sst();
  return total > 0 ? 1 - sse_ / total : 0;
}

double RSquared::mse() const { return values() > 0 ? sse_ / double(values()) : 0; }

}  // namespace mipin
