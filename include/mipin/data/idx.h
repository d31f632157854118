#pragma once
// IDX files (the MNIST family), gzip-compressed or not.
#include <ATen/core/Tensor.h>

#include <string>

namespace mipin {

// Reads an IDX file into a tensor of its element type and dimensions
// (uint8 images come back as uint8 [N, H, W]). Throws mipin::Error naming the
// file when it is missing, truncated or not IDX.
at::Tensor read_idx(const std::string& path);

// Writes a uint8 tensor as an uncompressed IDX file (used by tests and tools).
void write_idx(const std::string& path, const at::Tensor& tensor);

}  // namespace mipin
