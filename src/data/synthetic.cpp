#include "mipin/data/synthetic.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <random>

#include "mipin/util/error.h"

namespace mipin {

LinearToy make_linear_toy(int64_t examples, const LinearToyOptions& o) {
  MIPIN_CHECK(examples > 0, "the linear toy needs at least one example, found ", examples);
  MIPIN_CHECK(o.dimension >= 2, "the linear toy needs dimension >= 2, found ", o.dimension);
  MIPIN_CHECK(std::abs(o.signal_distractor_cosine) < 1,
              "signal and distractor must not be parallel (cosine ", o.signal_distractor_cosine, ")");
  // The directions depend on the seed only, so train and test splits made
  // with the same seed share them.
  auto directions = at::detail::createCPUGenerator(o.seed);
  const at::Tensor a_s = torch::nn::functional::normalize(
      torch::randn({o.dimension}, directions), torch::nn::functional::NormalizeFuncOptions().dim(0));
  at::Tensor orth = torch::randn({o.dimension}, directions);
  orth = orth - orth.dot(a_s) * a_s;
  orth = orth / orth.norm();
  const double c = o.signal_distractor_cosine;
  const at::Tensor a_d = c * a_s + std::sqrt(1 - c * c) * orth;

  auto draws = at::detail::createCPUGenerator(o.seed * 7919 + o.sample_seed);
  const at::Tensor labels = torch::randint(0, 2, {examples}, draws, torch::kLong);
  const at::Tensor s = labels.to(torch::kFloat) * 2 - 1;
  const at::Tensor d = torch::randn({examples}, draws) * o.distractor_scale;
  const at::Tensor noise = torch::randn({examples, o.dimension}, draws) * o.noise;
  LinearToy toy;
  toy.signal = s.unsqueeze(1) * a_s.unsqueeze(0);
  const at::Tensor x = toy.signal + d.unsqueeze(1) * a_d.unsqueeze(0) + noise;
  toy.signal_direction = a_s;
  toy.distractor_direction = a_d;
  toy.data = make_tensor_dataset("linear-toy", x, labels, {}, 2);
  return toy;
}

ClutteredCanvas make_cluttered_canvas(const Dataset& objects, int64_t examples,
                                      const ClutterOptions& o) {
  const auto shape = objects.sample_shape();
  MIPIN_CHECK(shape.size() == 3, "the cluttered canvas needs image data [C, H, W], found ",
              shape.size(), " dimensions");
  const int64_t c = shape[0], h = shape[1], w = shape[2];
  MIPIN_CHECK(o.canvas >= h && o.canvas >= w, "the canvas (", o.canvas, ") must hold a ", h, "x",
              w, " object");
  MIPIN_CHECK(o.patch >= 1 && o.patch <= std::min(h, w), "distractor patches must be 1 to ",
              std::min(h, w), " pixels, found ", o.patch);
  MIPIN_CHECK(examples > 0 && objects.size() > 1, "need examples and at least two source images");
  std::mt19937_64 rng(o.seed);
  auto uniform = [&rng](int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  ClutteredCanvas out;
  out.images = torch::zeros({examples, c, o.canvas, o.canvas});
  out.labels = torch::empty({examples}, torch::kLong);
  out.boxes = torch::empty({examples, 4}, torch::kLong);
  for (int64_t i = 0; i < examples; ++i) {
    const Batch object = objects.get(i % objects.size(), i % objects.size() + 1);
    const int64_t top = uniform(0, o.canvas - h), left = uniform(0, o.canvas - w);
    at::Tensor canvas = out.images[i];
    for (int64_t d = 0, tries = 0; d < o.distractors && tries < 100 * o.distractors; ++tries) {
      const int64_t y = uniform(0, o.canvas - o.patch), x = uniform(0, o.canvas - o.patch);
      const bool overlaps = y < top + h && y + o.patch > top && x < left + w && x + o.patch > left;
      if (overlaps) continue;
      int64_t source = uniform(0, objects.size() - 1);
      if (source == i % objects.size()) source = (source + 1) % objects.size();
      const at::Tensor image = objects.get(source, source + 1).inputs[0];
      // A patch from the source image's centre region, where its object is.
      const int64_t sy = uniform((h - o.patch) / 4, (h - o.patch) * 3 / 4);
      const int64_t sx = uniform((w - o.patch) / 4, (w - o.patch) * 3 / 4);
      canvas.slice(1, y, y + o.patch).slice(2, x, x + o.patch)
          .copy_(image.slice(1, sy, sy + o.patch).slice(2, sx, sx + o.patch));
      ++d;
    }
    canvas.slice(1, top, top + h).slice(2, left, left + w).copy_(object.inputs[0]);
    out.labels[i] = object.labels[0];
    out.boxes[i] = torch::tensor({top, left, top + h, left + w}, torch::kLong);
  }
  return out;
}

at::Tensor motif_shape(int64_t k, int64_t motif_length) {
  MIPIN_CHECK(motif_length >= 4, "a motif needs at least 4 samples, found ", motif_length);
  const at::Tensor t = (torch::arange(motif_length, torch::kDouble) + 0.5) / double(motif_length);
  const at::Tensor window = 0.5 - 0.5 * torch::cos(2 * M_PI * t);
  return (window * torch::sin(2 * M_PI * double(k + 1) * t)).to(torch::kFloat);
}

MotifSeries make_motif_series(int64_t examples, const MotifOptions& o) {
  MIPIN_CHECK(examples > 0, "the motif data set needs at least one example, found ", examples);
  MIPIN_CHECK(o.classes >= 2 && o.classes <= 8, "the motif data set has 2 to 8 classes, found ", o.classes);
  MIPIN_CHECK(o.motif_length >= 2 * (o.classes + 1),
              "a motif of ", o.classes, " cycles needs at least ", 2 * (o.classes + 1),
              " samples, found --motif-length ", o.motif_length);
  MIPIN_CHECK(o.length >= o.motif_length, "a series (", o.length, " samples) must hold a motif of ",
              o.motif_length, " samples");
  MIPIN_CHECK(o.noise >= 0 && std::isfinite(o.noise) && std::isfinite(o.amplitude),
              "noise must be finite and >= 0 and the amplitude finite, found noise ", o.noise,
              " and amplitude ", o.amplitude);
  std::mt19937_64 rng(o.seed);
  auto noise = at::detail::createCPUGenerator(o.seed * 7919 + 17);
  MotifSeries out;
  out.motifs = torch::zeros({examples, 1, o.length});
  out.labels = torch::empty({examples}, torch::kLong);
  out.spans = torch::empty({examples, 2}, torch::kLong);
  std::vector<at::Tensor> shapes;
  for (int64_t k = 0; k < o.classes; ++k) shapes.push_back(motif_shape(k, o.motif_length) * o.amplitude);
  std::uniform_int_distribution<int64_t> label(0, o.classes - 1), start(0, o.length - o.motif_length);
  for (int64_t i = 0; i < examples; ++i) {
    const int64_t k = label(rng), s = start(rng);
    out.motifs[i][0].slice(0, s, s + o.motif_length).copy_(shapes[size_t(k)]);
    out.labels[i] = k;
    out.spans[i][0] = s;
    out.spans[i][1] = s + o.motif_length;
  }
  out.series = out.motifs + torch::randn({examples, 1, o.length}, noise) * o.noise;
  return out;
}

}  // namespace mipin
