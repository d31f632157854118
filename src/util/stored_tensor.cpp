#include "util/stored_tensor.h"

#include <ATen/ATen.h>

#include <cstdint>

#include "mipin/util/error.h"

namespace mipin {

void check_stored_tensor(const at::Tensor& t, const std::string& what) {
  MIPIN_CHECK(t.defined(), what, ": expected a tensor, found none");
  MIPIN_CHECK(t.layout() == at::kStrided && t.device().is_cpu() && !t.is_quantized() && t.has_storage(), what,
              ": expected a dense CPU tensor, found layout ", t.layout(), " on ", t.device());
  const int64_t offset = t.storage_offset();
  MIPIN_CHECK(offset >= 0, what, ": a negative storage offset (", offset, ")");
  for (int64_t d = 0; d < t.dim(); ++d) {
    MIPIN_CHECK(t.sizes()[d] >= 0 && t.strides()[d] >= 0, what, ": negative sizes or strides (sizes ", t.sizes(),
                ", strides ", t.strides(), ")");
    if (t.sizes()[d] == 0) return;  // no elements, nothing to read
  }
  // In elements; every partial result is bounded by the storage before the
  // next step, so nothing overflows 128 bits.
  using Wide = unsigned __int128;
  const auto item = static_cast<Wide>(t.element_size());
  const Wide stored = static_cast<Wide>(t.storage().nbytes()) / item;
  Wide count = 1;
  Wide last = static_cast<Wide>(offset);
  // Checked before the first dimension too: a scalar is one element at its offset.
  for (int64_t d = 0;; ++d) {
    MIPIN_CHECK(count <= stored && last < stored, what, ": the file declares sizes ", t.sizes(), " and strides ",
                t.strides(), " at offset ", offset, " over ", static_cast<uint64_t>(stored),
                " stored elements; the file is corrupt");
    if (d == t.dim()) break;
    const auto size = static_cast<Wide>(t.sizes()[d]);
    count *= size;
    last += (size - 1) * static_cast<Wide>(t.strides()[d]);
  }
}

}  // namespace mipin
