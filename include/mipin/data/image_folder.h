#pragma once
// Images on disk: PNG and JPEG files, one subfolder per class.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "mipin/data/dataset.h"

namespace mipin {

// Decodes one PNG/JPEG file into float32 [C, H, W] with values in [0, 255];
// channels 1 (grey) or 3 (RGB), or the file's own when not given; resized
// bilinearly when size is given. Throws mipin::Error naming the file.
at::Tensor read_image(const std::string& path, std::optional<int64_t> channels = std::nullopt,
                      std::optional<std::pair<int64_t, int64_t>> size = std::nullopt);

// uint8 [H, W] or [C, H, W] (C = 1, 3 or 4) as the bytes of a PNG file.
std::string encode_png(const at::Tensor& image);

// Writes uint8 [H, W] or [C, H, W] (C = 1, 3 or 4) as PNG, atomically.
void write_png(const std::string& path, const at::Tensor& image);

// DIR/<split>/<class>/<file>.png|jpg|jpeg; classes are the sorted subfolder
// names of DIR/train (falling back to the split's own when there is no train).
std::unique_ptr<Dataset> open_image_folder(const DataSpec& spec, Split split);

}  // namespace mipin
