#ifndef RNN_KERNELS_H
#define RNN_KERNELS_H
/* Matrix products with a pre-packed right-hand operand, for the per-step products of the
   recurrent layers: C[M, N] += A[M, K] * B[K, N], where B was packed once per sequence by
   rnn_pack_b. OpenBLAS re-packs its operands on every call, which for the small M of a time
   step (a batch shard) costs as much as the arithmetic; packing the weights once per forward
   pass removes that cost. AVX-512 only: rnn_packed_available() says whether this processor
   has it, and callers use BLAS otherwise. */
#include <stddef.h>

/* 1 when the packed kernels can run on this processor (AVX-512F), else 0. */
int rnn_packed_available(void);

/* Number of floats rnn_pack_b writes for a K x N operand (N rounded up to a multiple of 32). */
size_t rnn_packed_size(int k, int n);

/* Packs B[K, N] into panels of 16 columns (zero-padded to a multiple of 32 columns).
   transposed == 0: B[k][n] = src[k * ld + n]  (src stored [K, N]);
   transposed == 1: B[k][n] = src[n * ld + k]  (src stored [N, K], i.e. B = src^T). */
void rnn_pack_b(const float *src, int ld, int k, int n, int transposed, float *packed);

/* C[M, N] += A[M, K] * B, with B packed by rnn_pack_b(…, k, n, …). Row strides lda, ldc.
   Requires rnn_packed_available(). */
void rnn_gemm_packed(int m, int n, int k, const float *a, int lda, const float *packed, float *c, int ldc);

#endif
