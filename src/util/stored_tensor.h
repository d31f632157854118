#pragma once
// Tensors read from files. LibTorch's readers take a tensor's sizes and
// strides from the file without holding them against the bytes stored for
// it, so a crafted file can describe a view that reaches past its storage
// (an out-of-bounds read at first use) or one far larger than it (stride 0:
// the first copy allocates whatever the file declares).
#include <ATen/core/Tensor.h>

#include <string>

namespace mipin {

// Throws mipin::Error, naming `what`, unless `t` is a dense CPU tensor whose
// elements lie inside its storage and number no more than it holds.
void check_stored_tensor(const at::Tensor& t, const std::string& what);

}  // namespace mipin
