import Foundation
import RNNKernels

/// Batch-1 generation of a unidirectional recurrent language model, one token per call.
///
/// Generating one token reads every weight matrix once (about 3 MB for an LSTM 2x256), so its
/// speed is the speed at which the caches deliver the weights. The generator therefore
///
/// - packs each matrix once (`rnn_pack_b`) and multiplies with `rnn_matvec_packed`, which keeps
///   several accumulator chains in flight;
/// - splits the hidden units into `parts`, one per thread: part p owns units `units[p]`, i.e. the
///   rows `g H + j` (every gate g, j in `units[p]`) of each `W_ih` and `W_hh`, packed into its own
///   blocks, so each core keeps its share of the weights in its own L2 cache and computes its
///   units' gates and states without exchanging anything but the new `h` of each layer.
///
/// Threads meet at one barrier per layer and one at the start of each token. A worker that is
/// descheduled (the other core busy) stalls every barrier, so the generator probes: it times up
/// to 16 tokens with the workers (stopping early once they are slower than the last probe on one
/// thread), then 16 with every part on the calling thread (the first 2 of each are warm-up), and
/// runs the faster way for 1,024 tokens, or for twice as long as last time (up to 65,536) while
/// the workers keep losing.
/// Both ways run the same arithmetic: results are bit-identical for any number of parts.
///
/// Layer 0's input projection comes from a per-token table `[vocab, G H]` (biases included).
/// Outputs: `logits [vocab] = W_dec h_top + b_dec`.
final class StepGenerator {
    let core: StepGeneratorCore
    private var workers: [Thread] = []

    /// See `StepGeneratorCore.init`; starts `parts - 1` worker threads.
    init(cell: CellKind, hidden: Int, vocab: Int, table: UnsafePointer<Float>,
         layerWeights: [(wih: UnsafePointer<Float>, whh: UnsafePointer<Float>, bih: UnsafePointer<Float>, bhh: UnsafePointer<Float>)],
         decoderWeight: UnsafePointer<Float>, decoderBias: UnsafePointer<Float>?, parts: Int, level: ISALevel,
         precision: Precision = .fp32) {
        let core = StepGeneratorCore(cell: cell, hidden: hidden, vocab: vocab, table: table, layerWeights: layerWeights,
                                     decoderWeight: decoderWeight, decoderBias: decoderBias, parts: parts, level: level,
                                     precision: precision)
        self.core = core
        for p in 1..<core.units.count {
            let t = Thread { core.workerLoop(part: p) }
            t.stackSize = 1 << 20
            workers.append(t)
            t.start()
        }
    }

    deinit {
        if !workers.isEmpty {
            core.stopping = true
            core.releaseWorkers()
            // Wait for the workers to leave the barrier before it is freed.
            while workers.contains(where: { !$0.isFinished }) { usleep(100) }
        }
    }

    /// Number of parts (threads, the caller's included).
    var parts: Int { core.units.count }
    /// Whether every part now runs on the calling thread.
    var runsInline: Bool { core.runsInline }
    func setState(h: [Float]?, c: [Float]?) { core.setState(h: h, c: c) }
    var state: RecurrentState { core.state }
    func step(_ token: Int32) -> UnsafePointer<Float> { core.step(token) }
}

/// The arithmetic and shared state of a `StepGenerator`, referenced by its worker threads.
final class StepGeneratorCore: @unchecked Sendable {
    let cell: CellKind
    let layers: Int, hidden: Int, vocab: Int
    let level: ISALevel
    /// bf16: the recurrent layers' matrices are packed as bf16 and the vectors rounded before
    /// each product (the output layer stays fp32).
    let precision: Precision
    /// Hidden-unit ranges, one per part.
    let units: [Range<Int>]

    private let table: FloatBuffer          // [V, G H] layer 0 input projection + biases
    private let whh: [[PackedMatrix]]       // [part][layer] packed [H, G n_p]
    private let wih: [[PackedMatrix]]       // [part][layer] packed [H, G n_p], layer >= 1
    private let bx: [[FloatBuffer]]         // [part][layer] [G n_p] input-side bias (layer >= 1)
    private let bh: [[FloatBuffer]]         // [part][layer] [G n_p] hidden-side bias (GRU; zeros otherwise)
    private let ax: [FloatBuffer], ah: [FloatBuffer], tmp: [FloatBuffer]   // per part [G n_p]
    private let h: [FloatBuffer]            // [2] x [L, H]: read h[cur], write h[1 - cur]
    private let c: FloatBuffer              // [L, H] LSTM cell state
    private let decoder: PackedMatrix       // packed [H, V]
    private let hb: [BF16Buffer]            // per part: the vector of a bf16 product, rounded
    private let decoderBias: FloatBuffer    // [V]
    private let logits: FloatBuffer         // [V]
    private var cur = 0
    private var token: Int32 = 0

    // Threads.
    private let barrier: UnsafeMutablePointer<rnn_barrier>
    var stopping = false
    /// Whether the calling thread runs every part (chosen by timing both ways: see `step`).
    private(set) var runsInline: Bool
    private enum Mode { case probeInline, probeThreaded, run }
    private var mode = Mode.probeThreaded
    private var modeTokens = 0
    private var runLength = StepGeneratorCore.minimumRun
    private var inlineNanoseconds: UInt64 = 0, threadedNanoseconds: UInt64 = 0, lastInlineNanoseconds: UInt64 = 0
    private static let probeLength = 16, probeWarmup = 2, minimumRun = 1024, maximumRun = 65536

    /// - Parameters:
    ///   - table: layer 0's input projection per token `[vocab, G H]`, biases included (for a
    ///     GRU the `b_ih` only; `b_hh` is added on the hidden side).
    ///   - layerWeights: per layer `(W_ih [G H, H] (unused for layer 0), W_hh [G H, H], b_ih [G H], b_hh [G H])`.
    ///   - decoderWeight: `[V, H]`; `decoderBias`: `[V]` or nil.
    init(cell: CellKind, hidden H: Int, vocab V: Int, table tableValues: UnsafePointer<Float>,
         layerWeights: [(wih: UnsafePointer<Float>, whh: UnsafePointer<Float>, bih: UnsafePointer<Float>, bhh: UnsafePointer<Float>)],
         decoderWeight: UnsafePointer<Float>, decoderBias bias: UnsafePointer<Float>?, parts requested: Int, level: ISALevel,
         precision: Precision = .fp32) {
        precondition(level >= .avx2, "the generator needs the packed kernels")
        self.precision = precision
        self.cell = cell
        self.layers = layerWeights.count
        self.hidden = H
        self.vocab = V
        self.level = level
        let G = cell.gateCount, GH = G * H, L = layerWeights.count
        units = Threading.shards(count: H, parts: max(1, min(requested, H)))
        table = FloatBuffer(count: V * GH)
        table.pointer.update(from: tableValues, count: V * GH)

        // Rows of one part, gate-major: row g H + j for g in gates, j in the part's units.
        func gather(_ w: UnsafePointer<Float>, cols: Int, _ r: Range<Int>) -> [Float] {
            var out = [Float](); out.reserveCapacity(G * r.count * cols)
            for g in 0..<G { for j in r { out.append(contentsOf: UnsafeBufferPointer(start: w + (g * H + j) * cols, count: cols)) } }
            return out
        }
        func pack(_ rows: [Float], n: Int, k: Int) -> PackedMatrix {
            rows.withUnsafeBufferPointer { PackedMatrix(rows: $0.baseAddress!, n: n, k: k, precision: precision) }
        }
        func vector(_ v: UnsafePointer<Float>, _ r: Range<Int>, plus w: UnsafePointer<Float>? = nil) -> FloatBuffer {
            let b = FloatBuffer(count: G * r.count)
            var i = 0
            for g in 0..<G { for j in r { b.pointer[i] = v[g * H + j] + (w?[g * H + j] ?? 0); i += 1 } }
            return b
        }
        var whh: [[PackedMatrix]] = [], wih: [[PackedMatrix]] = [], bx: [[FloatBuffer]] = [], bh: [[FloatBuffer]] = []
        for r in units {
            let n = G * r.count
            whh.append(layerWeights.map { pack(gather($0.whh, cols: H, r), n: n, k: H) })
            wih.append(layerWeights.enumerated().map { $0.offset == 0 ? PackedMatrix.empty : pack(gather($0.element.wih, cols: H, r), n: n, k: H) })
            bx.append(layerWeights.map { cell == .gru ? vector($0.bih, r) : vector($0.bih, r, plus: $0.bhh) })
            bh.append(layerWeights.map { cell == .gru ? vector($0.bhh, r) : FloatBuffer(count: n) })
        }
        self.whh = whh; self.wih = wih; self.bx = bx; self.bh = bh
        ax = units.map { FloatBuffer(count: G * $0.count) }
        ah = units.map { FloatBuffer(count: G * $0.count) }
        tmp = units.map { FloatBuffer(count: $0.count) }
        h = [FloatBuffer(count: L * H), FloatBuffer(count: L * H)]
        c = FloatBuffer(count: L * H)
        // The output layer is not a recurrent product: fp32 in every precision, as in training.
        decoder = PackedMatrix(rows: decoderWeight, n: V, k: H, precision: .fp32)
        hb = units.map { _ in BF16Buffer(count: H + 1) }
        decoderBias = FloatBuffer(count: V)
        if let bias { decoderBias.pointer.update(from: bias, count: V) }
        logits = FloatBuffer(count: V)
        barrier = .allocate(capacity: 1)
        rnn_barrier_init(barrier, Int32(units.count))
        runsInline = units.count == 1
    }

    deinit { barrier.deallocate() }

    /// Meets the workers waiting at the start barrier (they then read `stopping`).
    func releaseWorkers() { _ = rnn_barrier_wait(barrier) }

    /// Sets the state `h`, `c` `[L, H]` (nil = zeros).
    func setState(h hs: [Float]?, c cs: [Float]?) {
        let n = layers * hidden
        if let hs { hs.withUnsafeBufferPointer { h[cur].pointer.update(from: $0.baseAddress!, count: n) } } else { h[cur].zero(n) }
        if let cs { cs.withUnsafeBufferPointer { c.pointer.update(from: $0.baseAddress!, count: n) } } else { c.zero(n) }
    }

    /// The state after the last step: `h`, and `c` for an LSTM, each `[L, H]`.
    var state: RecurrentState {
        let n = layers * hidden
        return RecurrentState(h: Array(UnsafeBufferPointer(start: h[cur].pointer, count: n)),
                              c: cell == .lstm ? Array(UnsafeBufferPointer(start: c.pointer, count: n)) : nil)
    }

    /// Feeds `token` and returns the next-token logits `[vocab]` (valid until the next call).
    func step(_ token: Int32) -> UnsafePointer<Float> {
        precondition(token >= 0 && Int(token) < vocab, "token \(token) out of range")
        self.token = token
        if units.count == 1 {
            for l in 0..<layers { layer(l, part: 0) }
        } else {
            let threaded = mode == .probeThreaded || (mode == .run && !runsInline)
            let start = DispatchTime.now().uptimeNanoseconds
            if threaded {
                _ = rnn_barrier_wait(barrier)          // start: the workers read `token`
                for l in 0..<layers {
                    layer(l, part: 0)
                    _ = rnn_barrier_wait(barrier)
                }
            } else {
                for l in 0..<layers { for p in units.indices { layer(l, part: p) } }
            }
            let elapsed = DispatchTime.now().uptimeNanoseconds - start
            modeTokens += 1
            switch mode {
            case .probeThreaded:
                if modeTokens > Self.probeWarmup { threadedNanoseconds += elapsed }
                // Stop early when the threads are already slower than the last inline probe.
                if modeTokens == Self.probeLength || (lastInlineNanoseconds > 0 && threadedNanoseconds >= lastInlineNanoseconds) {
                    threadedNanoseconds = threadedNanoseconds * UInt64(Self.probeLength - Self.probeWarmup) / UInt64(max(1, modeTokens - Self.probeWarmup))
                    mode = .probeInline; modeTokens = 0
                }
            case .probeInline:
                if modeTokens > Self.probeWarmup { inlineNanoseconds += elapsed }
                if modeTokens == Self.probeLength {
                    let threadsWon = threadedNanoseconds < inlineNanoseconds
                    runsInline = !threadsWon
                    runLength = threadsWon ? Self.minimumRun : min(2 * runLength, Self.maximumRun)
                    lastInlineNanoseconds = inlineNanoseconds
                    mode = .run; modeTokens = 0; inlineNanoseconds = 0; threadedNanoseconds = 0
                }
            case .run:
                if modeTokens == runLength { mode = .probeThreaded; modeTokens = 0 }
            }
        }
        cur = 1 - cur
        let top = h[cur].pointer + (layers - 1) * hidden
        logits.pointer.update(from: decoderBias.pointer, count: vocab)
        decoder.multiply(top, into: logits.pointer, level: level, scratch: hb[0])
        return UnsafePointer(logits.pointer)
    }

    func workerLoop(part p: Int) {
        while true {
            _ = rnn_barrier_wait(barrier)
            if stopping { return }
            for l in 0..<layers {
                layer(l, part: p)
                _ = rnn_barrier_wait(barrier)
            }
        }
    }

    /// Layer `l` of one token for part `p`: its units' gates, `c` and new `h`.
    @inline(__always)
    private func layer(_ l: Int, part p: Int) {
        let H = hidden, G = cell.gateCount, r = units[p], n = r.count
        let hOld = h[cur].pointer + l * H, hNew = h[1 - cur].pointer + l * H
        let x = ax[p].pointer, y = ah[p].pointer
        if l == 0 {
            let row = table.pointer + Int(token) * G * H
            var i = 0
            for g in 0..<G { (x + i).update(from: row + g * H + r.lowerBound, count: n); i += n }
        } else {
            x.update(from: bx[p][l].pointer, count: G * n)
            wih[p][l].multiply(h[1 - cur].pointer + (l - 1) * H, into: x, level: level, scratch: hb[p])
        }
        y.update(from: bh[p][l].pointer, count: G * n)
        whh[p][l].multiply(hOld, into: y, level: level, scratch: hb[p])

        let j0 = r.lowerBound
        switch cell {
        case .lstm:
            for i in 0..<(4 * n) { x[i] += y[i] }
            FastMath.sigmoidInPlace(x, 2 * n)
            FastMath.tanhInPlace(x + 2 * n, n)
            FastMath.sigmoidInPlace(x + 3 * n, n)
            let cp = c.pointer + l * H + j0, t = tmp[p].pointer
            for u in 0..<n { cp[u] = x[n + u] * cp[u] + x[u] * x[2 * n + u] }
            FastMath.tanh(cp, into: t, n)
            for u in 0..<n { hNew[j0 + u] = x[3 * n + u] * t[u] }
        case .gru:
            for i in 0..<(2 * n) { x[i] += y[i] }
            FastMath.sigmoidInPlace(x, 2 * n)
            for u in 0..<n { x[2 * n + u] += x[u] * y[2 * n + u] }
            FastMath.tanhInPlace(x + 2 * n, n)
            for u in 0..<n { let z = x[n + u]; hNew[j0 + u] = (1 - z) * x[2 * n + u] + z * hOld[j0 + u] }
        case .rnnTanh:
            for i in 0..<n { x[i] += y[i] }
            FastMath.tanhInPlace(x, n)
            (hNew + j0).update(from: x, count: n)
        case .rnnRelu:
            for i in 0..<n { hNew[j0 + i] = max(0, x[i] + y[i]) }
        }
    }
}

/// A weight matrix packed once for `y += x W^T` with a vector `x`: fp32 (`rnn_pack_b`,
/// `rnn_matvec_packed`) or bf16 (`rnn_pack_b_bf16`, `rnn_matvec_bf16`, `x` rounded first).
final class PackedMatrix: @unchecked Sendable {
    let n: Int, k: Int
    private let fp32: FloatBuffer?
    private let bf16: BF16Buffer?

    /// No matrix (layer 0's input weights, which the generator tabulates instead).
    static let empty = PackedMatrix()
    private init() { n = 0; k = 0; fp32 = nil; bf16 = nil }

    /// Packs `W [n, k]` (row-major) as the right operand `W^T [k, n]`.
    init(rows w: UnsafePointer<Float>, n: Int, k: Int, precision: Precision) {
        self.n = n; self.k = k
        if precision == .bf16 {
            let b = BF16Buffer(count: rnn_packed_bf16_size(Int32(k), Int32(n)))
            rnn_pack_b_bf16(w, Int32(k), Int32(k), Int32(n), 1, b.pointer)
            bf16 = b; fp32 = nil
        } else {
            let b = FloatBuffer(count: rnn_packed_size(Int32(k), Int32(n)))
            rnn_pack_b(w, Int32(k), Int32(k), Int32(n), 1, b.pointer)
            fp32 = b; bf16 = nil
        }
    }

    /// `y[n] += x[k] W^T`; `scratch` holds the rounded `x` in bf16 (at least k + 1 values).
    @inline(__always)
    func multiply(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, level: ISALevel, scratch: BF16Buffer) {
        if let bf16 {
            rnn_to_bf16(x, 1, Int32(k), Int32(k), scratch.pointer, Int32(k + 1))
            rnn_matvec_bf16(Int32(n), Int32(k), scratch.pointer, bf16.pointer, y)
        } else if let fp32 {
            rnn_matvec_packed(Int32(level.rawValue), Int32(n), Int32(k), x, fp32.pointer, y)
        }
    }
}
