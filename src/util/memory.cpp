#include "mipin/util/memory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mipin {

void reuse_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);                 // large blocks come from the heap, so they can be reused
  mallopt(M_TRIM_THRESHOLD, 1 << 30);     // and the heap's top is not returned after each pass
  mallopt(M_TOP_PAD, 64 << 20);           // grow the heap in large steps
#endif
}

}  // namespace mipin
