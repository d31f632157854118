#pragma once
// Sums across the processes of one job. A fit, a pattern fit and an
// evaluation are sums over examples: each process takes its share of the
// batches, sums what it saw, and a Reducer adds the processes' sums so that
// every process holds the same totals. One process needs no other: its
// reducer is the identity.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mipin {

// What the reductions of a job cost, for reports and the cost model.
struct ReduceStats {
  int64_t calls = 0;
  int64_t bytes = 0;     // per process: the tensor sizes summed
  double seconds = 0;    // spent in reductions (waiting for slower processes included)
};

class Reducer {
 public:
  virtual ~Reducer() = default;
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }

  // Sums `values` (float64, contiguous) over every process, in place. The
  // sum runs in rank order, ((x_0 + x_1) + x_2) + ..., and every process
  // receives the same bytes, so every process solves the same system.
  void sum(at::Tensor& values);
  const ReduceStats& stats() const { return stats_; }

  // Whether this process takes batch `index` of a stream: batches are
  // dealt round-robin, so a batch is the same examples at any world size.
  bool takes(int64_t index) const { return index % world_size() == rank(); }

 protected:
  // One process: nothing to add.
  virtual void sum_across(at::Tensor& values) { (void)values; }

 private:
  ReduceStats stats_;
};

// Adds each tensor across the processes in one reduction (float64 on the
// way); each keeps its shape and dtype. Nothing to do for one process.
void sum_each(Reducer& reducer, const std::vector<at::Tensor*>& tensors);

// Throws mipin::Error unless every process passes the same `value` for
// `what` (a model's fingerprint, a data set, the fit's options), naming the
// processes that differ from rank 0.
void check_same_everywhere(Reducer& reducer, const std::string& what, const std::string& value);

// Throws mipin::Error unless the job's `batches` give every process at
// least one (a process with none would have nothing to add).
void check_enough_batches(const Reducer& reducer, int64_t batches, int64_t batch_size);

}  // namespace mipin
