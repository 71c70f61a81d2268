import RNNKernels

/// Matrix products through OpenBLAS, row-major. OpenBLAS is loaded at start-up with the kernel
/// set that the processor's features call for (see `SystemInfo` and `RNNBLAS.h`).
public enum BLAS {
    /// `C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C`, row-major, where `op(X)` is
    /// `X` or its transpose. `lda`/`ldb`/`ldc` are the row strides of the stored matrices
    /// (A is stored `[m, k]` or, transposed, `[k, m]`).
    @inline(__always)
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            if beta == 0 {
                for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
            } else if beta != 1 {
                for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            }
            return
        }
        if m == 1 && !transA {
            // A single row (batch-1 generation): matrix-vector product, no packing.
            if transB {
                rnn_sgemv(0, Int32(n), Int32(k), alpha, b, Int32(ldb), a, beta, c)
            } else {
                rnn_sgemv(1, Int32(k), Int32(n), alpha, b, Int32(ldb), a, beta, c)
            }
            return
        }
        rnn_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Adds the column sums of `a[rows, cols]` (row stride `lda`) into `out[cols]`.
    @inline(__always)
    public static func addColumnSums(_ a: UnsafePointer<Float>, rows: Int, cols: Int, lda: Int,
                                     into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = a + r * lda
            for j in 0..<cols { out[j] += row[j] }
        }
    }

    /// Number of threads OpenBLAS uses for one call.
    public static var threads: Int {
        get { Int(rnn_blas_threads()) }
        set { rnn_blas_set_threads(Int32(max(1, newValue))) }
    }
}
