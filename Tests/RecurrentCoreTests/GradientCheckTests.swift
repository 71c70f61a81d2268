import Testing
@testable import RecurrentCore

// Central finite differences in Float32. With step 1e-3 the truncation error is O(1e-6) and
// the rounding error of a Float32 loss of magnitude ~10 is about 1e-6 / 1e-3 = 1e-3 relative to
// one unit of loss, so analytic and numeric derivatives must agree within
// 2e-3 + 2e-2 * |derivative|. A wrong gate, index or sign gives errors of order 1e-1 or more.
let fdStep: Float = 1e-3

func expectClose(_ analytic: Float, _ numeric: Float, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let tol: Float = 2e-3 + 2e-2 * max(abs(analytic), abs(numeric))
    #expect(abs(analytic - numeric) <= tol, "\(what): analytic \(analytic) vs numeric \(numeric)", sourceLocation: sourceLocation)
}

/// Central-difference check of `count` scalars reached through `get`/`set` against `analytic`.
func checkElements(count: Int, get: (Int) -> Float, set: (Int, Float) -> Void, analytic: (Int) -> Float,
                   label: String, loss: () -> Double, sourceLocation: SourceLocation = #_sourceLocation) {
    for i in 0..<count {
        let old = get(i)
        set(i, old + fdStep); let lp = loss()
        set(i, old - fdStep); let lm = loss()
        set(i, old)
        expectClose(analytic(i), Float((lp - lm) / Double(2 * fdStep)), "\(label)[\(i)]", sourceLocation: sourceLocation)
    }
}

/// Checks every parameter's accumulated gradient (read before perturbing) by central differences.
func checkParameters(_ parameters: [Parameter], label: String, loss: () -> Double,
                     sourceLocation: SourceLocation = #_sourceLocation) {
    for p in parameters {
        let analytic = p.gradient
        checkElements(count: p.count, get: { p.value[$0] }, set: { p.value[$0] = $1 }, analytic: { analytic[$0] },
                      label: "\(label) \(p.name)", loss: loss, sourceLocation: sourceLocation)
    }
}

/// Random values in [-1, 1).
func randomArray(_ n: Int, _ rng: inout SeededRandom) -> [Float] { (0..<n).map { _ in rng.uniform(-1, 1) } }

/// Weighted-sum loss in Float64 of a Float array.
func dot(_ a: UnsafePointer<Float>, _ b: [Float]) -> Double {
    var s = 0.0
    for i in 0..<b.count { s += Double(a[i]) * Double(b[i]) }
    return s
}

struct StackCase {
    let cell: CellKind
    let layers: Int
    let bidirectional: Bool
    let lengths: [Int]?
    let withInitial: Bool
    let dropout: Float
    /// Instruction-set level of the per-step products (`.generic` = BLAS).
    var level: ISALevel = .inUse
}

/// Builds a stack, runs forward + backward once, then checks every parameter, input and
/// initial-state gradient against central differences of
/// L = sum(out * R1) + sum(h_T * R2) + sum(c_T * R3).
func checkStack(_ c: StackCase) {
    let T = 4, B = 3, I = 3, H = 3
    var rng = SeededRandom(seed: 42)
    let stack = RecurrentStack(cell: c.cell, inputSize: I, hiddenSize: H, numLayers: c.layers,
                               bidirectional: c.bidirectional, dropout: c.dropout, rng: &rng)
    stack.kernelLevel = c.level
    let D = stack.directions, L = c.layers
    var x = randomArray(T * B * I, &rng)
    let r1 = randomArray(T * B * D * H, &rng)
    let r2 = randomArray(L * D * B * H, &rng)
    let r3 = randomArray(L * D * B * H, &rng)
    var initial: RecurrentState? = c.withInitial
        ? RecurrentState(h: randomArray(L * D * B * H, &rng), c: c.cell == .lstm ? randomArray(L * D * B * H, &rng) : nil)
        : nil
    let training = c.dropout > 0

    func loss() -> Double {
        var dropRng = SeededRandom(seed: 9)     // same dropout masks every evaluation
        return x.withUnsafeBufferPointer { xp in
            let y = stack.forward(input: .dense(xp.baseAddress!, features: I), steps: T, batch: B, lengths: c.lengths,
                                  initial: initial, training: training, rng: &dropRng)
            let s = stack.finalState
            var l = dot(y, r1)
            l += s.h.withUnsafeBufferPointer { dot($0.baseAddress!, r2) }
            if let cs = s.c { l += cs.withUnsafeBufferPointer { dot($0.baseAddress!, r3) } }
            return l
        }
    }

    _ = loss()
    stack.zeroGrad()
    var gx = [Float](repeating: 0, count: T * B * I)
    let g0 = x.withUnsafeBufferPointer { xp in
        r1.withUnsafeBufferPointer { rp in
            gx.withUnsafeMutableBufferPointer { gp in
                stack.backward(input: .dense(xp.baseAddress!, features: I), gradOutput: rp.baseAddress!,
                               gradFinal: RecurrentState(h: r2, c: c.cell == .lstm ? r3 : nil), gradInput: gp.baseAddress!)
            }
        }
    }
    let label = "\(c.cell) \(c.level) L\(c.layers) bi=\(c.bidirectional) lengths=\(String(describing: c.lengths))"
    checkParameters(stack.parameters, label: label, loss: loss)
    checkElements(count: x.count, get: { x[$0] }, set: { x[$0] = $1 }, analytic: { gx[$0] }, label: "\(label) input", loss: loss)
    if var s = initial {
        for i in 0..<s.h.count {
            let old = s.h[i]
            s.h[i] = old + fdStep; initial = s; let lp = loss()
            s.h[i] = old - fdStep; initial = s; let lm = loss()
            s.h[i] = old; initial = s
            expectClose(g0.h[i], Float((lp - lm) / Double(2 * fdStep)), "\(label) h0[\(i)]")
        }
        if s.c != nil {
            for i in 0..<s.c!.count {
                let old = s.c![i]
                s.c![i] = old + fdStep; initial = s; let lp = loss()
                s.c![i] = old - fdStep; initial = s; let lm = loss()
                s.c![i] = old; initial = s
                expectClose(g0.c![i], Float((lp - lm) / Double(2 * fdStep)), "\(label) c0[\(i)]")
            }
        }
    }
}

@Suite struct RecurrentGradientTests {
    /// Under every instruction-set level this processor runs (the `RNN_ISA` caps): packed
    /// AVX-512, packed AVX2, and BLAS per step.
    @Test(arguments: [CellKind.rnnTanh, .rnnRelu, .lstm, .gru], ISALevel.allCases.filter { $0 <= .supported })
    func twoLayerBidirectionalVariableLengthsWithInitialState(cell: CellKind, level: ISALevel) {
        checkStack(StackCase(cell: cell, layers: 2, bidirectional: true, lengths: [4, 2, 1], withInitial: true, dropout: 0, level: level))
    }

    @Test(arguments: [CellKind.rnnTanh, .lstm, .gru])
    func singleLayerUnidirectionalFullLength(cell: CellKind) {
        checkStack(StackCase(cell: cell, layers: 1, bidirectional: false, lengths: nil, withInitial: false, dropout: 0))
    }

    @Test(arguments: [CellKind.lstm, .gru])
    func twoLayersWithDropoutBetween(cell: CellKind) {
        checkStack(StackCase(cell: cell, layers: 2, bidirectional: false, lengths: [4, 3, 4], withInitial: true, dropout: 0.4))
    }
}
