import Foundation

/// Configuration of a token-sequence model: embedding (or one-hot input) → recurrent stack →
/// linear decoder over the vocabulary. Serialised into checkpoint metadata as the `config`
/// JSON object.
public struct LanguageModelConfig: Codable, Sendable, Equatable {
    public var cell: CellKind
    public var layers: Int
    public var hidden: Int
    /// Embedding width; 0 = one-hot input (no embedding table).
    public var embedding: Int
    public var vocabSize: Int
    public var dropout: Float
    /// Decoder weight tied to the embedding table (requires embedding == hidden).
    public var tieWeights: Bool

    enum CodingKeys: String, CodingKey {
        case cell, layers, hidden, embedding, dropout
        case vocabSize = "vocab_size"
        case tieWeights = "tie_weights"
    }

    public init(cell: CellKind, layers: Int, hidden: Int, embedding: Int, vocabSize: Int, dropout: Float = 0, tieWeights: Bool = false) {
        self.cell = cell; self.layers = layers; self.hidden = hidden; self.embedding = embedding
        self.vocabSize = vocabSize; self.dropout = dropout; self.tieWeights = tieWeights
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let cellName = try c.decode(String.self, forKey: .cell)
        guard let cell = CellKind(argument: cellName) else {
            throw DecodingError.dataCorruptedError(forKey: .cell, in: c, debugDescription: "unknown cell '\(cellName)'")
        }
        self.cell = cell
        layers = try c.decode(Int.self, forKey: .layers)
        hidden = try c.decode(Int.self, forKey: .hidden)
        embedding = try c.decodeIfPresent(Int.self, forKey: .embedding) ?? 0
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
        tieWeights = try c.decodeIfPresent(Bool.self, forKey: .tieWeights) ?? false
    }

    /// PyTorch module name of the recurrent stack's class for this cell.
    public var torchCellName: String {
        switch cell { case .lstm: return "lstm"; case .gru: return "gru"; case .rnnTanh: return "rnn_tanh"; case .rnnRelu: return "rnn_relu" }
    }
}

/// One shard's copy of the model: shares parameter values with the primary, owns gradients,
/// activations and the carried recurrent state of its rows.
final class LanguageModelReplica {
    let config: LanguageModelConfig
    let embedding: Embedding?
    let stack: RecurrentStack
    let decoder: Linear
    let outputDropout: Dropout
    var state: RecurrentState?
    let ids = GrowableBuffer<Int32>(), targets = GrowableBuffer<Int32>()
    let embedded = FloatBuffer(), dropped = FloatBuffer(), logits = FloatBuffer(), gradLogits = FloatBuffer()
    let gradHidden = FloatBuffer(), gradEmbedded = FloatBuffer(), rowLoss = FloatBuffer()

    init(config: LanguageModelConfig, embedding: Embedding?, stack: RecurrentStack, decoder: Linear) {
        self.config = config; self.embedding = embedding; self.stack = stack; self.decoder = decoder
        outputDropout = Dropout(probability: config.dropout)
    }

    var parameters: [Parameter] {
        var list: [Parameter] = []
        if let embedding { list.append(embedding.weight) }
        list += stack.parameters
        if !config.tieWeights { list.append(decoder.weight) }
        if let b = decoder.bias { list.append(b) }
        return list
    }

    var input: RecurrentInput {
        if let embedding { return .dense(UnsafePointer(embedded.pointer), features: embedding.dimension) }
        return .oneHot(UnsafePointer(ids.pointer), features: config.vocabSize)
    }

    /// Forward (and optionally backward) on time-major ids/targets already in `ids`/`targets`
    /// (`[T, B]`). Returns the sum of per-position NLL (nats) over `T*B` positions.
    /// `gradScale` multiplies the gradient of the mean loss of this shard.
    func run(T: Int, B: Int, training: Bool, backward: Bool, gradScale: Float, rng: inout SeededRandom,
             rowLossOut: UnsafeMutablePointer<Float>? = nil) -> Double {
        let H = stack.outputSize, V = config.vocabSize, N = T * B
        if let embedding { embedding.forward(ids: ids.pointer, count: N, output: embedded.reserve(N * embedding.dimension)) }
        let y = stack.forward(input: input, steps: T, batch: B, lengths: nil, initial: state, training: training, rng: &rng)
        var top = y
        if training && config.dropout > 0 {
            let d = dropped.reserve(N * H)
            outputDropout.forward(input: y, count: N * H, output: d, training: true, rng: &rng)
            top = UnsafePointer(d)
        }
        let lg = logits.reserve(N * V)
        decoder.forward(input: top, rows: N, output: lg)
        let gl: UnsafeMutablePointer<Float>? = backward ? gradLogits.reserve(N * V) : nil
        let result = SoftmaxCrossEntropy.compute(logits: lg, rows: N, classes: V, targets: targets.pointer,
                                                 weights: nil, gradLogits: gl, rowLoss: rowLossOut)
        state = stack.finalState
        if backward, let gl {
            if gradScale != 1 { for i in 0..<(N * V) { gl[i] *= gradScale } }
            let gh = gradHidden.reserve(N * H)
            decoder.backward(input: top, gradOutput: gl, rows: N, gradInput: gh)
            if training && config.dropout > 0 { outputDropout.backward(gradOutput: gh, count: N * H, gradInput: gh, training: true) }
            let ge: UnsafeMutablePointer<Float>? = embedding.map { gradEmbedded.reserve(N * $0.dimension) }
            stack.backward(input: input, gradOutput: gh, gradFinal: nil, gradInput: ge)
            if let embedding, let ge { embedding.backward(ids: ids.pointer, count: N, gradOutput: ge) }
        }
        return result.loss * Double(N)
    }
}


/// A recurrent language model over token ids, equal to PyTorch's
/// `Embedding(V, E) → LSTM|GRU|RNN(E, H, layers, batch_first=True) → Linear(H, V)` with the
/// attribute names `embedding`, `rnn`, `decoder` (one-hot input when `embedding == 0`).
///
/// Training runs data-parallel over batch shards (`threads`), see `Threading`. Dropout (when
/// configured) acts between recurrent layers, as in PyTorch, and on the top layer's output
/// before the decoder; evaluation and sampling never drop.
public final class RecurrentLanguageModel: ParameterContainer {
    public let config: LanguageModelConfig
    /// Number of batch shards trained in parallel.
    public let threads: Int
    let replicas: [LanguageModelReplica]
    /// The processes training shares a batch with (`ProcessGroup.shards`); `single` trains the
    /// whole batch here. Set before training, on every rank alike.
    public var processGroup: ProcessGroup = .single { didSet { resetState() } }
    /// This process's shards of the current batch size and the global index of the first.
    private var shardRanges: [Range<Int>] = []
    private var firstShard = 0
    private var stateBatch = 0
    /// State carried by `evaluate(carryState: true)` and `nextLogits`, kept apart from the
    /// training streams' state so evaluating or sampling mid-training changes nothing.
    private var evaluationState: RecurrentState? {
        get { generatorHoldsState ? generator?.state : storedEvaluationState }
        set { storedEvaluationState = newValue; generatorHoldsState = false }
    }
    private var storedEvaluationState: RecurrentState?
    /// Whether batch-1 generation holds the newest evaluation state in the generator (kept there
    /// between tokens, so consecutive tokens copy no state).
    private var generatorHoldsState = false
    /// Layer 0's input projection of every token (`RecurrentLayer.inputProjectionTable`),
    /// built on the first `nextLogits` after the weights last changed.
    private var projectionTable: [Float]?
    /// The batch-1 generator (`StepGenerator`), built with the table.
    private var generator: StepGenerator?
    /// Threads for batch-1 generation (`nextLogits` with one token); nil = one. More threads
    /// split the hidden units between cores (see `StepGenerator`): on a quiet machine an LSTM
    /// 2x256 then generates about 20 % faster, but on shared virtual machines the threads often
    /// lose their timing probe, so it is not the default.
    public var generationThreads: Int? { didSet { dropGenerator() } }

    /// Creates a model with PyTorch's default initialisation from `seed`.
    public init(config: LanguageModelConfig, seed: UInt64, threads: Int = 1) {
        precondition(!config.tieWeights || config.embedding == config.hidden, "weight tying needs embedding == hidden")
        var rng = SeededRandom(seed: seed)
        self.config = config
        self.threads = max(1, threads)
        let emb = config.embedding > 0 ? Embedding(vocabularySize: config.vocabSize, dimension: config.embedding, rng: &rng) : nil
        let stack = RecurrentStack(cell: config.cell, inputSize: config.embedding > 0 ? config.embedding : config.vocabSize,
                                   hiddenSize: config.hidden, numLayers: config.layers, dropout: config.dropout, rng: &rng)
        var dec = Linear(inFeatures: config.hidden, outFeatures: config.vocabSize, rng: &rng)
        if config.tieWeights, let emb { dec = Linear(tiedWeight: emb.weight, bias: dec.bias!) }
        var reps = [LanguageModelReplica(config: config, embedding: emb, stack: stack, decoder: dec)]
        for _ in 1..<self.threads {
            let e2 = emb.map { Embedding(sharing: $0) }
            let d2 = config.tieWeights ? Linear(tiedWeight: e2!.weight, bias: Parameter(sharing: dec.bias!)) : Linear(sharing: dec)
            reps.append(LanguageModelReplica(config: config, embedding: e2, stack: RecurrentStack(sharing: stack), decoder: d2))
        }
        replicas = reps
        if self.threads > 1 { Threading.useSingleThreadedBLAS() }
    }

    /// The primary's components.
    public var embedding: Embedding? { replicas[0].embedding }
    public var rnn: RecurrentStack { replicas[0].stack }
    /// Instruction-set level of the per-step products in every replica (`RecurrentLayer.kernelLevel`).
    public var kernelLevel: ISALevel {
        get { replicas[0].stack.kernelLevel }
        set { for r in replicas { r.stack.kernelLevel = newValue } }
    }
    /// Number format of the recurrent products in every replica and in batch-1 generation
    /// (see `Precision`); default fp32.
    public var precision: Precision {
        get { replicas[0].stack.precision }
        set {
            for r in replicas { r.stack.precision = newValue }
            dropGenerator()
        }
    }
    public var decoder: Linear { replicas[0].decoder }

    /// Parameters with their PyTorch `state_dict` names (`embedding.weight`, `rnn.weight_ih_l0`,
    /// ..., `decoder.weight`, `decoder.bias`). With tied weights `decoder.weight` is the same
    /// parameter as `embedding.weight` (listed once here; checkpoints write both names).
    public var namedParameters: [(name: String, parameter: Parameter)] {
        var list: [(name: String, parameter: Parameter)] = []
        if let e = embedding { list.append(("embedding.weight", e.weight)) }
        list += rnn.namedParameters.map { ("rnn." + $0.name, $0.parameter) }
        if !config.tieWeights { list.append(("decoder.weight", decoder.weight)) }
        if let b = decoder.bias { list.append(("decoder.bias", b)) }
        return list
    }

    /// Tensors for a checkpoint, PyTorch names and shapes (tied decoder weight included).
    public var stateDict: [NamedTensor] {
        var list = namedParameters.map { NamedTensor(name: $0.name, shape: $0.parameter.shape, values: $0.parameter.values) }
        if config.tieWeights, let e = embedding {
            let idx = list.firstIndex { $0.name == "decoder.bias" } ?? list.count
            list.insert(NamedTensor(name: "decoder.weight", shape: e.weight.shape, values: e.weight.values), at: idx)
        }
        return list
    }

    /// Loads values from tensors by name; every parameter must be present with its exact shape.
    public func load(_ tensors: [String: NamedTensor], source: String) throws {
        for (name, p) in namedParameters {
            guard let t = tensors[name] else { throw ModelLoadError.missingTensor(source, name) }
            guard t.shape == p.shape else { throw ModelLoadError.shapeMismatch(source, name, expected: p.shape, got: t.shape) }
            p.values = t.values
        }
        projectionTable = nil
        dropGenerator()
    }

    /// Forgets the carried recurrent state (next batch starts from zeros).
    public func resetState() { for r in replicas { r.state = nil }; stateBatch = 0 }

    /// The carried state of every shard, concatenated along the batch (for resumable training):
    /// `[L, B, H]` per array. With a distributed `processGroup` it gathers every rank's rows, so
    /// every rank must ask for it at the same point.
    public var carriedState: RecurrentState? {
        let local = replicas.prefix(shardRanges.count).compactMap(\.state)
        guard processGroup.isDistributed else {
            guard replicas[0].state != nil else { return nil }
            return concatenateStates(local, layers: config.layers, hidden: config.hidden)
        }
        // The same decision on every rank: a state exists once a step ran since the last reset.
        guard stateBatch > 0, local.count == shardRanges.count else { return nil }
        let L = config.layers, H = config.hidden
        let hs = processGroup.allGather(local.flatMap(\.h))
        let cs = config.cell.hasCellState ? processGroup.allGather(local.flatMap { $0.c ?? [] }) : nil
        var parts: [RecurrentState] = [], offset = 0
        for rows in processGroup.allShardSizes(count: stateBatch, threads: threads) {
            let n = L * rows * H
            parts.append(RecurrentState(h: Array(hs[offset..<(offset + n)]), c: cs.map { Array($0[offset..<(offset + n)]) }))
            offset += n
        }
        return concatenateStates(parts, layers: L, hidden: H)
    }

    /// Restores a state saved from `carriedState` for a batch of `batch` rows (this process
    /// takes its own shards' rows, so the state may come from a run with another rank count).
    public func setCarriedState(_ state: RecurrentState?, batch: Int) {
        (firstShard, shardRanges) = processGroup.shards(count: batch, threads: threads)
        stateBatch = batch
        guard let state else { resetState(); stateBatch = batch; return }
        let L = config.layers, H = config.hidden
        for (k, r) in shardRanges.enumerated() {
            func slice(_ a: [Float]) -> [Float] {
                var out: [Float] = []
                out.reserveCapacity(L * r.count * H)
                for l in 0..<L { out += a[(l * batch + r.lowerBound) * H ..< (l * batch + r.upperBound) * H] }
                return out
            }
            replicas[k].state = RecurrentState(h: slice(state.h), c: state.c.map(slice))
        }
    }

    /// One training step's forward and backward on a batch.
    ///
    /// - Parameters:
    ///   - inputs, targets: `[batch, steps]` token ids, batch-first.
    ///   - carryState: start from the state the previous call left (truncated BPTT over parallel
    ///     streams); otherwise from zeros.
    ///   - seed: seeds this step's dropout masks (deterministic per step and shard).
    /// - Returns: mean cross-entropy (nats) over all positions. Gradients of the primary
    ///   parameters hold d(mean loss)/d(parameter) afterwards (they are zeroed first).
    public func trainStep(inputs: [Int32], targets: [Int32], batch B: Int, steps T: Int, carryState: Bool,
                          training: Bool = true, seed: UInt64 = 0) -> Double {
        precondition(inputs.count == B * T && targets.count == B * T, "inputs/targets must hold batch*steps ids")
        projectionTable = nil    // the optimizer step that follows changes the weights
        dropGenerator()
        if !carryState || B != stateBatch { resetState() }
        if B != stateBatch || shardRanges.isEmpty {
            (firstShard, shardRanges) = processGroup.shards(count: B, threads: threads)
            stateBatch = B
        }
        let ranges = shardRanges, first = firstShard
        let box = UncheckedBox((replicas, inputs, targets))
        // One slot per shard, allocated before the workers start: each writes only its own.
        let losses = UnsafeMutableBufferPointer<Double>.allocate(capacity: ranges.count)
        losses.initialize(repeating: 0)
        defer { losses.deallocate() }
        let slots = UncheckedBox(losses)
        Threading.run(ranges.count) { k in
            let (reps, inp, tgt) = box.value
            let r = ranges[k], rep = reps[k], bs = r.count
            for p in rep.parameters { p.zeroGrad() }
            let ip = rep.ids.reserve(T * bs), tp = rep.targets.reserve(T * bs)
            for t in 0..<T { for (j, b) in r.enumerated() { ip[t * bs + j] = inp[b * T + t]; tp[t * bs + j] = tgt[b * T + t] } }
            var rng = SeededRandom(seed: seed &* 1_000_003 &+ UInt64(first + k))
            slots.value[k] = rep.run(T: T, B: bs, training: training, backward: true,
                                     gradScale: Float(bs) / Float(B), rng: &rng)
        }
        if ranges.count > 1 {
            accumulateGradients(into: replicas[0].parameters, from: (1..<ranges.count).map { replicas[$0].parameters },
                                threads: threads)
        } else if ranges.isEmpty {
            for p in replicas[0].parameters { p.zeroGrad() }
        }
        return processGroup.sumInOrder(Array(losses)) / Double(B * T)
    }

    /// Mean cross-entropy of a batch without gradients or dropout; `carryState` as in
    /// `trainStep`. Writes per-position NLL `[batch, steps]` into `positionLoss` when given.
    public func evaluate(inputs: [Int32], targets: [Int32], batch B: Int, steps T: Int, carryState: Bool,
                         positionLoss: UnsafeMutablePointer<Float>? = nil) -> Double {
        let rep = replicas[0]
        let trainingState = rep.state
        defer { evaluationState = rep.state; rep.state = trainingState }
        rep.state = carryState ? evaluationState : nil
        let ip = rep.ids.reserve(T * B), tp = rep.targets.reserve(T * B)
        for t in 0..<T { for b in 0..<B { ip[t * B + b] = inputs[b * T + t]; tp[t * B + b] = targets[b * T + t] } }
        var rng = SeededRandom(seed: 0)
        let rows = rep.rowLoss.reserve(T * B)
        let total = rep.run(T: T, B: B, training: false, backward: false, gradScale: 1, rng: &rng, rowLossOut: rows)
        if let positionLoss { for t in 0..<T { for b in 0..<B { positionLoss[b * T + t] = rows[t * B + b] } } }
        return total / Double(B * T)
    }

    /// Forgets the evaluation state of `evaluate`/`nextLogits`.
    public func resetEvaluationState() { evaluationState = nil }

    /// Feeds one token per sequence (`batch` = ids.count) from the carried evaluation state and
    /// returns the next-token logits `[batch, vocab]`; the state advances. Used for sampling
    /// and greedy prediction.
    public func nextLogits(_ tokenIds: [Int32]) -> [Float] {
        if tokenIds.count == 1 && rnn.kernelLevel >= .avx2 { return generateOne(tokenIds[0]) }
        return nextLogitsThroughStack(tokenIds)
    }

    /// `nextLogits` through the general recurrent stack (any batch, any instruction-set level).
    func nextLogitsThroughStack(_ tokenIds: [Int32]) -> [Float] {
        let rep = replicas[0], B = tokenIds.count, V = config.vocabSize
        let trainingState = rep.state
        defer { evaluationState = rep.state; rep.state = trainingState }
        rep.state = evaluationState
        let ip = rep.ids.reserve(B)
        for b in 0..<B { ip[b] = tokenIds[b] }
        if let s = rep.state, s.h.count != config.layers * B * config.hidden { rep.state = nil }
        var rng = SeededRandom(seed: 0)
        let y: UnsafePointer<Float>
        if let embedding = rep.embedding {
            // Batch-1 generation is memory-bound: reading a tabulated projection row instead of
            // W_ih saves a matrix-vector product per token.
            if projectionTable == nil {
                projectionTable = rep.stack.layers[0][0].inputProjectionTable(embedding: embedding.weight.value,
                                                                               vocabulary: config.vocabSize)
            }
            y = projectionTable!.withUnsafeBufferPointer { table in
                rep.stack.forward(input: .projected(ip, table: table.baseAddress!, features: embedding.dimension), steps: 1,
                                  batch: B, initial: rep.state, training: false, rng: &rng)
            }
        } else {
            y = rep.stack.forward(input: rep.input, steps: 1, batch: B, initial: rep.state, training: false, rng: &rng)
        }
        let lg = rep.logits.reserve(B * V)
        rep.decoder.forward(input: y, rows: B, output: lg)
        rep.state = rep.stack.finalState
        return Array(UnsafeBufferPointer(start: lg, count: B * V))
    }
}

extension RecurrentLanguageModel {
    /// Batch-1 `nextLogits` through the `StepGenerator`, which keeps the evaluation state
    /// between tokens.
    private func generateOne(_ token: Int32) -> [Float] {
        let gen = generator ?? makeGenerator()
        generator = gen
        if !generatorHoldsState {
            let L = config.layers, H = config.hidden
            if let s = storedEvaluationState, s.h.count == L * H { gen.setState(h: s.h, c: s.c) } else { gen.setState(h: nil, c: nil) }
            generatorHoldsState = true
        }
        let logits = gen.step(token)
        return Array(UnsafeBufferPointer(start: logits, count: config.vocabSize))
    }

    /// Forgets the generator (the weights or its settings changed), keeping the state it held.
    private func dropGenerator() {
        if generatorHoldsState { storedEvaluationState = generator?.state; generatorHoldsState = false }
        generator = nil
    }

    private func makeGenerator() -> StepGenerator {
        let rep = replicas[0], stack = rep.stack, V = config.vocabSize, H = config.hidden
        let first = stack.layers[0][0]
        let table: [Float]
        if let embedding = rep.embedding {
            if projectionTable == nil {
                projectionTable = first.inputProjectionTable(embedding: embedding.weight.value, vocabulary: V)
            }
            table = projectionTable!
        } else {
            // One-hot input: token v's projection is column v of W_ih plus the biases.
            let GH = config.cell.gateCount * H
            var t = [Float](repeating: 0, count: V * GH)
            for v in 0..<V {
                for r in 0..<GH {
                    t[v * GH + r] = first.weightIH.value[r * V + v] + first.biasIH.value[r]
                        + (config.cell == .gru ? 0 : first.biasHH.value[r])
                }
            }
            table = t
        }
        let weights = stack.layers.map { row in
            (wih: UnsafePointer(row[0].weightIH.value), whh: UnsafePointer(row[0].weightHH.value),
             bih: UnsafePointer(row[0].biasIH.value), bhh: UnsafePointer(row[0].biasHH.value))
        }
        let parts = generationThreads ?? 1
        return table.withUnsafeBufferPointer { tp in
            StepGenerator(cell: config.cell, hidden: H, vocab: V, table: tp.baseAddress!, layerWeights: weights,
                          decoderWeight: rep.decoder.weight.value, decoderBias: rep.decoder.bias.map { UnsafePointer($0.value) },
                          parts: parts, level: stack.kernelLevel,
                          precision: first.computesInBF16 ? .bf16 : .fp32)
        }
    }
}

/// Errors loading model weights.
public enum ModelLoadError: Error, CustomStringConvertible {
    case missingTensor(String, String)
    case shapeMismatch(String, String, expected: [Int], got: [Int])
    case badMetadata(String, String)
    /// A tensor the model does not have (file, tensor name).
    case unexpectedTensor(String, String)
    /// A tensor holding NaN or an infinity (file, tensor name, element index, the value).
    case nonFiniteValue(String, String, index: Int, value: Float)

    public var description: String {
        switch self {
        case let .nonFiniteValue(f, n, i, v):
            return "\(f): tensor '\(n)' holds \(v) at element \(i); a checkpoint must hold finite numbers"
        case .unexpectedTensor(let f, let n): return "\(f): unexpected tensor '\(n)' for this configuration"
        case .missingTensor(let f, let n): return "\(f): tensor '\(n)' is missing"
        case .shapeMismatch(let f, let n, let e, let g): return "\(f): tensor '\(n)' has shape \(g), expected \(e)"
        case .badMetadata(let f, let m): return "\(f): \(m)"
        }
    }
}

/// Concatenates per-shard states `[L, b_k, H]` along the batch.
func concatenateStates(_ parts: [RecurrentState], layers L: Int, hidden H: Int) -> RecurrentState {
    func cat(_ arrays: [[Float]]) -> [Float] {
        var out: [Float] = []
        for l in 0..<L {
            for a in arrays { let b = a.count / (L * H); out += a[(l * b * H)..<((l + 1) * b * H)] }
        }
        return out
    }
    let h = cat(parts.map(\.h))
    let c: [Float]? = parts.first?.c == nil ? nil : cat(parts.map { $0.c! })
    return RecurrentState(h: h, c: c)
}
