#include "mipin/model/max_pool_2x2.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "mipin/util/error.h"
#include "util/vector_clones.h"

namespace mipin {
namespace {

void check_input(const at::Tensor& x) {
  MIPIN_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat,
              "max_pool_2x2: expected float32 [N, C, H, W], found ", c10::toString(x.scalar_type()), " of shape ",
              x.sizes());
}

// Planes per parallel chunk, so each chunk has tens of thousands of values.
// (Below that a single thread is faster than handing work to a second one.)
int64_t grain(int64_t plane) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, plane)); }

// Planes [begin, end) of x pooled into o (and the winners' positions into
// oi, when given).
MIPIN_VECTOR_CLONES void pool_planes(const float* px, float* po, int64_t* pi, int64_t begin, int64_t end, int64_t H,
                                     int64_t W) {
  const int64_t OH = H / 2, OW = W / 2;
  for (int64_t p = begin; p < end; ++p) {
    const float* plane = px + p * H * W;
    float* o = po + p * OH * OW;
    int64_t* oi = pi ? pi + p * OH * OW : nullptr;
    for (int64_t y = 0; y < OH; ++y) {
      const float* r0 = plane + (2 * y) * W;
      const float* r1 = r0 + W;
      for (int64_t xo = 0; xo < OW; ++xo) {
        // Row-major scan: the first maximum wins, a NaN wins (the last one).
        // Selects rather than branches, so that the loop vectorises.
        const int64_t c0 = 2 * xo;
        const int64_t top = (2 * y) * W + c0, bottom = top + W;
        const float a = r0[c0], b = r0[c0 + 1], c = r1[c0], d = r1[c0 + 1];
        float best = a;
        int64_t at = top;
        const bool take_b = (b > best) | (b != b);
        best = take_b ? b : best;
        at = take_b ? top + 1 : at;
        const bool take_c = (c > best) | (c != c);
        best = take_c ? c : best;
        at = take_c ? bottom : at;
        const bool take_d = (d > best) | (d != d);
        best = take_d ? d : best;
        at = take_d ? bottom + 1 : at;
        o[y * OW + xo] = best;
        if (oi) oi[y * OW + xo] = at;
      }
    }
  }
}

}  // namespace

std::pair<at::Tensor, at::Tensor> max_pool_2x2(const at::Tensor& input, bool with_indices) {
  check_input(input);
  const at::Tensor x = input.contiguous();
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = H / 2, OW = W / 2;
  MIPIN_CHECK(OH > 0 && OW > 0, "max_pool_2x2: the input ", x.sizes(), " is smaller than the 2x2 window");
  at::Tensor out = at::empty({N, C, OH, OW}, x.options());
  at::Tensor idx = with_indices ? at::empty({N, C, OH, OW}, x.options().dtype(at::kLong)) : at::Tensor();
  const float* px = x.data_ptr<float>();
  float* po = out.data_ptr<float>();
  int64_t* pi = with_indices ? idx.data_ptr<int64_t>() : nullptr;
  at::parallel_for(0, N * C, grain(H * W),
                   [&](int64_t begin, int64_t end) { pool_planes(px, po, pi, begin, end, H, W); });
  return {out, idx};
}

at::Tensor max_unpool_2x2(const at::Tensor& signal, const at::Tensor& indices, at::IntArrayRef input_sizes) {
  MIPIN_CHECK(signal.scalar_type() == at::kFloat && signal.dim() == 4 && indices.sizes() == signal.sizes(),
              "max_unpool_2x2: expected a float32 signal and indices of one shape, found ", signal.sizes(), " and ",
              indices.sizes());
  MIPIN_CHECK(input_sizes.size() == 4 && input_sizes[0] == signal.size(0) && input_sizes[1] == signal.size(1),
              "max_unpool_2x2: input sizes ", input_sizes, " do not match the signal ", signal.sizes());
  const at::Tensor s = signal.contiguous(), i = indices.contiguous();
  // Each plane is cleared just before its scatter, while it is in cache,
  // rather than the whole tensor in a pass of its own.
  at::Tensor out = at::empty(input_sizes, s.options());
  const int64_t planes = s.size(0) * s.size(1), pooled = s.size(2) * s.size(3);
  const int64_t plane = input_sizes[2] * input_sizes[3];
  const float* ps = s.data_ptr<float>();
  const int64_t* pi = i.data_ptr<int64_t>();
  float* po = out.data_ptr<float>();
  at::parallel_for(0, planes, grain(plane), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      float* o = po + p * plane;
      std::fill(o, o + plane, 0.f);
      for (int64_t k = 0; k < pooled; ++k) o[pi[p * pooled + k]] += ps[p * pooled + k];
    }
  });
  return out;
}

}  // namespace mipin
