#include "mipin/report/gallery.h"

#include <torch/torch.h>

#include <algorithm>

#include "mipin/data/image_folder.h"
#include "mipin/report/images.h"

namespace mipin {

ReportGallery make_gallery(const Network& network, const Dataset& data, const std::vector<std::string>& methods,
                           const MethodSettings& settings, int64_t count) {
  ReportGallery gallery;
  const int64_t k = std::min(count, data.size());
  if (k <= 0) return gallery;
  torch::NoGradGuard no_grad;
  const Batch batch = data.get(0, k);
  const at::Tensor predicted = network.forward(batch.inputs).argmax(1);
  const auto& names = data.class_names();
  auto class_name = [&](int64_t c) {
    return c >= 0 && c < int64_t(names.size()) ? names[size_t(c)] : std::to_string(c);
  };
  const at::Tensor first = batch.inputs[0];
  const int64_t scale = first.dim() == 3 ? display_scale(first.size(1), first.size(2)) : 1;
  for (int64_t i = 0; i < k; ++i) {
    gallery.examples.push_back({"label " + class_name(batch.labels[i].item<int64_t>()) + ", predicted " +
                                    class_name(predicted[i].item<int64_t>()),
                                encode_png(input_picture(batch.inputs[i], scale))});
  }
  for (const std::string& name : methods) {
    const at::Tensor maps = make_method(name, settings, /*ignore_undeclared=*/true)
                                ->attribute(network, batch.inputs, predicted);
    ReportGallery::Row row{name, {}};
    for (int64_t i = 0; i < k; ++i) row.heatmap_pngs.push_back(encode_png(heatmap_picture(maps[i], scale)));
    gallery.rows.push_back(std::move(row));
  }
  return gallery;
}

}  // namespace mipin
