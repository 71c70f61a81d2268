import RecurrentCore

/// One shard's copy of the model for training: shares parameter values with the primary,
/// owns gradients and every activation buffer.
///
/// The decoder runs step by step (input feeding needs `h~_{t-1}` before step t, and teacher
/// forcing below 1 needs the prediction of step t-1). Each decoder step t runs its own replica
/// of the decoder stack (`stepStacks[t]`, T = 1, carrying the state), so every step keeps its
/// caches for backward; after backward each replica's gradients are added into this worker's
/// decoder stack (`collectStepGradients`).
final class Seq2SeqWorker {
    let modules: Seq2SeqModules
    private(set) var stepStacks: [RecurrentStack] = []
    private var usedSteps = 0

    // Encoder buffers.
    let srcEmb = FloatBuffer(), memory = FloatBuffer(), keys = FloatBuffer()
    let lengthBuffer = GrowableBuffer<Int>()
    var srcIDs: [Int32] = []
    // Decoder caches, time-major.
    let x = FloatBuffer(), hs = FloatBuffer(), attn = FloatBuffer(), concat = FloatBuffer()
    let ht = FloatBuffer(), energies = FloatBuffer(), q = FloatBuffer(), logits = FloatBuffer()
    var usedIDs: [Int32] = []
    // Backward buffers.
    let gradLogits = FloatBuffer(), gradHt = FloatBuffer(), feedGrad = FloatBuffer(), dz = FloatBuffer()
    let dConcat = FloatBuffer(), dh = FloatBuffer(), dx = FloatBuffer(), dM = FloatBuffer(), dK = FloatBuffer()
    let dq = FloatBuffer(), scratch = FloatBuffer(), gy = FloatBuffer(), dSrcEmb = FloatBuffer()
    private var initialStates: [RecurrentState] = []
    private var lastS = 0, lastB = 0, lastT = 0

    init(modules: Seq2SeqModules) { self.modules = modules }

    var config: Seq2SeqConfig { modules.config }

    private func stepStack(_ t: Int) -> RecurrentStack {
        while stepStacks.count <= t { stepStacks.append(RecurrentStack(sharing: modules.decoder)) }
        return stepStacks[t]
    }

    var memoryView: MemoryView {
        MemoryView(m: UnsafePointer(memory.pointer),
                   keys: UnsafePointer(config.attention == .dot ? memory.pointer : keys.pointer),
                   lengths: UnsafePointer(lengthBuffer.pointer), steps: lastS)
    }

    /// Runs the encoder on time-major ids `[S, B]` with `lengths [B]`; fills `memory [B, S, H]`
    /// and the keys; returns the decoder's initial state `[L, B, H]`.
    @discardableResult
    func encode(sourceIDs: [Int32], lengths: [Int], S: Int, B: Int, training: Bool) -> RecurrentState {
        var rng = SeededRandom(seed: 0)
        return encode(sourceIDs: sourceIDs, lengths: lengths, S: S, B: B, training: training, rng: &rng)
    }

    /// `encode` drawing the encoder's dropout masks (training only) from `rng`.
    @discardableResult
    func encode(sourceIDs: [Int32], lengths: [Int], S: Int, B: Int, training: Bool, rng: inout SeededRandom) -> RecurrentState {
        let c = config, E = c.embedding, H = c.hidden, D = c.bidirectional ? 2 : 1, L = c.layers
        srcIDs = sourceIDs
        let lp = lengthBuffer.reserve(B)
        for b in 0..<B { lp[b] = lengths[b] }
        lastS = S; lastB = B
        let emb = srcEmb.reserve(S * B * E)
        sourceIDs.withUnsafeBufferPointer { modules.sourceEmbedding.forward(ids: $0.baseAddress!, count: S * B, output: emb) }
        let y = modules.encoder.forward(input: .dense(UnsafePointer(emb), features: E), steps: S, batch: B,
                                        lengths: lengths, initial: nil, training: training, rng: &rng)
        let m = memory.reserve(B * S * H)
        for s in 0..<S {
            for b in 0..<B {
                let dst = m + (b * S + s) * H, src = y + (s * B + b) * D * H
                dst.update(from: src, count: H)
                if D == 2 { for j in 0..<H { dst[j] += src[H + j] } }
            }
        }
        if c.attention == .general || c.attention == .additive {
            modules.computeKeys(m: UnsafePointer(m), rows: B * S, into: keys.reserve(B * S * H))
        }
        let fs = modules.encoder.finalState
        if D == 1 { return fs }
        func combine(_ a: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: L * B * H)
            for l in 0..<L { for i in 0..<(B * H) { out[l * B * H + i] = a[(2 * l) * B * H + i] + a[(2 * l + 1) * B * H + i] } }
            return out
        }
        return RecurrentState(h: combine(fs.h), c: fs.c.map(combine))
    }

    /// Forward (and backward) of a training shard.
    ///
    /// - Parameters:
    ///   - sourceIDs: `[S, B]` time-major, lengths `[B]`.
    ///   - decoderInput, targets: `[T, B]` time-major ids; `weights [T, B]` (target mask).
    ///   - teacherForcing: probability that step t > 0 reads the gold previous token instead
    ///     of the model's previous prediction (per row and step).
    ///   - gradScale: multiplies the gradient of this shard's weighted mean loss.
    /// - Returns: the weighted sum of per-token NLL and the weight sum.
    func run(sourceIDs: [Int32], lengths: [Int], S: Int, decoderInput: [Int32], targets: [Int32], weights: [Float],
             T: Int, B: Int, teacherForcing: Float, training: Bool, backward: Bool, gradScale: Float,
             rng: inout SeededRandom) -> (lossSum: Double, weightSum: Double) {
        let c = config, E = c.embedding, H = c.hidden, V = c.targetVocabSize, Din = modules.decoderInputSize
        let feeding = c.attention.usesInputFeeding
        lastT = T
        var state = encode(sourceIDs: sourceIDs, lengths: lengths, S: S, B: B, training: training, rng: &rng)
        let mv = memoryView
        let xb = x.reserve(T * B * Din), hsb = hs.reserve(T * B * H), aw = attn.reserve(T * B * max(S, 1))
        let cat = concat.reserve(T * B * 2 * H), htb = ht.reserve(T * B * H)
        let en = energies.reserve(c.attention == .additive ? T * B * S * H : 1), qb = q.reserve(B * H)
        let lg = logits.reserve(T * B * V)
        usedIDs = [Int32](repeating: 0, count: T * B)
        initialStates.removeAll(keepingCapacity: true)
        let embW = modules.targetEmbedding.weight.value
        for t in 0..<T {
            // Decoder input ids of this step.
            for b in 0..<B {
                var id = decoderInput[t * B + b]
                if t > 0 && teacherForcing < 1 && rng.nextFloat() >= teacherForcing {
                    let row = lg + ((t - 1) * B + b) * V
                    var best = 0
                    for j in 1..<V where row[j] > row[best] { best = j }
                    id = Int32(best)
                }
                usedIDs[t * B + b] = id
                let xr = xb + (t * B + b) * Din
                xr.update(from: embW + Int(id) * E, count: E)
                if feeding {
                    if t == 0 { (xr + E).update(repeating: 0, count: H) } else { (xr + E).update(from: htb + ((t - 1) * B + b) * H, count: H) }
                }
            }
            let stack = stepStack(t)
            initialStates.append(state)
            let h = stack.forward(input: .dense(UnsafePointer(xb + t * B * Din), features: Din), steps: 1, batch: B,
                                  lengths: nil, initial: state, training: training, rng: &rng)
            (hsb + t * B * H).update(from: h, count: B * H)
            state = stack.finalState
            if let linearOut = modules.linearOut {
                modules.attendForward(h: UnsafePointer(hsb + t * B * H), B: B, memory: mv, rowMap: nil,
                                      weights: aw + t * B * S, concat: cat + t * B * 2 * H, query: qb,
                                      energies: en + (c.attention == .additive ? t * B * S * H : 0))
                linearOut.forward(input: UnsafePointer(cat + t * B * 2 * H), rows: B, output: htb + t * B * H)
                FastMath.tanhInPlace(htb + t * B * H, B * H)
            } else {
                (htb + t * B * H).update(from: h, count: B * H)
            }
            modules.out.forward(input: UnsafePointer(htb + t * B * H), rows: B, output: lg + t * B * V)
        }
        usedSteps = T
        let gl: UnsafeMutablePointer<Float>? = backward ? gradLogits.reserve(T * B * V) : nil
        let result = targets.withUnsafeBufferPointer { tp in
            weights.withUnsafeBufferPointer { wp in
                SoftmaxCrossEntropy.compute(logits: lg, rows: T * B, classes: V, targets: tp.baseAddress!,
                                            weights: wp.baseAddress!, gradLogits: gl)
            }
        }
        guard backward, let gl else { return (result.loss * result.weightSum, result.weightSum) }
        if gradScale != 1 { for i in 0..<(T * B * V) { gl[i] *= gradScale } }
        let dHt = gradHt.reserve(T * B * H)
        modules.out.backward(input: UnsafePointer(htb), gradOutput: gl, rows: T * B, gradInput: dHt)
        let fg = feedGrad.reserve(B * H); fg.update(repeating: 0, count: B * H)
        let dzb = dz.reserve(B * H), dcat = dConcat.reserve(B * 2 * H), dhb = dh.reserve(B * H), dxb = dx.reserve(B * Din)
        let dMb = dM.reserve(B * S * H); dMb.update(repeating: 0, count: B * S * H)
        let dKb = dK.reserve(B * S * H); dKb.update(repeating: 0, count: B * S * H)
        let dqb = dq.reserve(B * H), sc = scratch.reserve(max(S, 1))
        var gradState: RecurrentState? = nil
        let embG = modules.targetEmbedding.weight.grad
        for t in stride(from: T - 1, through: 0, by: -1) {
            let dht = dHt + t * B * H
            if feeding { for i in 0..<(B * H) { dht[i] += fg[i] } }
            if let linearOut = modules.linearOut {
                let h̃ = htb + t * B * H
                for i in 0..<(B * H) { dzb[i] = dht[i] * (1 - h̃[i] * h̃[i]) }
                linearOut.backward(input: UnsafePointer(cat + t * B * 2 * H), gradOutput: dzb, rows: B, gradInput: dcat)
                for b in 0..<B { (dhb + b * H).update(from: dcat + b * 2 * H + H, count: H) }
                modules.attendBackward(h: UnsafePointer(hsb + t * B * H), B: B, memory: mv, weights: aw + t * B * S,
                                       energies: en + (c.attention == .additive ? t * B * S * H : 0),
                                       gradContext: dcat, gradContextStride: 2 * H, gradH: dhb, gradM: dMb,
                                       gradKeys: dKb, gradQuery: dqb, scratch: sc)
            } else {
                dhb.update(from: dht, count: B * H)
            }
            let stack = stepStacks[t]
            gradState = stack.backward(input: .dense(UnsafePointer(xb + t * B * Din), features: Din), gradOutput: dhb,
                                       gradFinal: gradState, gradInput: dxb)
            for b in 0..<B {
                let row = embG + Int(usedIDs[t * B + b]) * E, g = dxb + b * Din
                for j in 0..<E { row[j] += g[j] }
                if feeding { (fg + b * H).update(from: g + E, count: H) }
            }
        }
        if c.attention == .general || c.attention == .additive {
            modules.keysBackward(m: UnsafePointer(memory.pointer), rows: B * S, gradKeys: dKb, gradM: dMb)
        }
        // Encoder backward: bridge (sum of directions) and memory gradients.
        let D = c.bidirectional ? 2 : 1, L = c.layers, DH = D * H
        var gradFinal = gradState
        if D == 2, let gs = gradState {
            func split(_ a: [Float]) -> [Float] {
                var out = [Float](repeating: 0, count: 2 * L * B * H)
                for l in 0..<L {
                    for i in 0..<(B * H) { out[(2 * l) * B * H + i] = a[l * B * H + i]; out[(2 * l + 1) * B * H + i] = a[l * B * H + i] }
                }
                return out
            }
            gradFinal = RecurrentState(h: split(gs.h), c: gs.c.map(split))
        }
        let gyb = gy.reserve(S * B * DH)
        for s in 0..<S {
            for b in 0..<B {
                for d in 0..<D { (gyb + (s * B + b) * DH + d * H).update(from: dMb + (b * S + s) * H, count: H) }
            }
        }
        let dse = dSrcEmb.reserve(S * B * E)
        modules.encoder.backward(input: .dense(UnsafePointer(srcEmb.pointer), features: E), gradOutput: gyb,
                                 gradFinal: gradFinal, gradInput: dse)
        srcIDs.withUnsafeBufferPointer { modules.sourceEmbedding.backward(ids: $0.baseAddress!, count: S * B, gradOutput: dse) }
        return (result.loss * result.weightSum, result.weightSum)
    }

    /// Every parameter of this worker whose gradient a training pass touched: the modules'
    /// parameters, then each used decoder step replica's.
    func zeroGradients() {
        modules.zeroGrad()
        for s in stepStacks { s.zeroGrad() }
    }

    /// Adds the gradients of this worker (modules and used step replicas) into `primary`.
    ///
    /// The per-step decoder gradients are summed into this worker's own first, so each worker
    /// adds one block, in worker order: the same sums whether the other workers run in this
    /// process or on other MPI ranks.
    func addGradients(into primary: Seq2SeqModules) {
        let own = modules.decoder.parameters
        for t in 0..<usedSteps { accumulateGradients(into: own, from: stepStacks[t].parameters) }
        accumulateGradients(into: primary.parameters, from: modules.parameters)
    }
}

