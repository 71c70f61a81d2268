import Foundation
import RecurrentCore

/// What a speech model predicts.
public enum SpeechTask: String, Codable, Sendable, CaseIterable {
    /// One label per utterance (many-to-one).
    case utterance
    /// One label per frame (many-to-many).
    case frame
}

/// How the per-frame outputs of the recurrent stack become one utterance vector.
public enum SequencePooling: String, Codable, Sendable, CaseIterable {
    /// The final state of each direction: the forward direction's output at the sequence's
    /// last valid frame, the reverse direction's output at frame 0.
    case last
    /// The mean of the outputs over the sequence's valid frames.
    case mean
}

/// Errors in a speech model's configuration or checkpoint tensors; one line naming the source.
public enum SpeechModelError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The configuration is invalid (`source` names where it came from).
    case invalidConfig(source: String, reason: String)
    /// A tensor is missing or has the wrong shape or non-finite values.
    case badTensor(source: String, name: String, reason: String)

    /// One line naming the source and what is wrong.
    public var description: String {
        switch self {
        case let .invalidConfig(source, reason): return "\(source): invalid model configuration: \(reason)"
        case let .badTensor(source, name, reason): return "\(source): tensor '\(name)' \(reason)"
        }
    }
}

/// Architecture of a speech classifier: features `[batch, time, inputSize]` → recurrent stack
/// (`cell`, `layers`, `hidden`, optionally bidirectional) → pooling (utterance task) → linear
/// layer over `classes`. Stored as JSON in checkpoint metadata (`model`).
public struct SpeechModelConfig: Codable, Sendable, Equatable {
    /// Utterance or frame classification.
    public var task: SpeechTask
    /// Recurrent cell.
    public var cell: CellKind
    /// Number of stacked recurrent layers.
    public var layers: Int
    /// Hidden units per direction.
    public var hidden: Int
    /// Bidirectional stack.
    public var bidirectional: Bool
    /// Pooling for the utterance task (ignored for frames).
    public var pooling: SequencePooling
    /// Feature width per frame.
    public var inputSize: Int
    /// Number of output classes.
    public var classes: Int
    /// Dropout between recurrent layers and before the output layer (training only).
    public var dropout: Float

    /// Creates a configuration.
    public init(task: SpeechTask, cell: CellKind = .lstm, layers: Int = 1, hidden: Int = 128, bidirectional: Bool = true,
                pooling: SequencePooling = .mean, inputSize: Int, classes: Int, dropout: Float = 0) {
        self.task = task; self.cell = cell; self.layers = layers; self.hidden = hidden
        self.bidirectional = bidirectional; self.pooling = pooling; self.inputSize = inputSize
        self.classes = classes; self.dropout = dropout
    }

    /// Checks every field's range; `source` names the origin in the error.
    public func validate(source: String = "model configuration") throws {
        func bad(_ r: String) -> SpeechModelError { .invalidConfig(source: source, reason: r) }
        guard (1...16).contains(layers) else { throw bad("layers \(layers) outside 1...16") }
        guard (1...8192).contains(hidden) else { throw bad("hidden \(hidden) outside 1...8192") }
        guard (1...100_000).contains(inputSize) else { throw bad("input size \(inputSize) outside 1...100000") }
        guard (2...100_000).contains(classes) else { throw bad("classes \(classes) outside 2...100000") }
        guard dropout >= 0, dropout < 1 else { throw bad("dropout \(dropout) outside [0, 1)") }
    }

    /// Number of directions (1 or 2).
    public var directions: Int { bidirectional ? 2 : 1 }
}

/// One network replica: shares parameter values with the primary, owns gradients and buffers.
final class SpeechReplica {
    let config: SpeechModelConfig
    let rnn: RecurrentStack
    let fc: Linear
    let dropout: Dropout
    let input = FloatBuffer(), pooled = FloatBuffer(), droppedTop = FloatBuffer()
    let logits = FloatBuffer(), gradLogits = FloatBuffer(), gradTop = FloatBuffer(), gradY = FloatBuffer()
    let weights = FloatBuffer()
    var targets: [Int32] = []
    var rng: SeededRandom

    init(config: SpeechModelConfig, rnn: RecurrentStack, fc: Linear, seed: UInt64) {
        self.config = config; self.rnn = rnn; self.fc = fc
        dropout = Dropout(probability: config.dropout)
        rng = SeededRandom(seed: seed)
    }

    var parameters: [Parameter] { rnn.parameters + fc.parameters }

    /// Runs the examples `batch[range]` (features already normalised). Returns the sum of the
    /// loss over its rows (utterances or valid frames), the row count, and writes the
    /// probabilities into `probabilities` when given (`[rows, classes]`, rows as in `rowOffsets`).
    func run(_ batch: [SpeechExample], range: Range<Int>, training: Bool, backward: Bool, gradScale: Float,
             probabilities: UnsafeMutablePointer<Float>?) -> (lossSum: Double, rows: Int) {
        let F = config.inputSize, C = config.classes, DH = rnn.outputSize, H = config.hidden
        let B = range.count
        guard B > 0 else { return (0, 0) }
        var lengths = [Int](repeating: 0, count: B)
        for (j, i) in range.enumerated() { lengths[j] = batch[i].features.frames }
        let T = max(1, lengths.max() ?? 1)
        // Time-major input [T, B, F], zero-padded.
        let x = input.reserve(T * B * F)
        x.update(repeating: 0, count: T * B * F)
        for (j, i) in range.enumerated() {
            batch[i].features.values.withUnsafeBufferPointer { src in
                guard let s = src.baseAddress else { return }
                for t in 0..<lengths[j] { (x + (t * B + j) * F).update(from: s + t * F, count: F) }
            }
        }
        let xin = RecurrentInput.dense(UnsafePointer(x), features: F)
        let y = rnn.forward(input: xin, steps: T, batch: B, lengths: lengths, training: training, rng: &rng)
        let useDropout = training && config.dropout > 0

        switch config.task {
        case .utterance:
            let p = pooled.reserve(B * DH)
            for b in 0..<B {
                let dst = p + b * DH
                let len = lengths[b]
                switch config.pooling {
                case .mean:
                    dst.update(repeating: 0, count: DH)
                    for t in 0..<len { let src = y + (t * B + b) * DH; for k in 0..<DH { dst[k] += src[k] } }
                    let inv = 1 / Float(max(len, 1))
                    for k in 0..<DH { dst[k] *= inv }
                case .last:
                    dst.update(from: y + ((max(len, 1) - 1) * B + b) * DH, count: H)
                    if config.bidirectional { (dst + H).update(from: y + b * DH + H, count: H) }
                }
            }
            var top = UnsafePointer(p)
            if useDropout {
                let d = droppedTop.reserve(B * DH)
                dropout.forward(input: p, count: B * DH, output: d, training: true, rng: &rng)
                top = UnsafePointer(d)
            }
            let lg = logits.reserve(B * C)
            fc.forward(input: top, rows: B, output: lg)
            targets = range.map { Int32(batch[$0].label) }
            let gl: UnsafeMutablePointer<Float>? = backward ? gradLogits.reserve(B * C) : nil
            let loss = targets.withUnsafeBufferPointer { tp in
                SoftmaxCrossEntropy.compute(logits: lg, rows: B, classes: C, targets: tp.baseAddress!, gradLogits: gl).loss
            }
            if let probabilities { Self.softmax(lg, rows: B, classes: C, into: probabilities) }
            if backward, let gl {
                if gradScale != 1 { for i in 0..<(B * C) { gl[i] *= gradScale } }
                let gp = gradTop.reserve(B * DH)
                fc.backward(input: top, gradOutput: gl, rows: B, gradInput: gp)
                if useDropout { dropout.backward(gradOutput: gp, count: B * DH, gradInput: gp, training: true) }
                let gy = gradY.reserve(T * B * DH)
                gy.update(repeating: 0, count: T * B * DH)
                for b in 0..<B {
                    let len = lengths[b], g = gp + b * DH
                    switch config.pooling {
                    case .mean:
                        let inv = 1 / Float(max(len, 1))
                        for t in 0..<len { let d = gy + (t * B + b) * DH; for k in 0..<DH { d[k] = g[k] * inv } }
                    case .last:
                        (gy + ((max(len, 1) - 1) * B + b) * DH).update(from: g, count: H)
                        if config.bidirectional { (gy + b * DH + H).update(from: g + H, count: H) }
                    }
                }
                rnn.backward(input: xin, gradOutput: gy, gradInput: nil)
            }
            return (loss * Double(B), B)

        case .frame:
            let N = T * B
            var top = y
            if useDropout {
                let d = droppedTop.reserve(N * DH)
                dropout.forward(input: y, count: N * DH, output: d, training: true, rng: &rng)
                top = UnsafePointer(d)
            }
            let lg = logits.reserve(N * C)
            fc.forward(input: top, rows: N, output: lg)
            targets = [Int32](repeating: 0, count: N)
            let w = weights.reserve(N)
            w.update(repeating: 0, count: N)
            var valid = 0
            for (j, i) in range.enumerated() {
                let labels = batch[i].frameLabels
                for t in 0..<lengths[j] {
                    targets[t * B + j] = t < labels.count ? Int32(labels[t]) : 0
                    w[t * B + j] = 1
                }
                valid += lengths[j]
            }
            let gl: UnsafeMutablePointer<Float>? = backward ? gradLogits.reserve(N * C) : nil
            let loss = targets.withUnsafeBufferPointer { tp in
                SoftmaxCrossEntropy.compute(logits: lg, rows: N, classes: C, targets: tp.baseAddress!, weights: w, gradLogits: gl).loss
            }
            if let probabilities {
                // Batch-major rows: example j's frames consecutively (row offset = frames before it).
                var row = 0
                for j in 0..<B {
                    for t in 0..<lengths[j] {
                        Self.softmax(lg + (t * B + j) * C, rows: 1, classes: C, into: probabilities + (row + t) * C)
                    }
                    row += lengths[j]
                }
            }
            if backward, let gl {
                if gradScale != 1 { for i in 0..<(N * C) { gl[i] *= gradScale } }
                let gy = gradY.reserve(N * DH)
                fc.backward(input: top, gradOutput: gl, rows: N, gradInput: gy)
                if useDropout { dropout.backward(gradOutput: gy, count: N * DH, gradInput: gy, training: true) }
                rnn.backward(input: xin, gradOutput: gy, gradInput: nil)
            }
            return (loss * Double(valid), valid)
        }
    }

    /// Row-wise softmax of `rows × classes` logits.
    static func softmax(_ z: UnsafePointer<Float>, rows: Int, classes: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let zr = z + r * classes, o = out + r * classes
            var m = -Float.infinity
            for j in 0..<classes { m = max(m, zr[j]) }
            var s: Float = 0
            for j in 0..<classes { let e = expf(zr[j] - m); o[j] = e; s += e }
            let inv = 1 / s
            for j in 0..<classes { o[j] *= inv }
        }
    }
}

/// A recurrent speech classifier: PyTorch's
/// `LSTM|GRU|RNN(input, hidden, layers, batch_first=True, bidirectional=...)` named `rnn`
/// followed by `Linear(directions * hidden, classes)` named `fc`; the utterance task pools the
/// outputs (`last` or `mean`) before `fc`, the frame task applies `fc` to every frame.
///
/// Training and inference run data-parallel: the batch is split into contiguous shards, one
/// replica per thread (see `Threading`); gradients are summed into the primary once per step.
public final class SpeechClassifier: ParameterContainer {
    /// The architecture.
    public let config: SpeechModelConfig
    /// Number of replicas (threads).
    public let threads: Int
    let replicas: [SpeechReplica]

    /// Creates a model with PyTorch's default initialisation from `seed`.
    public init(config: SpeechModelConfig, seed: UInt64, threads: Int = 1) throws {
        try config.validate()
        self.config = config
        self.threads = max(1, threads)
        var rng = SeededRandom(seed: seed)
        let rnn = RecurrentStack(cell: config.cell, inputSize: config.inputSize, hiddenSize: config.hidden,
                                 numLayers: config.layers, bidirectional: config.bidirectional,
                                 dropout: config.dropout, rng: &rng)
        let fc = Linear(inFeatures: config.directions * config.hidden, outFeatures: config.classes, rng: &rng)
        var reps = [SpeechReplica(config: config, rnn: rnn, fc: fc, seed: seed &+ 1)]
        for i in 1..<self.threads {
            reps.append(SpeechReplica(config: config, rnn: RecurrentStack(sharing: rnn), fc: Linear(sharing: fc),
                                      seed: seed &+ 1 &+ UInt64(i)))
        }
        replicas = reps
        if self.threads > 1 { Threading.useSingleThreadedBLAS() }
    }

    /// Parameters with PyTorch `state_dict` names: `rnn.weight_ih_l0`, ..., `fc.weight`, `fc.bias`.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        replicas[0].rnn.namedParameters.map { ("rnn." + $0.name, $0.parameter) }
            + replicas[0].fc.namedParameters.map { ("fc." + $0.name, $0.parameter) }
    }

    /// Tensors for a checkpoint (PyTorch names and shapes).
    public var stateDict: [NamedTensor] {
        namedParameters.map { NamedTensor(name: $0.name, shape: $0.parameter.shape, values: $0.parameter.values) }
    }

    /// Loads every parameter from `tensors` by name, checking shapes and finiteness.
    /// - Throws: `SpeechModelError.badTensor` naming `source`.
    public func load(_ tensors: [String: NamedTensor], source: String) throws {
        for (name, p) in namedParameters {
            guard let t = tensors[name] else { throw SpeechModelError.badTensor(source: source, name: name, reason: "is missing") }
            guard t.shape == p.shape, t.values.count == p.count else {
                throw SpeechModelError.badTensor(source: source, name: name, reason: "has shape \(t.shape), expected \(p.shape)")
            }
            guard t.values.allSatisfy(\.isFinite) else {
                throw SpeechModelError.badTensor(source: source, name: name, reason: "holds NaN or infinite values")
            }
            p.values = t.values
        }
    }

    /// Forward and backward on one batch: accumulates into the primary's gradients (they are
    /// zeroed first) the gradient of the mean loss over the batch's rows (utterances, or
    /// valid frames for the frame task).
    /// - Returns: the mean loss (nats) and the number of rows.
    @discardableResult
    public func computeGradients(_ batch: [SpeechExample]) -> (loss: Double, rows: Int) {
        run(batch, training: true, backward: true, probabilities: nil)
    }

    /// Mean loss over the batch without gradients (evaluation mode: no dropout).
    public func loss(_ batch: [SpeechExample]) -> (loss: Double, rows: Int) {
        run(batch, training: false, backward: false, probabilities: nil)
    }

    /// Class probabilities: utterance task `[batch, classes]`; frame task the examples' frames
    /// one after the other, `[sum of frames, classes]`. Also returns the mean loss against the
    /// examples' labels (meaningless when they carry none).
    public func probabilities(_ batch: [SpeechExample]) -> (probabilities: [Float], loss: Double) {
        let rows = config.task == .utterance ? batch.count : batch.reduce(0) { $0 + $1.features.frames }
        var out = [Float](repeating: 0, count: max(rows, 1) * config.classes)
        let l = out.withUnsafeMutableBufferPointer { run(batch, training: false, backward: false, probabilities: $0.baseAddress!) }
        out.removeLast(out.count - rows * config.classes)
        return (out, l.loss)
    }

    private func run(_ batch: [SpeechExample], training: Bool, backward: Bool,
                     probabilities: UnsafeMutablePointer<Float>?) -> (loss: Double, rows: Int) {
        let shards = Threading.shards(count: batch.count, parts: replicas.count)
        // Rows each shard covers, for the gradient scale and the probability offsets.
        var shardRows: [Int] = []
        for r in shards {
            shardRows.append(config.task == .utterance ? r.count : r.reduce(0) { $0 + batch[$1].features.frames })
        }
        let totalRows = shardRows.reduce(0, +)
        guard totalRows > 0 else { return (0, 0) }
        var offsetList = [0]
        for n in shardRows.dropLast() { offsetList.append(offsetList[offsetList.count - 1] + n) }
        let offsets = offsetList, rowsPerShard = shardRows
        if backward { for r in replicas.prefix(shards.count) { r.rnn.zeroGrad(); r.fc.zeroGrad() } }
        let lossSums = UnsafeMutablePointer<Double>.allocate(capacity: shards.count)
        lossSums.initialize(repeating: 0, count: shards.count)
        defer { lossSums.deallocate() }
        let results = UncheckedBox(lossSums)
        let reps = UncheckedBox(replicas)
        let probs = UncheckedBox(probabilities)
        let C = config.classes
        Threading.run(shards.count) { s in
            let scale = Float(rowsPerShard[s]) / Float(totalRows)
            let r = reps.value[s].run(batch, range: shards[s], training: training, backward: backward, gradScale: scale,
                                      probabilities: probs.value.map { $0 + offsets[s] * C })
            results.value[s] = r.lossSum
        }
        if backward {
            let primary = replicas[0].parameters
            for r in replicas.prefix(shards.count).dropFirst() { accumulateGradients(into: primary, from: r.parameters) }
        }
        var sum = 0.0
        for s in 0..<shards.count { sum += lossSums[s] }
        return (sum / Double(totalRows), totalRows)
    }
}
