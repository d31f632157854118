#include "mipin/attribution/fused.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>

#include "mipin/util/error.h"
#include "util/memory_layout.h"
#include "util/vector_clones.h"

namespace mipin::fused {
namespace {

// Work per parallel chunk: large enough to amortise the thread hand-off.
constexpr int64_t kGrain = 65536;

// Each loop below is a kernel over [begin, end) of flat float32 arrays; the
// arrays are checked, laid out alike and handed out by for_each_chunk.

MIPIN_VECTOR_CLONES void gate_kernel(const float* s, const float* x, float* o, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float v = s[i];  // loaded unconditionally, so the loop vectorises
    o[i] = x[i] > 0.f ? v : 0.f;
  }
}

// Guided backprop (gate) or deconvnet (no gate): s where s > 0 [and x > 0].
// NaN passes, as through torch::relu and the gradient's gate.
MIPIN_VECTOR_CLONES void rectify_kernel(const float* s, const float* x, float* o, bool gate, int64_t begin,
                                        int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float v = s[i];
    o[i] = !(v <= 0.f) && (!gate || x[i] > 0.f) ? v : 0.f;
  }
}

MIPIN_VECTOR_CLONES void divide_kernel(const float* r, const float* z, float* o, float eps, int64_t begin,
                                       int64_t end) {
  for (int64_t i = begin; i < end; ++i) o[i] = r[i] / (z[i] + (z[i] >= 0.f ? eps : -eps));
}

MIPIN_VECTOR_CLONES void split_kernel(const float* r, const float* z, const float* a, const float* b, float* oa,
                                      float* ob, float eps, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float q = r[i] / (z[i] + (z[i] >= 0.f ? eps : -eps));  // as divide_kernel, to the bit
    oa[i] = a[i] * q;
    ob[i] = b[i] * q;
  }
}

// One example's run of the rescale rule: the reference b restarts with each
// example, so the loop itself is branch-free.
MIPIN_VECTOR_CLONES void rescale_kernel(const float* g, const float* a, const float* b, float* o, float tiny,
                                        int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    const float d = a[k] - b[k];
    const float ratio = (std::max(a[k], 0.f) - std::max(b[k], 0.f)) / d;
    const float gate = a[k] > 0.f ? 1.f : 0.f;
    o[k] = g[k] * (std::fabs(d) > tiny ? ratio : gate);
  }
}

MIPIN_VECTOR_CLONES void transfer_kernel(const float* s, const float* z, const float* y, float* o, float f0,
                                         float d0, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float zi = z[i];
    const bool moved = std::fabs(zi) > 1e-6f;
    o[i] = s[i] * (moved ? (y[i] - f0) / (moved ? zi : 1.f) : d0);
  }
}

// One example's run of the general rescale rule (see rescale_kernel).
MIPIN_VECTOR_CLONES void rescale_any_kernel(const float* m, const float* z, const float* y, const float* z0,
                                            const float* y0, const float* slope, float* o, float tiny, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    const float d = z[k] - z0[k];
    const bool moved = std::fabs(d) > tiny;
    o[k] = moved ? m[k] * (y[k] - y0[k]) / (moved ? d : 1.f) : slope[k];
  }
}

// Checks that the operands are float32 of the first one's shape, then runs
// body(pointers..., out, begin, end) over chunks of the flat arrays on
// LibTorch's threads. Returns the output (the first operand's shape).
template <typename Body>
at::Tensor for_each_chunk(const char* what, std::initializer_list<at::Tensor> operands, Body body) {
  std::vector<at::Tensor> contiguous;
  std::vector<const float*> in;
  // The first operand's layout: channels-last activations (what
  // convolutions write) are read as they lie, not copied into NCHW.
  const at::MemoryFormat layout = layout_of(*operands.begin());
  for (const at::Tensor& t : operands) {
    MIPIN_CHECK(t.scalar_type() == at::kFloat, what, ": expected float32, found ", c10::toString(t.scalar_type()));
    MIPIN_CHECK(t.sizes() == operands.begin()->sizes(), what, ": shapes differ, ", operands.begin()->sizes(),
                " and ", t.sizes());
    contiguous.push_back(t.contiguous(layout));
    in.push_back(contiguous.back().data_ptr<float>());
  }
  at::Tensor out = at::empty(contiguous.front().sizes(), contiguous.front().options().memory_format(layout));
  float* po = out.data_ptr<float>();
  at::parallel_for(0, out.numel(), kGrain, [&](int64_t begin, int64_t end) { body(in.data(), po, begin, end); });
  return out;
}

}  // namespace

// Other types (float64, for exact checks against autograd) take the same
// rules as tensor operations.
static bool is_float(const at::Tensor& t) { return t.scalar_type() == at::kFloat; }

at::Tensor relu_gate(const at::Tensor& s, const at::Tensor& x) {
  if (!is_float(s)) return at::where(x > 0, s, at::zeros_like(s));
  return for_each_chunk("relu_gate", {s, x}, [](const float* const* in, float* o, int64_t begin, int64_t end) {
    gate_kernel(in[0], in[1], o, begin, end);
  });
}

at::Tensor relu_backward(const at::Tensor& s, const at::Tensor& x, ReluBackward relu) {
  if (relu == ReluBackward::gate) return relu_gate(s, x);
  const bool gate = relu == ReluBackward::gate_and_rectify;
  if (!is_float(s)) return gate ? relu_gate(s.clamp_min(0), x) : s.clamp_min(0);
  return for_each_chunk("relu_backward", {s, x}, [gate](const float* const* in, float* o, int64_t begin, int64_t end) {
    rectify_kernel(in[0], in[1], o, gate, begin, end);
  });
}

at::Tensor stabilised_divide(const at::Tensor& r, const at::Tensor& z, double epsilon) {
  const float eps = static_cast<float>(epsilon);
  return for_each_chunk("stabilised_divide", {r, z},
                        [eps](const float* const* in, float* o, int64_t begin, int64_t end) {
                          divide_kernel(in[0], in[1], o, eps, begin, end);
                        });
}

std::vector<at::Tensor> proportional_split(const at::Tensor& r, const at::Tensor& z,
                                           const std::vector<at::Tensor>& parts, double epsilon) {
  bool one_pass = parts.size() == 2 && is_float(r) && is_float(z) && r.sizes() == z.sizes();
  for (const at::Tensor& a : parts) one_pass = one_pass && is_float(a) && a.sizes() == z.sizes();
  if (!one_pass) {  // any type (float64 for exact checks), any number of parts
    const at::Tensor s = r / at::where(z >= 0, z + epsilon, z - epsilon);
    std::vector<at::Tensor> shares;
    for (const at::Tensor& a : parts) shares.push_back(a * s);
    return shares;
  }
  // Three reads and two writes, where the division and the two products
  // each read two arrays and wrote one.
  const at::MemoryFormat layout = layout_of(z);
  const at::Tensor rc = r.contiguous(layout), zc = z.contiguous(layout);
  const at::Tensor ac = parts[0].contiguous(layout), bc = parts[1].contiguous(layout);
  at::Tensor oa = at::empty(z.sizes(), z.options().memory_format(layout));
  at::Tensor ob = at::empty(z.sizes(), z.options().memory_format(layout));
  const float* pr = rc.data_ptr<float>();
  const float* pz = zc.data_ptr<float>();
  const float* pa = ac.data_ptr<float>();
  const float* pb = bc.data_ptr<float>();
  float* poa = oa.data_ptr<float>();
  float* pob = ob.data_ptr<float>();
  const float eps = static_cast<float>(epsilon);
  at::parallel_for(0, z.numel(), kGrain, [&](int64_t begin, int64_t end) {
    split_kernel(pr, pz, pa, pb, poa, pob, eps, begin, end);
  });
  return {oa, ob};
}

at::Tensor rescale_relu(const at::Tensor& m, const at::Tensor& z, const at::Tensor& z0, double tiny) {
  MIPIN_CHECK(z0.scalar_type() == at::kFloat, "rescale_relu: expected float32, found ",
              c10::toString(z0.scalar_type()));
  MIPIN_CHECK(z0.dim() == z.dim() && z.dim() > 0 && (z0.size(0) == 1 || z0.size(0) == z.size(0)) &&
                  z0[0].sizes() == z[0].sizes(),
              "rescale_relu: the reference has shape ", z0.sizes(), ", expected batch 1 or ", z.size(0),
              " of ", z[0].sizes());
  const at::Tensor z0c = z0.contiguous(layout_of(m));  // for_each_chunk lays z out as m
  const float* p0 = z0c.data_ptr<float>();
  const int64_t per_example = z[0].numel();
  const bool shared = z0.size(0) == 1 && z.size(0) != 1;
  const float t = static_cast<float>(tiny);
  return for_each_chunk("rescale_relu", {m, z}, [&](const float* const* in, float* o, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end;) {
      const int64_t j0 = shared ? i % per_example : i;
      const int64_t run = shared ? std::min(end - i, per_example - j0) : end - i;
      rescale_kernel(in[0] + i, in[1] + i, p0 + j0, o + i, t, run);
      i += run;
    }
  });
}

at::Tensor transfer(const at::Tensor& s, const at::Tensor& z, const at::Tensor& y, double f0, double d0) {
  if (!is_float(s) || !is_float(z) || !is_float(y)) {
    const at::Tensor moved = z.abs() > 1e-6;
    return s * at::where(moved, (y - f0) / at::where(moved, z, at::ones_like(z)), at::full_like(z, d0));
  }
  const float f = static_cast<float>(f0), d = static_cast<float>(d0);
  return for_each_chunk("transfer", {s, z, y}, [f, d](const float* const* in, float* o, int64_t begin, int64_t end) {
    transfer_kernel(in[0], in[1], in[2], o, f, d, begin, end);
  });
}

at::Tensor rescale(const at::Tensor& m, const at::Tensor& z, const at::Tensor& y, const at::Tensor& z0,
                   const at::Tensor& y0, const at::Tensor& slope, double tiny) {
  MIPIN_CHECK(z0.dim() == z.dim() && z.dim() > 0 && (z0.size(0) == 1 || z0.size(0) == z.size(0)) &&
                  z0[0].sizes() == z[0].sizes() && y0.sizes() == z0.sizes(),
              "rescale: the reference has shape ", z0.sizes(), ", expected batch 1 or ", z.size(0), " of ",
              z[0].sizes());
  if (!is_float(m) || !is_float(z0) || !is_float(y0)) {
    const at::Tensor dz = z - z0;
    const at::Tensor moved = dz.abs() > tiny;
    return at::where(moved, m * (y - y0) / at::where(moved, dz, at::ones_like(dz)), slope);
  }
  const at::MemoryFormat layout = layout_of(m);  // for_each_chunk lays the operands out as m
  const at::Tensor z0c = z0.contiguous(layout), y0c = y0.contiguous(layout);
  const float* pz0 = z0c.data_ptr<float>();
  const float* py0 = y0c.data_ptr<float>();
  const int64_t per_example = z[0].numel();
  const bool shared = z0.size(0) == 1 && z.size(0) != 1;
  const float t = static_cast<float>(tiny);
  return for_each_chunk("rescale", {m, z, y, slope}, [&](const float* const* in, float* o, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end;) {
      const int64_t j0 = shared ? i % per_example : i;
      const int64_t run = shared ? std::min(end - i, per_example - j0) : end - i;
      rescale_any_kernel(in[0] + i, in[1] + i, in[2] + i, pz0 + j0, py0 + j0, in[3] + i, o + i, t, run);
      i += run;
    }
  });
}

namespace {

// unpool_max_relu on a channels-last input (a convolution's output), kept
// in that layout: copying it, the signal and the switches into planes cost
// as much again as the loop (resnet50's stem at batch 8). The channels of
// one position lie together and never share a cell, so blocks of channels
// of one image run in parallel; a block's cells are scattered, then gated.
at::Tensor unpool_max_relu_channels_last(const at::Tensor& signal, const at::Tensor& switches, const at::Tensor& x,
                                         ReluBackward relu) {
  constexpr auto cl = at::MemoryFormat::ChannelsLast;
  const at::Tensor sc = signal.contiguous(cl), xc = x.contiguous(cl), sw = switches.to(at::kLong).contiguous(cl);
  at::Tensor out = at::empty_like(xc, cl);
  const int64_t channels = x.size(1), plane = x.size(2) * x.size(3), cells = signal.size(2) * signal.size(3);
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (channels + kBlock - 1) / kBlock;
  const float* ps = sc.data_ptr<float>();
  const float* px = xc.data_ptr<float>();
  const int64_t* pw = sw.data_ptr<int64_t>();
  float* po = out.data_ptr<float>();
  at::parallel_for(0, x.size(0) * blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks, c0 = (task % blocks) * kBlock, c1 = std::min(channels, c0 + kBlock);
      const float* xn = px + n * plane * channels;
      float* on = po + n * plane * channels;
      for (int64_t q = 0; q < plane; ++q) std::fill(on + q * channels + c0, on + q * channels + c1, 0.f);
      for (int64_t k = 0; k < cells; ++k) {
        const float* sk = ps + (n * cells + k) * channels;
        const int64_t* wk = pw + (n * cells + k) * channels;
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t pos = wk[c] * channels + c;
          if (relu != ReluBackward::gate || xn[pos] > 0.f) on[pos] += sk[c];
        }
      }
      if (relu == ReluBackward::gate) continue;
      // Rectification applies to the sums of overlapping windows.
      for (int64_t q = 0; q < plane; ++q) {
        rectify_kernel(on + q * channels, xn + q * channels, on + q * channels,
                       relu == ReluBackward::gate_and_rectify, c0, c1);
      }
    }
  });
  return out;
}

}  // namespace

at::Tensor unpool_max_relu(const at::Tensor& signal, const at::Tensor& switches, const at::Tensor& x,
                           ReluBackward relu) {
  if (!is_float(signal) && signal.dim() == 4 && x.dim() == 4) {
    const at::Tensor unpooled = at::zeros_like(x).flatten(2).scatter_add_(2, switches.flatten(2), signal.flatten(2));
    return relu_backward(unpooled.view_as(x), x, relu);
  }
  MIPIN_CHECK(signal.scalar_type() == at::kFloat && x.scalar_type() == at::kFloat && signal.dim() == 4 &&
                  x.dim() == 4 && switches.sizes() == signal.sizes() && x.size(0) == signal.size(0) &&
                  x.size(1) == signal.size(1),
              "unpool_max_relu: expected a float32 signal [N, C, h, w], switches of its shape and a float32 "
              "input [N, C, H, W], found ",
              signal.sizes(), ", ", switches.sizes(), " and ", x.sizes());
  if (is_channels_last(x)) return unpool_max_relu_channels_last(signal, switches, x, relu);
  const at::Tensor sc = signal.contiguous(), xc = x.contiguous(), sw = switches.to(at::kLong).contiguous();
  // Planes are cleared one at a time inside the loop, while in cache.
  at::Tensor out = at::empty_like(xc);
  const int64_t plane = x.size(2) * x.size(3), cells = signal.size(2) * signal.size(3);
  const float* ps = sc.data_ptr<float>();
  const float* px = xc.data_ptr<float>();
  const int64_t* pw = sw.data_ptr<int64_t>();
  float* po = out.data_ptr<float>();
  at::parallel_for(0, x.size(0) * x.size(1), std::max<int64_t>(1, kGrain / std::max<int64_t>(1, plane)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t p = begin; p < end; ++p) {
                       const float* xp = px + p * plane;
                       float* op = po + p * plane;
                       std::fill(op, op + plane, 0.f);
                       if (relu == ReluBackward::gate) {
                         for (int64_t k = p * cells; k < (p + 1) * cells; ++k) {
                           const int64_t won = pw[k];
                           if (xp[won] > 0.f) op[won] += ps[k];
                         }
                         continue;
                       }
                       // Rectification applies to the sums of overlapping
                       // windows: scatter first, then rectify the plane.
                       for (int64_t k = p * cells; k < (p + 1) * cells; ++k) op[pw[k]] += ps[k];
                       rectify_kernel(op, xp, op, relu == ReluBackward::gate_and_rectify, 0, plane);
                     }
                   });
  return out;
}

at::Tensor deeplift_unpool_max(const at::Tensor& m, const at::Tensor& x, const at::Tensor& y,
                               const at::Tensor& switches, const at::Tensor& x0, const at::Tensor& y0,
                               const at::Tensor& switches0, double tiny) {
  for (const at::Tensor* t : {&m, &x, &y, &x0, &y0}) {
    MIPIN_CHECK(t->scalar_type() == at::kFloat && t->dim() == 4, "deeplift_unpool_max: expected float32 [N, C, H, W], found ",
                c10::toString(t->scalar_type()), " of shape ", t->sizes());
  }
  MIPIN_CHECK(m.sizes() == y.sizes() && switches.sizes() == y.sizes() && x.size(0) == y.size(0) &&
                  x.size(1) == y.size(1),
              "deeplift_unpool_max: the multipliers ", m.sizes(), ", pooled output ", y.sizes(), ", switches ",
              switches.sizes(), " and input ", x.sizes(), " do not belong together");
  MIPIN_CHECK(x0.size(0) == 1 && x0[0].sizes() == x[0].sizes() && y0.size(0) == 1 && y0[0].sizes() == y[0].sizes() &&
                  switches0.sizes() == y0.sizes(),
              "deeplift_unpool_max: the reference's record ", x0.sizes(), ", ", y0.sizes(), ", ", switches0.sizes(),
              " is not one example of the input's");
  const at::Tensor mc = m.contiguous(), xc = x.contiguous(), yc = y.contiguous(), x0c = x0.contiguous(),
                   y0c = y0.contiguous();
  const at::Tensor sw = switches.to(at::kLong).contiguous(), sw0 = switches0.to(at::kLong).contiguous();
  at::Tensor out = at::empty_like(xc);  // cleared a plane at a time below
  const int64_t channels = x.size(1), plane = x.size(2) * x.size(3), cells = y.size(2) * y.size(3);
  const float* pm = mc.data_ptr<float>();
  const float* px = xc.data_ptr<float>();
  const float* py = yc.data_ptr<float>();
  const float* px0 = x0c.data_ptr<float>();
  const float* py0 = y0c.data_ptr<float>();
  const int64_t* ps = sw.data_ptr<int64_t>();
  const int64_t* ps0 = sw0.data_ptr<int64_t>();
  float* po = out.data_ptr<float>();
  const float t = static_cast<float>(tiny);
  // One (example, channel) plane per step; a plane's cells write only into
  // their own plane, so planes run in parallel.
  at::parallel_for(0, x.size(0) * channels, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, plane)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t p = begin; p < end; ++p) {
                       const int64_t c = p % channels;
                       const float* xp = px + p * plane;
                       const float* x0p = px0 + c * plane;
                       float* op = po + p * plane;
                       std::fill(op, op + plane, 0.f);
                       for (int64_t k = 0; k < cells; ++k) {
                         const int64_t cell = p * cells + k, cell0 = c * cells + k;
                         const float dy = py[cell] - py0[cell0];
                         const int64_t won = ps[cell];
                         const float dx_win = py[cell] - x0p[won];
                         if (std::fabs(dx_win) > t) {
                           op[won] += pm[cell] * dy / dx_win;
                           continue;
                         }
                         const int64_t won0 = ps0[cell0];
                         const float dx_ref = xp[won0] - py0[cell0];
                         if (std::fabs(dx_ref) > t) op[won0] += pm[cell] * dy / dx_ref;
                       }
                     }
                   });
  return out;
}

}  // namespace mipin::fused
