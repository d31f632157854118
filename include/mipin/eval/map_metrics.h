#pragma once
// Metrics on attribution maps (docs/design.md section 3, items 4-7): similarity of
// two maps, deletion/insertion curves, localization in a known box, and
// recovery of a known signal. Every function works per example on a batch.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "mipin/model/network.h"

namespace mipin {

// Spearman rank correlation per example between two maps of the same shape
// (ties get their average rank). Returns [N].
at::Tensor spearman(const at::Tensor& a, const at::Tensor& b);

// Structural similarity per example of the channel-summed maps, each scaled
// to [0, 1] by its own range, 7x7 uniform windows, the usual constants
// (0.01, 0.03). Returns [N].
at::Tensor ssim(const at::Tensor& a, const at::Tensor& b);

// Deletion and insertion (Petsiuk et al. 2018): pixels ordered by the
// channel-summed attribution, most relevant first, are replaced by `fill`
// (deletion) or copied into `fill` (insertion) in `steps` equal steps; the
// curves hold the mean target-class softmax probability after each step
// (steps + 1 points, the first before any change) and the areas their
// trapezoid integral over [0, 1].
struct PerturbationCurves {
  at::Tensor deletion;   // [steps + 1]
  at::Tensor insertion;  // [steps + 1]
  double deletion_area = 0;
  double insertion_area = 0;
};
PerturbationCurves perturbation_curves(const Network& network, const at::Tensor& x,
                                       const at::Tensor& targets, const at::Tensor& attribution,
                                       const at::Tensor& fill, int64_t steps = 20);

// Each channel of x [N, C, H, W] blurred by a Gaussian of `sigma` over
// `kernel` pixels (odd), edges replicated: deletion's blur fill, with
// Petsiuk et al.'s 11 and 5.
at::Tensor gaussian_blur(const at::Tensor& x, int64_t kernel = 11, double sigma = 5.0);

// Pointing game: a hit when the channel-summed attribution's maximum lies in
// the example's box; also the share of positive attribution mass inside it.
// boxes: int64 [N, 4] as (top, left, bottom, right), bottom/right exclusive.
struct Localization {
  at::Tensor hits;         // [N] 0/1
  at::Tensor mass_in_box;  // [N]
};
Localization localization(const at::Tensor& attribution, const at::Tensor& boxes);

// Mean cosine similarity between attributions and a known signal.
double mean_cosine(const at::Tensor& attribution, const at::Tensor& signal);

}  // namespace mipin
