#ifndef RNN_BLAS_H
#define RNN_BLAS_H
/* The GEMM engine: OpenBLAS, loaded with dlopen at start-up after OPENBLAS_CORETYPE has been set
   from the CPU's feature bits at the level rnn_isa() allows (AVX-512 + BF16: Cooperlake,
   AVX-512: SkylakeX, AVX2 + FMA: Haswell, AVX: Sandybridge, SSE4.2: Nehalem, else Prescott).
   OpenBLAS picks its kernels in its load-time constructor from a table of model numbers, which
   runs SSE3 kernels on processors newer than the library; loading it only after the variable is
   set gives every processor the kernels its features allow. The caller's own OPENBLAS_CORETYPE
   is restored after loading, so child processes see the environment they were given.
   All matrices row-major. If the library cannot be loaded the process prints one line and exits
   with status 1. */

/* Loads the library (once; also done by a constructor before main). */
void rnn_blas_load(void);

/* C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C (cblas_sgemm, row-major). */
void rnn_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);

/* y[rows or cols] = alpha * op(A) x + beta * y, A stored [rows, cols] (cblas_sgemv, row-major). */
void rnn_sgemv(int trans, int rows, int cols, float alpha, const float *a, int lda, const float *x,
               float beta, float *y);

void rnn_blas_set_threads(int threads);
int rnn_blas_threads(void);

/* The kernel set OpenBLAS reports in use (openblas_get_corename), e.g. "Cooperlake". */
const char *rnn_blas_core(void);
/* The kernel set requested through OPENBLAS_CORETYPE ("" off x86-64). */
const char *rnn_blas_requested_core(void);
/* openblas_get_config(), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY ...". */
const char *rnn_blas_config(void);
/* The OpenBLAS kernel set that the given feature bits call for. */
const char *rnn_blas_core_for_features(unsigned features);

#endif
