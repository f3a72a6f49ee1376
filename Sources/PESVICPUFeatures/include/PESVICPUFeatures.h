#ifndef PESVI_CPU_FEATURES_H
#define PESVI_CPU_FEATURES_H
/// 1 if this CPU and OS run AVX-512 code of the x86-64-v4 level (AVX512F, BW, CD, DQ and VL;
/// the OS saves the zmm state), else 0. Always 0 off x86-64. Uses the compiler's
/// `__builtin_cpu_supports`, which also checks XCR0 (OS support).
int pesvi_cpu_has_avx512(void);
/// 1 if the CPU runs AVX2 and FMA (x86-64-v3), else 0. Always 0 off x86-64.
int pesvi_cpu_has_avx2_fma(void);
#endif
