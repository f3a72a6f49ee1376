#ifndef PESVI_CPU_FEATURES_H
#define PESVI_CPU_FEATURES_H
/// 1 if this CPU and OS run AVX-512 code of the x86-64-v4 level (AVX512F, BW, CD, DQ and VL;
/// the OS saves the zmm state), else 0. Always 0 off x86-64. Uses the compiler's
/// `__builtin_cpu_supports`, which also checks XCR0 (OS support).
int pesvi_cpu_has_avx512(void);
/// 1 if the CPU runs AVX2 and FMA (x86-64-v3), else 0. Always 0 off x86-64.
int pesvi_cpu_has_avx2_fma(void);

/// Asks the CPU to bring the cache lines of [p, p + bytes) into cache ahead of use (a hint:
/// no fault on any address, no effect on results). `for_write` = 1 when the lines will be
/// written. For gathers of rows at random addresses, which the hardware prefetcher cannot
/// predict: issuing the next rows' lines while copying this one overlaps their misses.
static inline void pesvi_prefetch(const void *p, long bytes, int for_write) {
    const char *c = (const char *)p;
    if (for_write) {
        for (long o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 1, 3);
    } else {
        for (long o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 3);
    }
}
#endif
