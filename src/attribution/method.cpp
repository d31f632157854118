#include "mipin/attribution/method.h"

#include <torch/torch.h>

#include "mipin/util/error.h"

namespace mipin {

at::Tensor resolve_targets(const at::Tensor& logits, std::optional<int64_t> target_class) {
  const int64_t classes = logits.size(1);
  if (!target_class) return logits.argmax(1);
  MIPIN_CHECK(*target_class >= 0 && *target_class < classes, "target class ", *target_class,
              " is out of range: the model has ", classes, " classes (0 to ", classes - 1, ")");
  return torch::full({logits.size(0)}, *target_class, torch::kLong);
}

at::Tensor one_hot_top(const at::Tensor& targets, int64_t num_classes, const at::Tensor& values) {
  MIPIN_CHECK(targets.dim() == 1, "expected one target per example, found shape ",
              shape_string(targets.sizes().vec()));
  MIPIN_CHECK(targets.numel() == 0 ||
                  (targets.min().item<int64_t>() >= 0 && targets.max().item<int64_t>() < num_classes),
              "a target class is out of range: the model has ", num_classes, " classes (0 to ",
              num_classes - 1, ")");
  at::Tensor top = torch::zeros({targets.size(0), num_classes}, values.options());
  top.scatter_(1, targets.unsqueeze(1), values.reshape({-1, 1}));
  return top;
}

}  // namespace mipin
