#include "model/onednn.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <dnnl.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "util/derived_tensor_cache.h"
#include "util/memory_layout.h"

namespace mipin::onednn {
namespace {

using dnnl::memory;

// Never destroyed: cached primitives and packed weights refer to it, and
// static destruction order is not theirs to choose.
dnnl::engine& cpu_engine() {
  static auto* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

dnnl::stream& thread_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

// Each call brings its own scratchpad, so that one primitive may run on
// several threads at once (oneDNN's own scratchpad belongs to the thread
// that created the primitive).
dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

memory::dims dims_of(at::IntArrayRef sizes) { return memory::dims(sizes.begin(), sizes.end()); }

memory::desc plain(const memory::dims& dims) {
  const auto tag = dims.size() == 4 ? memory::format_tag::nchw : memory::format_tag::x;
  return memory::desc(dims, memory::data_type::f32, tag);
}

memory::desc channels_last(const memory::dims& dims) {
  return memory::desc(dims, memory::data_type::f32, memory::format_tag::nhwc);
}

memory::desc any(const memory::dims& dims) {
  return memory::desc(dims, memory::data_type::f32, memory::format_tag::any);
}

enum class Direction { forward, transposed };

// Everything a primitive depends on, the thread count included (a JIT
// kernel divides its work for the threads there were when it was built).
struct Key {
  Direction direction;
  bool bias;
  bool winograd_allowed;
  bool input_channels_last;  // else NCHW; the output is always channels-last
  int threads;
  std::array<int64_t, 4> input, weight, output;  // input: x (forward) or the signal (transposed)
  std::array<int64_t, 2> stride, padding, dilation;

  bool operator==(const Key& o) const {
    return direction == o.direction && bias == o.bias && winograd_allowed == o.winograd_allowed &&
           input_channels_last == o.input_channels_last && threads == o.threads && input == o.input &&
           weight == o.weight && output == o.output && stride == o.stride && padding == o.padding &&
           dilation == o.dilation;
  }
};

struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = std::hash<int>()(k.threads * 16 + int(k.input_channels_last) * 8 + int(k.direction) * 4 +
                                int(k.bias) * 2 + int(k.winograd_allowed));
    auto mix = [&h](int64_t v) { h ^= std::hash<int64_t>()(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
    for (const auto* a : {&k.input, &k.weight, &k.output}) for (int64_t v : *a) mix(v);
    for (const auto* a : {&k.stride, &k.padding, &k.dilation}) for (int64_t v : *a) mix(v);
    return h;
  }
};

// A primitive with the scratchpad each call must bring.
struct Step {
  dnnl::primitive primitive;
  memory::desc scratchpad;

  void run(dnnl::stream& stream, std::unordered_map<int, memory> args) const {
    if (scratchpad.get_size() == 0) {
      primitive.execute(stream, args);
      return;
    }
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(scratchpad, cpu_engine()));
    primitive.execute(stream, args);
    stream.wait();  // the scratchpad goes with args (a no-op wait on OpenMP's synchronous CPU stream)
  }
};

// A compiled convolution and the layouts it reads and writes, with the
// reorders between those and plain NCHW when they differ.
struct Plan {
  Step convolution;
  memory::desc input_desc, weight_desc, output_desc;
  std::unique_ptr<Step> input_reorder, output_reorder;
};

std::array<int64_t, 4> four(at::IntArrayRef s) { return {s[0], s[1], s[2], s[3]}; }
std::array<int64_t, 2> two(at::IntArrayRef s) { return {s[0], s[1]}; }

// Winograd F(4x4, 3x3), for unit-stride undilated 3x3 kernels, transposed
// only and where the caller allows it. Its rounding error is relative to
// the largest value in each tile of the output, not to each output's own
// terms: forward, equal windows (a flat region of an image) would come out
// a rounding error apart and max-pooling and ReLU ties be broken by tile
// position, differently for each batch size; quotients (LRP's) put huge
// values beside small ones. Measured on an AVX-512 machine (2 threads): a
// half to a third of the direct kernel's time on VGG16's layers and from
// about 500 output positions on (one 28x28 image of 512 channels: 8.7
// against 16.5 ms), but slower on fewer (one 14x14 image of 32 channels: 61
// against 40 us) and with an image's 1 or 3 channels on a side.
bool winograd_first(const Key& k) {
  return k.direction == Direction::transposed && k.winograd_allowed && k.weight[2] == 3 && k.weight[3] == 3 &&
         k.weight[0] >= 8 && k.weight[1] >= 8 && k.stride == std::array<int64_t, 2>{1, 1} &&
         k.dilation == std::array<int64_t, 2>{1, 1} && k.output[0] * k.output[2] * k.output[3] >= 512;
}

bool is_reference(const dnnl::primitive_desc_base& pd) { return std::string(pd.impl_info_str()).rfind("ref", 0) == 0; }

// How the caller's tensor lies in memory.
memory::desc user_input_desc(const Key& k) {
  const memory::dims in = dims_of(k.input);
  return k.input_channels_last ? channels_last(in) : plain(in);
}

std::unique_ptr<Step> reorder_between(const memory::desc& from, const memory::desc& to) {
  if (from == to) return nullptr;
  auto& engine = cpu_engine();
  const dnnl::reorder::primitive_desc pd(engine, from, engine, to, user_scratchpad());
  return std::make_unique<Step>(Step{dnnl::reorder(pd), pd.scratchpad_desc()});
}

// A plan with the given algorithm; with channels_last_layouts, one that
// reads and writes channels-last as it is, and none where oneDNN has only
// its reference kernel for that (use_reference: take it all the same).
std::unique_ptr<Plan> make_plan(const Key& k, dnnl::algorithm algorithm, bool channels_last_layouts,
                                bool use_reference) {
  const memory::dims in = dims_of(k.input), w = dims_of(k.weight), out = dims_of(k.output);
  const memory::dims stride = dims_of(k.stride), padding_l = dims_of(k.padding);
  memory::dims dilation{k.dilation[0] - 1, k.dilation[1] - 1};  // oneDNN counts the gaps
  // x: the convolution's input, y: its output (for the transposed direction
  // the signal is y and the result x).
  const memory::dims& x = k.direction == Direction::forward ? in : out;
  const memory::dims& y = k.direction == Direction::forward ? out : in;
  memory::dims padding_r(2);
  for (int a = 0; a < 2; ++a) {
    // The right padding that makes the window count come out at y's size.
    padding_r[a] = (y[2 + a] - 1) * stride[a] + k.dilation[a] * (w[2 + a] - 1) + 1 - x[2 + a] - padding_l[a];
    if (padding_r[a] < 0) return nullptr;
  }
  auto& engine = cpu_engine();
  const dnnl::primitive_attr attr = user_scratchpad();
  auto plan = std::make_unique<Plan>();
  // Asked for inference, oneDNN 2.6 prefers its brgconv kernels in NHWC,
  // which on VGG16's 512-channel 14x14 layers take twice as long as the
  // kernels it picks for training (LibTorch's choice).
  const auto kind = dnnl::prop_kind::forward_training;
  const memory::desc input_layout = channels_last_layouts && k.input_channels_last ? channels_last(in) : any(in);
  const memory::desc output_layout = channels_last_layouts ? channels_last(out) : any(out);
  const memory::desc& xd = k.direction == Direction::forward ? input_layout : output_layout;
  const memory::desc& yd = k.direction == Direction::forward ? output_layout : input_layout;
  if (k.direction == Direction::forward) {
    const auto desc = k.bias ? dnnl::convolution_forward::desc(kind, algorithm, xd, any(w), plain({w[0]}), yd, stride,
                                                               dilation, padding_l, padding_r)
                             : dnnl::convolution_forward::desc(kind, algorithm, xd, any(w), yd, stride, dilation,
                                                               padding_l, padding_r);
    const dnnl::convolution_forward::primitive_desc pd(desc, attr, engine);
    if (!use_reference && is_reference(pd)) return nullptr;
    plan->convolution = {dnnl::convolution_forward(pd), pd.scratchpad_desc()};
    plan->input_desc = pd.src_desc();
    plan->weight_desc = pd.weights_desc();
    plan->output_desc = pd.dst_desc();
  } else {
    const dnnl::convolution_forward::desc hint_desc(kind, algorithm, xd, any(w), yd, stride, dilation, padding_l,
                                                    padding_r);
    const dnnl::convolution_forward::primitive_desc hint(hint_desc, engine);
    const dnnl::convolution_backward_data::desc desc(algorithm, xd, any(w), yd, stride, dilation, padding_l,
                                                     padding_r);
    const dnnl::convolution_backward_data::primitive_desc pd(desc, attr, engine, hint);
    if (!use_reference && is_reference(pd)) return nullptr;
    plan->convolution = {dnnl::convolution_backward_data(pd), pd.scratchpad_desc()};
    plan->input_desc = pd.diff_dst_desc();
    plan->weight_desc = pd.weights_desc();
    plan->output_desc = pd.diff_src_desc();
  }
  plan->input_reorder = reorder_between(user_input_desc(k), plan->input_desc);
  plan->output_reorder = reorder_between(plan->output_desc, channels_last(out));
  return plan;
}

// The plan for a shape: Winograd where allowed and expected to be faster,
// else direct. Shapes oneDNN has nothing for are remembered as such (a null
// plan). Primitives are compiled outside the lock; the map is emptied when
// it grows past a few hundred shapes (callers hold their plan by a shared
// pointer, so that is safe at any time).
std::shared_ptr<const Plan> plan_for(const Key& key) {
  static std::mutex mutex;
  static std::unordered_map<Key, std::shared_ptr<const Plan>, KeyHash> plans;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto found = plans.find(key);
    if (found != plans.end()) return found->second;
  }
  // Direct kernels that read and write channels-last as it is come first:
  // a network's activations then pass from one convolution to the next with
  // no reorder (in plain NCHW, reorders took a fifth of resnet50's time).
  // Winograd's kernels, and direct ones where oneDNN has none for
  // channels-last, work in its blocked layouts behind reorders.
  struct Candidate {
    dnnl::algorithm algorithm;
    bool channels_last_layouts;
  };
  const Candidate candidates[] = {{dnnl::algorithm::convolution_winograd, false},
                                  {dnnl::algorithm::convolution_direct, true},
                                  {dnnl::algorithm::convolution_direct, false}};
  std::shared_ptr<const Plan> plan;
  for (const Candidate& c : candidates) {
    if (c.algorithm == dnnl::algorithm::convolution_winograd && !winograd_first(key)) continue;
    try {
      plan = make_plan(key, c.algorithm, c.channels_last_layouts, &c == std::end(candidates) - 1);
    } catch (const dnnl::error&) {
      plan.reset();
    }
    if (plan) break;
  }
  std::lock_guard<std::mutex> lock(mutex);
  if (plans.size() >= 512) plans.clear();
  return plans.emplace(key, plan).first->second;
}

// Weights reordered into a primitive's layout, kept while the weight lives
// and is unchanged (the tag is the layout), with room for every weight of a
// large network several times over: LRP's alpha-beta packs each
// convolution's weight, its positive and negative parts and their flipped
// kernels (five per layer, 265 on resnet50), and a cache that holds fewer
// packs them all again on every call.
DerivedTensorCache<memory::desc, memory>& packed_weights() {
  static auto* cache = new DerivedTensorCache<memory::desc, memory>(1024);
  return *cache;
}

memory pack(const at::Tensor& weight, const memory::desc& desc) {
  auto& engine = cpu_engine();
  memory user(plain(dims_of(weight.sizes())), engine, weight.data_ptr());
  memory packed(desc, engine);
  dnnl::reorder(user, packed).execute(thread_stream(), user, packed);
  thread_stream().wait();
  return packed;
}

memory packed_weight(const at::Tensor& weight, const memory::desc& desc) {
  if (desc == plain(dims_of(weight.sizes()))) {
    return memory(desc, cpu_engine(), weight.data_ptr());
  }
  return packed_weights().get(weight, desc, [&] { return pack(weight, desc); });
}

at::Tensor run(const Plan& plan, const Key& key, const at::Tensor& input, const at::Tensor& weight,
               const at::Tensor& bias) {
  auto& engine = cpu_engine();
  auto& stream = thread_stream();
  const at::Tensor in = input.contiguous(key.input_channels_last ? at::MemoryFormat::ChannelsLast
                                                                : at::MemoryFormat::Contiguous);
  at::Tensor out =
      at::empty(at::IntArrayRef(key.output.data(), 4), in.options().memory_format(at::MemoryFormat::ChannelsLast));
  memory user_in(user_input_desc(key), engine, in.data_ptr());
  memory user_out(channels_last(dims_of(key.output)), engine, out.data_ptr());
  memory conv_in = user_in, conv_out = user_out;
  if (plan.input_reorder) {
    conv_in = memory(plan.input_desc, engine);
    plan.input_reorder->run(stream, {{DNNL_ARG_FROM, user_in}, {DNNL_ARG_TO, conv_in}});
  }
  if (plan.output_reorder) conv_out = memory(plan.output_desc, engine);
  std::unordered_map<int, memory> args{{DNNL_ARG_WEIGHTS, packed_weight(weight, plan.weight_desc)}};
  if (key.direction == Direction::forward) {
    args.emplace(DNNL_ARG_SRC, conv_in);
    args.emplace(DNNL_ARG_DST, conv_out);
    if (key.bias) args.emplace(DNNL_ARG_BIAS, memory(plain({key.weight[0]}), engine, bias.data_ptr()));
  } else {
    args.emplace(DNNL_ARG_DIFF_DST, conv_in);
    args.emplace(DNNL_ARG_DIFF_SRC, conv_out);
  }
  plan.convolution.run(stream, std::move(args));
  if (plan.output_reorder) plan.output_reorder->run(stream, {{DNNL_ARG_FROM, conv_out}, {DNNL_ARG_TO, user_out}});
  stream.wait();
  return out;
}

bool usable(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.layout() == at::kStrided &&
         t.dim() == 4 && t.numel() > 0;
}

// The number of windows along each spatial axis of an input of this size,
// or 0 where the geometry is not a valid one (LibTorch then reports it).
int64_t windows(int64_t size, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation) {
  if (stride <= 0 || dilation <= 0 || padding < 0) return 0;
  const int64_t span = size + 2 * padding - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

// The transpose of a stride-1 undilated convolution is itself one: the
// kernel flipped in space with its channel axes swapped, padded by
// (kernel - 1 - padding). Run as a forward convolution it takes oneDNN's
// forward kernels, which read and write channels-last, where its
// backward-data kernels work in blocked layouts behind reorders. A strided
// 1x1 convolution (a residual network's projection) only drops positions:
// its transpose is the 1x1 one at the signal's size, spread back over
// zeros (resnet50's three at batch 8: 14.1 against 17.3 ms a layer).
DerivedTensorCache<int, at::Tensor>& flipped_weights() {
  static auto* cache = new DerivedTensorCache<int, at::Tensor>(512);
  return *cache;
}

at::Tensor transposed_as_forward(const at::Tensor& signal, const at::Tensor& w, at::IntArrayRef input_sizes,
                                 Geometry g) {
  // Spread as a reshape (a strided copy into the channels-last layout takes
  // ten times as long), where the input is a whole number of strides.
  const bool pointwise = w.size(2) == 1 && w.size(3) == 1 && g.padding[0] == 0 && g.padding[1] == 0 &&
                         input_sizes[2] == signal.size(2) * g.stride[0] &&
                         input_sizes[3] == signal.size(3) * g.stride[1];
  std::array<int64_t, 2> padding{};
  for (int a = 0; a < 2; ++a) {
    if (pointwise) continue;
    if (g.stride[a] != 1 || g.dilation[a] != 1) return {};
    padding[a] = w.size(2 + a) - 1 - g.padding[a];
    if (padding[a] < 0) return {};
  }
  const at::Tensor flipped =
      flipped_weights().get(w, 0, [&] { return w.transpose(0, 1).flip({2, 3}).contiguous(); });
  const std::array<int64_t, 2> one{1, 1};
  std::array<int64_t, 4> output = four(input_sizes);
  if (pointwise) output = {input_sizes[0], input_sizes[1], signal.size(2), signal.size(3)};
  const Key key{Direction::forward, false, false, is_channels_last(signal), at::get_num_threads(),
                four(signal.sizes()), four(flipped.sizes()), output, one, padding, one};
  const auto plan = plan_for(key);
  if (!plan) return {};
  const at::Tensor y = run(*plan, key, signal, flipped, at::Tensor());
  if (output == four(input_sizes)) return y;
  const int64_t n = y.size(0), c = y.size(1), h = y.size(2), wd = y.size(3);
  at::Tensor spread = at::zeros({n, h, g.stride[0], wd, g.stride[1], c}, y.options());
  spread.select(4, 0).select(2, 0).copy_(y.permute({0, 2, 3, 1}));
  return spread.view({n, h * g.stride[0], wd * g.stride[1], c}).permute({0, 3, 1, 2});
}

// One phase of a strided transpose along one axis: the outputs y = S m + p
// receive the taps k = k0, k0 + S, ... (taps in number), from signal
// positions m + offset + j for j = 0 .. taps - 1, tap k0 + S (taps - 1 - j).
struct Phase {
  int64_t k0, taps, offset;
};

Phase phase_of(int64_t p, int64_t stride, int64_t padding, int64_t kernel) {
  const int64_t k0 = (p + padding) % stride;
  const int64_t taps = k0 < kernel ? (kernel - k0 + stride - 1) / stride : 0;
  return {k0, taps, (p + padding - k0) / stride - taps + 1};
}

// Output channels of the phase kernels: oneDNN's forward kernels are slow
// on fewer (2 to 4 times LibTorch's transpose at 3), zeros fill the rest.
constexpr int64_t kPhaseChannels = 8;

// The kernel of phase (py, px) as a forward one, [kPhaseChannels, O, ty, tx].
DerivedTensorCache<std::array<int64_t, 6>, at::Tensor>& phase_weights() {
  static auto* cache = new DerivedTensorCache<std::array<int64_t, 6>, at::Tensor>(256);
  return *cache;
}

}  // namespace

at::Tensor convolve(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, Geometry g) {
  if (!usable(x) || !usable(weight) || x.size(1) != weight.size(1)) return {};
  const at::Tensor w = weight.contiguous(), b = bias.defined() ? bias.contiguous() : bias;
  if (b.defined() &&
      (!b.device().is_cpu() || b.scalar_type() != at::kFloat || b.dim() != 1 || b.size(0) != w.size(0))) {
    return {};
  }
  std::array<int64_t, 4> output{x.size(0), w.size(0), 0, 0};
  for (int a = 0; a < 2; ++a) {
    output[2 + a] = windows(x.size(2 + a), w.size(2 + a), g.stride[a], g.padding[a], g.dilation[a]);
    if (output[2 + a] <= 0) return {};
  }
  const Key key{Direction::forward, b.defined(), false, is_channels_last(x), at::get_num_threads(),
                four(x.sizes()), four(w.sizes()), output, two(g.stride), two(g.padding), two(g.dilation)};
  const auto plan = plan_for(key);
  return plan ? run(*plan, key, x, w, b) : at::Tensor();
}

at::Tensor convolve_transposed(const at::Tensor& signal, const at::Tensor& weight, at::IntArrayRef input_sizes,
                               Geometry g, bool winograd_allowed) {
  if (!usable(signal) || !usable(weight) || input_sizes.size() != 4 || signal.size(1) != weight.size(0) ||
      input_sizes[0] != signal.size(0) || input_sizes[1] != weight.size(1)) {
    return {};
  }
  const at::Tensor w = weight.contiguous();
  // The signal must have the size the forward map gives the input.
  for (int a = 0; a < 2; ++a) {
    const int64_t n = windows(input_sizes[2 + a], w.size(2 + a), g.stride[a], g.padding[a], g.dilation[a]);
    if (n <= 0 || n != signal.size(2 + a)) return {};
  }
  const Key key{Direction::transposed, false, winograd_allowed, is_channels_last(signal), at::get_num_threads(),
                four(signal.sizes()), four(w.sizes()), four(input_sizes), two(g.stride), two(g.padding),
                two(g.dilation)};
  // Winograd's kernels, where they apply, beat both (resnet50 at batch 8:
  // its 3x3 layers back in half the time of forward kernels on the flipped
  // ones); elsewhere the flipped kernel on forward kernels beats the
  // backward-data ones (its 1x1 layers: in half the time, reorders aside).
  if (!winograd_first(key)) {
    if (at::Tensor y = transposed_as_forward(signal, w, input_sizes, g); y.defined()) return y;
  }
  const auto plan = plan_for(key);
  return plan ? run(*plan, key, signal, w, at::Tensor()) : at::Tensor();
}

at::Tensor convolve_transposed_by_phases(const at::Tensor& signal, const at::Tensor& weight,
                                        at::IntArrayRef input_sizes, Geometry g) {
  if (!usable(signal) || !usable(weight) || input_sizes.size() != 4 || signal.size(1) != weight.size(0) ||
      input_sizes[0] != signal.size(0) || input_sizes[1] != weight.size(1) ||
      weight.size(1) >= kPhaseChannels || g.dilation[0] != 1 || g.dilation[1] != 1 ||
      (g.stride[0] == 1 && g.stride[1] == 1)) {
    return {};
  }
  const at::Tensor w = weight.contiguous();
  for (int a = 0; a < 2; ++a) {
    const int64_t n = windows(input_sizes[2 + a], w.size(2 + a), g.stride[a], g.padding[a], 1);
    if (n <= 0 || n != signal.size(2 + a)) return {};
  }
  const int64_t channels = w.size(1), height = input_sizes[2], width = input_sizes[3];
  at::Tensor out = at::empty(input_sizes, signal.options().memory_format(at::MemoryFormat::ChannelsLast));
  for (int64_t py = 0; py < g.stride[0] && py < height; ++py) {
    for (int64_t px = 0; px < g.stride[1] && px < width; ++px) {
      const Phase a = phase_of(py, g.stride[0], g.padding[0], w.size(2));
      const Phase b = phase_of(px, g.stride[1], g.padding[1], w.size(3));
      at::Tensor target = out.slice(2, py, height, g.stride[0]).slice(3, px, width, g.stride[1]);
      if (a.taps == 0 || b.taps == 0) {  // no tap reaches these outputs
        target.zero_();
        continue;
      }
      const at::Tensor kernel = phase_weights().get(
          w, {py, px, g.stride[0], g.stride[1], g.padding[0], g.padding[1]}, [&] {
            std::vector<int64_t> ky, kx;
            for (int64_t j = 0; j < a.taps; ++j) ky.push_back(a.k0 + g.stride[0] * (a.taps - 1 - j));
            for (int64_t j = 0; j < b.taps; ++j) kx.push_back(b.k0 + g.stride[1] * (b.taps - 1 - j));
            const at::Tensor taps = w.transpose(0, 1)
                                        .index_select(2, at::tensor(ky, at::kLong))
                                        .index_select(3, at::tensor(kx, at::kLong));
            at::Tensor padded = at::zeros({kPhaseChannels, w.size(0), a.taps, b.taps}, w.options());
            padded.slice(0, 0, channels).copy_(taps);
            return padded;
          });
      // Symmetric padding wide enough for both ends; the rows and columns
      // it adds beyond the phase's reach are sliced away.
      const int64_t rows = target.size(2), cols = target.size(3);
      const std::array<int64_t, 2> padding{
          std::max<int64_t>({0, -a.offset, rows + a.offset + a.taps - 1 - signal.size(2)}),
          std::max<int64_t>({0, -b.offset, cols + b.offset + b.taps - 1 - signal.size(3)})};
      const std::array<int64_t, 2> one{1, 1};
      const at::Tensor y = convolve(signal, kernel, at::Tensor(), Geometry{one, padding, one});
      if (!y.defined()) return {};
      target.copy_(y.slice(1, 0, channels)
                       .slice(2, a.offset + padding[0], a.offset + padding[0] + rows)
                       .slice(3, b.offset + padding[1], b.offset + padding[1] + cols));
    }
  }
  return out;
}

size_t packed_weights_cached() { return packed_weights().size(); }

}  // namespace mipin::onednn
