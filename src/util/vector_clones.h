#pragma once
// Hot loops compiled twice, for x86-64-v3 (AVX2 and FMA) and for the
// baseline, the copy chosen at load time by the CPU: the baseline (SSE2)
// alone leaves most of a current core's vector width unused, and a build for
// one CPU would not run on another. Apply to free functions holding a loop.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MIPIN_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MIPIN_VECTOR_CLONES
#endif
