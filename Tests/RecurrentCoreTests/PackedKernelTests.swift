import Testing
import RNNKernels
@testable import RecurrentCore

/// The packed per-step product against a plain Float64 triple loop, over shapes with row and
/// column tails (M not a multiple of 8, N not a multiple of 32) and both packing orientations.
@Suite struct PackedKernelTests {
    @Test(.enabled(if: PackedKernels.available), arguments: [(1, 5, 5), (3, 20, 5), (9, 37, 13), (16, 1024, 256), (17, 256, 1024), (8, 64, 3)])
    func packedProductMatchesReference(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var rng = SeededRandom(seed: UInt64(m * 1000 + n + k))
        let a = randomArray(m * k, &rng)
        let w = randomArray(n * k, &rng)          // stored [N, K]: the product uses W^T
        let c0 = randomArray(m * n, &rng)
        for transposed in [true, false] {
            // transposed: B = W^T with W [N, K]; otherwise B = W read as [K, N].
            var packed = [Float](repeating: .nan, count: rnn_packed_size(Int32(k), Int32(n)))
            w.withUnsafeBufferPointer { wp in
                packed.withUnsafeMutableBufferPointer { pp in
                    rnn_pack_b(wp.baseAddress!, Int32(transposed ? k : n), Int32(k), Int32(n), transposed ? 1 : 0, pp.baseAddress!)
                }
            }
            var c = c0
            a.withUnsafeBufferPointer { ap in
                packed.withUnsafeBufferPointer { pp in
                    c.withUnsafeMutableBufferPointer { cp in
                        rnn_gemm_packed(Int32(m), Int32(n), Int32(k), ap.baseAddress!, Int32(k), pp.baseAddress!, cp.baseAddress!, Int32(n))
                    }
                }
            }
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    var s = Double(c0[i * n + j])
                    for kk in 0..<k {
                        let b = transposed ? w[j * k + kk] : w[kk * n + j]
                        s += Double(a[i * k + kk]) * Double(b)
                    }
                    worst = max(worst, abs(s - Double(c[i * n + j])))
                }
            }
            #expect(worst < 1e-4, "m \(m) n \(n) k \(k) transposed \(transposed): max error \(worst)")
        }
    }
}
