/* Column-tail masks shared by the packed kernels (internal to RNNKernels). */
#ifndef RNN_LANE_MASKS_H
#define RNN_LANE_MASKS_H
#if defined(__x86_64__)
#include <immintrin.h>

/* Lanes 0..valid-1 of an 8-lane AVX2 mask set (all bits), the rest clear. */
__attribute__((target("avx2")))
static inline __m256i rnn_lane_mask8(int valid) {
    if (valid <= 0) return _mm256_setzero_si256();
    if (valid >= 8) return _mm256_set1_epi32(-1);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Lanes 0..valid-1 of a 16-lane AVX-512 mask. */
static inline __mmask16 rnn_lane_mask16(int valid) {
    if (valid <= 0) return 0;
    if (valid >= 16) return 0xFFFF;
    return (__mmask16)((1u << valid) - 1u);
}
#endif
#endif
