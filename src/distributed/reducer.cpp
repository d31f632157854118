#include "mipin/distributed/reducer.h"

#include <torch/torch.h>

#include <chrono>
#include <functional>

#include "mipin/util/error.h"

namespace mipin {

void Reducer::sum(at::Tensor& values) {
  MIPIN_CHECK(values.scalar_type() == at::kDouble && values.is_contiguous(),
              "a reduction takes a contiguous float64 tensor, found ", values.scalar_type());
  const auto start = std::chrono::steady_clock::now();
  if (world_size() > 1) sum_across(values);
  stats_.calls += 1;
  stats_.bytes += int64_t(values.numel()) * int64_t(sizeof(double));
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void sum_each(Reducer& reducer, const std::vector<at::Tensor*>& tensors) {
  if (reducer.world_size() == 1) return;
  std::vector<at::Tensor> parts;
  for (const at::Tensor* t : tensors) parts.push_back(t->to(torch::kDouble).flatten());
  at::Tensor packed = torch::cat(parts);
  reducer.sum(packed);
  int64_t offset = 0;
  for (at::Tensor* t : tensors) {
    *t = packed.slice(0, offset, offset + t->numel()).view(t->sizes()).to(t->scalar_type());
    offset += t->numel();
  }
}

void check_same_everywhere(Reducer& reducer, const std::string& what, const std::string& value) {
  const int world = reducer.world_size();
  if (world == 1) return;
  // Each process's 64-bit hash as four 16-bit parts, in its own slots: the
  // sum (exact in float64) hands every process everyone's hash.
  constexpr int kParts = 4;
  const uint64_t hash = std::hash<std::string>{}(value);
  at::Tensor slots = torch::zeros({world, kParts}, torch::kDouble);
  for (int p = 0; p < kParts; ++p) slots[reducer.rank()][p] = double((hash >> (16 * p)) & 0xffff);
  reducer.sum(slots);
  std::string differ;
  for (int r = 1; r < world; ++r) {
    if (!slots[r].equal(slots[0])) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  }
  MIPIN_CHECK(differ.empty(), "the processes disagree on the ", what, ": rank(s) ", differ,
              " differ from rank 0 (every process must be started with the same model, data and options)");
}

void check_enough_batches(const Reducer& reducer, int64_t batches, int64_t batch_size) {
  MIPIN_CHECK(batches >= reducer.world_size(), "the ", batches, " batch(es) of ", batch_size,
              " examples cannot give each of ", reducer.world_size(),
              " processes one: use fewer processes, more examples or a smaller batch size");
}

}  // namespace mipin
