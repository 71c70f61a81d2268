#ifndef RNN_KERNELS_H
#define RNN_KERNELS_H
/* Matrix products with a pre-packed right-hand operand, for the per-step products of the
   recurrent layers: C[M, N] += A[M, K] * B[K, N], where B was packed once per sequence by
   rnn_pack_b. OpenBLAS re-packs its operands on every call, which for the small M of a time
   step (a batch shard) costs as much as the arithmetic; packing the weights once per forward
   pass removes that cost. Two variants share one packed layout: AVX-512 (blocks of 8 rows x 32
   columns) and AVX2 + FMA (6 rows x 16 columns). Both accumulate each element in the same order
   (C, then k = 0, 1, ... with one fused multiply-add each), so they give bit-identical results.
   On processors with neither, callers use BLAS (see RNNCPU.h for the level in use). */
#include <stddef.h>
#include "RNNCPU.h"   /* CPU features, instruction-set level */
#include "RNNBLAS.h"  /* the GEMM engine */
#include "RNNBF16.h"  /* bf16 products (AVX512_BF16) */

/* Number of floats rnn_pack_b writes for a K x N operand (N rounded up to a multiple of 32). */
size_t rnn_packed_size(int k, int n);

/* Packs B[K, N] into panels of 16 columns (zero-padded to a multiple of 32 columns).
   transposed == 0: B[k][n] = src[k * ld + n]  (src stored [K, N]);
   transposed == 1: B[k][n] = src[n * ld + k]  (src stored [N, K], i.e. B = src^T). */
void rnn_pack_b(const float *src, int ld, int k, int n, int transposed, float *packed);

/* C[M, N] += A[M, K] * B, with B packed by rnn_pack_b(…, k, n, …). Row strides lda, ldc.
   isa: RNN_ISA_AVX512 or RNN_ISA_AVX2, at most rnn_isa_supported(). */
void rnn_gemm_packed(int isa, int m, int n, int k, const float *a, int lda, const float *packed, float *c, int ldc);

/* y[N] += x[K] * B, B packed by rnn_pack_b(…, k, n, …): the matrix-vector product of batch-1
   generation, several panels at a time so that it runs at the cache's bandwidth. Each element
   accumulates in the same order as rnn_gemm_packed (bit-identical to it with m = 1).
   isa as for rnn_gemm_packed. */
void rnn_matvec_packed(int isa, int n, int k, const float *x, const float *packed, float *y);

/* A barrier for a fixed set of threads that spins briefly and then sleeps (futex on Linux),
   so a thread waiting between tokens costs no processor time. */
typedef struct {
    int parties;
    int arrived;     /* atomic */
    int generation;  /* atomic: bumped when the last party arrives */
    int sleepers;    /* atomic */
} rnn_barrier;

void rnn_barrier_init(rnn_barrier *b, int parties);
/* Waits until all parties have arrived; returns the nanoseconds this thread waited. */
long long rnn_barrier_wait(rnn_barrier *b);

#endif
