import RNNKernels

/// The per-step products with pre-packed weights (`RNNKernels`): an AVX-512 and an AVX2 + FMA
/// variant, bit-identical to each other; below AVX2 the layers use BLAS.
public enum PackedKernels {
    /// True when the level in use (`ISALevel.inUse`) has a packed variant.
    public static var available: Bool { ISALevel.inUse >= .avx2 }
    /// Smallest batch and sequence length for which packing the weights pays off.
    static let minimumBatch = 2, minimumSteps = 4

    /// What runs the per-step products at `level`, e.g. `avx512 (8x32 register blocks)`.
    public static func variantDescription(_ level: ISALevel = .inUse) -> String {
        switch level {
        case .avx512: return "avx512 (8x32 register blocks)"
        case .avx2: return "avx2+fma (6x16 register blocks)"
        case .generic: return "none (OpenBLAS sgemm per step)"
        }
    }
}

/// The recurrent cell types, with PyTorch's equations and gate order.
///
/// - `rnnTanh`/`rnnRelu`: `h' = act(W_ih x + b_ih + W_hh h + b_hh)` (`nn.RNN`).
/// - `lstm`: gates stacked i, f, g, o (`nn.LSTM`); `c' = f c + i g`, `h' = o tanh(c')`.
/// - `gru`: gates stacked r, z, n (`nn.GRU`); `n = tanh(W_in x + b_in + r (W_hn h + b_hn))`,
///   `h' = (1 - z) n + z h`.
public enum CellKind: String, Sendable, Codable, CaseIterable {
    case rnnTanh = "rnn_tanh"
    case rnnRelu = "rnn_relu"
    case lstm
    case gru

    /// Number of stacked gate blocks in the weight matrices.
    public var gateCount: Int {
        switch self {
        case .rnnTanh, .rnnRelu: return 1
        case .lstm: return 4
        case .gru: return 3
        }
    }

    /// Whether the state carries a cell vector `c` besides `h`.
    public var hasCellState: Bool { self == .lstm }

    /// Parses the names used on command lines: `lstm`, `gru`, `rnn` (tanh), `rnn_tanh`, `rnn_relu`.
    public init?(argument: String) {
        switch argument.lowercased() {
        case "lstm": self = .lstm
        case "gru": self = .gru
        case "rnn", "rnn_tanh", "rnn-tanh", "tanh": self = .rnnTanh
        case "rnn_relu", "rnn-relu", "relu": self = .rnnRelu
        default: return nil
        }
    }
}

/// Where a recurrent layer's input comes from.
public enum RecurrentInput {
    /// Dense features `[time, batch, features]` (time-major), row stride `features`.
    case dense(UnsafePointer<Float>, features: Int)
    /// Token ids `[time, batch]` read as one-hot vectors of width `features`: the input
    /// projection gathers columns of `W_ih` and no one-hot matrix is ever built.
    case oneHot(UnsafePointer<Int32>, features: Int)
    /// Token ids `[T, B]` whose input projections (`x W_ih^T` plus the input biases, as
    /// `inputProjectionTable` computes them) were tabulated per token, `[vocab, G H]`:
    /// forward reads a table row instead of multiplying. Inference only (no backward).
    case projected(UnsafePointer<Int32>, table: UnsafePointer<Float>, features: Int)

    var features: Int {
        switch self {
        case .dense(_, let f), .oneHot(_, let f), .projected(_, _, let f): return f
        }
    }
}

/// One direction of one recurrent layer, with explicit forward and backward over a whole
/// sequence.
///
/// Data layout inside is time-major: inputs `[T, B, I]`, outputs `[T, B, H]` written with a row
/// stride so that the two directions of a bidirectional layer write straight into one
/// `[T, B, 2H]` buffer. Following the performance recipe: the input projection of all T steps is
/// one GEMM before the loop; each step runs one `[B, H] x [H, G H]` GEMM and a fused gate
/// kernel; backward runs the fused gate-gradient kernel and one GEMM per step, and the weight
/// gradients are two large GEMMs after the loop. Workspaces grow to the largest `T * B` seen and
/// are reused, so the time loop never allocates.
///
/// Variable lengths: with `lengths[b]`, steps `t >= lengths[b]` leave sequence b's state
/// unchanged and output zeros (PyTorch packed-sequence semantics); the reverse direction starts
/// at each sequence's own last step.
public final class RecurrentLayer: ParameterContainer {
    public let cell: CellKind
    public let inputSize: Int
    public let hiddenSize: Int
    /// Processes time from T-1 down to 0.
    public let reverse: Bool
    /// `[G H, I]`
    public let weightIH: Parameter
    /// `[G H, H]`
    public let weightHH: Parameter
    /// `[G H]`
    public let biasIH: Parameter
    /// `[G H]`
    public let biasHH: Parameter

    // Forward caches.
    private let gates = FloatBuffer()    // [T, B, GH]: input projection, then activated gates
    private let states = FloatBuffer()   // [T+1, B, H] hidden states (see stateIndex)
    private let cells = FloatBuffer()    // [T+1, B, H] LSTM cell states
    private let tanhCells = FloatBuffer()// [T, B, H] LSTM tanh(c_t)
    private let hhN = FloatBuffer()      // [T, B, H] GRU W_hn h + b_hn
    private let hhStep = FloatBuffer()   // [B, GH] GRU per-step hidden projection
    // Backward workspaces.
    private let dGx = FloatBuffer()      // [T, B, GH] gradient of the input projection
    private let dGh = FloatBuffer()      // [T, B, GH] gradient of the hidden projection (GRU)
    private let dH = FloatBuffer()       // [B, H]
    private let dC = FloatBuffer()       // [B, H]
    private let dHPrev = FloatBuffer()   // [B, H]
    private let biasSums = FloatBuffer() // [GH] column sums of dG
    // W_hh packed for the per-step products (see RNNKernels): W_hh^T for forward, W_hh for backward.
    private let packedForward = FloatBuffer(), packedBackward = FloatBuffer()
    private var usePacked = false
    private var level = ISALevel.inUse
    // bf16 (see `Precision`): packed weights W_hh^T, W_hh, W_ih^T, W_ih; the gradient dG packed
    // as a right operand; the bf16 left operands of one step and of the whole sequence.
    private let bfForward = BF16Buffer(), bfBackward = BF16Buffer(), bfInput = BF16Buffer(), bfInputBack = BF16Buffer()
    private let bfGrad = BF16Buffer(), bfStep = BF16Buffer(), bfSequence = BF16Buffer()
    private var requested = Precision.fp32
    private var useBF16 = false

    /// Instruction-set level of the per-step products: `.avx512` and `.avx2` use the packed
    /// kernel of that width, `.generic` uses BLAS. Defaults to `ISALevel.inUse`; a level above
    /// what the processor supports is lowered to it.
    public var kernelLevel: ISALevel {
        get { level }
        set { level = min(newValue, .supported) }
    }

    /// Number format of the layer's matrix products (see `Precision`); default fp32. bf16 runs on
    /// every processor: natively with AVX512_BF16, else by the portable kernel (`BF16Kernel`).
    public var precision: Precision {
        get { requested }
        set { requested = newValue }
    }

    /// Whether the products run in bf16 (`precision` is bf16).
    public var computesInBF16: Bool { requested == .bf16 }

    private var lastT = 0, lastB = 0
    private var lastLengths: [Int]? = nil

    /// Creates the layer with PyTorch's init: every weight and bias uniform(-1/sqrt(H), 1/sqrt(H)).
    /// `suffix` is appended to the parameter names (`_l0`, `_l1_reverse`, ...).
    public init(cell: CellKind, inputSize: Int, hiddenSize: Int, reverse: Bool = false, suffix: String = "_l0",
                rng: inout SeededRandom) {
        self.cell = cell
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.reverse = reverse
        let gh = cell.gateCount * hiddenSize
        weightIH = Parameter(name: "weight_ih" + suffix, shape: [gh, inputSize])
        weightHH = Parameter(name: "weight_hh" + suffix, shape: [gh, hiddenSize])
        biasIH = Parameter(name: "bias_ih" + suffix, shape: [gh])
        biasHH = Parameter(name: "bias_hh" + suffix, shape: [gh])
        let bound = 1 / Float(hiddenSize).squareRoot()
        for p in [weightIH, weightHH, biasIH, biasHH] { p.fillUniform(bound: bound, rng: &rng) }
    }

    /// A replica sharing this layer's values with separate gradients and workspaces, and its
    /// `precision` and `kernelLevel`.
    public init(sharing other: RecurrentLayer) {
        cell = other.cell
        inputSize = other.inputSize
        hiddenSize = other.hiddenSize
        reverse = other.reverse
        weightIH = Parameter(sharing: other.weightIH)
        weightHH = Parameter(sharing: other.weightHH)
        biasIH = Parameter(sharing: other.biasIH)
        biasHH = Parameter(sharing: other.biasHH)
        requested = other.requested
        level = other.level
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [(weightIH.name, weightIH), (weightHH.name, weightHH), (biasIH.name, biasIH), (biasHH.name, biasHH)]
    }

    /// Sets the LSTM forget-gate biases (both vectors' f block) to `value`/2 each, so their sum is `value`.
    public func setForgetBias(_ value: Float) {
        guard cell == .lstm else { return }
        let h = hiddenSize
        for j in h..<(2 * h) { biasIH.value[j] = value / 2; biasHH.value[j] = value / 2 }
    }

    /// Replaces `W_hh`'s G square blocks by random orthogonal matrices (QR of a Gaussian).
    public func orthogonalRecurrentInit(rng: inout SeededRandom) {
        let h = hiddenSize
        for g in 0..<cell.gateCount {
            let q = randomOrthogonal(h, rng: &rng)
            for i in 0..<h { for j in 0..<h { weightHH.value[(g * h + i) * h + j] = q[i * h + j] } }
        }
    }

    /// The input projection of every token for an embedding table `embedding [vocab, I]`:
    /// `table[v, :] = embedding[v] W_ih^T + b_ih (+ b_hh, except GRU)`, `[vocab, G H]`, for
    /// `RecurrentInput.projected`.
    public func inputProjectionTable(embedding: UnsafePointer<Float>, vocabulary V: Int) -> [Float] {
        let GH = cell.gateCount * hiddenSize
        var table = [Float](repeating: 0, count: V * GH)
        table.withUnsafeMutableBufferPointer { t in
            let tp = t.baseAddress!
            for v in 0..<V {
                let row = tp + v * GH
                row.update(from: biasIH.value, count: GH)
                if cell != .gru { for j in 0..<GH { row[j] += biasHH.value[j] } }
            }
            BLAS.gemm(transB: true, m: V, n: GH, k: inputSize, a: embedding, lda: inputSize,
                      b: weightIH.value, ldb: inputSize, beta: 1, c: tp, ldc: GH)
        }
        return table
    }

    /// Index into `states`/`cells` of the state entering time t (prev) or leaving it (next).
    @inline(__always) private func prevIndex(_ t: Int) -> Int { reverse ? t + 1 : t }
    @inline(__always) private func nextIndex(_ t: Int) -> Int { reverse ? t : t + 1 }

    /// Runs the layer over T steps.
    ///
    /// - Parameters:
    ///   - input: `[T, B, I]` dense or `[T, B]` one-hot ids.
    ///   - lengths: per-sequence lengths `[B]` (each in 0...T), nil = all T.
    ///   - h0, c0: initial state `[B, H]`, nil = zeros (`c0` only for LSTM).
    ///   - output: `[T, B, outputStride]`; this layer writes columns `0..<H` of each row
    ///     (pass `output + H` for the second direction).
    public func forward(input: RecurrentInput, steps T: Int, batch B: Int, lengths: [Int]?,
                        h0: UnsafePointer<Float>?, c0: UnsafePointer<Float>?,
                        output: UnsafeMutablePointer<Float>, outputStride: Int) {
        precondition(input.features == inputSize, "input has \(input.features) features, layer expects \(inputSize)")
        if let lengths { precondition(lengths.count == B && lengths.allSatisfy { $0 >= 0 && $0 <= T }, "invalid lengths") }
        let H = hiddenSize, G = cell.gateCount, GH = G * H, N = T * B
        lastT = T; lastB = B; lastLengths = lengths
        useBF16 = computesInBF16
        usePacked = !useBF16 && level >= .avx2 && B >= PackedKernels.minimumBatch && T >= PackedKernels.minimumSteps
        if useBF16 {
            let p = bfForward.reserve(rnn_packed_bf16_size(Int32(H), Int32(GH)))
            rnn_pack_b_bf16(weightHH.value, Int32(H), Int32(H), Int32(GH), 1, p)
        } else if usePacked {
            let p = packedForward.reserve(rnn_packed_size(Int32(H), Int32(GH)))
            rnn_pack_b(weightHH.value, Int32(H), Int32(H), Int32(GH), 1, p)
        }
        let gp = gates.reserve(N * GH)
        let sp = states.reserve((T + 1) * B * H)
        let cp = cell.hasCellState ? cells.reserve((T + 1) * B * H) : sp
        let tcp = cell.hasCellState ? tanhCells.reserve(N * H) : sp
        let hnp = cell == .gru ? hhN.reserve(N * H) : sp
        let hsp = cell == .gru ? hhStep.reserve(B * GH) : sp

        // Input projection for all steps: gates[N, GH] = X W_ih^T + b_ih (+ b_hh except GRU).
        let bIH = biasIH.value, bHH = biasHH.value
        if case .projected(let ids, let table, _) = input {
            for n in 0..<N { (gp + n * GH).update(from: table + Int(ids[n]) * GH, count: GH) }
        } else {
        // Rows start from the input bias (plus the hidden bias, except GRU, whose hidden bias
        // sits inside r * (W_hn h + b_hn)).
        let bias = biasSums.reserve(GH)
        for j in 0..<GH { bias[j] = cell == .gru ? bIH[j] : bIH[j] + bHH[j] }
        for n in 0..<N { (gp + n * GH).update(from: bias, count: GH) }
        switch input {
        case .dense(let x, _) where useBF16:
            let I = inputSize
            let w = bfInput.reserve(rnn_packed_bf16_size(Int32(I), Int32(GH)))
            rnn_pack_b_bf16(weightIH.value, Int32(I), Int32(I), Int32(GH), 1, w)
            bf16Product(m: N, n: GH, k: I, a: x, lda: I, packed: w, c: gp, ldc: GH, scratch: bfSequence)
        case .dense(let x, _):
            BLAS.gemm(transB: true, m: N, n: GH, k: inputSize, a: x, lda: inputSize,
                      b: weightIH.value, ldb: inputSize, beta: 1, c: gp, ldc: GH)
        case .oneHot(let ids, _):
            let w = weightIH.value
            for n in 0..<N {
                let id = Int(ids[n])
                precondition(id >= 0 && id < inputSize, "token id \(id) outside the one-hot width \(inputSize)")
                let row = gp + n * GH
                for j in 0..<GH { row[j] += w[j * inputSize + id] }
            }
        case .projected:
            break
        }
        }

        // Initial state.
        let first = sp + prevIndex(reverse ? T - 1 : 0) * B * H
        if let h0 { first.update(from: h0, count: B * H) } else { first.update(repeating: 0, count: B * H) }
        if cell.hasCellState {
            let cfirst = cp + prevIndex(reverse ? T - 1 : 0) * B * H
            if let c0 { cfirst.update(from: c0, count: B * H) } else { cfirst.update(repeating: 0, count: B * H) }
        }
        if T == 0 { return }

        let whh = weightHH.value
        for k in 0..<T {
            let t = reverse ? T - 1 - k : k
            let hPrev = sp + prevIndex(t) * B * H
            let hNext = sp + nextIndex(t) * B * H
            let g = gp + t * B * GH
            let y = output + t * B * outputStride
            switch cell {
            case .rnnTanh, .rnnRelu:
                recurrentProduct(hPrev, B, into: g, whh)
                for b in 0..<B {
                    let hn = hNext + b * H, yb = y + b * outputStride
                    if let lengths, t >= lengths[b] {
                        hn.update(from: hPrev + b * H, count: H)
                        yb.update(repeating: 0, count: H)
                        continue
                    }
                    let gb = g + b * GH
                    if cell == .rnnTanh { FastMath.tanhInPlace(gb, H) } else { for j in 0..<H { gb[j] = max(gb[j], 0) } }
                    hn.update(from: gb, count: H)
                    yb.update(from: gb, count: H)
                }
            case .lstm:
                recurrentProduct(hPrev, B, into: g, whh)
                let cPrev = cp + prevIndex(t) * B * H, cNext = cp + nextIndex(t) * B * H
                let tc = tcp + t * B * H
                for b in 0..<B {
                    let hn = hNext + b * H, cn = cNext + b * H, cpb = cPrev + b * H, yb = y + b * outputStride
                    if let lengths, t >= lengths[b] {
                        hn.update(from: hPrev + b * H, count: H)
                        cn.update(from: cpb, count: H)
                        yb.update(repeating: 0, count: H)
                        continue
                    }
                    let gb = g + b * GH
                    FastMath.sigmoidInPlace(gb, 2 * H)          // i, f
                    FastMath.tanhInPlace(gb + 2 * H, H)         // g
                    FastMath.sigmoidInPlace(gb + 3 * H, H)      // o
                    let ig = gb, fg = gb + H, gg = gb + 2 * H, og = gb + 3 * H
                    for j in 0..<H { cn[j] = fg[j] * cpb[j] + ig[j] * gg[j] }
                    let tcb = tc + b * H
                    FastMath.tanh(cn, into: tcb, H)
                    for j in 0..<H {
                        let hv = og[j] * tcb[j]
                        hn[j] = hv
                        yb[j] = hv
                    }
                }
            case .gru:
                for b in 0..<B { (hsp + b * GH).update(from: bHH, count: GH) }
                recurrentProduct(hPrev, B, into: hsp, whh)
                let hnT = hnp + t * B * H
                for b in 0..<B {
                    let hn = hNext + b * H, hp = hPrev + b * H, yb = y + b * outputStride
                    if let lengths, t >= lengths[b] {
                        hn.update(from: hp, count: H)
                        yb.update(repeating: 0, count: H)
                        continue
                    }
                    let gb = g + b * GH, hh = hsp + b * GH
                    for j in 0..<(2 * H) { gb[j] += hh[j] }
                    FastMath.sigmoidInPlace(gb, 2 * H)          // r, z
                    let r = gb, z = gb + H, nG = gb + 2 * H, hnb = hnT + b * H
                    for j in 0..<H {
                        hnb[j] = hh[2 * H + j]
                        nG[j] += r[j] * hh[2 * H + j]
                    }
                    FastMath.tanhInPlace(nG, H)
                    for j in 0..<H {
                        let hv = (1 - z[j]) * nG[j] + z[j] * hp[j]
                        hn[j] = hv
                        yb[j] = hv
                    }
                }
            }
        }
    }

    /// The LSTM gate gradients of one sequence at one step for `j < count` (a multiple of 16),
    /// sixteen lanes at a time, each lane computed exactly as the scalar loop of `backward`:
    /// `d = dh + dy`, `dc' = dc + d o (1 - tanh(c)^2)`, `dG = [dc' g i (1 - i), dc' c_prev f (1 - f),
    /// dc' i (1 - g^2), d tanh(c) o (1 - o)]`, `dc = dc' f`. `gates` holds i, f, g, o at offsets
    /// 0, H, 2H, 3H (as `dG`).
    @inline(__always)
    private static func lstmGateGradients16(count: Int, dh: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                            gates: UnsafePointer<Float>, H: Int, tanhCell: UnsafePointer<Float>,
                                            cellPrev: UnsafePointer<Float>, dc: UnsafeMutablePointer<Float>,
                                            dG: UnsafeMutablePointer<Float>) {
        typealias V = SIMD16<Float>
        @inline(__always) func load(_ p: UnsafePointer<Float>, _ j: Int) -> V {
            UnsafeRawPointer(p + j).loadUnaligned(as: V.self)
        }
        @inline(__always) func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ j: Int) {
            UnsafeMutableRawPointer(p + j).storeBytes(of: v, as: V.self)
        }
        let one = V(repeating: 1)
        var j = 0
        while j < count {
            let d = load(dh, j) + load(dy, j)
            let tcv = load(tanhCell, j)
            let iv = load(gates, j), fv = load(gates, H + j), gv = load(gates, 2 * H + j), ov = load(gates, 3 * H + j)
            let dcv = load(dc, j) + d * ov * (one - tcv * tcv)
            store(dcv * gv * iv * (one - iv), dG, j)
            store(dcv * load(cellPrev, j) * fv * (one - fv), dG, H + j)
            store(dcv * iv * (one - gv * gv), dG, 2 * H + j)
            store(d * tcv * ov * (one - ov), dG, 3 * H + j)
            store(dcv * fv, dc, j)
            j += 16
        }
    }

    /// `out[B, GH] += h[B, H] W_hh^T`: the per-step product of forward.
    @inline(__always)
    private func recurrentProduct(_ h: UnsafePointer<Float>, _ B: Int, into out: UnsafeMutablePointer<Float>, _ whh: UnsafePointer<Float>) {
        let H = hiddenSize, GH = cell.gateCount * H
        if useBF16 {
            bf16Product(m: B, n: GH, k: H, a: h, lda: H, packed: bfForward.pointer, c: out, ldc: GH, scratch: bfStep)
        } else if usePacked {
            rnn_gemm_packed(Int32(level.rawValue), Int32(B), Int32(GH), Int32(H), h, Int32(H), packedForward.pointer, out, Int32(GH))
        } else {
            BLAS.gemm(transB: true, m: B, n: GH, k: H, a: h, lda: H, b: whh, ldb: H, beta: 1, c: out, ldc: GH)
        }
    }

    /// `c[m, n] += a[m, k] B` in bf16: `a` (fp32, row stride `lda`) is rounded into `scratch`,
    /// `B` was packed by `rnn_pack_b_bf16(…, k, n, …)`; products accumulate in fp32.
    @inline(__always)
    private func bf16Product(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, packed: UnsafePointer<UInt16>,
                             c: UnsafeMutablePointer<Float>, ldc: Int, scratch: BF16Buffer) {
        if m == 0 || n == 0 || k == 0 { return }
        let k2 = (k + 1) / 2 * 2
        let ab = scratch.reserve(m * k2)
        rnn_to_bf16(a, Int32(m), Int32(k), Int32(lda), ab, Int32(k2))
        rnn_gemm_bf16(Int32(m), Int32(n), Int32(k), ab, Int32(k2), packed, c, Int32(ldc))
    }

    /// `grad[GH, cols] += dG^T lhs` in bf16: `lhs [N, cols]` (row stride `cols`) is packed as
    /// the right operand, `dG` was packed by `rnn_pack_b_bf16(dG, GH, N, GH, 0, packedGrad)` and
    /// serves, transposed, as the left one; the product adds straight into `grad`.
    private func bf16WeightGradient(lhs: UnsafePointer<Float>, rows N: Int, cols: Int, packedGrad: UnsafePointer<UInt16>,
                                    into grad: UnsafeMutablePointer<Float>) {
        let GH = cell.gateCount * hiddenSize
        let packedLHS = bfSequence.reserve(rnn_packed_bf16_size(Int32(N), Int32(cols)))
        rnn_pack_b_bf16(lhs, Int32(cols), Int32(N), Int32(cols), 0, packedLHS)
        rnn_gemm_bf16_at(Int32(GH), Int32(cols), Int32(N), packedGrad, packedLHS, grad, Int32(cols))
    }

    /// Final hidden state `[B, H]` of the last forward pass (each sequence's state after its own
    /// last step).
    public var finalHidden: UnsafePointer<Float> { UnsafePointer(states.pointer + (reverse ? 0 : lastT) * lastB * hiddenSize) }
    /// Final LSTM cell state `[B, H]` (LSTM only).
    public var finalCell: UnsafePointer<Float> { UnsafePointer(cells.pointer + (reverse ? 0 : lastT) * lastB * hiddenSize) }
    /// Gradient w.r.t. the initial hidden state `[B, H]`, valid after `backward`.
    public var gradInitialHidden: UnsafePointer<Float> { UnsafePointer(dH.pointer) }
    /// Gradient w.r.t. the initial LSTM cell state `[B, H]`, valid after `backward`.
    public var gradInitialCell: UnsafePointer<Float> { UnsafePointer(dC.pointer) }

    /// Backward pass over the sequence of the last `forward`.
    ///
    /// - Parameters:
    ///   - input: the same input as in forward.
    ///   - gradOutput: `[T, B, gradOutputStride]`, columns `0..<H` used; padded steps ignored.
    ///   - gradFinalHidden, gradFinalCell: `[B, H]` gradients w.r.t. the final state, nil = zero.
    ///   - gradInput: `[T, B, I]` written (or added to, with `accumulate`); nil to skip (and
    ///     always skipped for one-hot input).
    /// Accumulates into the parameters' gradients; afterwards `gradInitialHidden`/`Cell` hold
    /// the gradients w.r.t. `h0`/`c0`.
    public func backward(input: RecurrentInput, gradOutput: UnsafePointer<Float>, gradOutputStride: Int,
                         gradFinalHidden: UnsafePointer<Float>?, gradFinalCell: UnsafePointer<Float>?,
                         gradInput: UnsafeMutablePointer<Float>?, accumulate: Bool = false) {
        let T = lastT, B = lastB, lengths = lastLengths
        let H = hiddenSize, GH = cell.gateCount * H, N = T * B
        let dgx = dGx.reserve(N * GH)
        let dgh = cell == .gru ? dGh.reserve(N * GH) : dgx
        let dh = dH.reserve(B * H), dc = dC.reserve(B * H), dhp = dHPrev.reserve(B * H)
        if let gradFinalHidden { dh.update(from: gradFinalHidden, count: B * H) } else { dh.update(repeating: 0, count: B * H) }
        if cell.hasCellState {
            if let gradFinalCell { dc.update(from: gradFinalCell, count: B * H) } else { dc.update(repeating: 0, count: B * H) }
        }
        let gp = gates.pointer, sp = states.pointer, cp = cells.pointer, tcp = tanhCells.pointer, hnp = hhN.pointer
        let whh = weightHH.value
        if useBF16 {
            let p = bfBackward.reserve(rnn_packed_bf16_size(Int32(GH), Int32(H)))
            rnn_pack_b_bf16(whh, Int32(H), Int32(GH), Int32(H), 0, p)
        } else if usePacked {
            let p = packedBackward.reserve(rnn_packed_size(Int32(GH), Int32(H)))
            rnn_pack_b(whh, Int32(H), Int32(GH), Int32(H), 0, p)
        }

        for k in 0..<T {
            let t = reverse ? k : T - 1 - k           // reverse processing order of forward
            let g = gp + t * B * GH
            let hPrev = sp + prevIndex(t) * B * H
            let dgxT = dgx + t * B * GH, dghT = dgh + t * B * GH
            let dy = gradOutput + t * B * gradOutputStride
            for b in 0..<B {
                let dhb = dh + b * H, dhpb = dhp + b * H
                let dgxb = dgxT + b * GH
                if let lengths, t >= lengths[b] {
                    // State passed through unchanged: gradients flow straight back.
                    dhpb.update(from: dhb, count: H)
                    dgxb.update(repeating: 0, count: GH)
                    if cell == .gru { (dghT + b * GH).update(repeating: 0, count: GH) }
                    continue
                }
                let dyb = dy + b * gradOutputStride
                let gb = g + b * GH
                switch cell {
                case .rnnTanh:
                    for j in 0..<H {
                        let d = dhb[j] + dyb[j], hv = gb[j]
                        dgxb[j] = d * (1 - hv * hv)
                        dhpb[j] = 0
                    }
                case .rnnRelu:
                    for j in 0..<H {
                        let d = dhb[j] + dyb[j]
                        dgxb[j] = gb[j] > 0 ? d : 0
                        dhpb[j] = 0
                    }
                case .lstm:
                    let ig = gb, fg = gb + H, gg = gb + 2 * H, og = gb + 3 * H
                    let tcb = tcp + (t * B + b) * H
                    let cpb = cp + (prevIndex(t) * B + b) * H
                    let dcb = dc + b * H
                    let vectorEnd = H / 16 * 16
                    Self.lstmGateGradients16(count: vectorEnd, dh: dhb, dy: dyb, gates: gb, H: H, tanhCell: tcb,
                                             cellPrev: cpb, dc: dcb, dG: dgxb)
                    dhpb.update(repeating: 0, count: H)
                    for j in vectorEnd..<H {
                        let d = dhb[j] + dyb[j]
                        let tcv = tcb[j]
                        let dcv = dcb[j] + d * og[j] * (1 - tcv * tcv)
                        let iv = ig[j], fv = fg[j], gv = gg[j], ov = og[j]
                        dgxb[j] = dcv * gv * iv * (1 - iv)
                        dgxb[H + j] = dcv * cpb[j] * fv * (1 - fv)
                        dgxb[2 * H + j] = dcv * iv * (1 - gv * gv)
                        dgxb[3 * H + j] = d * tcv * ov * (1 - ov)
                        dcb[j] = dcv * fv
                    }
                case .gru:
                    let r = gb, z = gb + H, nG = gb + 2 * H
                    let hnb = hnp + (t * B + b) * H
                    let hpb = hPrev + b * H
                    let dghb = dghT + b * GH
                    for j in 0..<H {
                        let d = dhb[j] + dyb[j]
                        let zv = z[j], nv = nG[j], rv = r[j]
                        let dn = d * (1 - zv)
                        let dz = d * (hpb[j] - nv)
                        let dan = dn * (1 - nv * nv)
                        let dr = dan * hnb[j]
                        let dar = dr * rv * (1 - rv)
                        let daz = dz * zv * (1 - zv)
                        dgxb[j] = dar; dgxb[H + j] = daz; dgxb[2 * H + j] = dan
                        dghb[j] = dar; dghb[H + j] = daz; dghb[2 * H + j] = dan * rv
                        dhpb[j] = d * zv
                    }
                }
            }
            // dh_prev += dG_h W_hh
            if useBF16 {
                bf16Product(m: B, n: H, k: GH, a: dghT, lda: GH, packed: bfBackward.pointer, c: dhp, ldc: H, scratch: bfStep)
            } else if usePacked {
                rnn_gemm_packed(Int32(level.rawValue), Int32(B), Int32(H), Int32(GH), dghT, Int32(GH), packedBackward.pointer, dhp, Int32(H))
            } else {
                BLAS.gemm(m: B, n: H, k: GH, a: dghT, lda: GH, b: whh, ldb: H, beta: 1, c: dhp, ldc: H)
            }
            dh.update(from: dhp, count: B * H)
        }

        // Weight gradients as large GEMMs over all T*B rows.
        if N > 0 {
            let hPrevAll = sp + (reverse ? B * H : 0)     // [T, B, H] time-aligned entering states
            if useBF16 {
                let pg = bfGrad.reserve(rnn_packed_bf16_size(Int32(N), Int32(GH)))
                rnn_pack_b_bf16(dgh, Int32(GH), Int32(N), Int32(GH), 0, pg)
                bf16WeightGradient(lhs: hPrevAll, rows: N, cols: H, packedGrad: pg, into: weightHH.grad)
            } else {
                BLAS.gemm(transA: true, m: GH, n: H, k: N, a: dgh, lda: GH, b: hPrevAll, ldb: H, beta: 1, c: weightHH.grad, ldc: H)
            }
            if cell == .gru {
                BLAS.addColumnSums(dgx, rows: N, cols: GH, lda: GH, into: biasIH.grad)
                BLAS.addColumnSums(dgh, rows: N, cols: GH, lda: GH, into: biasHH.grad)
            } else {
                // Both biases enter the same pre-activation, so their gradients are equal: one
                // pass over dG, added to both.
                let sums = biasSums.reserve(GH)
                sums.update(repeating: 0, count: GH)
                BLAS.addColumnSums(dgx, rows: N, cols: GH, lda: GH, into: sums)
                let bi = biasIH.grad, bh = biasHH.grad
                for j in 0..<GH { bi[j] += sums[j]; bh[j] += sums[j] }
            }
            switch input {
            case .dense(let x, _) where useBF16:
                let I = inputSize
                // dG as packed above (for a GRU, dG_x differs from the dG_h packed for W_hh).
                if cell == .gru { rnn_pack_b_bf16(dgx, Int32(GH), Int32(N), Int32(GH), 0, bfGrad.pointer) }
                bf16WeightGradient(lhs: x, rows: N, cols: I, packedGrad: bfGrad.pointer, into: weightIH.grad)
                if let gradInput {
                    let w = bfInputBack.reserve(rnn_packed_bf16_size(Int32(GH), Int32(I)))
                    rnn_pack_b_bf16(weightIH.value, Int32(I), Int32(GH), Int32(I), 0, w)
                    if !accumulate { gradInput.update(repeating: 0, count: N * I) }
                    bf16Product(m: N, n: I, k: GH, a: dgx, lda: GH, packed: w, c: gradInput, ldc: I, scratch: bfSequence)
                }
            case .dense(let x, _):
                BLAS.gemm(transA: true, m: GH, n: inputSize, k: N, a: dgx, lda: GH, b: x, ldb: inputSize, beta: 1,
                          c: weightIH.grad, ldc: inputSize)
                if let gradInput {
                    BLAS.gemm(m: N, n: inputSize, k: GH, a: dgx, lda: GH, b: weightIH.value, ldb: inputSize,
                              beta: accumulate ? 1 : 0, c: gradInput, ldc: inputSize)
                }
            case .projected:
                preconditionFailure("tabulated input projections are for inference only")
            case .oneHot(let ids, _):
                let wg = weightIH.grad
                for n in 0..<N {
                    let id = Int(ids[n]), row = dgx + n * GH
                    for j in 0..<GH { wg[j * inputSize + id] += row[j] }
                }
            }
        }
    }
}

/// A random orthogonal `[n, n]` matrix (modified Gram-Schmidt on a Gaussian matrix), row-major.
func randomOrthogonal(_ n: Int, rng: inout SeededRandom) -> [Float] {
    var a = [Double](repeating: 0, count: n * n)
    for i in 0..<(n * n) { a[i] = Double(rng.normal()) }
    for i in 0..<n {
        for k in 0..<i {
            var dot = 0.0
            for j in 0..<n { dot += a[i * n + j] * a[k * n + j] }
            for j in 0..<n { a[i * n + j] -= dot * a[k * n + j] }
        }
        var norm = 0.0
        for j in 0..<n { norm += a[i * n + j] * a[i * n + j] }
        norm = max(norm.squareRoot(), 1e-12)
        for j in 0..<n { a[i * n + j] /= norm }
    }
    return a.map { Float($0) }
}
