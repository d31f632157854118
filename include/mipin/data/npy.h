#pragma once
// NumPy .npy arrays (format 1.0-3.0, C order, little-endian).
#include <ATen/core/Tensor.h>

#include <string>

namespace mipin {

// Reads float32, float64, uint8, int32 or int64 arrays. Throws mipin::Error
// naming the file when it is missing, truncated, Fortran-ordered or of an
// unsupported dtype.
at::Tensor read_npy(const std::string& path);

// Writes a contiguous copy of the tensor (float32, float64, uint8, int32,
// int64) atomically.
void write_npy(const std::string& path, const at::Tensor& tensor);

}  // namespace mipin
