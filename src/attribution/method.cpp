#include "mipin/attribution/method.h"

#include <ATen/Dispatch.h>
#include <torch/torch.h>

#include "mipin/util/error.h"

namespace mipin {

at::Tensor resolve_targets(const at::Tensor& logits, std::optional<int64_t> target_class) {
  const int64_t classes = logits.size(1);
  if (!target_class) return logits.argmax(1);
  MIPIN_CHECK_AS(out_of_range, *target_class >= 0 && *target_class < classes, "target class ", *target_class,
              " is out of range: the model has ", classes, " classes (0 to ", classes - 1, ")");
  return torch::full({logits.size(0)}, *target_class, torch::kLong);
}

at::Tensor one_hot_top(const at::Tensor& targets, int64_t num_classes, const at::Tensor& values) {
  MIPIN_CHECK(targets.dim() == 1, "expected one target per example, found shape ",
              shape_string(targets.sizes().vec()));
  MIPIN_CHECK(values.numel() == targets.numel(), "expected one top value per target, found ",
              values.numel(), " values for ", targets.numel(), " targets");
  // A loop over the targets: at one example the reductions and scatter of
  // the tensor formulation cost as much as a small layer.
  const at::Tensor t = targets.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor v = values.to(at::kCPU).contiguous();
  const int64_t* pt = t.data_ptr<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    MIPIN_CHECK_AS(out_of_range, pt[i] >= 0 && pt[i] < num_classes, "a target class is out of range: the model has ",
                num_classes, " classes (0 to ", num_classes - 1, "), found ", pt[i]);
  }
  at::Tensor top = torch::zeros({targets.size(0), num_classes}, v.options());
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "one_hot_top", [&] {
    const scalar_t* pv = v.data_ptr<scalar_t>();
    scalar_t* out = top.data_ptr<scalar_t>();
    for (int64_t i = 0; i < t.numel(); ++i) out[i * num_classes + pt[i]] = pv[i];
  });
  return top.to(values.device());
}

}  // namespace mipin
