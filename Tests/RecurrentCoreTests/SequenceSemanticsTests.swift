import Testing
@testable import RecurrentCore

// Semantics of the recurrent stack that PyTorch users rely on: packed (variable-length)
// batches behave like each sequence run alone, states can be carried across calls, one-hot
// input equals the dense one-hot matrix, the batch-first API equals the time-major one, and
// the initialisation options do what they promise.

/// Outputs `[T, B, D*H]` and final state of one time-major forward pass (copied out).
private struct Run {
    var output: [Float]
    var state: RecurrentState
}

private func forward(_ stack: RecurrentStack, _ x: [Float], steps T: Int, batch B: Int, lengths: [Int]? = nil,
                     initial: RecurrentState? = nil) -> Run {
    var rng = SeededRandom(seed: 0)
    let out = x.withUnsafeBufferPointer { xp in
        let y = stack.forward(input: .dense(xp.baseAddress!, features: stack.inputSize), steps: T, batch: B,
                              lengths: lengths, initial: initial, training: false, rng: &rng)
        return Array(UnsafeBufferPointer(start: y, count: T * B * stack.outputSize))
    }
    return Run(output: out, state: stack.finalState)
}

/// Backward of the last forward: returns the input gradient `[T, B, I]` and the initial-state
/// gradient; parameter gradients are left in the parameters (zeroed first).
private func backward(_ stack: RecurrentStack, _ x: [Float], gradOutput: [Float], gradFinal: RecurrentState?)
    -> (input: [Float], initial: RecurrentState) {
    stack.zeroGrad()
    var gx = [Float](repeating: .nan, count: x.count)
    let g0 = x.withUnsafeBufferPointer { xp in
        gradOutput.withUnsafeBufferPointer { gp in
            gx.withUnsafeMutableBufferPointer { gxp in
                stack.backward(input: .dense(xp.baseAddress!, features: stack.inputSize), gradOutput: gp.baseAddress!,
                               gradFinal: gradFinal, gradInput: gxp.baseAddress!)
            }
        }
    }
    return (gx, g0)
}

/// Values of `[K, B, F]` at batch index b, as `[K, 1, F]`.
private func sliceBatch(_ a: [Float], _ K: Int, _ B: Int, _ F: Int, _ b: Int, rows: Int? = nil) -> [Float] {
    var out: [Float] = []
    for k in 0..<(rows ?? K) { out += a[((k * B + b) * F)..<((k * B + b + 1) * F)] }
    return out
}

private func expectNear(_ a: [Float], _ b: [Float], _ tol: Float, _ what: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "\(what): \(a.count) vs \(b.count) values", sourceLocation: sourceLocation)
    var worst: Float = 0, at = 0
    for i in 0..<min(a.count, b.count) {
        let d = abs(a[i] - b[i])
        if !(d <= worst) { worst = d; at = i }      // also catches NaN
    }
    #expect(worst <= tol, "\(what): max difference \(worst) at [\(at)]", sourceLocation: sourceLocation)
}

private func randomState(_ cell: CellKind, _ n: Int, _ rng: inout SeededRandom) -> RecurrentState {
    RecurrentState(h: randomArray(n, &rng), c: cell.hasCellState ? randomArray(n, &rng) : nil)
}

@Suite struct SequenceSemanticsTests {
    /// Lengths [5, 3, 1] through a bidirectional two-layer stack: each sequence's outputs,
    /// final state and gradients equal those of the sequence run alone with T = its length;
    /// padded steps output zeros and their (garbage) inputs have no effect.
    @Test(arguments: CellKind.allCases)
    func packedBatchEqualsSequencesAlone(cell: CellKind) {
        let T = 5, B = 3, I = 3, H = 4, L = 2, D = 2, DH = D * H
        let lengths = [5, 3, 1]
        var rng = SeededRandom(seed: 31)
        let stack = RecurrentStack(cell: cell, inputSize: I, hiddenSize: H, numLayers: L, bidirectional: true, rng: &rng)
        var x = randomArray(T * B * I, &rng)
        for t in 0..<T { for b in 0..<B where t >= lengths[b] { for i in 0..<I { x[(t * B + b) * I + i] = 50 } } }
        let initial = randomState(cell, L * D * B * H, &rng)
        let r1 = randomArray(T * B * DH, &rng)               // nonzero at padded steps too: must be ignored
        let r2 = randomState(cell, L * D * B * H, &rng)

        let batch = forward(stack, x, steps: T, batch: B, lengths: lengths, initial: initial)
        let batchGrad = backward(stack, x, gradOutput: r1, gradFinal: r2)
        let batchParamGrads = stack.parameters.map(\.gradient)
        var summedParamGrads = batchParamGrads.map { [Float](repeating: 0, count: $0.count) }

        for b in 0..<B {
            let n = lengths[b]
            let xb = sliceBatch(x, T, B, I, b, rows: n)
            let ib = RecurrentState(h: sliceBatch(initial.h, L * D, B, H, b), c: initial.c.map { sliceBatch($0, L * D, B, H, b) })
            let alone = forward(stack, xb, steps: n, batch: 1, initial: ib)
            let label = "\(cell) sequence \(b) (length \(n))"
            expectNear(sliceBatch(batch.output, T, B, DH, b, rows: n), alone.output, 1e-5, "\(label) outputs")
            for t in n..<T {
                #expect(sliceBatch(batch.output, T, B, DH, b)[(t * DH)..<((t + 1) * DH)].allSatisfy { $0 == 0 },
                        "\(label): output at padded step \(t) is not zero")
            }
            expectNear(sliceBatch(batch.state.h, L * D, B, H, b), alone.state.h, 1e-5, "\(label) final h")
            if let c = batch.state.c {
                expectNear(sliceBatch(c, L * D, B, H, b), alone.state.c ?? [], 1e-5, "\(label) final c")
            }

            let gb = RecurrentState(h: sliceBatch(r2.h, L * D, B, H, b), c: r2.c.map { sliceBatch($0, L * D, B, H, b) })
            let aloneGrad = backward(stack, xb, gradOutput: sliceBatch(r1, T, B, DH, b, rows: n), gradFinal: gb)
            expectNear(sliceBatch(batchGrad.input, T, B, I, b, rows: n), aloneGrad.input, 1e-5, "\(label) input gradient")
            let padded = Array(sliceBatch(batchGrad.input, T, B, I, b)[(n * I)...])
            #expect(padded.allSatisfy { $0 == 0 }, "\(label): gradient of padded inputs is not zero")
            expectNear(sliceBatch(batchGrad.initial.h, L * D, B, H, b), aloneGrad.initial.h, 1e-5, "\(label) h0 gradient")
            if let c = batchGrad.initial.c {
                expectNear(sliceBatch(c, L * D, B, H, b), aloneGrad.initial.c ?? [], 1e-5, "\(label) c0 gradient")
            }
            for (k, p) in stack.parameters.enumerated() {
                let g = p.gradient
                for i in 0..<g.count { summedParamGrads[k][i] += g[i] }
            }
        }
        // The batch's parameter gradients are the sums of the sequences' gradients.
        for (k, p) in stack.parameters.enumerated() {
            expectNear(batchParamGrads[k], summedParamGrads[k], 1e-4, "\(cell) \(p.name) gradient")
        }
    }

    /// Running T steps at once equals running k steps and then T - k steps starting from the
    /// first run's final state.
    @Test(arguments: CellKind.allCases)
    func stateCarriesAcrossCalls(cell: CellKind) {
        let T = 6, B = 2, I = 3, H = 4, L = 2
        var rng = SeededRandom(seed: 41)
        let stack = RecurrentStack(cell: cell, inputSize: I, hiddenSize: H, numLayers: L, rng: &rng)
        let x = randomArray(T * B * I, &rng)
        let initial = randomState(cell, L * B * H, &rng)
        let whole = forward(stack, x, steps: T, batch: B, initial: initial)
        for k in [1, 2, 5] {
            let first = forward(stack, Array(x[..<(k * B * I)]), steps: k, batch: B, initial: initial)
            let second = forward(stack, Array(x[(k * B * I)...]), steps: T - k, batch: B, initial: first.state)
            expectNear(first.output + second.output, whole.output, 1e-5, "\(cell) split at \(k): outputs")
            expectNear(second.state.h, whole.state.h, 1e-5, "\(cell) split at \(k): final h")
            if let c = whole.state.c { expectNear(second.state.c ?? [], c, 1e-5, "\(cell) split at \(k): final c") }
        }
        // Without the carried state the continuation differs (the test can tell).
        let fresh = forward(stack, Array(x[(2 * B * I)...]), steps: T - 2, batch: B)
        let tail = Array(whole.output[(2 * B * stack.outputSize)...])
        #expect(zip(fresh.output, tail).contains { abs($0 - $1) > 1e-3 })
    }

    /// `.oneHot(ids)` gives the same outputs, final state and parameter gradients as `.dense`
    /// with the explicit one-hot matrix `[T, B, vocab]`.
    @Test(arguments: CellKind.allCases)
    func oneHotEqualsDenseOneHot(cell: CellKind) {
        let T = 4, B = 3, V = 5, H = 3, L = 2, DH = 2 * H
        let lengths = [4, 2, 3]
        var rng = SeededRandom(seed: 51)
        let stack = RecurrentStack(cell: cell, inputSize: V, hiddenSize: H, numLayers: L, bidirectional: true, rng: &rng)
        let ids: [Int32] = (0..<(T * B)).map { _ in Int32(rng.nextInt(below: V)) }
        var dense = [Float](repeating: 0, count: T * B * V)
        for n in 0..<(T * B) { dense[n * V + Int(ids[n])] = 1 }
        let r = randomArray(T * B * DH, &rng)
        let rf = randomState(cell, L * 2 * B * H, &rng)

        var rngA = SeededRandom(seed: 0)
        let (oneHotOut, oneHotState, oneHotGrads): ([Float], RecurrentState, [[Float]]) = ids.withUnsafeBufferPointer { ip in
            let y = stack.forward(input: .oneHot(ip.baseAddress!, features: V), steps: T, batch: B, lengths: lengths,
                                  training: false, rng: &rngA)
            let out = Array(UnsafeBufferPointer(start: y, count: T * B * DH))
            let state = stack.finalState
            stack.zeroGrad()
            r.withUnsafeBufferPointer { rp in
                _ = stack.backward(input: .oneHot(ip.baseAddress!, features: V), gradOutput: rp.baseAddress!, gradFinal: rf, gradInput: nil)
            }
            return (out, state, stack.parameters.map(\.gradient))
        }
        let denseRun = forward(stack, dense, steps: T, batch: B, lengths: lengths)
        _ = backward(stack, dense, gradOutput: r, gradFinal: rf)
        expectNear(oneHotOut, denseRun.output, 1e-6, "\(cell) one-hot outputs")
        expectNear(oneHotState.h, denseRun.state.h, 1e-6, "\(cell) one-hot final h")
        for (k, p) in stack.parameters.enumerated() {
            expectNear(oneHotGrads[k], p.gradient, 1e-5, "\(cell) one-hot \(p.name) gradient")
        }
    }

    /// The batch-first `forward(_:)` / `backward(input:gradOutput:)` agree with the time-major
    /// pointer API on the transposed data.
    @Test(arguments: [CellKind.lstm, .gru, .rnnTanh])
    func batchFirstAgreesWithTimeMajor(cell: CellKind) {
        let T = 4, B = 3, I = 2, H = 3, L = 2, DH = 2 * H
        let lengths = [4, 1, 3]
        var rng = SeededRandom(seed: 61)
        let stack = RecurrentStack(cell: cell, inputSize: I, hiddenSize: H, numLayers: L, bidirectional: true, rng: &rng)
        let xb = randomArray(B * T * I, &rng)                // [B, T, I]
        let gyb = randomArray(B * T * DH, &rng)              // [B, T, D*H]
        let initial = randomState(cell, L * 2 * B * H, &rng)
        let gf = randomState(cell, L * 2 * B * H, &rng)
        func toTimeMajor(_ a: [Float], _ F: Int) -> [Float] {
            var out = [Float](repeating: 0, count: a.count)
            for b in 0..<B { for t in 0..<T { for f in 0..<F { out[(t * B + b) * F + f] = a[(b * T + t) * F + f] } } }
            return out
        }

        let tm = forward(stack, toTimeMajor(xb, I), steps: T, batch: B, lengths: lengths, initial: initial)
        let tmGrad = backward(stack, toTimeMajor(xb, I), gradOutput: toTimeMajor(gyb, DH), gradFinal: gf)
        let tmParamGrads = stack.parameters.map(\.gradient)

        var rngB = SeededRandom(seed: 0)
        let x = Tensor(shape: [B, T, I], values: xb)
        let (out, state) = stack.forward(x, lengths: lengths, initial: initial, rng: &rngB)
        stack.zeroGrad()
        let (gx, g0) = stack.backward(input: x, gradOutput: Tensor(shape: [B, T, DH], values: gyb), gradFinal: gf)

        #expect(out.shape == [B, T, DH])
        #expect(gx.shape == [B, T, I])
        expectNear(toTimeMajor(out.values, DH), tm.output, 1e-6, "\(cell) outputs")
        expectNear(state.h, tm.state.h, 1e-6, "\(cell) final h")
        if let c = tm.state.c { expectNear(state.c ?? [], c, 1e-6, "\(cell) final c") }
        expectNear(toTimeMajor(gx.values, I), tmGrad.input, 1e-6, "\(cell) input gradient")
        expectNear(g0.h, tmGrad.initial.h, 1e-6, "\(cell) h0 gradient")
        if let c = tmGrad.initial.c { expectNear(g0.c ?? [], c, 1e-6, "\(cell) c0 gradient") }
        for (k, p) in stack.parameters.enumerated() {
            expectNear(p.gradient, tmParamGrads[k], 1e-6, "\(cell) \(p.name) gradient")
        }
    }

    /// Each of the G square blocks of W_hh is orthogonal after `orthogonalRecurrentInit`
    /// (Q Q^T = Q^T Q = I in Float64 to Float32 precision); the other parameters are unchanged.
    @Test(arguments: CellKind.allCases)
    func orthogonalRecurrentBlocks(cell: CellKind) {
        let H = 5, I = 3
        var rng = SeededRandom(seed: 71)
        let layer = RecurrentLayer(cell: cell, inputSize: I, hiddenSize: H, rng: &rng)
        let before = layer.weightHH.values, wih = layer.weightIH.values, bih = layer.biasIH.values
        layer.orthogonalRecurrentInit(rng: &rng)
        let w = layer.weightHH.values
        #expect(w != before)
        #expect(layer.weightIH.values == wih && layer.biasIH.values == bih)
        var worst = 0.0
        for g in 0..<cell.gateCount {
            func q(_ i: Int, _ j: Int) -> Double { Double(w[(g * H + i) * H + j]) }
            for i in 0..<H {
                for j in 0..<H {
                    var rows = 0.0, cols = 0.0
                    for k in 0..<H { rows += q(i, k) * q(j, k); cols += q(k, i) * q(k, j) }
                    let id = i == j ? 1.0 : 0.0
                    worst = max(worst, abs(rows - id), abs(cols - id))
                }
            }
        }
        #expect(worst < 1e-5, "\(cell): max |Q Q^T - I| = \(worst)")
        // Different blocks are different matrices.
        if cell.gateCount > 1 { #expect(Array(w[0..<(H * H)]) != Array(w[(H * H)..<(2 * H * H)])) }
    }

    /// `setForgetBias(1)` makes b_ih + b_hh equal 1 on the LSTM forget block (rows H..<2H) and
    /// leaves the i, g, o blocks alone; on other cells it changes nothing.
    @Test func forgetBias() {
        let H = 4
        var rng = SeededRandom(seed: 81)
        let lstm = RecurrentLayer(cell: .lstm, inputSize: 3, hiddenSize: H, rng: &rng)
        let bih = lstm.biasIH.values, bhh = lstm.biasHH.values
        lstm.setForgetBias(1)
        let nih = lstm.biasIH.values, nhh = lstm.biasHH.values
        for j in 0..<(4 * H) {
            if j >= H && j < 2 * H {
                #expect(abs(nih[j] + nhh[j] - 1) < 1e-7, "forget bias sum at \(j): \(nih[j] + nhh[j])")
            } else {
                #expect(nih[j] == bih[j] && nhh[j] == bhh[j], "bias outside the forget block changed at \(j)")
            }
        }
        let gru = RecurrentLayer(cell: .gru, inputSize: 3, hiddenSize: H, rng: &rng)
        let gih = gru.biasIH.values, ghh = gru.biasHH.values
        gru.setForgetBias(1)
        #expect(gru.biasIH.values == gih && gru.biasHH.values == ghh)
    }
}
