#pragma once
// Synthetic data with known ground truth.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>

#include "mipin/data/dataset.h"

namespace mipin {

// The linear signal/distractor toy that motivates PatternNet (Kindermans et
// al. 2018): x = a_s s + a_d d + noise, s = +-1 decides the label (s > 0 is
// class 1), the distractor d ~ N(0, 1) is independent of it. A linear model
// must cancel a_d, so its weights (the gradient) point away from a_s, while
// the part of x the output carries is exactly a_s s.
struct LinearToyOptions {
  int64_t dimension = 16;
  double signal_distractor_cosine = 0.7;  // angle between a_s and a_d
  double distractor_scale = 1.0;
  double noise = 0.05;
  uint64_t seed = 0;         // fixes the directions a_s and a_d
  uint64_t sample_seed = 1;  // fixes the examples: use another for a test split
};

struct LinearToy {
  std::unique_ptr<Dataset> data;  // inputs [N, dimension], labels 0/1
  at::Tensor signal;              // a_s s per example, [N, dimension]
  at::Tensor signal_direction;    // a_s (unit)
  at::Tensor distractor_direction;  // a_d (unit)
};

LinearToy make_linear_toy(int64_t examples, const LinearToyOptions& options = {});

// The cluttered canvas (docs/design.md section 3, item 6): each example is one object image
// placed at a random position on a larger blank canvas, with distractor
// patches cut from other images around it; the label is the object's and its
// box is known, so localization can be scored.
struct ClutterOptions {
  int64_t canvas = 56;       // side of the square canvas
  int64_t distractors = 4;   // patches per canvas
  int64_t patch = 10;        // side of a distractor patch
  uint64_t seed = 0;
};

struct ClutteredCanvas {
  at::Tensor images;  // float [N, C, canvas, canvas], the sources' value range
  at::Tensor labels;  // int64 [N]
  at::Tensor boxes;   // int64 [N, 4]: top, left, bottom, right (exclusive)
};

// Objects are taken in order from `objects` (wrapping around); distractors
// come from randomly chosen other examples, never overlapping the box.
ClutteredCanvas make_cluttered_canvas(const Dataset& objects, int64_t examples,
                                      const ClutterOptions& options = {});

// Planted motifs: synthetic time series with ground truth. Each series is
// white Gaussian noise with one class-specific motif added at a random
// position, so the motif's span is what a faithful map should point at.
// Class k's motif is a Hann-windowed sine of k + 1 cycles over the motif's
// length: every class has the same envelope and a mean of zero, so neither
// the series' level nor its extent tells the classes apart, only the motif's
// oscillation. The defaults leave a matched filter that knows the motifs
// 0.9965 test accuracy (measured on the 2,000 test series of seed 1).
struct MotifOptions {
  int64_t length = 128;        // samples per series
  int64_t motif_length = 24;   // samples per motif
  int64_t classes = 4;         // 2 to 8
  double amplitude = 3.0;      // peak of the motif's window
  double noise = 1.0;          // standard deviation of the noise
  uint64_t seed = 0;
};

struct MotifSeries {
  at::Tensor series;  // float [N, 1, length]: one channel over time
  at::Tensor motifs;  // the planted part alone, float [N, 1, length]
  at::Tensor labels;  // int64 [N]
  at::Tensor spans;   // int64 [N, 2]: first sample, one past the last
};

// Class k's motif, float [motif_length] (amplitude 1).
at::Tensor motif_shape(int64_t k, int64_t motif_length);
MotifSeries make_motif_series(int64_t examples, const MotifOptions& options = {});

}  // namespace mipin
