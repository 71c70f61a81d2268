import Testing
import RNNKernels
@testable import RecurrentCore

/// The packed levels this processor can run (AVX-512 and/or AVX2), highest first.
let packedLevels = ISALevel.allCases.filter { $0 >= .avx2 && $0 <= .supported }.reversed()

/// Runs the packed product `c0 + A W^T` (transposed) or `c0 + A W` at `level`.
func packedProduct(level: ISALevel, m: Int, n: Int, k: Int, a: [Float], w: [Float], c0: [Float], transposed: Bool) -> [Float] {
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
                rnn_gemm_packed(Int32(level.rawValue), Int32(m), Int32(n), Int32(k), ap.baseAddress!, Int32(k), pp.baseAddress!, cp.baseAddress!, Int32(n))
            }
        }
    }
    return c
}

/// The packed per-step product against a plain Float64 triple loop, over shapes with row and
/// column tails (M not a multiple of 6 or 8, N not a multiple of 8, 16 or 32) and both packing
/// orientations, for each variant this processor runs.
@Suite struct PackedKernelTests {
    static let shapes = [(1, 5, 5), (3, 20, 5), (9, 37, 13), (7, 45, 6), (16, 1024, 256), (17, 256, 1024), (8, 64, 3), (13, 8, 4)]

    @Test(.enabled(if: !packedLevels.isEmpty), arguments: shapes)
    func packedProductMatchesReference(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var rng = SeededRandom(seed: UInt64(m * 1000 + n + k))
        let a = randomArray(m * k, &rng)
        let w = randomArray(n * k, &rng)          // stored [N, K]: the product uses W^T
        let c0 = randomArray(m * n, &rng)
        for level in packedLevels {
            for transposed in [true, false] {
                // transposed: B = W^T with W [N, K]; otherwise B = W read as [K, N].
                let c = packedProduct(level: level, m: m, n: n, k: k, a: a, w: w, c0: c0, transposed: transposed)
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
                #expect(worst < 1e-4, "\(level) m \(m) n \(n) k \(k) transposed \(transposed): max error \(worst)")
            }
        }
    }

    /// Both variants add the products of each element in the same order with one fused
    /// multiply-add each, so their results agree bit for bit.
    @Test(.enabled(if: ISALevel.supported >= .avx512), arguments: shapes)
    func avx2AndAVX512AreBitIdentical(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var rng = SeededRandom(seed: UInt64(7 * m + n * k))
        let a = randomArray(m * k, &rng), w = randomArray(n * k, &rng), c0 = randomArray(m * n, &rng)
        let wide = packedProduct(level: .avx512, m: m, n: n, k: k, a: a, w: w, c0: c0, transposed: true)
        let narrow = packedProduct(level: .avx2, m: m, n: n, k: k, a: a, w: w, c0: c0, transposed: true)
        #expect(wide.map(\.bitPattern) == narrow.map(\.bitPattern))
    }
}
