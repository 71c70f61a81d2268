import RecurrentCore

/// An encoder-decoder translation model (Sutskever et al. 2014; attention after Luong et al.
/// 2015), PyTorch layouts and `state_dict` names (see `namedParameters`).
///
/// Encoder: `Embedding(Vs, E) → RNN/LSTM/GRU(E, H, layers, bidirectional)`; with a
/// bidirectional encoder the two directions are summed (outputs and final states), so the
/// memory is `[batch, S, H]` and the decoder starts from `[layers, batch, H]`.
/// Decoder: `Embedding(Vt, E) → RNN/LSTM/GRU(E (+ H with input feeding), H, layers)` started
/// from the encoder's final state, then attention (`AttentionKind`) and `Linear(H, Vt)`.
/// Padded source positions get exactly zero attention.
///
/// Training runs data-parallel over batch shards (`threads`), each shard on its own replica
/// (see `Threading`); gradients are summed into the primary parameters.
public final class Seq2SeqModel: ParameterContainer {
    /// The model's shape.
    public let config: Seq2SeqConfig
    /// Number of batch shards trained in parallel.
    public let threads: Int
    /// The processes training shares a batch with (`ProcessGroup.shards`); `single` trains the
    /// whole batch here.
    public var processGroup: ProcessGroup = .single
    let primary: Seq2SeqModules
    let workers: [Seq2SeqWorker]
    private let inference: Seq2SeqWorker
    private let inferenceStack: RecurrentStack

    /// Creates a model with PyTorch's default initialisation from `seed`.
    public init(config: Seq2SeqConfig, seed: UInt64, threads: Int = 1) throws(Seq2SeqError) {
        try config.validate()
        var rng = SeededRandom(seed: seed)
        self.config = config
        self.threads = max(1, threads)
        let p = Seq2SeqModules(config: config, rng: &rng)
        primary = p
        workers = (0..<max(1, threads)).map { _ in Seq2SeqWorker(modules: Seq2SeqModules(sharing: p)) }
        inference = Seq2SeqWorker(modules: Seq2SeqModules(sharing: p))
        inferenceStack = RecurrentStack(sharing: p.decoder)
        Threading.useSingleThreadedBLAS()
    }

    /// Number format of the encoder's and decoder's recurrent products in every worker (see
    /// `Precision`); default fp32.
    public var precision: Precision {
        get { primary.encoder.precision }
        set {
            for m in [primary, inference.modules] + workers.map(\.modules) { m.encoder.precision = newValue; m.decoder.precision = newValue }
            for w in workers + [inference] { for s in w.stepStacks { s.precision = newValue } }
            inferenceStack.precision = newValue
        }
    }

    /// Parameters with their checkpoint names (`encoder.embedding.weight`, `encoder.rnn.weight_ih_l0`,
    /// …, `attention.*`, `decoder.out.weight`, `decoder.out.bias`).
    public var namedParameters: [(name: String, parameter: Parameter)] { primary.namedParameters }

    /// Tensors for a checkpoint, in `namedParameters` order.
    public var stateDict: [NamedTensor] {
        namedParameters.map { NamedTensor(name: $0.name, shape: $0.parameter.shape, values: $0.parameter.values) }
    }

    // MARK: Training

    /// Forward and backward on one batch; afterwards the parameters' gradients hold
    /// d(mean loss)/d(parameter) (zeroed first).
    ///
    /// - Parameters:
    ///   - batch: padded batch (`Seq2SeqBatcher`), source `[batch, S]`, decoder arrays `[batch, T]`.
    ///   - teacherForcing: probability (per row and step) of feeding the gold previous token
    ///     rather than the model's own previous prediction; 1 = always gold.
    ///   - seed: seeds the teacher-forcing draws.
    /// - Returns: the mean cross-entropy per target token (nats), `</s>` included.
    @discardableResult
    public func trainStep(batch: Seq2SeqBatch, teacherForcing: Float = 1, seed: UInt64 = 0) -> Double {
        let (first, ranges) = processGroup.shards(count: batch.batchSize, threads: threads)
        let totalWeight = Double(batch.targetMask.reduce(0, +))
        let box = UncheckedBox(workers)
        // One slot per shard, allocated before the workers start: each writes only its own.
        let losses = UnsafeMutableBufferPointer<Double>.allocate(capacity: ranges.count)
        losses.initialize(repeating: 0)
        defer { losses.deallocate() }
        let slots = UncheckedBox(losses)
        Threading.run(ranges.count) { k in
            let worker = box.value[k]
            worker.zeroGradients()
            let shard = Seq2SeqModel.shard(batch, rows: ranges[k])
            var rng = SeededRandom(seed: seed &* 1_000_003 &+ UInt64(first + k))
            let scale = totalWeight > 0 ? Float(Double(shard.weights.reduce(0, +)) / totalWeight) : 0
            slots.value[k] = worker.run(sourceIDs: shard.source, lengths: shard.lengths, S: shard.S,
                                        decoderInput: shard.input, targets: shard.target, weights: shard.weights,
                                        T: shard.T, B: shard.B, teacherForcing: teacherForcing, training: true,
                                        backward: true, gradScale: scale, rng: &rng).lossSum
        }
        primary.zeroGrad()
        for k in 0..<ranges.count { workers[k].addGradients(into: primary) }
        let lossSum = processGroup.sumInOrder(Array(losses))
        return totalWeight > 0 ? lossSum / totalWeight : 0
    }

    /// Mean cross-entropy per target token of a batch with gold decoder inputs, no gradients.
    public func loss(batch: Seq2SeqBatch) -> Double {
        let shard = Seq2SeqModel.shard(batch, rows: 0..<batch.batchSize)
        var rng = SeededRandom(seed: 0)
        let r = inference.run(sourceIDs: shard.source, lengths: shard.lengths, S: shard.S, decoderInput: shard.input,
                              targets: shard.target, weights: shard.weights, T: shard.T, B: shard.B, teacherForcing: 1,
                              training: false, backward: false, gradScale: 1, rng: &rng)
        return r.weightSum > 0 ? r.lossSum / r.weightSum : 0
    }

    struct Shard {
        var source: [Int32], lengths: [Int], S: Int
        var input: [Int32], target: [Int32], weights: [Float], T: Int, B: Int
    }

    /// Rows of a batch, time-major, cut to the rows' own longest source and target.
    static func shard(_ batch: Seq2SeqBatch, rows: Range<Int>) -> Shard {
        let B = rows.count
        let lengths = rows.map { batch.sourceLengths[$0] }
        let S = lengths.max() ?? 1
        let T = rows.map { batch.targetLengths[$0] }.max() ?? 1
        var source = [Int32](repeating: 0, count: S * B)
        var input = [Int32](repeating: 0, count: T * B), target = input
        var weights = [Float](repeating: 0, count: T * B)
        for (j, b) in rows.enumerated() {
            for s in 0..<S { source[s * B + j] = Int32(batch.sourceIDs[b * batch.sourceLength + s]) }
            for t in 0..<T {
                let i = b * batch.targetLength + t
                input[t * B + j] = Int32(batch.decoderInput[i])
                target[t * B + j] = Int32(batch.decoderTarget[i])
                weights[t * B + j] = batch.targetMask[i]
            }
        }
        return Shard(source: source, lengths: lengths, S: S, input: input, target: target, weights: weights, T: T, B: B)
    }

    // MARK: Decoding

    /// The decoder state of one hypothesis.
    public struct HypothesisState: Sendable {
        /// Recurrent state `[layers, H]` (and `c` for LSTM).
        public var h: [Float]
        /// LSTM cell state `[layers, H]`.
        public var c: [Float]?
        /// Previous attentional state `h~` `[H]` (input feeding).
        public var feed: [Float]
        /// Which encoded source (memory row) the hypothesis reads.
        public var row: Int
        /// Attention weights of the step that produced this state, `[source length]` (empty without attention).
        public var attention: [Float]
    }

    /// Encodes sources (ids, each non-empty and at most `maxSourceLength` long) and returns
    /// a scorer over them plus one start state per source.
    func startDecoding(_ sources: [[Int]]) -> (Seq2SeqStepScorer, [HypothesisState]) {
        let B = sources.count, S = sources.map(\.count).max() ?? 1, H = config.hidden, L = config.layers
        var ids = [Int32](repeating: 0, count: S * B)
        for (b, src) in sources.enumerated() { for (s, id) in src.enumerated() { ids[s * B + b] = Int32(id) } }
        let st = inference.encode(sourceIDs: ids, lengths: sources.map(\.count), S: S, B: B, training: false)
        var states: [HypothesisState] = []
        for b in 0..<B {
            func pick(_ a: [Float]) -> [Float] {
                var out = [Float](repeating: 0, count: L * H)
                for l in 0..<L { for j in 0..<H { out[l * H + j] = a[(l * B + b) * H + j] } }
                return out
            }
            states.append(HypothesisState(h: pick(st.h), c: st.c.map(pick), feed: [Float](repeating: 0, count: H), row: b, attention: []))
        }
        return (Seq2SeqStepScorer(model: self, memory: inference.memoryView, lengths: sources.map(\.count)), states)
    }

    /// One decoder step for `states.count` hypotheses (see `IncrementalScorer`).
    func step(states: [HypothesisState], tokens: [Int], memory mv: MemoryView) -> [(logProbs: [Float], state: HypothesisState)] {
        let B = states.count, H = config.hidden, L = config.layers, E = config.embedding, V = config.targetVocabSize
        let Din = primary.decoderInputSize, S = mv.steps
        var x = [Float](repeating: 0, count: B * Din)
        var h0 = [Float](repeating: 0, count: L * B * H)
        var c0: [Float]? = config.cell.hasCellState ? h0 : nil
        let embW = primary.targetEmbedding.weight.value
        for b in 0..<B {
            let id = min(max(tokens[b], 0), V - 1)
            for j in 0..<E { x[b * Din + j] = embW[id * E + j] }
            if Din > E { for j in 0..<H { x[b * Din + E + j] = states[b].feed[j] } }
            for l in 0..<L {
                for j in 0..<H { h0[(l * B + b) * H + j] = states[b].h[l * H + j] }
                if let c = states[b].c { for j in 0..<H { c0![(l * B + b) * H + j] = c[l * H + j] } }
            }
        }
        var rng = SeededRandom(seed: 0)
        var top = [Float](repeating: 0, count: B * H)
        x.withUnsafeBufferPointer { xp in
            let y = inferenceStack.forward(input: .dense(xp.baseAddress!, features: Din), steps: 1, batch: B, lengths: nil,
                                           initial: RecurrentState(h: h0, c: c0), training: false, rng: &rng)
            for i in 0..<(B * H) { top[i] = y[i] }
        }
        let fs = inferenceStack.finalState
        var ht = top
        var weights = [Float](repeating: 0, count: B * max(S, 1))
        if let linearOut = primary.linearOut {
            var concat = [Float](repeating: 0, count: B * 2 * H), q = [Float](repeating: 0, count: B * H)
            var energies = [Float](repeating: 0, count: config.attention == .additive ? B * S * H : 1)
            let rows = states.map(\.row)
            top.withUnsafeBufferPointer { hp in
            rows.withUnsafeBufferPointer { rp in
            weights.withUnsafeMutableBufferPointer { wp in
            concat.withUnsafeMutableBufferPointer { cp in
            q.withUnsafeMutableBufferPointer { qp in
            energies.withUnsafeMutableBufferPointer { ep in
            ht.withUnsafeMutableBufferPointer { htp in
                primary.attendForward(h: hp.baseAddress!, B: B, memory: mv, rowMap: rp.baseAddress!, weights: wp.baseAddress!,
                                      concat: cp.baseAddress!, query: qp.baseAddress!, energies: ep.baseAddress!)
                linearOut.forward(input: UnsafePointer(cp.baseAddress!), rows: B, output: htp.baseAddress!)
                FastMath.tanhInPlace(htp.baseAddress!, B * H)
            }}}}}}}
        }
        var logits = [Float](repeating: 0, count: B * V)
        ht.withUnsafeBufferPointer { hp in
            logits.withUnsafeMutableBufferPointer { primary.out.forward(input: hp.baseAddress!, rows: B, output: $0.baseAddress!) }
        }
        var result: [(logProbs: [Float], state: HypothesisState)] = []
        result.reserveCapacity(B)
        for b in 0..<B {
            var lp = Array(logits[(b * V)..<((b + 1) * V)])
            var m = -Float.infinity
            for v in lp { m = max(m, v) }
            var s: Float = 0
            for v in lp { s += expf(v - m) }
            let lse = m + logf(s)
            for j in 0..<V { lp[j] -= lse }
            func pick(_ a: [Float]) -> [Float] {
                var out = [Float](repeating: 0, count: L * H)
                for l in 0..<L { for j in 0..<H { out[l * H + j] = a[(l * B + b) * H + j] } }
                return out
            }
            let len = config.attention == .none ? 0 : mv.lengths[states[b].row]
            let att = len > 0 ? Array(weights[(b * S)..<(b * S + len)]) : []
            result.append((lp, HypothesisState(h: pick(fs.h), c: fs.c.map(pick), feed: Array(ht[(b * H)..<((b + 1) * H)]),
                                               row: states[b].row, attention: att)))
        }
        return result
    }

    /// Greedy decoding of several sources at once.
    /// - Parameters:
    ///   - sources: token ids per source (no `<s>`/`</s>`), each 1…`maxSourceLength` long.
    ///   - maxLength: most output tokens (default `maxTargetLength`).
    /// - Returns: one `DecodedSequence` per source; `trace[t].attention` holds the attention
    ///   weights `[source length]` of output step t.
    public func greedy(_ sources: [[Int]], maxLength: Int? = nil) -> [DecodedSequence<HypothesisState>] {
        guard !sources.isEmpty else { return [] }
        let (scorer, states) = startDecoding(sources)
        return SequenceDecoder.greedy(scorer, initial: states, startToken: Vocabulary.startID, endToken: Vocabulary.endID,
                                      maxLength: maxLength ?? config.maxTargetLength)
    }

    /// Beam search of width `width` for one source (see `SequenceDecoder.beam`).
    public func beam(_ source: [Int], width: Int, lengthPenalty: Double = 1, maxLength: Int? = nil) -> DecodedSequence<HypothesisState> {
        let (scorer, states) = startDecoding([source])
        return SequenceDecoder.beam(scorer, initial: states[0], width: width, startToken: Vocabulary.startID,
                                    endToken: Vocabulary.endID, maxLength: maxLength ?? config.maxTargetLength,
                                    lengthPenalty: lengthPenalty)
    }

    /// The `count` best hypotheses of a beam search of width `max(width, count)` for one
    /// source, best first (see `SequenceDecoder.nBest`).
    public func nBest(_ source: [Int], width: Int, count: Int, lengthPenalty: Double = 1,
                      maxLength: Int? = nil) -> [DecodedSequence<HypothesisState>] {
        let (scorer, states) = startDecoding([source])
        return SequenceDecoder.nBest(scorer, initial: states[0], width: width, count: count, startToken: Vocabulary.startID,
                                     endToken: Vocabulary.endID, maxLength: maxLength ?? config.maxTargetLength,
                                     lengthPenalty: lengthPenalty)
    }

    /// The log-probability (natural log) of `target` (ids, no `<s>`; `</s>` is added and
    /// scored) given `source`, with gold decoder inputs: the training forward pass
    /// (`loss(batch:)`), not the step-by-step decoder.
    public func teacherForcedLogProb(source: [Int], target: [Int]) throws -> Double {
        let pair = EncodedPair(source: source, target: target)
        let batch = try Seq2SeqBatcher.batches([pair], options: BatchingOptions(batchSize: 1, maxSourceLength: 1000,
                                                                                 maxTargetLength: 1000))[0]
        return -loss(batch: batch) * Double(target.count + 1)
    }

    /// Decodes many sources, greedily in chunks of 64 (`beam` ≤ 1) or one by one with beam search.
    public func decode(_ sources: [[Int]], beam width: Int = 1) -> [DecodedSequence<HypothesisState>] {
        if width <= 1 {
            var out: [DecodedSequence<HypothesisState>] = []
            var start = 0
            while start < sources.count {
                let end = min(sources.count, start + 64)
                out += greedy(Array(sources[start..<end]))
                start = end
            }
            return out
        }
        return sources.map { beam($0, width: width) }
    }
}

/// The decoder over one encoded batch, as an `IncrementalScorer`.
struct Seq2SeqStepScorer: IncrementalScorer {
    let model: Seq2SeqModel
    let memory: MemoryView
    let lengths: [Int]

    func advance(states: [Seq2SeqModel.HypothesisState], tokens: [Int]) -> [(logProbs: [Float], state: Seq2SeqModel.HypothesisState)] {
        model.step(states: states, tokens: tokens, memory: memory)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
