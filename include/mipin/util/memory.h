#pragma once
// Process-wide memory allocator settings.

namespace mipin {

// Makes glibc's malloc keep freed memory for reuse instead of handing every
// large block back to the kernel. By default each tensor above a threshold is
// mmapped and unmapped, so every large activation of every pass is
// page-faulted in afresh; on a backward pass over a CNN that cost as much as
// the arithmetic. The `mipin` tool and the benchmark call this at start-up;
// a program linking the library may call it too (it affects the whole
// process; the resident set then stays at its peak instead of shrinking).
void reuse_freed_memory();

}  // namespace mipin
