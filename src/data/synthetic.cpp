#include "mipin/data/synthetic.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

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

}  // namespace mipin
