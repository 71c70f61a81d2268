/// The recurrent state of a stack: `h` (and `c` for LSTM), each `[layers * directions, batch, hidden]`
/// in PyTorch's order (layer-major, forward direction before reverse).
public struct RecurrentState: Sendable, Equatable {
    /// `[layers * directions, batch, hidden]`
    public var h: [Float]
    /// `[layers * directions, batch, hidden]`, LSTM only.
    public var c: [Float]?

    /// Creates a state from its arrays.
    public init(h: [Float], c: [Float]? = nil) { self.h = h; self.c = c }

    /// A zero state.
    public static func zeros(cell: CellKind, layers: Int, directions: Int, batch: Int, hidden: Int) -> RecurrentState {
        let n = layers * directions * batch * hidden
        return RecurrentState(h: [Float](repeating: 0, count: n), c: cell.hasCellState ? [Float](repeating: 0, count: n) : nil)
    }
}

/// A stack of recurrent layers, optionally bidirectional, with dropout between layers: the
/// equivalent of `torch.nn.RNN/LSTM/GRU(input, hidden, num_layers, bidirectional=..., dropout=...)`
/// with the same parameter names (`weight_ih_l{k}`, `..._reverse`).
///
/// Two interfaces: `forward(input:steps:batch:...)` on time-major pointers `[T, B, I]` for
/// models that keep their own buffers, and `forward(_:)` on batch-first `Tensor`s
/// `[batch, time, features]`.
public final class RecurrentStack: ParameterContainer {
    public let cell: CellKind
    public let inputSize: Int
    public let hiddenSize: Int
    public let numLayers: Int
    public let bidirectional: Bool
    public let dropoutProbability: Float
    /// `layers[l][d]`, d = 0 forward, 1 reverse.
    public let layers: [[RecurrentLayer]]
    private let dropouts: [Dropout]
    private let outputs: [FloatBuffer]      // per layer [T, B, D H]
    private let dropped: [FloatBuffer]      // per layer (except last) [T, B, D H] after dropout
    private let gradA = FloatBuffer(), gradB = FloatBuffer()
    private let gradH0 = FloatBuffer(), gradC0 = FloatBuffer()
    private let finalH = FloatBuffer(), finalC = FloatBuffer()
    private var lastT = 0, lastB = 0, lastTraining = false

    /// Number of directions (1 or 2).
    public var directions: Int { bidirectional ? 2 : 1 }
    /// Width of the output features, `directions * hidden`.
    public var outputSize: Int { directions * hiddenSize }

    /// Instruction-set level of every layer's per-step products (see `RecurrentLayer.kernelLevel`).
    public var kernelLevel: ISALevel {
        get { layers[0][0].kernelLevel }
        set { for row in layers { for layer in row { layer.kernelLevel = newValue } } }
    }

    /// Number format of every layer's products (see `RecurrentLayer.precision`).
    public var precision: Precision {
        get { layers[0][0].precision }
        set { for row in layers { for layer in row { layer.precision = newValue } } }
    }

    /// Creates the stack with PyTorch's default initialisation.
    public init(cell: CellKind, inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bidirectional: Bool = false,
                dropout: Float = 0, rng: inout SeededRandom) {
        precondition(numLayers >= 1 && hiddenSize >= 1 && inputSize >= 1)
        self.cell = cell
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.bidirectional = bidirectional
        self.dropoutProbability = dropout
        let D = bidirectional ? 2 : 1
        var layers: [[RecurrentLayer]] = []
        for l in 0..<numLayers {
            var row: [RecurrentLayer] = []
            for d in 0..<D {
                row.append(RecurrentLayer(cell: cell, inputSize: l == 0 ? inputSize : D * hiddenSize, hiddenSize: hiddenSize,
                                          reverse: d == 1, suffix: "_l\(l)" + (d == 1 ? "_reverse" : ""), rng: &rng))
            }
            layers.append(row)
        }
        self.layers = layers
        dropouts = (0..<numLayers).map { _ in Dropout(probability: dropout) }
        outputs = (0..<numLayers).map { _ in FloatBuffer() }
        dropped = (0..<numLayers).map { _ in FloatBuffer() }
    }

    /// A replica sharing this stack's values, with its own gradients and workspaces.
    public init(sharing other: RecurrentStack) {
        cell = other.cell; inputSize = other.inputSize; hiddenSize = other.hiddenSize
        numLayers = other.numLayers; bidirectional = other.bidirectional; dropoutProbability = other.dropoutProbability
        layers = other.layers.map { $0.map { RecurrentLayer(sharing: $0) } }
        dropouts = (0..<other.numLayers).map { _ in Dropout(probability: other.dropoutProbability) }
        outputs = (0..<other.numLayers).map { _ in FloatBuffer() }
        dropped = (0..<other.numLayers).map { _ in FloatBuffer() }
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        layers.flatMap { $0.flatMap { $0.namedParameters } }
    }

    /// Forward over time-major data.
    ///
    /// - Parameters:
    ///   - input: layer-0 input, `[T, B, I]` dense or `[T, B]` one-hot ids.
    ///   - lengths: `[B]` sequence lengths (nil = all T).
    ///   - initial: initial state (`[L*D, B, H]`), nil = zeros.
    ///   - training: enables dropout between layers.
    /// - Returns: the last layer's output `[T, B, D*H]` (valid until the next forward).
    @discardableResult
    public func forward(input: RecurrentInput, steps T: Int, batch B: Int, lengths: [Int]? = nil,
                        initial: RecurrentState? = nil, training: Bool, rng: inout SeededRandom) -> UnsafePointer<Float> {
        let D = directions, H = hiddenSize, DH = D * H
        lastT = T; lastB = B; lastTraining = training
        if let initial {
            precondition(initial.h.count == numLayers * D * B * H, "initial h has \(initial.h.count) values, expected \(numLayers * D * B * H)")
            precondition(cell.hasCellState == (initial.c != nil), "initial state: c must be given exactly for LSTM")
        }
        var layerInput = input
        for l in 0..<numLayers {
            let out = outputs[l].reserve(max(T * B * DH, 1))
            for d in 0..<D {
                let idx = (l * D + d) * B * H
                withStatePointers(initial, offset: idx) { h0, c0 in
                    layers[l][d].forward(input: layerInput, steps: T, batch: B, lengths: lengths, h0: h0, c0: c0,
                                         output: out + d * H, outputStride: DH)
                }
            }
            if l < numLayers - 1 {
                if training && dropoutProbability > 0 {
                    let dp = dropped[l].reserve(max(T * B * DH, 1))
                    dropouts[l].forward(input: out, count: T * B * DH, output: dp, training: true, rng: &rng)
                    layerInput = .dense(UnsafePointer(dp), features: DH)
                } else {
                    layerInput = .dense(UnsafePointer(out), features: DH)
                }
            }
        }
        return UnsafePointer(outputs[numLayers - 1].pointer)
    }

    private func withStatePointers(_ s: RecurrentState?, offset: Int,
                                   _ body: (UnsafePointer<Float>?, UnsafePointer<Float>?) -> Void) {
        guard let s else { body(nil, nil); return }
        s.h.withUnsafeBufferPointer { hb in
            if let c = s.c {
                c.withUnsafeBufferPointer { cb in body(hb.baseAddress! + offset, cb.baseAddress! + offset) }
            } else {
                body(hb.baseAddress! + offset, nil)
            }
        }
    }

    /// The final state of the last forward pass, `[L*D, B, H]`.
    public var finalState: RecurrentState {
        let D = directions, B = lastB, H = hiddenSize
        var h = [Float](repeating: 0, count: numLayers * D * B * H)
        var c: [Float]? = cell.hasCellState ? h : nil
        for l in 0..<numLayers {
            for d in 0..<D {
                let off = (l * D + d) * B * H
                let layer = layers[l][d]
                for i in 0..<(B * H) { h[off + i] = layer.finalHidden[i] }
                if c != nil { for i in 0..<(B * H) { c![off + i] = layer.finalCell[i] } }
            }
        }
        return RecurrentState(h: h, c: c)
    }

    /// Copies the final hidden state of the top layer, `[B, D*H]` (forward direction's then the
    /// reverse direction's features), into `out`: the usual summary vector of a sequence.
    public func topFinalHidden(into out: UnsafeMutablePointer<Float>) {
        let D = directions, B = lastB, H = hiddenSize
        for d in 0..<D {
            let src = layers[numLayers - 1][d].finalHidden
            for b in 0..<B { (out + b * D * H + d * H).update(from: src + b * H, count: H) }
        }
    }

    /// Backward through the stack for the last forward pass.
    ///
    /// - Parameters:
    ///   - input: the same layer-0 input as in forward.
    ///   - gradOutput: `[T, B, D*H]` gradient w.r.t. the last layer's output.
    ///   - gradFinal: gradient w.r.t. the final state (`[L*D, B, H]`), nil = zero.
    ///   - gradInput: `[T, B, I]` receives the input gradient (nil to skip).
    /// - Returns: the gradient w.r.t. the initial state.
    @discardableResult
    public func backward(input: RecurrentInput, gradOutput: UnsafePointer<Float>, gradFinal: RecurrentState? = nil,
                         gradInput: UnsafeMutablePointer<Float>?) -> RecurrentState {
        let D = directions, H = hiddenSize, DH = D * H, T = lastT, B = lastB
        var dY = gradOutput
        var bufs = (gradA, gradB)
        var gh0 = [Float](repeating: 0, count: numLayers * D * B * H)
        var gc0: [Float]? = cell.hasCellState ? gh0 : nil
        for l in stride(from: numLayers - 1, through: 0, by: -1) {
            let layerInput: RecurrentInput
            if l == 0 {
                layerInput = input
            } else {
                let src = (lastTraining && dropoutProbability > 0) ? dropped[l - 1].pointer : outputs[l - 1].pointer
                layerInput = .dense(UnsafePointer(src), features: DH)
            }
            let dX: UnsafeMutablePointer<Float>? = l == 0 ? gradInput : bufs.0.reserve(max(T * B * DH, 1))
            for d in 0..<D {
                let off = (l * D + d) * B * H
                let layer = layers[l][d]
                withOptionalPointer(gradFinal?.h) { gfh in
                    withOptionalPointer(gradFinal?.c) { gfc in
                        layer.backward(input: layerInput, gradOutput: dY + d * H, gradOutputStride: DH,
                                       gradFinalHidden: gfh.map { $0 + off }, gradFinalCell: gfc.map { $0 + off },
                                       gradInput: dX, accumulate: d == 1)
                    }
                }
                for i in 0..<(B * H) { gh0[off + i] = layer.gradInitialHidden[i] }
                if gc0 != nil { for i in 0..<(B * H) { gc0![off + i] = layer.gradInitialCell[i] } }
            }
            if l > 0, let dX {
                dropouts[l - 1].backward(gradOutput: dX, count: T * B * DH, gradInput: dX, training: lastTraining)
                dY = UnsafePointer(dX)
                bufs = (bufs.1, bufs.0)
            }
        }
        return RecurrentState(h: gh0, c: gc0)
    }

    // MARK: Batch-first convenience

    /// Forward on a batch-first tensor `[batch, time, input]`.
    /// - Returns: outputs `[batch, time, D*H]` and the final state `[L*D, batch, H]`.
    public func forward(_ x: Tensor, lengths: [Int]? = nil, initial: RecurrentState? = nil, training: Bool = false,
                        rng: inout SeededRandom) -> (output: Tensor, state: RecurrentState) {
        precondition(x.shape.count == 3 && x.shape[2] == inputSize, "expected [batch, time, \(inputSize)], got \(x.shape)")
        let B = x.shape[0], T = x.shape[1], I = inputSize, DH = outputSize
        let tm = transposeBT(x.values, B, T, I)
        let out: [Float] = tm.withUnsafeBufferPointer { p in
            let y = forward(input: .dense(p.baseAddress!, features: I), steps: T, batch: B, lengths: lengths,
                            initial: initial, training: training, rng: &rng)
            return transposeTB(y, T, B, DH)
        }
        return (Tensor(shape: [B, T, DH], values: out), finalState)
    }

    /// Backward for the batch-first `forward(_:)`: `gradOutput [batch, time, D*H]`.
    /// - Returns: gradient w.r.t. the input `[batch, time, input]` and w.r.t. the initial state.
    public func backward(input x: Tensor, gradOutput: Tensor, gradFinal: RecurrentState? = nil) -> (gradInput: Tensor, gradInitial: RecurrentState) {
        let B = x.shape[0], T = x.shape[1], I = inputSize, DH = outputSize
        let tm = transposeBT(x.values, B, T, I)
        let gy = transposeBT(gradOutput.values, B, T, DH)
        var gx = [Float](repeating: 0, count: T * B * I)
        var g0 = RecurrentState(h: [])
        tm.withUnsafeBufferPointer { xp in
            gy.withUnsafeBufferPointer { gp in
                gx.withUnsafeMutableBufferPointer { gxp in
                    g0 = backward(input: .dense(xp.baseAddress!, features: I), gradOutput: gp.baseAddress!, gradFinal: gradFinal,
                                  gradInput: gxp.baseAddress!)
                }
            }
        }
        let back = gx.withUnsafeBufferPointer { transposeTB($0.baseAddress!, T, B, I) }
        return (Tensor(shape: [B, T, I], values: back), g0)
    }
}

/// `[B, T, F]` → `[T, B, F]`.
func transposeBT(_ x: [Float], _ B: Int, _ T: Int, _ F: Int) -> [Float] {
    var out = [Float](repeating: 0, count: B * T * F)
    for b in 0..<B { for t in 0..<T { for f in 0..<F { out[(t * B + b) * F + f] = x[(b * T + t) * F + f] } } }
    return out
}

/// `[T, B, F]` (pointer) → `[B, T, F]`.
func transposeTB(_ y: UnsafePointer<Float>, _ T: Int, _ B: Int, _ F: Int) -> [Float] {
    var out = [Float](repeating: 0, count: B * T * F)
    for t in 0..<T { for b in 0..<B { for f in 0..<F { out[(b * T + t) * F + f] = y[(t * B + b) * F + f] } } }
    return out
}

/// Calls `body` with the array's base address, or nil for a nil array.
@inline(__always)
func withOptionalPointer<R>(_ a: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    if let a { return a.withUnsafeBufferPointer { body($0.baseAddress) } }
    return body(nil)
}
