#pragma once
// ROAD (Rong et al., ICML 2022, "A Consistent and Efficient Evaluation
// Strategy for Attribution Methods"): pixels are removed in the order a map
// gives and filled from their neighbours by noisy linear imputation, so that
// the image the model sees stays close to the images it was trained on (a
// constant fill, such as the data set's mean, makes a black background grey
// and rewards maps for the wrong reason).
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "mipin/model/network.h"

namespace mipin {

// Noisy linear imputation of x [N, C, H, W] where `removed` ([N, H, W] or
// [N, 1, H, W], bool) is true: in every channel each removed pixel is the
// weighted mean of its neighbours inside the image (weight 1/6 for the four
// next to it, 1/12 for the four diagonal ones), removed neighbours taking
// their imputed values: a sparse linear system, solved by conjugate
// gradients. A region of removed pixels with no kept pixel around it has no
// unique solution; it keeps the mean of `fallback` (broadcast to x, the data
// set's mean input) over the region, smoothly varying as fallback does.
// Imputed pixels then get Gaussian noise of standard deviation `noise` from
// `seed`; kept pixels are unchanged.
at::Tensor noisy_linear_imputation(const at::Tensor& x, const at::Tensor& removed, const at::Tensor& fallback,
                                   double noise = 0.01, uint64_t seed = 0);

// ROAD curves: the mean target-class softmax probability as the most
// relevant pixels (channel-summed attribution, MoRF) or the least relevant
// ones (LeRF) are removed and imputed, in `steps` equal steps (steps + 1
// points, the first before any change), and the trapezoid areas over [0, 1].
// A faithful map makes MoRF fall early (low area) and LeRF stay high.
struct RoadCurves {
  at::Tensor most_relevant_first;   // [steps + 1]
  at::Tensor least_relevant_first;  // [steps + 1]
  double most_relevant_first_area = 0;
  double least_relevant_first_area = 0;
};
RoadCurves road_curves(const Network& network, const at::Tensor& x, const at::Tensor& targets,
                       const at::Tensor& attribution, const at::Tensor& fallback, int64_t steps = 20,
                       double noise = 0.01, uint64_t seed = 0);

}  // namespace mipin
