#ifndef RNN_BF16_H
#define RNN_BF16_H
/* bf16 matrix products for processors with AVX512_BF16 (AMD Zen 4, Intel Cooper Lake, Sapphire
   Rapids and later): operands rounded to bfloat16 (round to nearest even; the instruction's
   conversion), products accumulated in fp32 by vdpbf16ps, which does two multiply-adds per lane
   and so twice the work of an fp32 FMA per instruction, from half the bytes.

   Layouts. A bf16 value is stored as uint16_t (the upper half of the fp32 bits). The left
   operand A is bf16, row-major, with its K columns padded by a zero to an even count (the
   conversions below write that zero). The right operand B[K, N] is packed by rnn_pack_b_bf16
   into panels of 16 columns (zero-padded to a multiple of 32 columns) holding K in pairs:
   element (k, j) of panel p sits at p * K2 * 16 + (k / 2) * 32 + j * 2 + k % 2, K2 = K rounded
   up to even; one vdpbf16ps then multiplies a broadcast pair (A[r][2q], A[r][2q + 1]) with the
   pairs of 16 columns.

   The products run on every processor: where rnn_bf16_supported() is false they take the
   portable kernel (below), which emulates them without bf16 instructions (training slower than
   fp32). */
#include <stddef.h>
#include <stdint.h>

/* Whether the processor has AVX512_BF16 and the level in use (rnn_isa(), with the RNN_ISA cap)
   is avx512. */
int rnn_bf16_supported(void);

/* fp32 -> bf16, round to nearest even, as vcvtneps2bf16 does it (denormal inputs become signed
   zeros, NaN stays NaN). */
uint16_t rnn_float_to_bf16(float x);
/* bf16 -> fp32 (exact). */
float rnn_bf16_to_float(uint16_t x);

/* dst[r][c] = bf16(src[r][c]) for r < rows, c < cols (row strides lds, ldd); when cols is odd
   dst[r][cols] = 0, so a row of dst has an even count of valid columns. ldd >= cols rounded up
   to even. */
void rnn_to_bf16(const float *src, int rows, int cols, int lds, uint16_t *dst, int ldd);

/* dst[c][r] = bf16(src[r][c]): the transpose of src [rows, cols] as a bf16 [cols, rows] matrix
   with row stride ldd; when rows is odd dst[c][rows] = 0. ldd >= rows rounded up to even. */
void rnn_to_bf16_transposed(const float *src, int rows, int cols, int lds, uint16_t *dst, int ldd);

/* Number of uint16_t rnn_pack_b_bf16 writes for a K x N operand. */
size_t rnn_packed_bf16_size(int k, int n);

/* Packs B[K, N] as bf16 in the layout above.
   transposed == 0: B[k][n] = src[k * ld + n]; transposed == 1: B[k][n] = src[n * ld + k]. */
void rnn_pack_b_bf16(const float *src, int ld, int k, int n, int transposed, uint16_t *packed);

/* Three kernels compute the products below from the same packed operands. "dot" multiplies pairs
   with vdpbf16ps. "widen" widens each bf16 value to fp32 (exact) and uses FMAs, accumulating C,
   then k = 0, 1, ... in the order of rnn_gemm_packed; it is for processors on which vdpbf16ps
   does fewer multiply-adds per cycle than the FMAs (Intel's, where it issues once per two cycles:
   half the rate of fp32, where AMD Zen 4 has twice). "portable" is the widening kernel's
   arithmetic without bf16 instructions (the same bits on every machine as "widen" gives), for
   processors without AVX512_BF16 (or with RNN_ISA below avx512), where it is the only one: at
   the avx512 level the widening kernel itself (it needs only AVX-512 F, BW and VL), at avx2 the
   fp32 per-step kernel (rnn_gemm_packed) on operands widened into per-thread scratch, at
   generic a C loop (fmaf); its matrix-vector product widens in registers (AVX2) or loops. The kernel in
   use is RNN_BF16_KERNEL=dot|widen|portable when set (an unknown value, or dot or widen where
   they cannot run: one line and exit status 2), else portable where rnn_bf16_supported() is
   false, else the faster of dot and widen by a measurement of both instructions' throughput,
   taken once per process (about a millisecond) on first use. */
enum { RNN_BF16_DOT = 0, RNN_BF16_WIDEN = 1, RNN_BF16_PORTABLE = 2 };
int rnn_bf16_kernel(void);
/* "dot", "widen" or "portable". */
const char *rnn_bf16_kernel_name(int kernel);
/* The measurement behind the choice, in multiply-adds per second on one core: vdpbf16ps and
   vfmadd231ps on 512-bit registers; both zero when RNN_BF16_KERNEL chose or nothing was measured. */
void rnn_bf16_kernel_rates(double *dot, double *fma);

/* C[M, N] += A[M, K] * B: A bf16 (row stride lda, K padded to even as above), B packed by
   rnn_pack_b_bf16(..., k, n, ...), C fp32 (row stride ldc). Blocks of 8 rows x 32 columns,
   K in blocks of 256 so that a block of B stays in the L2 cache. */
void rnn_gemm_bf16(int m, int n, int k, const uint16_t *a, int lda, const uint16_t *packed, float *c, int ldc);

/* C[M, N] += P^T * B: the left operand is the transpose of P[K, M] packed by
   rnn_pack_b_bf16(..., k, m, ...), B packed by rnn_pack_b_bf16(..., k, n, ...): a product over
   the rows of two packed operands, as in a weight gradient dG^T X, with no transposed copy. */
void rnn_gemm_bf16_at(int m, int n, int k, const uint16_t *packed_a, const uint16_t *packed, float *c, int ldc);

/* The two products above with the kernel named (RNN_BF16_DOT or RNN_BF16_WIDEN only where
   rnn_bf16_supported(); RNN_BF16_PORTABLE anywhere). */
void rnn_gemm_bf16_using(int kernel, int m, int n, int k, const uint16_t *a, int lda, const uint16_t *packed, float *c, int ldc);
void rnn_gemm_bf16_at_using(int kernel, int m, int n, int k, const uint16_t *packed_a, const uint16_t *packed, float *c, int ldc);

/* The portable kernel in the form of level isa (RNN_ISA_*, capped at rnn_isa_supported()), for
   tests that check its forms against each other bit for bit; the products above use the form of
   rnn_isa(). With packed_a the product is rnn_gemm_bf16_at's (a and lda unused). */
void rnn_gemm_bf16_portable_at_level(int isa, int m, int n, int k, const uint16_t *a, int lda, const uint16_t *packed_a,
                                     const uint16_t *packed, float *c, int ldc);

/* y[N] += x[K] * B, x bf16 (K padded to even), B packed by rnn_pack_b_bf16(..., k, n, ...):
   the matrix-vector product of batch-1 generation, four panels per pass, with vdpbf16ps whenever
   the kernel in use is dot or widen (bit-identical to rnn_gemm_bf16_using(RNN_BF16_DOT, 1, ...)),
   else the portable kernel (bit-identical to rnn_gemm_bf16_using(RNN_BF16_PORTABLE, 1, ...)). */
void rnn_matvec_bf16(int n, int k, const uint16_t *x, const uint16_t *packed, float *y);

#endif
