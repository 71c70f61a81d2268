#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import RecurrentCore

// Finite-difference checks of the feed-forward layers and the losses. The losses these tests
// differentiate are computed in Float64 from the layers' Float32 outputs; the tolerance is the
// one of `expectClose` (see GradientCheckTests.swift). Where a closed form exists the analytic
// gradient is also compared with it, computed here in Float64, at a much tighter tolerance.

/// Sum of `a[i] * b[i]` in Float64 over two arrays.
private func dot64(_ a: [Float], _ b: [Float]) -> Double {
    var s = 0.0
    for i in 0..<a.count { s += Double(a[i]) * Double(b[i]) }
    return s
}

@Suite struct LinearGradientTests {
    /// `[rows, in] -> [rows, out]` with L = sum(y * R): checks dW, db and dX.
    @Test func weightBiasAndInputGradients() {
        let rows = 5, nIn = 4, nOut = 3
        var rng = SeededRandom(seed: 7)
        let layer = Linear(inFeatures: nIn, outFeatures: nOut, rng: &rng)
        var x = randomArray(rows * nIn, &rng)
        let r = randomArray(rows * nOut, &rng)

        func loss() -> Double {
            var y = [Float](repeating: 0, count: rows * nOut)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { layer.forward(input: xp.baseAddress!, rows: rows, output: $0.baseAddress!) }
            }
            return dot64(y, r)
        }

        layer.zeroGrad()
        var gx = [Float](repeating: 0, count: rows * nIn)
        x.withUnsafeBufferPointer { xp in
            r.withUnsafeBufferPointer { rp in
                gx.withUnsafeMutableBufferPointer {
                    layer.backward(input: xp.baseAddress!, gradOutput: rp.baseAddress!, rows: rows, gradInput: $0.baseAddress!)
                }
            }
        }
        checkParameters(layer.parameters, label: "Linear", loss: loss)
        checkElements(count: x.count, get: { x[$0] }, set: { x[$0] = $1 }, analytic: { gx[$0] }, label: "Linear input", loss: loss)

        // Closed forms: db = column sums of R, dX = R W.
        let b = layer.bias!.gradient
        let w = layer.weight.values
        for o in 0..<nOut {
            var s = 0.0
            for n in 0..<rows { s += Double(r[n * nOut + o]) }
            #expect(abs(Double(b[o]) - s) < 1e-5, "bias[\(o)] \(b[o]) vs \(s)")
        }
        for n in 0..<rows {
            for i in 0..<nIn {
                var s = 0.0
                for o in 0..<nOut { s += Double(r[n * nOut + o]) * Double(w[o * nIn + i]) }
                #expect(abs(Double(gx[n * nIn + i]) - s) < 1e-5, "dX[\(n), \(i)]")
            }
        }
    }

    /// Without bias the forward is `x W^T`; backward accumulates into the weight gradient and,
    /// with `accumulate`, adds to an existing input gradient.
    @Test func noBiasAccumulates() {
        let rows = 3, nIn = 2, nOut = 2
        var rng = SeededRandom(seed: 3)
        let layer = Linear(inFeatures: nIn, outFeatures: nOut, bias: false, rng: &rng)
        #expect(layer.bias == nil)
        #expect(layer.namedParameters.map(\.name) == ["weight"])
        layer.weight.values = [1, 2, 3, 4]          // W = [[1, 2], [3, 4]]
        let x: [Float] = [1, 0, 0, 1, 2, -1]
        var y = [Float](repeating: -7, count: rows * nOut)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { layer.forward(input: xp.baseAddress!, rows: rows, output: $0.baseAddress!) }
        }
        // Rows of x W^T by hand: [1,0] -> [1,3]; [0,1] -> [2,4]; [2,-1] -> [0,2].
        #expect(y == [1, 3, 2, 4, 0, 2])

        let dy: [Float] = [1, 0, 0, 1, 1, 1]
        var gx = [Float](repeating: 10, count: rows * nIn)
        layer.zeroGrad()
        for _ in 0..<2 {
            x.withUnsafeBufferPointer { xp in
                dy.withUnsafeBufferPointer { dp in
                    gx.withUnsafeMutableBufferPointer {
                        layer.backward(input: xp.baseAddress!, gradOutput: dp.baseAddress!, rows: rows,
                                       gradInput: $0.baseAddress!, accumulate: true)
                    }
                }
            }
        }
        // dW = dY^T X = [[1*1 + 0 + 1*2, 0 + 0 + 1*-1], [0 + 1*0 + 1*2, 0 + 1 + -1]] = [[3, -1], [2, 0]], twice.
        #expect(layer.weight.gradient == [6, -2, 4, 0])
        // dX = dY W: [1,0] -> [1,2]; [0,1] -> [3,4]; [1,1] -> [4,6]; added twice onto 10.
        #expect(gx == [12, 14, 16, 18, 18, 22])
    }
}

@Suite struct EmbeddingGradientTests {
    /// Ids with repeats: the gradient of a repeated row is the sum over its positions; rows never
    /// looked up get zero gradient.
    @Test func weightGradientWithRepeatedIds() {
        let vocab = 6, dim = 3
        var rng = SeededRandom(seed: 11)
        let emb = Embedding(vocabularySize: vocab, dimension: dim, rng: &rng)
        let ids: [Int32] = [1, 3, 1, 0, 1, 5, 3]
        let r = randomArray(ids.count * dim, &rng)

        func lookup() -> [Float] {
            var y = [Float](repeating: 0, count: ids.count * dim)
            ids.withUnsafeBufferPointer { ip in
                y.withUnsafeMutableBufferPointer { emb.forward(ids: ip.baseAddress!, count: ids.count, output: $0.baseAddress!) }
            }
            return y
        }
        let y = lookup()
        for (n, id) in ids.enumerated() {
            for j in 0..<dim { #expect(y[n * dim + j] == emb.weight.values[Int(id) * dim + j]) }
        }

        emb.zeroGrad()
        ids.withUnsafeBufferPointer { ip in
            r.withUnsafeBufferPointer { emb.backward(ids: ip.baseAddress!, count: ids.count, gradOutput: $0.baseAddress!) }
        }
        let analytic = emb.weight.gradient
        for i in 0..<emb.weight.count {
            let old = emb.weight.value[i]
            emb.weight.value[i] = old + fdStep; let lp = dot64(lookup(), r)
            emb.weight.value[i] = old - fdStep; let lm = dot64(lookup(), r)
            emb.weight.value[i] = old
            expectClose(analytic[i], Float((lp - lm) / Double(2 * fdStep)), "Embedding weight[\(i)]")
        }
        // Row 1 appears at positions 0, 2, 4: its gradient is the sum of those rows of R.
        for j in 0..<dim {
            let expected = Double(r[0 * dim + j]) + Double(r[2 * dim + j]) + Double(r[4 * dim + j])
            #expect(abs(Double(analytic[1 * dim + j]) - expected) < 1e-6)
        }
        // Rows 2 and 4 are never used.
        for row in [2, 4] { for j in 0..<dim { #expect(analytic[row * dim + j] == 0) } }
    }
}

@Suite struct SoftmaxCrossEntropyTests {
    static let rows = 6, classes = 5
    // Row 2 and row 4 are padding (weight 0); row 4 carries an invalid target that must be ignored.
    static let targets: [Int32] = [0, 4, 2, 1, -1, 3]
    static let weights: [Float] = [1, 0.5, 0, 2, 0, 1]

    /// Independent Float64 loss: sum_n w_n (log sum_j e^{z_nj} - z_{n,t_n}) / sum_n w_n, with the
    /// log-sum-exp shifted by the row maximum.
    static func referenceLoss(_ z: [Float]) -> Double {
        var total = 0.0, wsum = 0.0
        for n in 0..<rows {
            let w = Double(weights[n])
            wsum += w
            if w == 0 { continue }
            let row = (0..<classes).map { Double(z[n * classes + $0]) }
            let m = row.max()!
            let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            total += w * (lse - row[Int(targets[n])])
        }
        return total / wsum
    }

    static func compute(_ z: [Float], grad: Bool) -> (loss: Double, wsum: Double, grad: [Float], rowLoss: [Float]) {
        var g = [Float](repeating: .nan, count: z.count)
        var rl = [Float](repeating: .nan, count: rows)
        let result = z.withUnsafeBufferPointer { zp in
            targets.withUnsafeBufferPointer { tp in
                weights.withUnsafeBufferPointer { wp in
                    g.withUnsafeMutableBufferPointer { gp in
                        rl.withUnsafeMutableBufferPointer { rp in
                            SoftmaxCrossEntropy.compute(logits: zp.baseAddress!, rows: rows, classes: classes, targets: tp.baseAddress!,
                                                        weights: wp.baseAddress!, gradLogits: grad ? gp.baseAddress! : nil,
                                                        rowLoss: rp.baseAddress!)
                        }
                    }
                }
            }
        }
        return (result.loss, result.weightSum, g, rl)
    }

    @Test func lossValueAgainstFloat64LogSumExp() {
        var rng = SeededRandom(seed: 5)
        let z = (0..<(Self.rows * Self.classes)).map { _ in rng.uniform(-3, 3) }
        let withGrad = Self.compute(z, grad: true)
        let noGrad = Self.compute(z, grad: false)
        let ref = Self.referenceLoss(z)
        #expect(abs(withGrad.loss - ref) < 1e-6 * max(1, ref), "loss \(withGrad.loss) vs reference \(ref)")
        #expect(abs(noGrad.loss - ref) < 1e-6 * max(1, ref), "loss without gradient \(noGrad.loss) vs reference \(ref)")
        #expect(withGrad.wsum == 4.5)
        // Per-row NLL: zero for padding rows, the Float64 value otherwise.
        for n in 0..<Self.rows {
            if Self.weights[n] == 0 {
                #expect(withGrad.rowLoss[n] == 0)
                #expect(noGrad.rowLoss[n] == 0)
                continue
            }
            let row = (0..<Self.classes).map { Double(z[n * Self.classes + $0]) }
            let nll = log(row.reduce(0) { $0 + exp($1) }) - row[Int(Self.targets[n])]
            #expect(abs(Double(withGrad.rowLoss[n]) - nll) < 1e-5, "row \(n) nll")
            #expect(abs(Double(noGrad.rowLoss[n]) - nll) < 1e-5, "row \(n) nll without gradient")
        }
    }

    /// Logits around ±1000 would overflow a naive softmax; the shifted computation must give the
    /// same loss and gradient as the unshifted logits (softmax is shift invariant per row).
    @Test func largeLogitsAreStable() {
        var rng = SeededRandom(seed: 6)
        let z = (0..<(Self.rows * Self.classes)).map { _ in rng.uniform(-3, 3) }
        let shifted = z.enumerated().map { $0.element + ($0.offset / Self.classes % 2 == 0 ? 1000 : -1000) }
        let a = Self.compute(z, grad: true), b = Self.compute(shifted, grad: true)
        #expect(b.loss.isFinite)
        // Float32 spacing at 1000 is 6e-5; the shifted logits lose that much of each value.
        #expect(abs(a.loss - b.loss) < 5e-4)
        for i in 0..<z.count { #expect(abs(a.grad[i] - b.grad[i]) < 5e-4, "grad[\(i)]") }
    }

    @Test func gradientWithZeroWeights() {
        var rng = SeededRandom(seed: 8)
        var z = (0..<(Self.rows * Self.classes)).map { _ in rng.uniform(-2, 2) }
        let analytic = Self.compute(z, grad: true).grad

        // Closed form in Float64: w_n / W * (softmax(z_n) - onehot(t_n)), zero on padding rows.
        let wsum = Self.weights.reduce(0.0) { $0 + Double($1) }
        for n in 0..<Self.rows {
            let row = (0..<Self.classes).map { Double(z[n * Self.classes + $0]) }
            let s = row.reduce(0) { $0 + exp($1) }
            for j in 0..<Self.classes {
                let w = Double(Self.weights[n])
                let expected = w == 0 ? 0 : w / wsum * (exp(row[j]) / s - (j == Int(Self.targets[n]) ? 1 : 0))
                #expect(abs(Double(analytic[n * Self.classes + j]) - expected) < 1e-6, "grad[\(n), \(j)]")
            }
        }
        // Central differences of the loss computed without the gradient path.
        for i in 0..<z.count {
            let old = z[i]
            z[i] = old + fdStep; let lp = Self.compute(z, grad: false).loss
            z[i] = old - fdStep; let lm = Self.compute(z, grad: false).loss
            z[i] = old
            expectClose(analytic[i], Float((lp - lm) / Double(2 * fdStep)), "cross-entropy logits[\(i)]")
        }
    }

    /// The batch-first convenience gives the same loss and gradient with the same shape.
    @Test func tensorConvenienceMatches() {
        var rng = SeededRandom(seed: 9)
        let z = (0..<(Self.rows * Self.classes)).map { _ in rng.uniform(-2, 2) }
        let logits = Tensor(shape: [2, 3, Self.classes], values: z)
        let t = SoftmaxCrossEntropy.compute(logits: logits, targets: Self.targets, weights: Self.weights)
        let p = Self.compute(z, grad: true)
        #expect(t.grad.shape == [2, 3, Self.classes])
        #expect(t.grad.values == p.grad)
        #expect(t.loss == p.loss)
        // All weights zero: loss 0, gradient 0, nothing divided by zero.
        let zero = SoftmaxCrossEntropy.compute(logits: logits, targets: Self.targets, weights: [Float](repeating: 0, count: 6))
        #expect(zero.loss == 0)
        #expect(zero.grad.values.allSatisfy { $0 == 0 })
    }
}

@Suite struct MeanSquaredErrorTests {
    @Test func valueAndGradient() {
        var rng = SeededRandom(seed: 12)
        var x = randomArray(7, &rng)
        let y = randomArray(7, &rng)
        let (loss, grad) = MeanSquaredError.compute(prediction: x, target: y)
        var ref = 0.0
        for i in 0..<x.count { let d = Double(x[i]) - Double(y[i]); ref += d * d }
        ref /= Double(x.count)
        #expect(abs(loss - ref) < 1e-6)
        for i in 0..<x.count {
            let old = x[i]
            x[i] = old + fdStep; let lp = MeanSquaredError.compute(prediction: x, target: y).loss
            x[i] = old - fdStep; let lm = MeanSquaredError.compute(prediction: x, target: y).loss
            x[i] = old
            expectClose(grad[i], Float((lp - lm) / Double(2 * fdStep)), "MSE prediction[\(i)]")
            #expect(abs(Double(grad[i]) - 2 * (Double(x[i]) - Double(y[i])) / 7) < 1e-6)
        }
        // By hand: ((1-0)^2 + (2-4)^2) / 2 = 2.5; gradient [2*1/2, 2*(-2)/2] = [1, -2].
        let small = MeanSquaredError.compute(prediction: [1, 2], target: [0, 4])
        #expect(small.loss == 2.5)
        #expect(small.grad == [1, -2])
        #expect(MeanSquaredError.compute(prediction: [], target: []).loss == 0)
    }
}

@Suite struct DropoutTests {
    static func run(_ d: Dropout, _ x: [Float], training: Bool, seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed)
        var y = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { d.forward(input: xp.baseAddress!, count: x.count, output: $0.baseAddress!, training: training, rng: &rng) }
        }
        return y
    }

    static func back(_ d: Dropout, _ g: [Float], training: Bool) -> [Float] {
        var out = [Float](repeating: .nan, count: g.count)
        g.withUnsafeBufferPointer { gp in
            out.withUnsafeMutableBufferPointer { d.backward(gradOutput: gp.baseAddress!, count: g.count, gradInput: $0.baseAddress!, training: training) }
        }
        return out
    }

    @Test func evaluationIsIdentity() {
        var rng = SeededRandom(seed: 1)
        let x = randomArray(100, &rng), g = randomArray(100, &rng)
        let d = Dropout(probability: 0.5)
        #expect(Self.run(d, x, training: false, seed: 2) == x)
        #expect(Self.back(d, g, training: false) == g)
        // p = 0 in training is the identity too.
        let none = Dropout(probability: 0)
        #expect(Self.run(none, x, training: true, seed: 2) == x)
        #expect(Self.back(none, g, training: true) == g)
    }

    @Test(arguments: [Float(0.1), 0.3, 0.5])
    func trainingFractionAndScale(p: Float) {
        let n = 10_000
        var rng = SeededRandom(seed: 21)
        let x = (0..<n).map { _ in rng.uniform(0.5, 1.5) }     // never zero
        let d = Dropout(probability: p)
        let y = Self.run(d, x, training: true, seed: 99)
        let dropped = y.filter { $0 == 0 }.count
        let fraction = Double(dropped) / Double(n)
        // Binomial standard deviation sqrt(p (1 - p) / n) <= 0.005; allow 5 of them.
        #expect(abs(fraction - Double(p)) < 0.025, "dropped fraction \(fraction) for p = \(p)")
        let scale = 1 / (1 - Double(p))
        var badKept = 0
        for i in 0..<n where y[i] != 0 {
            let expected = Double(x[i]) * scale
            if !(abs(Double(y[i]) - expected) <= 1e-6 * expected) { badKept += 1 }
        }
        #expect(badKept == 0, "\(badKept) kept values are not input / (1 - p)")

        // Backward uses the same mask: dropped positions get zero gradient, kept ones g / (1 - p).
        let g = (0..<n).map { _ in rng.uniform(-1, 1) }
        let gx = Self.back(d, g, training: true)
        var badGrad = 0
        for i in 0..<n {
            let expected = y[i] == 0 ? 0 : Double(g[i]) * scale
            if !(abs(Double(gx[i]) - expected) <= 1e-6 * abs(expected)) { badGrad += 1 }
        }
        #expect(badGrad == 0, "\(badGrad) input gradients do not follow the forward mask")
    }

    /// Forward in place gives the same result as out of place with the same random stream, and
    /// backward in place reproduces the mask.
    @Test func inPlaceMatchesOutOfPlace() {
        var rng = SeededRandom(seed: 4)
        let x = (0..<257).map { _ in rng.uniform(0.5, 1.5) }
        let d = Dropout(probability: 0.4)
        let y = Self.run(d, x, training: true, seed: 77)
        var z = x
        var r = SeededRandom(seed: 77)
        z.withUnsafeMutableBufferPointer { zp in
            d.forward(input: UnsafePointer(zp.baseAddress!), count: zp.count, output: zp.baseAddress!, training: true, rng: &r)
        }
        #expect(z == y)
        var g = [Float](repeating: 1, count: x.count)
        g.withUnsafeMutableBufferPointer { gp in
            d.backward(gradOutput: UnsafePointer(gp.baseAddress!), count: gp.count, gradInput: gp.baseAddress!, training: true)
        }
        for i in 0..<x.count { #expect((g[i] == 0) == (y[i] == 0)) }
    }
}
