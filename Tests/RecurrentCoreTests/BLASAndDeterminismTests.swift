import Testing
@testable import RecurrentCore

/// `BLAS.gemm` in every transpose combination (and the single-row path that goes through
/// sgemv) against a Float64 triple loop, with row strides larger than the rows.
@Suite struct GEMMTests {
    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)], [1, 5])
    func allTransposeCombinations(trans: (Bool, Bool), m: Int) {
        let (ta, tb) = trans
        let n = 7, k = 6, pad = 3
        var rng = SeededRandom(seed: UInt64(m * 10 + (ta ? 2 : 0) + (tb ? 1 : 0)))
        // Stored shapes: A is [m, k] or [k, m]; B is [k, n] or [n, k]; each row padded by `pad`.
        let aRows = ta ? k : m, aCols = ta ? m : k
        let bRows = tb ? n : k, bCols = tb ? k : n
        let lda = aCols + pad, ldb = bCols + pad, ldc = n + pad
        let a = randomArray(aRows * lda, &rng), b = randomArray(bRows * ldb, &rng)
        let c0 = randomArray(m * ldc, &rng)
        var c = c0
        let alpha: Float = 0.7, beta: Float = 0.3
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: lda,
                              b: bp.baseAddress!, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc)
                }
            }
        }
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for kk in 0..<k {
                    let av = ta ? a[kk * lda + i] : a[i * lda + kk]
                    let bv = tb ? b[j * ldb + kk] : b[kk * ldb + j]
                    s += Double(av) * Double(bv)
                }
                let expected = Double(alpha) * s + Double(beta) * Double(c0[i * ldc + j])
                #expect(abs(expected - Double(c[i * ldc + j])) < 1e-5, "C[\(i), \(j)] transA \(ta) transB \(tb)")
            }
            // Padding columns of C are untouched.
            for j in n..<ldc { #expect(c[i * ldc + j] == c0[i * ldc + j]) }
        }
    }
}

/// Same seed, same bits: two trainings of the same model configuration give bit-identical
/// losses and parameters, with data-parallel shards and dropout.
@Suite struct DeterminismTests {
    @Test func sameSeedGivesBitIdenticalTraining() {
        func run(seed: UInt64) -> ([Double], [Float]) {
            let config = LanguageModelConfig(cell: .lstm, layers: 2, hidden: 12, embedding: 6, vocabSize: 9, dropout: 0.3)
            let model = RecurrentLanguageModel(config: config, seed: seed, threads: 2)
            let adam = Adam(parameters: model.parameters, learningRate: 1e-2)
            var rng = SeededRandom(seed: 77)
            var losses: [Double] = []
            for step in 0..<4 {
                let x = (0..<(4 * 10)).map { _ in Int32(rng.nextInt(below: 9)) }
                let y = (0..<(4 * 10)).map { _ in Int32(rng.nextInt(below: 9)) }
                losses.append(model.trainStep(inputs: x, targets: y, batch: 4, steps: 10, carryState: true, seed: UInt64(step)))
                clipGradientNorm(model.parameters, maxNorm: 5)
                adam.step()
            }
            return (losses, model.parameters.flatMap(\.values))
        }
        let a = run(seed: 3), b = run(seed: 3), c = run(seed: 4)
        #expect(a.0.map(\.bitPattern) == b.0.map(\.bitPattern))
        #expect(a.1.map(\.bitPattern) == b.1.map(\.bitPattern))
        #expect(a.0 != c.0, "a different seed must give a different run")
    }

    @Test func generatorIsStablePerSeed() {
        // The first outputs of seed 0 are fixed forever: checkpoints and data splits depend on them.
        var r1 = SeededRandom(seed: 12345), r2 = SeededRandom(seed: 12345), r3 = SeededRandom(seed: 12346)
        let a = (0..<8).map { _ in r1.next() }, b = (0..<8).map { _ in r2.next() }, c = (0..<8).map { _ in r3.next() }
        #expect(a == b)
        #expect(a != c)
        var u = SeededRandom(seed: 5)
        for _ in 0..<10_000 {
            let f = u.nextFloat()
            #expect(f >= 0 && f < 1)
        }
    }
}
