#pragma once
// The rule library, in Zennit's manner: each rule for an affine layer
// (Linear, Conv2d) is one modified gradient,
//   R_in = sum_k a_k * W_k^T (R / (z + stabilizer sign z)),  z = sum_k a_k W_k,
// with its own input terms a_k (x, its positive or negative part, ones, a
// bound) and weight terms W_k (W, its parts, ones, W^2); a method's
// composite (attribution/rule.h) says which layer takes which.
#include <memory>
#include <string>

#include "mipin/attribution/rule.h"

namespace mipin::rules {

// Relevance unchanged (an activation under LRP).
std::shared_ptr<const Rule> pass();
// The layer's own vector-Jacobian product.
std::shared_ptr<const Rule> gradient();

// LRP-epsilon: z is the layer's output, bias included.
std::shared_ptr<const Rule> epsilon(double epsilon);

// Where the alpha-beta rules put a layer's bias, a choice the LRP papers
// leave open and libraries make differently:
//   ignore  out of both denominators: the inputs share all the relevance
//           (conserved layer by layer); mipin's default
//   absorb  its positive part joins the positive contributions'
//           denominator and its negative part the negative ones', so the
//           bias keeps its share and less reaches the inputs (Zennit 0.5.1's
//           ZPlus and AlphaBeta)
// The epsilon rule divides by the layer's output, bias included, in both.
enum class BiasRule { ignore, absorb };

// LRP-alpha-beta (alpha - beta = 1): positive and negative contributions
// normalised separately; alpha=1, beta=0 is LRP-z+.
std::shared_ptr<const Rule> alpha_beta(double alpha, double beta, BiasRule bias = BiasRule::ignore,
                                       double stabilizer = 1e-9);
inline std::shared_ptr<const Rule> zplus(BiasRule bias = BiasRule::ignore, double stabilizer = 1e-9) {
  return alpha_beta(1, 0, bias, stabilizer);
}
// z-box (Montavon et al. 2017) for a first layer whose inputs lie in [low, high].
std::shared_ptr<const Rule> zbox(double low, double high);
// Flat (Lapuschkin et al. 2019): inputs and weights all ones, relevance
// spread evenly over each output's receptive field.
std::shared_ptr<const Rule> flat(double stabilizer = 1e-6);
// w^2 (Montavon et al. 2017): inputs ones, weights squared.
std::shared_ptr<const Rule> w_square(double stabilizer = 1e-6);
// Generalised gamma (Montavon et al. 2019; Zennit 0.5.1's Gamma): where the
// output is positive, the contributions x+ (W + gamma W+) + x- (W + gamma
// W-) share it, where negative x+ (W + gamma W-) + x- (W + gamma W+);
// gamma = 0 is LRP-0, large gamma tends to z+.
std::shared_ptr<const Rule> gamma(double gamma, double stabilizer = 1e-6);

}  // namespace mipin::rules
