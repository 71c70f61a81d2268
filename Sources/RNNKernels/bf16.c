#include "RNNKernels.h"  /* rnn_gemm_packed, and RNNBF16.h */
#include "RNNCPU.h"
#include "lane_masks.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static int padded_columns(int n) { return (n + 31) / 32 * 32; }
static int pairs_of(int k) { return (k + 1) / 2; }

int rnn_bf16_supported(void) {
    return rnn_isa() >= RNN_ISA_AVX512 && (rnn_cpu_features_at(rnn_isa()) & RNN_CPU_AVX512_BF16) != 0;
}

#if defined(__x86_64__)
/* The probe: twelve independent chains of one instruction (enough to cover its latency on both
   vendors), timed; the best of five runs. Returns multiply-adds per second. */
static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f,avx512bf16"), noinline))
static double dot_rate(long iters) {
    __m512bh x = (__m512bh)_mm512_set1_epi32(0x3F803F80), y = x;
    __asm__ volatile("" : "+v"(x), "+v"(y));
#define INIT(i) __m512 a##i = _mm512_set1_ps((float)(i) * 1e-3f);
    CHAINS(INIT)
    double t = seconds_now();
    for (long it = 0; it < iters; it++) {
#define OP(i) a##i = _mm512_dpbf16_ps(a##i, x, y);
        CHAINS(OP)
#undef OP
    }
    t = seconds_now() - t;
#define SINK(i) __asm__ volatile("" : : "v"(a##i));
    CHAINS(SINK)
    return t > 0 ? (double)iters * 12 * 32 / t : 0;
}

__attribute__((target("avx512f"), noinline))
static double fma_rate(long iters) {
    __m512 x = _mm512_set1_ps(1e-9f), y = _mm512_set1_ps(1.0f);
    __asm__ volatile("" : "+v"(x), "+v"(y));
    CHAINS(INIT)
    double t = seconds_now();
    for (long it = 0; it < iters; it++) {
#define OP(i) a##i = _mm512_fmadd_ps(x, y, a##i);
        CHAINS(OP)
#undef OP
    }
    t = seconds_now() - t;
    CHAINS(SINK)
#undef INIT
#undef SINK
    return t > 0 ? (double)iters * 12 * 16 / t : 0;
}
#undef CHAINS
#endif

static int chosen_kernel = RNN_BF16_DOT;
static double measured_dot, measured_fma;
static pthread_once_t kernel_once = PTHREAD_ONCE_INIT;

static void choose_kernel(void) {
    const char *env = getenv("RNN_BF16_KERNEL");
    int native = rnn_bf16_supported();
    if (env && *env) {
        if (!strcmp(env, "portable")) { chosen_kernel = RNN_BF16_PORTABLE; return; }
        int named = !strcmp(env, "dot") ? RNN_BF16_DOT : !strcmp(env, "widen") ? RNN_BF16_WIDEN : -1;
        if (named < 0) {
            fprintf(stderr, "RNN_BF16_KERNEL: unknown kernel '%s' (use dot, widen or portable)\n", env);
            exit(2);
        }
        if (!native) {
            fprintf(stderr, "RNN_BF16_KERNEL: kernel '%s' needs AVX512_BF16 at the avx512 level, which this process does not have (use portable)\n", env);
            exit(2);
        }
        chosen_kernel = named;
        return;
    }
    if (!native) { chosen_kernel = RNN_BF16_PORTABLE; return; }
#if defined(__x86_64__)
    for (int run = 0; run < 5; run++) {
        double d = dot_rate(20000), f = fma_rate(20000);
        if (d > measured_dot) measured_dot = d;
        if (f > measured_fma) measured_fma = f;
    }
    chosen_kernel = measured_dot >= 1.15 * measured_fma ? RNN_BF16_DOT : RNN_BF16_WIDEN;
#endif
}

int rnn_bf16_kernel(void) {
    pthread_once(&kernel_once, choose_kernel);
    return chosen_kernel;
}

const char *rnn_bf16_kernel_name(int kernel) {
    return kernel == RNN_BF16_PORTABLE ? "portable" : kernel == RNN_BF16_WIDEN ? "widen" : "dot";
}

void rnn_bf16_kernel_rates(double *dot, double *fma) {
    pthread_once(&kernel_once, choose_kernel);
    *dot = measured_dot;
    *fma = measured_fma;
}

/* Round to nearest even without branches (selects), so that the conversion loops below
   vectorise: zero and denormal inputs keep only the sign, NaN stays NaN (quiet), everything else
   (infinities included) rounds. */
__attribute__((always_inline))
static inline uint16_t bf16_bits(uint32_t u) {
    uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    uint32_t r = (u & 0x7F800000u) == 0 ? (u >> 16) & 0x8000u : rounded;
    r = (u & 0x7FFFFFFFu) > 0x7F800000u ? (u >> 16) | 0x0040u : r;
    return (uint16_t)r;
}

__attribute__((always_inline))
static inline uint16_t bf16_of(const float *x) {
    uint32_t u;
    memcpy(&u, x, 4);
    return bf16_bits(u);
}

uint16_t rnn_float_to_bf16(float x) { return bf16_of(&x); }

float rnn_bf16_to_float(uint16_t x) {
    uint32_t u = (uint32_t)x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#if defined(__x86_64__)
/* The vector conversions need AVX512_BF16 with BW and VL (every processor with AVX512_BF16 has them). */
static int has_bf16_bw_vl(void) {
    const unsigned need = RNN_CPU_AVX512_BF16 | RNN_CPU_AVX512BW | RNN_CPU_AVX512VL;
    return (rnn_cpu()->features & need) == need;
}

/* 16 floats (lanes past `mask` read as zero) -> 16 bf16. */
__attribute__((target("avx512f,avx512bf16")))
static inline __m256i cvt16(const float *src, __mmask16 mask) {
    return (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src));
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void to_bf16_avx512(const float *src, int rows, int cols, int lds, uint16_t *dst, int ldd) {
    for (int r = 0; r < rows; r++) {
        const float *s = src + (size_t)r * lds;
        uint16_t *d = dst + (size_t)r * ldd;
        int c = 0;
        for (; c + 16 <= cols; c += 16) _mm256_storeu_si256((__m256i *)(d + c), cvt16(s + c, 0xFFFF));
        if (c < cols) {
            __mmask16 m = rnn_lane_mask16(cols - c);
            _mm256_mask_storeu_epi16(d + c, m, cvt16(s + c, m));
        }
        if (cols & 1) d[cols] = 0;
    }
}

/* Non-transposed packing: two source rows (k, k + 1) of one panel give 16 pairs; the two
   converted halves are interleaved by one permutation. */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void pack_rows_avx512(const float *src, int ld, int k, int n, uint16_t *packed) {
    int panels = padded_columns(n) / 16, pairs = pairs_of(k);
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int p = 0; p < panels; p++) {
        uint16_t *dst = packed + (size_t)p * pairs * 32;
        int col = p * 16;
        __mmask16 m = rnn_lane_mask16(n - col);
        for (int q = 0; q < pairs; q++) {
            const float *r0 = src + (size_t)(2 * q) * ld + col;
            __m512 lo = _mm512_maskz_loadu_ps(m, r0);
            __m512 hi = 2 * q + 1 < k ? _mm512_maskz_loadu_ps(m, r0 + ld) : _mm512_setzero_ps();
            __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);   /* lanes 0-15 from lo, 16-31 from hi */
            _mm512_storeu_si512(dst + (size_t)q * 32, _mm512_permutexvar_epi16(interleave, both));
        }
    }
}

/* Transposed packing: the pair (k, k + 1) of column j is two neighbouring values of row j of
   src, so 16 rows x 32 values converted side by side give a 16 x 16 tile of pairs, which a
   gather per pair of the panel turns around. */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void pack_transposed_avx512(const float *src, int ld, int k, int n, uint16_t *packed) {
    int panels = padded_columns(n) / 16, pairs = pairs_of(k);
    int32_t tile[16 * 16] __attribute__((aligned(64)));
    const __m512i across = _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
    for (int p = 0; p < panels; p++) {
        uint16_t *dst = packed + (size_t)p * pairs * 32;
        for (int q0 = 0; q0 < pairs; q0 += 16) {
            int k0 = 2 * q0;
            __mmask16 m0 = rnn_lane_mask16(k - k0), m1 = rnn_lane_mask16(k - k0 - 16);
            for (int j = 0; j < 16; j++) {
                int col = p * 16 + j;
                __m512i words = _mm512_setzero_si512();
                if (col < n) {
                    const float *row = src + (size_t)col * ld + k0;
                    words = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, row + 16), _mm512_maskz_loadu_ps(m0, row));
                }
                _mm512_store_si512(tile + j * 16, words);
            }
            int nq = pairs - q0 < 16 ? pairs - q0 : 16;
            for (int q = 0; q < nq; q++)
                _mm512_storeu_si512(dst + (size_t)(q0 + q) * 32, _mm512_i32gather_epi32(_mm512_add_epi32(across, _mm512_set1_epi32(q)), tile, 4));
        }
    }
}
#endif

/* The conversions without AVX512_BF16: plain loops (the bodies), compiled for AVX2 as well
   where the processor has it, so that they vectorise. */
__attribute__((always_inline))
static inline void to_bf16_rows_body(const float *src, int rows, int cols, int lds, uint16_t *dst, int ldd) {
    for (int r = 0; r < rows; r++) {
        const float *s = src + (size_t)r * lds;
        uint16_t *d = dst + (size_t)r * ldd;
        for (int c = 0; c < cols; c++) d[c] = bf16_of(s + c);
        if (cols & 1) d[cols] = 0;
    }
}

__attribute__((always_inline))
static inline void to_bf16_transposed_body(const float *src, int rows, int cols, int lds, uint16_t *dst, int ldd) {
    enum { TILE = 32 };
    for (int r0 = 0; r0 < rows; r0 += TILE) {
        int r1 = r0 + TILE < rows ? r0 + TILE : rows;
        for (int c0 = 0; c0 < cols; c0 += TILE) {
            int c1 = c0 + TILE < cols ? c0 + TILE : cols;
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++) dst[(size_t)c * ldd + r] = bf16_of(src + (size_t)r * lds + c);
        }
    }
    if (rows & 1)
        for (int c = 0; c < cols; c++) dst[(size_t)c * ldd + rows] = 0;
}

/* rnn_pack_b_bf16's layout, reading the source in its own order: a row of B (a row of src, or
   a column of src when transposed) at a time. */
__attribute__((always_inline))
static inline void pack_b_bf16_body(const float *src, int ld, int k, int n, int transposed, uint16_t *packed) {
    const int panels = padded_columns(n) / 16, pairs = pairs_of(k);
    if (!transposed) {
        for (int kk = 0; kk < 2 * pairs; kk++) {
            const float *row = kk < k ? src + (size_t)kk * ld : src;   /* the padding row reads nothing */
            for (int p = 0; p < panels; p++) {
                uint16_t *d = packed + ((size_t)p * pairs + kk / 2) * 32 + (kk & 1);
                const int col = p * 16;
                if (kk < k && col + 16 <= n) {
                    for (int j = 0; j < 16; j++) d[2 * j] = bf16_of(row + col + j);
                } else {
                    for (int j = 0; j < 16; j++) d[2 * j] = kk < k && col + j < n ? bf16_of(row + col + j) : 0;
                }
            }
        }
        return;
    }
    for (int p = 0; p < panels; p++) {
        uint16_t *panel = packed + (size_t)p * pairs * 32;
        for (int j = 0; j < 16; j++) {
            const int col = p * 16 + j;
            uint16_t *d = panel + 2 * j;
            if (col >= n) {
                for (int q = 0; q < pairs; q++) d[(size_t)q * 32] = d[(size_t)q * 32 + 1] = 0;
                continue;
            }
            const float *s = src + (size_t)col * ld;
            int q = 0;
            for (; 2 * q + 1 < k; q++) {
                d[(size_t)q * 32] = bf16_of(s + 2 * q);
                d[(size_t)q * 32 + 1] = bf16_of(s + 2 * q + 1);
            }
            if (q < pairs) { d[(size_t)q * 32] = bf16_of(s + 2 * q); d[(size_t)q * 32 + 1] = 0; }
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2")))
static void to_bf16_rows_avx2(const float *src, int rows, int cols, int lds, uint16_t *dst, int ldd) {
    to_bf16_rows_body(src, rows, cols, lds, dst, ldd);
}

__attribute__((target("avx2")))
static void to_bf16_transposed_avx2(const float *src, int rows, int cols, int lds, uint16_t *dst, int ldd) {
    to_bf16_transposed_body(src, rows, cols, lds, dst, ldd);
}

__attribute__((target("avx2")))
static void pack_b_bf16_avx2(const float *src, int ld, int k, int n, int transposed, uint16_t *packed) {
    pack_b_bf16_body(src, ld, k, n, transposed, packed);
}
#endif

void rnn_to_bf16(const float *src, int rows, int cols, int lds, uint16_t *dst, int ldd) {
#if defined(__x86_64__)
    if (has_bf16_bw_vl()) { to_bf16_avx512(src, rows, cols, lds, dst, ldd); return; }
    if (rnn_cpu_features_at(rnn_isa()) & RNN_CPU_AVX2) { to_bf16_rows_avx2(src, rows, cols, lds, dst, ldd); return; }
#endif
    to_bf16_rows_body(src, rows, cols, lds, dst, ldd);
}

#if defined(__x86_64__)
/* Tiles of 32 x 32: each row of a tile converted by the vector instruction into a small buffer
   (which stays in the L1 cache), then written out column by column. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void to_bf16_transposed_avx512(const float *src, int rows, int cols, int lds, uint16_t *dst, int ldd) {
    uint16_t tile[32 * 32] __attribute__((aligned(64)));
    for (int r0 = 0; r0 < rows; r0 += 32) {
        int nr = rows - r0 < 32 ? rows - r0 : 32;
        for (int c0 = 0; c0 < cols; c0 += 32) {
            int nc = cols - c0 < 32 ? cols - c0 : 32;
            __mmask16 m0 = rnn_lane_mask16(nc), m1 = rnn_lane_mask16(nc - 16);
            for (int r = 0; r < nr; r++) {
                const float *s = src + (size_t)(r0 + r) * lds + c0;
                _mm256_store_si256((__m256i *)(tile + r * 32), cvt16(s, m0));
                _mm256_store_si256((__m256i *)(tile + r * 32 + 16), cvt16(s + 16, m1));
            }
            for (int c = 0; c < nc; c++) {
                uint16_t *d = dst + (size_t)(c0 + c) * ldd + r0;
                for (int r = 0; r < nr; r++) d[r] = tile[r * 32 + c];
            }
        }
    }
    if (rows & 1)
        for (int c = 0; c < cols; c++) dst[(size_t)c * ldd + rows] = 0;
}
#endif

void rnn_to_bf16_transposed(const float *src, int rows, int cols, int lds, uint16_t *dst, int ldd) {
#if defined(__x86_64__)
    if (has_bf16_bw_vl()) { to_bf16_transposed_avx512(src, rows, cols, lds, dst, ldd); return; }
    if (rnn_cpu_features_at(rnn_isa()) & RNN_CPU_AVX2) { to_bf16_transposed_avx2(src, rows, cols, lds, dst, ldd); return; }
#endif
    to_bf16_transposed_body(src, rows, cols, lds, dst, ldd);
}

size_t rnn_packed_bf16_size(int k, int n) { return (size_t)pairs_of(k) * 2 * (size_t)padded_columns(n); }

void rnn_pack_b_bf16(const float *src, int ld, int k, int n, int transposed, uint16_t *packed) {
#if defined(__x86_64__)
    if (has_bf16_bw_vl()) {
        if (transposed) pack_transposed_avx512(src, ld, k, n, packed);
        else pack_rows_avx512(src, ld, k, n, packed);
        return;
    }
    if (rnn_cpu_features_at(rnn_isa()) & RNN_CPU_AVX2) { pack_b_bf16_avx2(src, ld, k, n, transposed, packed); return; }
#endif
    pack_b_bf16_body(src, ld, k, n, transposed, packed);
}

#if defined(__x86_64__)
/* One block of 8 rows x 32 columns over `pairs` pairs of K: 16 accumulators. The block's A is
   interleaved in `ap` (pair q of row r at ap[q * 8 + r], one 32-bit word), so the eight
   broadcasts of a step read one half cache line of the L1 cache; only the first `rows` rows
   of C are read and written. */
__attribute__((target("avx512f,avx512bf16")))
static void bblock(int pairs, const int32_t *ap, const uint16_t *b0, const uint16_t *b1, float *c, int ldc, int rows,
                   __mmask16 m0, __mmask16 m1) {
    /* The sixteen accumulators are named one by one: written as arrays, the compiler split the
       loop over K in two (one per panel), which doubled the broadcasts. */
#define LOAD(r) \
    __m512 c0##r = r < rows ? _mm512_maskz_loadu_ps(m0, c + (size_t)r * ldc) : _mm512_setzero_ps(); \
    __m512 c1##r = r < rows ? _mm512_maskz_loadu_ps(m1, c + (size_t)r * ldc + 16) : _mm512_setzero_ps();
    LOAD(0) LOAD(1) LOAD(2) LOAD(3) LOAD(4) LOAD(5) LOAD(6) LOAD(7)
#undef LOAD
    for (int q = 0; q < pairs; q++) {
        __m512bh x0 = (__m512bh)_mm512_loadu_si512(b0 + (size_t)q * 32);
        __m512bh x1 = (__m512bh)_mm512_loadu_si512(b1 + (size_t)q * 32);
        const int32_t *aq = ap + q * 8;
#define STEP(r) { \
        __m512bh av = (__m512bh)_mm512_set1_epi32(aq[r]); \
        c0##r = _mm512_dpbf16_ps(c0##r, av, x0); \
        c1##r = _mm512_dpbf16_ps(c1##r, av, x1); }
        STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)
#undef STEP
    }
#define STORE(r) \
    if (r < rows) { \
        _mm512_mask_storeu_ps(c + (size_t)r * ldc, m0, c0##r); \
        _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16, m1, c1##r); \
    }
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5) STORE(6) STORE(7)
#undef STORE
}

/* Rows r0.. r0 + rows - 1 of A, pairs q0 .. q0 + kp - 1, interleaved: ap[q * 8 + r]; missing rows
   are zeros. With an even row stride one gather fetches two pairs of all eight rows. */
__attribute__((target("avx512f")))
static void interleave_rows(const uint16_t *a, int lda, int rows, int q0, int kp, int32_t *ap) {
    if (rows == 8 && !(lda & 1)) {
        const int32_t *base = (const int32_t *)(const void *)(a + 2 * (size_t)q0);
        const int s = lda / 2;
        const __m512i idx = _mm512_setr_epi32(0, s, 2 * s, 3 * s, 4 * s, 5 * s, 6 * s, 7 * s,
                                              1, s + 1, 2 * s + 1, 3 * s + 1, 4 * s + 1, 5 * s + 1, 6 * s + 1, 7 * s + 1);
        int q = 0;
        for (; q + 2 <= kp; q += 2) _mm512_store_si512(ap + q * 8, _mm512_i32gather_epi32(idx, base + q, 4));
        for (; q < kp; q++)
            for (int r = 0; r < 8; r++) ap[q * 8 + r] = base[(size_t)r * s + q];
        return;
    }
    for (int r = 0; r < 8; r++) {
        if (r < rows) {
            const uint16_t *row = a + (size_t)r * lda + 2 * (size_t)q0;
            for (int q = 0; q < kp; q++) memcpy(&ap[q * 8 + r], row + 2 * q, 4);
        } else {
            for (int q = 0; q < kp; q++) ap[q * 8 + r] = 0;
        }
    }
}

/* Rows r0 .. r0 + 7 of A = P^T, pairs q0 .. q0 + kp - 1, for P[K, M] packed by rnn_pack_b_bf16:
   the pair q of row r is one 32-bit word of P's panel r / 16, and the eight words of rows r0 ..
   r0 + 7 (r0 a multiple of 8) lie side by side, so the block is one 32-byte copy per pair. Rows
   past M are the packing's zero padding. */
__attribute__((target("avx512f")))
static void interleave_packed(const uint16_t *p, int pairs, int r0, int q0, int kp, int32_t *ap) {
    const int32_t *src = (const int32_t *)(const void *)(p + (size_t)(r0 / 16) * pairs * 32) + (size_t)q0 * 16 + (r0 % 16);
    for (int q = 0; q < kp; q++) _mm256_store_si256((__m256i *)(ap + q * 8), _mm256_loadu_si256((const __m256i *)(src + (size_t)q * 16)));
}

/* The widening kernel: the same packed operands, each bf16 value widened to fp32 (exact: a shift
   or a mask of its 32-bit pair) and multiplied by FMAs, for processors whose vdpbf16ps does fewer
   multiply-adds per cycle than their FMAs (see rnn_bf16_kernel). One block of 8 rows x 32
   columns over `pairs` pairs of K, 16 accumulators; element e (0: k = 2q, 1: k = 2q + 1) of pair
   q of row r of A, already widened, is ap[q * QS + r * RS + e]. Each element accumulates C, then
   k = 0, 1, ... with one FMA each: the order of rnn_gemm_packed. */
__attribute__((target("avx512f"), always_inline))
static inline void wblock(int pairs, const float *ap, const int QS, const int RS, const uint16_t *b0, const uint16_t *b1,
                          float *c, int ldc, int rows, __mmask16 m0, __mmask16 m1) {
#define LOAD(r) \
    __m512 c0##r = r < rows ? _mm512_maskz_loadu_ps(m0, c + (size_t)r * ldc) : _mm512_setzero_ps(); \
    __m512 c1##r = r < rows ? _mm512_maskz_loadu_ps(m1, c + (size_t)r * ldc + 16) : _mm512_setzero_ps();
    LOAD(0) LOAD(1) LOAD(2) LOAD(3) LOAD(4) LOAD(5) LOAD(6) LOAD(7)
#undef LOAD
    const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);
    for (int q = 0; q < pairs; q++) {
        __m512i x0 = _mm512_loadu_si512(b0 + (size_t)q * 32), x1 = _mm512_loadu_si512(b1 + (size_t)q * 32);
        __m512 e0 = _mm512_castsi512_ps(_mm512_slli_epi32(x0, 16)), o0 = _mm512_castsi512_ps(_mm512_and_si512(x0, high));
        __m512 e1 = _mm512_castsi512_ps(_mm512_slli_epi32(x1, 16)), o1 = _mm512_castsi512_ps(_mm512_and_si512(x1, high));
        const float *aq = ap + (size_t)q * QS;
#define STEP(r) { \
        __m512 ae = _mm512_set1_ps(aq[r * RS]), ao = _mm512_set1_ps(aq[r * RS + 1]); \
        c0##r = _mm512_fmadd_ps(ae, e0, c0##r); c1##r = _mm512_fmadd_ps(ae, e1, c1##r); \
        c0##r = _mm512_fmadd_ps(ao, o0, c0##r); c1##r = _mm512_fmadd_ps(ao, o1, c1##r); }
        STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)
#undef STEP
    }
#define STORE(r) \
    if (r < rows) { \
        _mm512_mask_storeu_ps(c + (size_t)r * ldc, m0, c0##r); \
        _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16, m1, c1##r); \
    }
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5) STORE(6) STORE(7)
#undef STORE
}

/* 16 bf16 values (8 pairs) -> 16 floats, exactly. */
__attribute__((target("avx512f,avx512bw,avx512vl")))
static inline __m512 widen16(const uint16_t *src, __mmask16 mask) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, src)), 16));
}

/* Widened A for wblock, row-major per row: rows r0.. of bf16 A, pairs q0 .. q0 + kp - 1 at
   ap[r * 2 * KC + 2 q + e] (QS = 2, RS = 2 KC); missing rows are zeros. */
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void widen_rows(const uint16_t *a, int lda, int rows, int q0, int kp, int kc, float *ap) {
    for (int r = 0; r < 8; r++) {
        float *d = ap + (size_t)r * 2 * kc;
        if (r >= rows) { memset(d, 0, sizeof(float) * 2 * (size_t)kp); continue; }
        const uint16_t *row = a + (size_t)r * lda + 2 * (size_t)q0;
        int v = 0, values = 2 * kp;
        for (; v + 16 <= values; v += 16) _mm512_storeu_ps(d + v, widen16(row + v, 0xFFFF));
        if (v < values) {
            __mmask16 m = rnn_lane_mask16(values - v);
            _mm512_mask_storeu_ps(d + v, m, widen16(row + v, m));
        }
    }
}

/* Widened A = P^T for wblock, for P packed by rnn_pack_b_bf16 (see interleave_packed): the eight
   pairs of rows r0 .. r0 + 7 at pair q are 16 neighbouring values, widened to ap[q * 16 + 2 r + e]
   (QS = 16, RS = 2). */
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void widen_packed(const uint16_t *p, int pairs, int r0, int q0, int kp, float *ap) {
    const uint16_t *src = p + (size_t)(r0 / 16) * pairs * 32 + ((size_t)q0 * 16 + (r0 % 16)) * 2;
    for (int q = 0; q < kp; q++) _mm512_store_ps(ap + (size_t)q * 16, widen16(src + (size_t)q * 32, 0xFFFF));
}

/* Blocked like a GEMM library: K in blocks of KC pairs and N in blocks of NC columns, so that
   the block of B in use (256 x 512 bf16, 256 KB) stays in the L2 cache while every block of 8
   rows of A, interleaved into a 4 KB buffer in the L1 cache (8 KB widened), passes over it. A is
   either bf16 rows (a, lda) or, when a_packed is given, the transpose of a packed operand.
   The widening kernel needs no bf16 instruction, so it runs at the avx512 level of processors
   without AVX512_BF16 too (as the portable kernel there, with the same bits). */
enum { KC = 128, NC = 512 };   /* pairs per K block (256 values of K); columns per N block */

__attribute__((target("avx512f,avx512bw,avx512vl")))
static void gemm_bf16_widen_avx512(int m, int n, int k, const uint16_t *a, int lda, const uint16_t *a_packed,
                                   const uint16_t *packed, float *c, int ldc) {
    float wide[KC * 16] __attribute__((aligned(64)));
    int pairs = pairs_of(k);
    const size_t panel = (size_t)pairs * 32;
    for (int q0 = 0; q0 < pairs; q0 += KC) {
        int kp = pairs - q0 < KC ? pairs - q0 : KC;
        for (int n0 = 0; n0 < n; n0 += NC) {
            int n1 = n0 + NC < n ? n0 + NC : n;
            for (int r0 = 0; r0 < m; r0 += 8) {
                int rows = m - r0 < 8 ? m - r0 : 8;
                if (a_packed) widen_packed(a_packed, pairs, r0, q0, kp, wide);
                else widen_rows(a + (size_t)r0 * lda, lda, rows, q0, kp, KC, wide);
                for (int col = n0; col < n1; col += 32) {
                    const uint16_t *b0 = packed + (size_t)(col / 16) * panel + (size_t)q0 * 32, *b1 = b0 + panel;
                    float *cb = c + (size_t)r0 * ldc + col;
                    __mmask16 m0 = rnn_lane_mask16(n - col), m1 = rnn_lane_mask16(n - col - 16);
                    if (a_packed) wblock(kp, wide, 16, 2, b0, b1, cb, ldc, rows, m0, m1);
                    else wblock(kp, wide, 2, 2 * KC, b0, b1, cb, ldc, rows, m0, m1);
                }
            }
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void gemm_bf16_avx512(int kernel, int m, int n, int k, const uint16_t *a, int lda, const uint16_t *a_packed,
                             const uint16_t *packed, float *c, int ldc) {
    if (kernel == RNN_BF16_WIDEN) { gemm_bf16_widen_avx512(m, n, k, a, lda, a_packed, packed, c, ldc); return; }
    int32_t ap[KC * 8] __attribute__((aligned(64)));
    int pairs = pairs_of(k);
    const size_t panel = (size_t)pairs * 32;
    for (int q0 = 0; q0 < pairs; q0 += KC) {
        int kp = pairs - q0 < KC ? pairs - q0 : KC;
        for (int n0 = 0; n0 < n; n0 += NC) {
            int n1 = n0 + NC < n ? n0 + NC : n;
            for (int r0 = 0; r0 < m; r0 += 8) {
                int rows = m - r0 < 8 ? m - r0 : 8;
                if (a_packed) interleave_packed(a_packed, pairs, r0, q0, kp, ap);
                else interleave_rows(a + (size_t)r0 * lda, lda, rows, q0, kp, ap);
                for (int col = n0; col < n1; col += 32) {
                    const uint16_t *b0 = packed + (size_t)(col / 16) * panel + (size_t)q0 * 32, *b1 = b0 + panel;
                    __mmask16 m0 = rnn_lane_mask16(n - col), m1 = rnn_lane_mask16(n - col - 16);
                    bblock(kp, ap, b0, b1, c + (size_t)r0 * ldc + col, ldc, rows, m0, m1);
                }
            }
        }
    }
}

__attribute__((target("avx512f,avx512bf16")))
static void matvec_bf16_avx512(int n, int k, const uint16_t *x, const uint16_t *packed, float *y) {
    int panels = (n + 15) / 16, pairs = pairs_of(k), p = 0;
    const size_t s = (size_t)pairs * 32;
    for (; p + 4 <= panels; p += 4) {
        const uint16_t *b = packed + (size_t)p * s;
        int col = p * 16;
        __mmask16 m3 = rnn_lane_mask16(n - col - 48);
        __m512 a0 = _mm512_loadu_ps(y + col), a1 = _mm512_loadu_ps(y + col + 16), a2 = _mm512_loadu_ps(y + col + 32);
        __m512 a3 = _mm512_maskz_loadu_ps(m3, y + col + 48);
        for (int q = 0; q < pairs; q++) {
            int pair;
            memcpy(&pair, x + 2 * q, 4);
            __m512bh xv = (__m512bh)_mm512_set1_epi32(pair);
            const uint16_t *bq = b + (size_t)q * 32;
            a0 = _mm512_dpbf16_ps(a0, xv, (__m512bh)_mm512_loadu_si512(bq));
            a1 = _mm512_dpbf16_ps(a1, xv, (__m512bh)_mm512_loadu_si512(bq + s));
            a2 = _mm512_dpbf16_ps(a2, xv, (__m512bh)_mm512_loadu_si512(bq + 2 * s));
            a3 = _mm512_dpbf16_ps(a3, xv, (__m512bh)_mm512_loadu_si512(bq + 3 * s));
        }
        _mm512_storeu_ps(y + col, a0); _mm512_storeu_ps(y + col + 16, a1); _mm512_storeu_ps(y + col + 32, a2);
        _mm512_mask_storeu_ps(y + col + 48, m3, a3);
    }
    for (; p < panels; p++) {
        const uint16_t *b = packed + (size_t)p * s;
        int col = p * 16;
        __mmask16 m = rnn_lane_mask16(n - col);
        __m512 a = _mm512_maskz_loadu_ps(m, y + col);
        for (int q = 0; q < pairs; q++) {
            int pair;
            memcpy(&pair, x + 2 * q, 4);
            a = _mm512_dpbf16_ps(a, (__m512bh)_mm512_set1_epi32(pair), (__m512bh)_mm512_loadu_si512(b + (size_t)q * 32));
        }
        _mm512_mask_storeu_ps(y + col, m, a);
    }
}
#endif

/* The portable kernel's loop: the widening kernel's arithmetic in C. Each element of C accumulates
   C, then k = 0, 1, ... (both halves of every pair, the padding zeros included), one fused
   multiply-add each (fmaf, correctly rounded whether the processor has FMA or not), so it gives
   the same bits on every machine, and those of the widening kernel and of rnn_gemm_packed on
   the same values. Blocks of 4 rows x 16 columns (one panel); A is bf16 rows (a, lda) or, when
   a_packed is given, the transpose of a packed operand. */
static inline float bf16_low(uint32_t w) { w <<= 16; float f; memcpy(&f, &w, 4); return f; }
static inline float bf16_high(uint32_t w) { w &= 0xFFFF0000u; float f; memcpy(&f, &w, 4); return f; }

__attribute__((always_inline))
static inline void gemm_bf16_portable_body(int m, int n, int k, const uint16_t *a, int lda, const uint16_t *a_packed,
                                           const uint16_t *packed, float *c, int ldc) {
    const int pairs = pairs_of(k), panels = (n + 15) / 16;
    const size_t panel = (size_t)pairs * 32;
    for (int p = 0; p < panels; p++) {
        const uint16_t *b = packed + (size_t)p * panel;
        const int col = p * 16, width = n - col < 16 ? n - col : 16;
        for (int r0 = 0; r0 < m; r0 += 4) {
            const int rows = m - r0 < 4 ? m - r0 : 4;
            float acc[4][16];
            for (int r = 0; r < 4; r++)
                for (int j = 0; j < 16; j++) acc[r][j] = r < rows && j < width ? c[(size_t)(r0 + r) * ldc + col + j] : 0.0f;
            for (int q = 0; q < pairs; q++) {
                uint32_t bw[16];
                memcpy(bw, b + (size_t)q * 32, sizeof bw);
                float even[16], odd[16];
                for (int j = 0; j < 16; j++) { even[j] = bf16_low(bw[j]); odd[j] = bf16_high(bw[j]); }
                for (int r = 0; r < rows; r++) {
                    const int row = r0 + r;
                    uint32_t aw;
                    if (a_packed) memcpy(&aw, a_packed + (size_t)(row / 16) * panel + ((size_t)q * 16 + row % 16) * 2, 4);
                    else memcpy(&aw, a + (size_t)row * lda + 2 * (size_t)q, 4);
                    const float ae = bf16_low(aw), ao = bf16_high(aw);
                    for (int j = 0; j < 16; j++) acc[r][j] = fmaf(ao, odd[j], fmaf(ae, even[j], acc[r][j]));
                }
            }
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < width; j++) c[(size_t)(r0 + r) * ldc + col + j] = acc[r][j];
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void gemm_bf16_portable_fma(int m, int n, int k, const uint16_t *a, int lda, const uint16_t *a_packed,
                                   const uint16_t *packed, float *c, int ldc) {
    gemm_bf16_portable_body(m, n, k, a, lda, a_packed, packed, c, ldc);
}

/* At the avx2 level the portable kernel runs as the fp32 per-step kernel (rnn_gemm_packed) on
   the operands widened to fp32 (exactly) into per-thread scratch, K padded to even with the
   packing's zeros: the loop above's order of accumulation, so the same bits, at nearly fp32's
   speed (one extra pass over each operand per call). */
typedef struct { float *a, *b; size_t a_cap, b_cap; } widen_scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void free_scratch(void *p) {
    widen_scratch *s = p;
    free(s->a);
    free(s->b);
    free(s);
}

static void make_scratch_key(void) {
    if (pthread_key_create(&scratch_key, free_scratch) != 0) scratch_key = (pthread_key_t)-1;
}

/* Grows *buf to n floats (64-byte aligned); NULL when memory runs out. */
static float *grown(float **buf, size_t *cap, size_t n) {
    if (n <= *cap) return *buf;
    free(*buf);
    *buf = NULL;
    *cap = 0;
    void *p = NULL;
    if (posix_memalign(&p, 64, n * sizeof(float)) != 0) return NULL;
    *buf = p;
    *cap = n;
    return p;
}

static widen_scratch *thread_scratch(void) {
    pthread_once(&scratch_once, make_scratch_key);
    if (scratch_key == (pthread_key_t)-1) return NULL;
    widen_scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s) != 0) { free(s); return NULL; }
    }
    return s;
}

/* Pairs q0 .. q0 + kp - 1 of every panel of a bf16-packed operand (pairs of K interleaved) ->
   rnn_pack_b's fp32 layout for those 2 kp rows of K: element (k, j) of panel p at
   p * 2 kp * 16 + k * 16 + j. */
__attribute__((target("avx2")))
static void widen_packed_panels(const uint16_t *packed, int pairs, int panels, int q0, int kp, float *out) {
    for (int p = 0; p < panels; p++) {
        const uint16_t *src = packed + ((size_t)p * pairs + q0) * 32;
        float *dst = out + (size_t)p * kp * 32;
        for (int q = 0; q < kp; q++) {
            uint32_t w[16];
            memcpy(w, src + (size_t)q * 32, sizeof w);
            float *even = dst + (size_t)q * 32, *odd = even + 16;
            for (int j = 0; j < 16; j++) { even[j] = bf16_low(w[j]); odd[j] = bf16_high(w[j]); }
        }
    }
}

/* K in blocks of KC pairs and M in blocks of MC rows, each block added into C in turn: every
   element still accumulates k = 0, 1, ... in order, and the scratch stays small (at most
   MC x 2 KC floats of A and 2 KC x N of B per thread). Returns 0 when the scratch could not be
   had (the caller then runs the loop). */
__attribute__((target("avx2")))
static int gemm_bf16_widened(int m, int n, int k, const uint16_t *a, int lda, const uint16_t *a_packed,
                             const uint16_t *packed, float *c, int ldc) {
    enum { MC = 512 };   /* rows per block; K in blocks of KC pairs, as the AVX-512 kernels */
    const int pairs = pairs_of(k), panels = padded_columns(n) / 16;
    widen_scratch *s = thread_scratch();
    if (!s) return 0;
    const int kc_max = 2 * (pairs < KC ? pairs : KC), mc_max = m < MC ? m : MC;
    float *wa = grown(&s->a, &s->a_cap, (size_t)mc_max * kc_max);
    float *wb = grown(&s->b, &s->b_cap, (size_t)kc_max * panels * 16);
    if (!wa || !wb) return 0;
    for (int q0 = 0; q0 < pairs; q0 += KC) {
        const int kp = pairs - q0 < KC ? pairs - q0 : KC, kc = 2 * kp;
        widen_packed_panels(packed, pairs, panels, q0, kp, wb);
        for (int r0 = 0; r0 < m; r0 += MC) {
            const int rows = m - r0 < MC ? m - r0 : MC;
            for (int r = 0; r < rows; r++) {
                float *d = wa + (size_t)r * kc;
                const int row = r0 + r;
                if (a_packed) {
                    const uint16_t *src = a_packed + ((size_t)(row / 16) * pairs + q0) * 32 + (size_t)(row % 16) * 2;
                    for (int q = 0; q < kp; q++) {
                        d[2 * q] = bf16_low(src[(size_t)q * 32]);
                        d[2 * q + 1] = bf16_low(src[(size_t)q * 32 + 1]);
                    }
                } else {
                    const uint16_t *src = a + (size_t)row * lda + 2 * (size_t)q0;
                    for (int kk = 0; kk < kc; kk++) d[kk] = bf16_low(src[kk]);
                }
            }
            rnn_gemm_packed(rnn_isa(), rows, n, kc, wa, kc, wb, c + (size_t)r0 * ldc, ldc);
        }
    }
    return 1;
}

/* y[N] += x[K] B with B bf16-packed, widened in registers (shift and mask of each 32-bit pair
   word), two panels per pass: the loop's order of accumulation, as rnn_matvec_packed reads
   fp32 panels. */
__attribute__((target("avx2,fma")))
static void matvec_bf16_avx2(int n, int k, const uint16_t *x, const uint16_t *packed, float *y) {
    const int pairs = pairs_of(k), panels = (n + 15) / 16;
    const size_t s = (size_t)pairs * 32;
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
    for (int p = 0; p < panels; p += 2) {
        const int two = p + 1 < panels, col = p * 16;
        const uint16_t *b0 = packed + (size_t)p * s, *b1 = two ? b0 + s : b0;
        __m256i m0 = rnn_lane_mask8(n - col), m1 = rnn_lane_mask8(n - col - 8);
        __m256i m2 = rnn_lane_mask8(two ? n - col - 16 : 0), m3 = rnn_lane_mask8(two ? n - col - 24 : 0);
        __m256 a0 = _mm256_maskload_ps(y + col, m0), a1 = _mm256_maskload_ps(y + col + 8, m1);
        __m256 a2 = _mm256_maskload_ps(y + col + 16, m2), a3 = _mm256_maskload_ps(y + col + 24, m3);
        for (int q = 0; q < pairs; q++) {
            uint32_t xw;
            memcpy(&xw, x + 2 * q, 4);
            const __m256 xe = _mm256_set1_ps(bf16_low(xw)), xo = _mm256_set1_ps(bf16_high(xw));
            const uint16_t *c0 = b0 + (size_t)q * 32, *c1 = b1 + (size_t)q * 32;
#define WIDEN_FMA(acc, src) do { \
                __m256i w = _mm256_loadu_si256((const __m256i *)(src)); \
                acc = _mm256_fmadd_ps(xe, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)), acc); \
                acc = _mm256_fmadd_ps(xo, _mm256_castsi256_ps(_mm256_and_si256(w, high)), acc); \
            } while (0)
            WIDEN_FMA(a0, c0);
            WIDEN_FMA(a1, c0 + 16);
            if (two) { WIDEN_FMA(a2, c1); WIDEN_FMA(a3, c1 + 16); }
#undef WIDEN_FMA
        }
        _mm256_maskstore_ps(y + col, m0, a0); _mm256_maskstore_ps(y + col + 8, m1, a1);
        _mm256_maskstore_ps(y + col + 16, m2, a2); _mm256_maskstore_ps(y + col + 24, m3, a3);
    }
}
#endif

/* The portable kernel in the form of an instruction-set level: avx512 the widening kernel,
   avx2 the fp32 per-step kernel on widened operands (the fma-compiled loop when its scratch
   cannot be had), generic the loop. */
static void gemm_bf16_portable(int level, int m, int n, int k, const uint16_t *a, int lda, const uint16_t *a_packed,
                               const uint16_t *packed, float *c, int ldc) {
    if (m <= 0 || n <= 0 || k <= 0) return;
#if defined(__x86_64__)
    if (level >= RNN_ISA_AVX512) { gemm_bf16_widen_avx512(m, n, k, a, lda, a_packed, packed, c, ldc); return; }
    if (level >= RNN_ISA_AVX2) {
        if (!gemm_bf16_widened(m, n, k, a, lda, a_packed, packed, c, ldc))
            gemm_bf16_portable_fma(m, n, k, a, lda, a_packed, packed, c, ldc);
        return;
    }
#endif
    (void)level;
    gemm_bf16_portable_body(m, n, k, a, lda, a_packed, packed, c, ldc);
}

void rnn_gemm_bf16_portable_at_level(int isa, int m, int n, int k, const uint16_t *a, int lda, const uint16_t *packed_a,
                                     const uint16_t *packed, float *c, int ldc) {
    int level = isa < rnn_isa_supported() ? isa : rnn_isa_supported();
    gemm_bf16_portable(level, m, n, k, packed_a ? NULL : a, lda, packed_a, packed, c, ldc);
}

void rnn_gemm_bf16_using(int kernel, int m, int n, int k, const uint16_t *a, int lda, const uint16_t *packed, float *c, int ldc) {
    if (kernel == RNN_BF16_PORTABLE) { gemm_bf16_portable(rnn_isa(), m, n, k, a, lda, NULL, packed, c, ldc); return; }
#if defined(__x86_64__)
    if (m > 0 && n > 0 && k > 0) gemm_bf16_avx512(kernel, m, n, k, a, lda, NULL, packed, c, ldc);
#endif
}

void rnn_gemm_bf16_at_using(int kernel, int m, int n, int k, const uint16_t *packed_a, const uint16_t *packed, float *c, int ldc) {
    if (kernel == RNN_BF16_PORTABLE) { gemm_bf16_portable(rnn_isa(), m, n, k, NULL, 0, packed_a, packed, c, ldc); return; }
#if defined(__x86_64__)
    if (m > 0 && n > 0 && k > 0) gemm_bf16_avx512(kernel, m, n, k, NULL, 0, packed_a, packed, c, ldc);
#endif
}

void rnn_gemm_bf16(int m, int n, int k, const uint16_t *a, int lda, const uint16_t *packed, float *c, int ldc) {
    rnn_gemm_bf16_using(rnn_bf16_kernel(), m, n, k, a, lda, packed, c, ldc);
}

void rnn_gemm_bf16_at(int m, int n, int k, const uint16_t *packed_a, const uint16_t *packed, float *c, int ldc) {
    rnn_gemm_bf16_at_using(rnn_bf16_kernel(), m, n, k, packed_a, packed, c, ldc);
}

void rnn_matvec_bf16(int n, int k, const uint16_t *x, const uint16_t *packed, float *y) {
    if (rnn_bf16_kernel() == RNN_BF16_PORTABLE) {
#if defined(__x86_64__)
        if (rnn_isa() >= RNN_ISA_AVX2) { if (n > 0 && k > 0) matvec_bf16_avx2(n, k, x, packed, y); return; }
#endif
        gemm_bf16_portable(RNN_ISA_GENERIC, 1, n, k, x, 0, NULL, packed, y, n);
        return;
    }
#if defined(__x86_64__)
    if (n > 0 && k > 0) matvec_bf16_avx512(n, k, x, packed, y);
#endif
}
