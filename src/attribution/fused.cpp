#include "mipin/attribution/fused.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "mipin/util/error.h"

namespace mipin::fused {
namespace {

// Work per parallel chunk: large enough to amortise the thread hand-off.
constexpr int64_t kGrain = 65536;

void check_float(const at::Tensor& t, const char* what) {
  MIPIN_CHECK(t.scalar_type() == at::kFloat, what, ": expected float32, found ", c10::toString(t.scalar_type()));
}

}  // namespace

at::Tensor relu_gate(const at::Tensor& s, const at::Tensor& x) {
  check_float(s, "relu_gate");
  check_float(x, "relu_gate");
  MIPIN_CHECK(s.sizes() == x.sizes(), "relu_gate: shapes differ, ", s.sizes(), " and ", x.sizes());
  const at::Tensor sc = s.contiguous(), xc = x.contiguous();
  at::Tensor out = at::empty_like(sc);
  const float* ps = sc.data_ptr<float>();
  const float* px = xc.data_ptr<float>();
  float* po = out.data_ptr<float>();
  at::parallel_for(0, sc.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float v = ps[i];  // loaded unconditionally, so the loop vectorises
      po[i] = px[i] > 0.f ? v : 0.f;
    }
  });
  return out;
}

at::Tensor stabilised_divide(const at::Tensor& r, const at::Tensor& z, double epsilon) {
  check_float(r, "stabilised_divide");
  check_float(z, "stabilised_divide");
  MIPIN_CHECK(r.sizes() == z.sizes(), "stabilised_divide: shapes differ, ", r.sizes(), " and ", z.sizes());
  const at::Tensor rc = r.contiguous(), zc = z.contiguous();
  at::Tensor out = at::empty_like(rc);
  const float* pr = rc.data_ptr<float>();
  const float* pz = zc.data_ptr<float>();
  float* po = out.data_ptr<float>();
  const float eps = static_cast<float>(epsilon);
  at::parallel_for(0, rc.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) po[i] = pr[i] / (pz[i] + (pz[i] >= 0.f ? eps : -eps));
  });
  return out;
}

at::Tensor rescale_relu(const at::Tensor& m, const at::Tensor& z, const at::Tensor& z0, double tiny) {
  check_float(m, "rescale_relu");
  check_float(z, "rescale_relu");
  check_float(z0, "rescale_relu");
  MIPIN_CHECK(m.sizes() == z.sizes(), "rescale_relu: shapes differ, ", m.sizes(), " and ", z.sizes());
  MIPIN_CHECK(z0.dim() == z.dim() && (z0.size(0) == 1 || z0.size(0) == z.size(0)) &&
                  z0[0].sizes() == z[0].sizes(),
              "rescale_relu: the reference has shape ", z0.sizes(), ", expected batch 1 or ", z.size(0),
              " of ", z[0].sizes());
  const at::Tensor mc = m.contiguous(), zc = z.contiguous(), z0c = z0.contiguous();
  at::Tensor out = at::empty_like(mc);
  const float* pm = mc.data_ptr<float>();
  const float* pz = zc.data_ptr<float>();
  const float* p0 = z0c.data_ptr<float>();
  float* po = out.data_ptr<float>();
  const int64_t per_example = z[0].numel();
  const bool shared = z0.size(0) == 1 && z.size(0) != 1;
  const float t = static_cast<float>(tiny);
  at::parallel_for(0, mc.numel(), kGrain, [&](int64_t begin, int64_t end) {
    // Runs of one example at a time, so that the inner loop is branch-free
    // and vectorises; the reference's position restarts with each example.
    for (int64_t i = begin; i < end;) {
      const int64_t j0 = shared ? i % per_example : i;
      const int64_t run = shared ? std::min(end - i, per_example - j0) : end - i;
      const float* a = pz + i;
      const float* b = p0 + j0;
      const float* g = pm + i;
      float* o = po + i;
      for (int64_t k = 0; k < run; ++k) {
        const float d = a[k] - b[k];
        const float ratio = (std::max(a[k], 0.f) - std::max(b[k], 0.f)) / d;
        const float gate = a[k] > 0.f ? 1.f : 0.f;
        o[k] = g[k] * (std::fabs(d) > t ? ratio : gate);
      }
      i += run;
    }
  });
  return out;
}

at::Tensor masked_ratio(const at::Tensor& m, const at::Tensor& dy, const at::Tensor& dx, double tiny) {
  for (const at::Tensor* t : {&m, &dy, &dx}) check_float(*t, "masked_ratio");
  MIPIN_CHECK(m.sizes() == dy.sizes() && m.sizes() == dx.sizes(), "masked_ratio: shapes differ, ", m.sizes(),
              ", ", dy.sizes(), " and ", dx.sizes());
  const at::Tensor mc = m.contiguous(), yc = dy.contiguous(), xc = dx.contiguous();
  at::Tensor out = at::empty_like(mc);
  const float* pm = mc.data_ptr<float>();
  const float* py = yc.data_ptr<float>();
  const float* px = xc.data_ptr<float>();
  float* po = out.data_ptr<float>();
  const float t = static_cast<float>(tiny);
  at::parallel_for(0, mc.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float ratio = pm[i] * py[i] / px[i];  // computed everywhere, kept where |dx| > tiny
      po[i] = std::fabs(px[i]) > t ? ratio : 0.f;
    }
  });
  return out;
}

}  // namespace mipin::fused
