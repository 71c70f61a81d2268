#include "RNNKernels.h"
#include "lane_masks.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static int padded_columns(int n) { return (n + 31) / 32 * 32; }

size_t rnn_packed_size(int k, int n) { return (size_t)k * (size_t)padded_columns(n); }

void rnn_pack_b(const float *src, int ld, int k, int n, int transposed, float *packed) {
    int panels = padded_columns(n) / 16;
    for (int p = 0; p < panels; p++) {
        float *dst = packed + (size_t)p * k * 16;
        for (int kk = 0; kk < k; kk++) {
            for (int j = 0; j < 16; j++) {
                int col = p * 16 + j;
                float v = 0;
                if (col < n) v = transposed ? src[(size_t)col * ld + kk] : src[(size_t)kk * ld + col];
                dst[kk * 16 + j] = v;
            }
        }
    }
}

#if defined(__x86_64__)
/* One block of MR rows x 32 columns (two panels): 2 * MR accumulators. */
#define DEFINE_BLOCK(MR)                                                                              \
__attribute__((target("avx512f")))                                                                   \
static void block_##MR(int k, const float *a, int lda, const float *b0, const float *b1, float *c,   \
                       int ldc, __mmask16 m0, __mmask16 m1) {                                        \
    __m512 acc0[MR], acc1[MR];                                                                       \
    for (int r = 0; r < MR; r++) {                                                                   \
        acc0[r] = _mm512_maskz_loadu_ps(m0, c + (size_t)r * ldc);                                   \
        acc1[r] = _mm512_maskz_loadu_ps(m1, c + (size_t)r * ldc + 16);                              \
    }                                                                                                \
    for (int kk = 0; kk < k; kk++) {                                                                 \
        __m512 x0 = _mm512_loadu_ps(b0 + (size_t)kk * 16);                                            \
        __m512 x1 = _mm512_loadu_ps(b1 + (size_t)kk * 16);                                            \
        for (int r = 0; r < MR; r++) {                                                               \
            __m512 av = _mm512_set1_ps(a[(size_t)r * lda + kk]);                                     \
            acc0[r] = _mm512_fmadd_ps(av, x0, acc0[r]);                                              \
            acc1[r] = _mm512_fmadd_ps(av, x1, acc1[r]);                                              \
        }                                                                                            \
    }                                                                                                \
    for (int r = 0; r < MR; r++) {                                                                   \
        _mm512_mask_storeu_ps(c + (size_t)r * ldc, m0, acc0[r]);                                    \
        _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16, m1, acc1[r]);                               \
    }                                                                                                \
}
DEFINE_BLOCK(8)
DEFINE_BLOCK(4)
DEFINE_BLOCK(2)
DEFINE_BLOCK(1)

__attribute__((target("avx512f")))
static void gemm_packed_avx512(int m, int n, int k, const float *a, int lda, const float *packed, float *c, int ldc) {
    int panels = padded_columns(n) / 16;
    for (int p = 0; p < panels; p += 2) {
        const float *b0 = packed + (size_t)p * k * 16, *b1 = b0 + (size_t)k * 16;
        int col = p * 16;
        __mmask16 m0 = rnn_lane_mask16(n - col), m1 = rnn_lane_mask16(n - col - 16);
        float *cp = c + col;
        int r = 0;
        for (; r + 8 <= m; r += 8) block_8(k, a + (size_t)r * lda, lda, b0, b1, cp + (size_t)r * ldc, ldc, m0, m1);
        if (r + 4 <= m) { block_4(k, a + (size_t)r * lda, lda, b0, b1, cp + (size_t)r * ldc, ldc, m0, m1); r += 4; }
        if (r + 2 <= m) { block_2(k, a + (size_t)r * lda, lda, b0, b1, cp + (size_t)r * ldc, ldc, m0, m1); r += 2; }
        if (r < m) block_1(k, a + (size_t)r * lda, lda, b0, b1, cp + (size_t)r * ldc, ldc, m0, m1);
    }
}

/* AVX2 + FMA: one block of MR rows x 16 columns (one panel, two 8-wide halves): 2 * MR
   accumulators; MR = 6 leaves room for the two B vectors and the broadcast in 16 registers. */
#define DEFINE_BLOCK_AVX2(MR)                                                                         \
__attribute__((target("avx2,fma")))                                                                  \
static void block2_##MR(int k, const float *a, int lda, const float *b, float *c, int ldc,           \
                        __m256i m0, __m256i m1) {                                                    \
    __m256 acc0[MR], acc1[MR];                                                                       \
    for (int r = 0; r < MR; r++) {                                                                   \
        acc0[r] = _mm256_maskload_ps(c + (size_t)r * ldc, m0);                                       \
        acc1[r] = _mm256_maskload_ps(c + (size_t)r * ldc + 8, m1);                                   \
    }                                                                                                \
    for (int kk = 0; kk < k; kk++) {                                                                 \
        __m256 x0 = _mm256_loadu_ps(b + (size_t)kk * 16);                                             \
        __m256 x1 = _mm256_loadu_ps(b + (size_t)kk * 16 + 8);                                         \
        for (int r = 0; r < MR; r++) {                                                               \
            __m256 av = _mm256_broadcast_ss(a + (size_t)r * lda + kk);                               \
            acc0[r] = _mm256_fmadd_ps(av, x0, acc0[r]);                                              \
            acc1[r] = _mm256_fmadd_ps(av, x1, acc1[r]);                                              \
        }                                                                                            \
    }                                                                                                \
    for (int r = 0; r < MR; r++) {                                                                   \
        _mm256_maskstore_ps(c + (size_t)r * ldc, m0, acc0[r]);                                       \
        _mm256_maskstore_ps(c + (size_t)r * ldc + 8, m1, acc1[r]);                                   \
    }                                                                                                \
}
DEFINE_BLOCK_AVX2(6)
DEFINE_BLOCK_AVX2(4)
DEFINE_BLOCK_AVX2(2)
DEFINE_BLOCK_AVX2(1)

__attribute__((target("avx2,fma")))
static void gemm_packed_avx2(int m, int n, int k, const float *a, int lda, const float *packed, float *c, int ldc) {
    int panels = (n + 15) / 16;   /* panels past n (zero padding) need no work */
    for (int p = 0; p < panels; p++) {
        const float *b = packed + (size_t)p * k * 16;
        int col = p * 16;
        __m256i m0 = rnn_lane_mask8(n - col), m1 = rnn_lane_mask8(n - col - 8);
        float *cp = c + col;
        int r = 0;
        for (; r + 6 <= m; r += 6) block2_6(k, a + (size_t)r * lda, lda, b, cp + (size_t)r * ldc, ldc, m0, m1);
        if (r + 4 <= m) { block2_4(k, a + (size_t)r * lda, lda, b, cp + (size_t)r * ldc, ldc, m0, m1); r += 4; }
        if (r + 2 <= m) { block2_2(k, a + (size_t)r * lda, lda, b, cp + (size_t)r * ldc, ldc, m0, m1); r += 2; }
        if (r < m) block2_1(k, a + (size_t)r * lda, lda, b, cp + (size_t)r * ldc, ldc, m0, m1);
    }
}
#endif

void rnn_gemm_packed(int isa, int m, int n, int k, const float *a, int lda, const float *packed, float *c, int ldc) {
#if defined(__x86_64__)
    if (isa >= RNN_ISA_AVX512) gemm_packed_avx512(m, n, k, a, lda, packed, c, ldc);
    else if (isa == RNN_ISA_AVX2) gemm_packed_avx2(m, n, k, a, lda, packed, c, ldc);
#else
    (void)isa; (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)c; (void)ldc;
#endif
}
