// How a 4-d activation lies in memory. Convolutions write channels-last;
// element-wise loops, pooling transposes and the next convolution take
// whichever layout they are given instead of copying into another.
#pragma once

#include <ATen/core/Tensor.h>

namespace mipin {

inline at::MemoryFormat layout_of(const at::Tensor& t) {
  return t.dim() == 4 && t.suggest_memory_format() == at::MemoryFormat::ChannelsLast ? at::MemoryFormat::ChannelsLast
                                                                                     : at::MemoryFormat::Contiguous;
}

inline bool is_channels_last(const at::Tensor& t) { return layout_of(t) == at::MemoryFormat::ChannelsLast; }

}  // namespace mipin
