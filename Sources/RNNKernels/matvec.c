#include "RNNKernels.h"
#include "lane_masks.h"
#include <limits.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#include <sched.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>

/* Four panels (64 columns) per pass: four independent accumulator chains keep the loads
   flowing; the same per-element order (y, then k = 0, 1, ...) as the blocked product. */
__attribute__((target("avx512f")))
static void matvec_avx512(int n, int k, const float *x, const float *packed, float *y) {
    int panels = (n + 15) / 16, p = 0;
    for (; p + 4 <= panels; p += 4) {
        const float *b = packed + (size_t)p * k * 16;
        const size_t s = (size_t)k * 16;
        int col = p * 16;
        __mmask16 m3 = rnn_lane_mask16(n - col - 48);
        __m512 a0 = _mm512_loadu_ps(y + col), a1 = _mm512_loadu_ps(y + col + 16), a2 = _mm512_loadu_ps(y + col + 32);
        __m512 a3 = _mm512_maskz_loadu_ps(m3, y + col + 48);
        for (int kk = 0; kk < k; kk++) {
            __m512 xv = _mm512_set1_ps(x[kk]);
            const float *bk = b + (size_t)kk * 16;
            a0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(bk), a0);
            a1 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(bk + s), a1);
            a2 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(bk + 2 * s), a2);
            a3 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(bk + 3 * s), a3);
        }
        _mm512_storeu_ps(y + col, a0); _mm512_storeu_ps(y + col + 16, a1); _mm512_storeu_ps(y + col + 32, a2);
        _mm512_mask_storeu_ps(y + col + 48, m3, a3);
    }
    for (; p < panels; p++) {
        const float *b = packed + (size_t)p * k * 16;
        int col = p * 16;
        __mmask16 m = rnn_lane_mask16(n - col);
        __m512 a = _mm512_maskz_loadu_ps(m, y + col);
        for (int kk = 0; kk < k; kk++) a = _mm512_fmadd_ps(_mm512_set1_ps(x[kk]), _mm512_loadu_ps(b + (size_t)kk * 16), a);
        _mm512_mask_storeu_ps(y + col, m, a);
    }
}

/* Two panels (32 columns, four 8-wide chains) per pass. */
__attribute__((target("avx2,fma")))
static void matvec_avx2(int n, int k, const float *x, const float *packed, float *y) {
    int panels = (n + 15) / 16, p = 0;
    for (; p < panels; p += 2) {
        int two = p + 1 < panels;
        const float *b0 = packed + (size_t)p * k * 16, *b1 = b0 + (size_t)k * 16;
        int col = p * 16;
        __m256i m0 = rnn_lane_mask8(n - col), m1 = rnn_lane_mask8(n - col - 8), m2 = rnn_lane_mask8(two ? n - col - 16 : 0), m3 = rnn_lane_mask8(two ? n - col - 24 : 0);
        __m256 a0 = _mm256_maskload_ps(y + col, m0), a1 = _mm256_maskload_ps(y + col + 8, m1);
        __m256 a2 = _mm256_maskload_ps(y + col + 16, m2), a3 = _mm256_maskload_ps(y + col + 24, m3);
        if (two) {
            for (int kk = 0; kk < k; kk++) {
                __m256 xv = _mm256_broadcast_ss(x + kk);
                const float *c0 = b0 + (size_t)kk * 16, *c1 = b1 + (size_t)kk * 16;
                a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(c0), a0);
                a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(c0 + 8), a1);
                a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(c1), a2);
                a3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(c1 + 8), a3);
            }
        } else {
            for (int kk = 0; kk < k; kk++) {
                __m256 xv = _mm256_broadcast_ss(x + kk);
                const float *c0 = b0 + (size_t)kk * 16;
                a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(c0), a0);
                a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(c0 + 8), a1);
            }
        }
        _mm256_maskstore_ps(y + col, m0, a0); _mm256_maskstore_ps(y + col + 8, m1, a1);
        _mm256_maskstore_ps(y + col + 16, m2, a2); _mm256_maskstore_ps(y + col + 24, m3, a3);
    }
}
#endif

void rnn_matvec_packed(int isa, int n, int k, const float *x, const float *packed, float *y) {
#if defined(__x86_64__)
    if (isa >= RNN_ISA_AVX512) matvec_avx512(n, k, x, packed, y);
    else if (isa == RNN_ISA_AVX2) matvec_avx2(n, k, x, packed, y);
#else
    (void)isa; (void)n; (void)k; (void)x; (void)packed; (void)y;
#endif
}

void rnn_barrier_init(rnn_barrier *b, int parties) {
    b->parties = parties;
    __atomic_store_n(&b->arrived, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&b->generation, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&b->sleepers, 0, __ATOMIC_RELAXED);
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__)
    _mm_pause();
#endif
}

long long rnn_barrier_wait(rnn_barrier *b) {
    int gen = __atomic_load_n(&b->generation, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&b->arrived, 1, __ATOMIC_ACQ_REL) == b->parties) {
        __atomic_store_n(&b->arrived, 0, __ATOMIC_RELAXED);
        /* sequentially consistent: the store must not pass the load of sleepers (a waiter
           going to sleep increments sleepers, then re-reads generation) */
        __atomic_store_n(&b->generation, gen + 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&b->sleepers, __ATOMIC_SEQ_CST) > 0) {
#if defined(__linux__)
            syscall(SYS_futex, &b->generation, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#endif
        }
        return 0;
    }
    long long start = now_ns();
    /* Spin for about 50 microseconds (the gap between two layers of one token), then sleep. */
    for (int i = 0; i < 20000; i++) {
        if (__atomic_load_n(&b->generation, __ATOMIC_ACQUIRE) != gen) return now_ns() - start;
        cpu_relax();
    }
    __atomic_add_fetch(&b->sleepers, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&b->generation, __ATOMIC_SEQ_CST) == gen) {
#if defined(__linux__)
        syscall(SYS_futex, &b->generation, FUTEX_WAIT_PRIVATE, gen, NULL, NULL, 0);
#else
        sched_yield();
#endif
    }
    __atomic_sub_fetch(&b->sleepers, 1, __ATOMIC_ACQ_REL);
    return now_ns() - start;
}
