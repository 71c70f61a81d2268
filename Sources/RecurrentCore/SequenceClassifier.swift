import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Configuration of a `SequenceClassifier`; serialised into checkpoint metadata as JSON
/// (snake_case keys, e.g. `{"cell":"lstm","hidden":128,...}`).
public struct SequenceClassifierConfig: Codable, Sendable, Equatable {
    /// What the classifier predicts.
    public enum Mode: String, Codable, Sendable {
        /// One label per sequence, from a pooled summary of the top layer.
        case manyToOne = "many-to-one"
        /// One label per valid time step.
        case manyToMany = "many-to-many"
        /// A label sequence per sequence, shorter than it and unaligned: every valid step is
        /// classified (class 0 the CTC blank) and trained with the CTC loss (`CTC`).
        case ctc
    }

    /// How a many-to-one classifier summarises a sequence.
    public enum Pooling: String, Codable, Sendable, CaseIterable {
        /// The final state of the top layer, directions concatenated: the forward direction's
        /// state after the last valid step, the reverse direction's state after reading step 0.
        case last
        /// Mean of the top layer's outputs over the valid steps.
        case mean
        /// Element-wise maximum of the top layer's outputs over the valid steps (each output
        /// unit's gradient goes to the step that held its maximum, the first one on a tie).
        case max
    }

    /// Nonlinearity after the learned input projection.
    public enum Activation: String, Codable, Sendable {
        /// `tanh(x W^T + b)`.
        case tanh
        /// `x W^T + b` (purely linear).
        case none
    }

    /// Features per time step of the input.
    public var inputSize: Int
    /// Width of the learned input projection; 0 = none (the RNN reads the input directly).
    public var projection: Int
    /// Nonlinearity applied after the projection (ignored without one).
    public var projectionActivation: Activation
    /// Recurrent cell.
    public var cell: CellKind
    /// Recurrent layers.
    public var layers: Int
    /// Hidden units per direction.
    public var hidden: Int
    /// Two directions per layer.
    public var bidirectional: Bool
    /// Dropout between recurrent layers and on the classifier's input (training only).
    public var dropout: Float
    /// Number of classes.
    public var classes: Int
    /// Many-to-one or many-to-many.
    public var mode: Mode
    /// Summary of a sequence in many-to-one mode.
    public var pooling: Pooling
    /// LSTM only: set the forget-gate biases (`bias_ih` and `bias_hh`, summing to 1) at
    /// initialisation instead of PyTorch's uniform draw.
    public var unitForgetBias: Bool

    enum CodingKeys: String, CodingKey {
        case cell, layers, hidden, bidirectional, dropout, classes, mode, pooling, projection
        case inputSize = "input_size"
        case projectionActivation = "projection_activation"
        case unitForgetBias = "unit_forget_bias"
    }

    /// Creates a configuration.
    public init(inputSize: Int, projection: Int = 0, projectionActivation: Activation = .tanh, cell: CellKind = .lstm,
                layers: Int = 1, hidden: Int, bidirectional: Bool = false, dropout: Float = 0, classes: Int,
                mode: Mode = .manyToOne, pooling: Pooling = .last, unitForgetBias: Bool = false) {
        self.inputSize = inputSize; self.projection = projection; self.projectionActivation = projectionActivation
        self.cell = cell; self.layers = layers; self.hidden = hidden; self.bidirectional = bidirectional
        self.dropout = dropout; self.classes = classes; self.mode = mode; self.pooling = pooling
        self.unitForgetBias = unitForgetBias
    }

    /// Decodes a configuration; optional keys (`projection`, `projection_activation`,
    /// `bidirectional`, `dropout`, `mode`, `pooling`, `unit_forget_bias`) take their defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inputSize = try c.decode(Int.self, forKey: .inputSize)
        projection = try c.decodeIfPresent(Int.self, forKey: .projection) ?? 0
        projectionActivation = try c.decodeIfPresent(Activation.self, forKey: .projectionActivation) ?? .tanh
        cell = try c.decode(CellKind.self, forKey: .cell)
        layers = try c.decode(Int.self, forKey: .layers)
        hidden = try c.decode(Int.self, forKey: .hidden)
        bidirectional = try c.decodeIfPresent(Bool.self, forKey: .bidirectional) ?? false
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
        classes = try c.decode(Int.self, forKey: .classes)
        mode = try c.decodeIfPresent(Mode.self, forKey: .mode) ?? .manyToOne
        pooling = try c.decodeIfPresent(Pooling.self, forKey: .pooling) ?? .last
        unitForgetBias = try c.decodeIfPresent(Bool.self, forKey: .unitForgetBias) ?? false
    }

    /// A one-line reason when a field is out of range, nil when the configuration is usable.
    public var problem: String? {
        if inputSize < 1 { return "input_size \(inputSize) must be at least 1" }
        if projection < 0 { return "projection \(projection) must be 0 (none) or positive" }
        if layers < 1 || layers > 64 { return "layers \(layers) outside 1...64" }
        if hidden < 1 || hidden > 65536 { return "hidden \(hidden) outside 1...65536" }
        if classes < 2 { return "classes \(classes) must be at least 2" }
        if !(dropout >= 0 && dropout < 1) { return "dropout \(dropout) outside [0, 1)" }
        return nil
    }

    /// Directions per layer (1 or 2).
    public var directions: Int { bidirectional ? 2 : 1 }

    /// The configuration as a compact JSON object with sorted keys.
    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(self), let text = String(data: data, encoding: .utf8) else { return "{}" }
        return text
    }

    /// Parses a configuration written by `jsonString()`; `source` names the file in errors.
    /// - Throws: `ModelLoadError.badMetadata` for invalid JSON or out-of-range fields.
    public init(json: String, source: String) throws {
        let decoded: SequenceClassifierConfig
        do {
            decoded = try JSONDecoder().decode(SequenceClassifierConfig.self, from: Data(json.utf8))
        } catch {
            throw ModelLoadError.badMetadata(source, "model configuration is not valid: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        if let problem = decoded.problem { throw ModelLoadError.badMetadata(source, "model configuration: \(problem)") }
        self = decoded
    }
}

/// A padded batch of dense sequences with their lengths and labels.
///
/// `inputs` is `[batch, time, features]` row-major; steps at or after a sequence's length are
/// padding (their values are ignored). `labels` is `[batch]` (many-to-one), `[batch, time]`
/// (many-to-many; labels of padded steps are ignored) or empty (prediction only);
/// `labelSequences` holds one label sequence per sequence (CTC mode, labels in `1..<classes`).
public struct SequenceBatch: Sendable {
    /// `[batch, time, features]`.
    public var inputs: [Float]
    /// `[batch]`, each in `1...time`.
    public var lengths: [Int]
    /// `[batch]`, `[batch, time]` or empty.
    public var labels: [Int32]
    /// CTC mode: `[batch]` label sequences, or empty.
    public var labelSequences: [[Int32]]
    /// Sequences in the batch.
    public let batch: Int
    /// Padded length.
    public let time: Int
    /// Features per step.
    public let features: Int

    /// Creates a batch; sizes must agree (checked with preconditions: batches come from loaders
    /// that validated their data).
    public init(inputs: [Float], batch: Int, time: Int, features: Int, lengths: [Int], labels: [Int32] = [],
                labelSequences: [[Int32]] = []) {
        precondition(inputs.count == batch * time * features, "inputs: \(inputs.count) values for [\(batch), \(time), \(features)]")
        precondition(lengths.count == batch && lengths.allSatisfy { $0 >= 1 && $0 <= time }, "lengths must be [batch] values in 1...time")
        precondition(labels.isEmpty || labels.count == batch || labels.count == batch * time, "labels must be [batch], [batch, time] or empty")
        precondition(labelSequences.isEmpty || labelSequences.count == batch, "labelSequences must be [batch] or empty")
        self.inputs = inputs; self.lengths = lengths; self.labels = labels; self.labelSequences = labelSequences
        self.batch = batch; self.time = time; self.features = features
    }
}

/// Loss and accuracy counts of one batch.
public struct SequenceClassifierResult: Sendable, Equatable {
    /// Mean cross-entropy (nats) over the labelled positions (sequences or valid steps); in
    /// CTC mode the CTC loss (each sequence's by its label count) averaged over the sequences.
    public var loss: Double
    /// Positions whose most probable class equals the label; in CTC mode, sequences whose
    /// greedy decoding equals their label sequence.
    public var correct: Int
    /// Labelled positions.
    public var count: Int
    /// Creates a result.
    public init(loss: Double, correct: Int, count: Int) { self.loss = loss; self.correct = correct; self.count = count }
}

/// One batch shard's copy of the model: shares parameter values with the primary, owns
/// gradients and workspaces.
final class SequenceClassifierReplica {
    let config: SequenceClassifierConfig
    let projection: Linear?
    let stack: RecurrentStack
    let classifier: Linear
    let summaryDropout: Dropout
    let x = FloatBuffer(), projected = FloatBuffer(), summary = FloatBuffer(), dropped = FloatBuffer()
    let logits = FloatBuffer(), gradLogits = FloatBuffer(), gradSummary = FloatBuffer()
    let gradTop = FloatBuffer(), gradProjected = FloatBuffer(), weights = FloatBuffer()
    let targets = GrowableBuffer<Int32>()
    /// Max pooling: the step holding each summary unit's maximum, `[bs, DH]`.
    let maxSteps = GrowableBuffer<Int32>()
    let sequenceLogits = FloatBuffer(), sequenceGrad = FloatBuffer()

    init(config: SequenceClassifierConfig, projection: Linear?, stack: RecurrentStack, classifier: Linear) {
        self.config = config; self.projection = projection; self.stack = stack; self.classifier = classifier
        summaryDropout = Dropout(probability: config.dropout)
    }

    var parameters: [Parameter] {
        (projection?.parameters ?? []) + stack.parameters + classifier.parameters
    }

    /// Forward (and backward) on rows `r` of a batch-first batch.
    /// - Parameters:
    ///   - input: the whole batch `[B, T, I]`; this shard reads rows `r`.
    ///   - labels: `[B]` or `[B, T]` (nil: no loss).
    ///   - labelSequences: CTC mode, the whole batch's `[B]` label sequences (nil: no loss).
    ///   - gradScale: multiplies the gradient of this shard's mean loss.
    ///   - probabilities: the whole batch's output `[B, C]` or `[B, T, C]`; rows `r` written.
    /// - Returns: the weighted loss sum, correct and labelled counts of the shard.
    func run(input: UnsafePointer<Float>, rows r: Range<Int>, steps T: Int, lengths allLengths: [Int],
             labels: UnsafePointer<Int32>?, labelSequences: [[Int32]]? = nil, training: Bool, backward: Bool, gradScale: Float,
             rng: inout SeededRandom, probabilities: UnsafeMutablePointer<Float>?) -> (lossSum: Double, correct: Int, count: Int) {
        let bs = r.count, I = config.inputSize, C = config.classes
        let lengths = Array(allLengths[r])
        // Batch-first rows of the shard → time-major [T, bs, I].
        let xp = x.reserve(T * bs * I)
        for t in 0..<T {
            for j in 0..<bs { (xp + (t * bs + j) * I).update(from: input + ((r.lowerBound + j) * T + t) * I, count: I) }
        }
        var rnnInput = UnsafePointer(xp), rnnFeatures = I
        var zp: UnsafeMutablePointer<Float>? = nil
        if let projection {
            let P = projection.outFeatures
            let z = projected.reserve(T * bs * P)
            projection.forward(input: xp, rows: T * bs, output: z)
            if config.projectionActivation == .tanh { FastMath.tanhInPlace(z, T * bs * P) }
            zp = z; rnnInput = UnsafePointer(z); rnnFeatures = P
        }
        let y = stack.forward(input: .dense(rnnInput, features: rnnFeatures), steps: T, batch: bs, lengths: lengths,
                              initial: nil, training: training, rng: &rng)
        let DH = stack.outputSize
        let manyToOne = config.mode == .manyToOne
        let N = manyToOne ? bs : T * bs
        // Classifier input: pooled summary [bs, DH] or every step [T*bs, DH].
        var head: UnsafePointer<Float> = y
        if manyToOne {
            let s = summary.reserve(bs * DH)
            switch config.pooling {
            case .last:
                stack.topFinalHidden(into: s)
            case .mean:
                s.update(repeating: 0, count: bs * DH)
                for j in 0..<bs {
                    let sj = s + j * DH
                    for t in 0..<lengths[j] { let yt = y + (t * bs + j) * DH; for k in 0..<DH { sj[k] += yt[k] } }
                    let inv = 1 / Float(lengths[j])
                    for k in 0..<DH { sj[k] *= inv }
                }
            case .max:
                let steps = maxSteps.reserve(bs * DH)
                for j in 0..<bs {
                    let sj = s + j * DH, ij = steps + j * DH
                    sj.update(from: y + j * DH, count: DH)
                    ij.update(repeating: 0, count: DH)
                    for t in 1..<max(lengths[j], 1) {
                        let yt = y + (t * bs + j) * DH
                        for k in 0..<DH where yt[k] > sj[k] { sj[k] = yt[k]; ij[k] = Int32(t) }
                    }
                }
            }
            head = UnsafePointer(s)
        }
        let dropping = training && config.dropout > 0
        if dropping {
            let d = dropped.reserve(N * DH)
            summaryDropout.forward(input: head, count: N * DH, output: d, training: true, rng: &rng)
            head = UnsafePointer(d)
        }
        let lg = logits.reserve(N * C)
        classifier.forward(input: head, rows: N, output: lg)

        // Positions: row n of the logits is (t, j) = (n / bs, n % bs) in many-to-many mode.
        var lossSum = 0.0, correct = 0, count = 0
        if config.mode == .ctc, let labelSequences {
            // Time-major logits [T, bs, C] -> one contiguous [T, C] block per sequence.
            let sl = sequenceLogits.reserve(bs * T * C)
            for t in 0..<T { for j in 0..<bs { (sl + (j * T + t) * C).update(from: lg + (t * bs + j) * C, count: C) } }
            let sg: UnsafeMutablePointer<Float>? = backward ? sequenceGrad.reserve(bs * T * C) : nil
            let targets = Array(labelSequences[r])
            let result = CTC.batchLoss(logits: sl, batch: bs, time: T, classes: C, inputLengths: lengths, targets: targets,
                                       reduction: .mean, zeroInfinity: true, gradLogits: sg)
            for j in 0..<bs {
                lossSum += result.sequenceLosses[j] / Double(max(targets[j].count, 1))
                count += 1
                if CTC.greedyDecode(scores: sl + j * T * C, frames: lengths[j], classes: C) == targets[j] { correct += 1 }
            }
            if backward, let sg {
                let gl = gradLogits.reserve(N * C)
                let k = gradScale
                for t in 0..<T { for j in 0..<bs { for c in 0..<C { gl[(t * bs + j) * C + c] = k * sg[(j * T + t) * C + c] } } }
                backwardPass(gradLogits: gl, head: head, y: y, steps: T, batch: bs, lengths: lengths,
                             rnnInput: rnnInput, rnnFeatures: rnnFeatures, x: xp, z: zp, dropping: dropping)
            }
        } else if let labels {
            let tp = targets.reserve(N), wp = weights.reserve(N)
            if manyToOne {
                for j in 0..<bs { tp[j] = labels[r.lowerBound + j]; wp[j] = 1 }
            } else {
                for t in 0..<T {
                    for j in 0..<bs {
                        let valid = t < lengths[j]
                        tp[t * bs + j] = valid ? labels[(r.lowerBound + j) * T + t] : 0
                        wp[t * bs + j] = valid ? 1 : 0
                    }
                }
            }
            let gl: UnsafeMutablePointer<Float>? = backward ? gradLogits.reserve(N * C) : nil
            let result = SoftmaxCrossEntropy.compute(logits: lg, rows: N, classes: C, targets: tp, weights: wp, gradLogits: gl)
            lossSum = result.loss * result.weightSum
            for n in 0..<N where wp[n] != 0 {
                count += 1
                if argmax(lg + n * C, C) == Int(tp[n]) { correct += 1 }
            }
            if backward, let gl {
                if gradScale != 1 { for i in 0..<(N * C) { gl[i] *= gradScale } }
                backwardPass(gradLogits: gl, head: head, y: y, steps: T, batch: bs, lengths: lengths,
                             rnnInput: rnnInput, rnnFeatures: rnnFeatures, x: xp, z: zp, dropping: dropping)
            }
        }
        if let probabilities {
            for n in 0..<N {
                let (t, j) = manyToOne ? (0, n) : (n / bs, n % bs)
                let out = manyToOne ? probabilities + (r.lowerBound + j) * C
                                    : probabilities + ((r.lowerBound + j) * T + t) * C
                if !manyToOne && t >= lengths[j] { out.update(repeating: 0, count: C); continue }
                softmax(lg + n * C, C, into: out)
            }
        }
        return (lossSum, correct, count)
    }

    private func backwardPass(gradLogits gl: UnsafeMutablePointer<Float>, head: UnsafePointer<Float>, y: UnsafePointer<Float>,
                              steps T: Int, batch bs: Int, lengths: [Int], rnnInput: UnsafePointer<Float>, rnnFeatures: Int,
                              x: UnsafeMutablePointer<Float>, z: UnsafeMutablePointer<Float>?, dropping: Bool) {
        let DH = stack.outputSize, H = config.hidden, D = config.directions, L = config.layers
        let manyToOne = config.mode == .manyToOne
        let N = manyToOne ? bs : T * bs
        let gtop = gradTop.reserve(T * bs * DH)
        var gradFinal: RecurrentState? = nil
        if manyToOne {
            let gs = gradSummary.reserve(bs * DH)
            classifier.backward(input: head, gradOutput: gl, rows: bs, gradInput: gs)
            if dropping { summaryDropout.backward(gradOutput: gs, count: N * DH, gradInput: gs, training: true) }
            switch config.pooling {
            case .last:
                gtop.update(repeating: 0, count: T * bs * DH)
                var h = [Float](repeating: 0, count: L * D * bs * H)
                h.withUnsafeMutableBufferPointer { hp in
                    for d in 0..<D {
                        let base = hp.baseAddress! + ((L - 1) * D + d) * bs * H
                        for j in 0..<bs { (base + j * H).update(from: gs + j * DH + d * H, count: H) }
                    }
                }
                gradFinal = RecurrentState(h: h, c: config.cell.hasCellState ? [Float](repeating: 0, count: h.count) : nil)
            case .mean:
                for t in 0..<T {
                    for j in 0..<bs {
                        let g = gtop + (t * bs + j) * DH
                        if t < lengths[j] {
                            let inv = 1 / Float(lengths[j]), src = gs + j * DH
                            for k in 0..<DH { g[k] = src[k] * inv }
                        } else {
                            g.update(repeating: 0, count: DH)
                        }
                    }
                }
            case .max:
                gtop.update(repeating: 0, count: T * bs * DH)
                let steps = maxSteps.pointer
                for j in 0..<bs {
                    for k in 0..<DH { gtop[(Int(steps[j * DH + k]) * bs + j) * DH + k] = gs[j * DH + k] }
                }
            }
        } else {
            classifier.backward(input: head, gradOutput: gl, rows: N, gradInput: gtop)
            if dropping { summaryDropout.backward(gradOutput: gtop, count: N * DH, gradInput: gtop, training: true) }
        }
        if let projection, let z {
            let P = projection.outFeatures
            let gp = gradProjected.reserve(T * bs * P)
            stack.backward(input: .dense(rnnInput, features: rnnFeatures), gradOutput: gtop, gradFinal: gradFinal, gradInput: gp)
            if config.projectionActivation == .tanh { for i in 0..<(T * bs * P) { gp[i] *= 1 - z[i] * z[i] } }
            projection.backward(input: x, gradOutput: gp, rows: T * bs, gradInput: nil)
        } else {
            stack.backward(input: .dense(rnnInput, features: rnnFeatures), gradOutput: gtop, gradFinal: gradFinal, gradInput: nil)
        }
    }
}

@inline(__always)
func argmax(_ p: UnsafePointer<Float>, _ n: Int) -> Int {
    var best = 0
    for k in 1..<max(n, 1) where p[k] > p[best] { best = k }
    return best
}

/// `out[n] = softmax(z[n])`, numerically stable.
func softmax(_ z: UnsafePointer<Float>, _ n: Int, into out: UnsafeMutablePointer<Float>) {
    var m = -Float.infinity
    for k in 0..<n { m = max(m, z[k]) }
    var s: Float = 0
    for k in 0..<n { let e = expf(z[k] - m); out[k] = e; s += e }
    let inv = 1 / s
    for k in 0..<n { out[k] *= inv }
}

/// A recurrent sequence classifier over dense features, equal to the PyTorch module tree
/// `projection: Linear(I, P)` (optional, then tanh or nothing) →
/// `rnn: LSTM|GRU|RNN(P or I, H, layers, bidirectional=..., batch_first=True)` →
/// `classifier: Linear(D*H, classes)`, with the `state_dict` names `projection.weight`,
/// `projection.bias`, `rnn.weight_ih_l0`, ..., `classifier.weight`, `classifier.bias`.
///
/// Input batches are `[batch, time, features]` with per-sequence lengths. Many-to-one mode
/// classifies a pooled summary (`last`, `mean` or `max`, see `SequenceClassifierConfig.Pooling`) into
/// `[batch, classes]`; many-to-many mode classifies every valid step into
/// `[batch, time, classes]` and averages the loss over valid steps only. Dropout (training
/// only) acts between recurrent layers and on the classifier's input.
///
/// Training runs data-parallel: the batch is cut into `threads` contiguous shards, each run
/// forward and backward on its own replica (shared parameter values, own gradients and
/// buffers, single-threaded BLAS), and the gradients are summed once at the end, so the result
/// equals the single-thread gradient up to rounding.
public final class SequenceClassifier: ParameterContainer {
    /// The model's configuration.
    public let config: SequenceClassifierConfig
    /// Number of batch shards run in parallel.
    public let threads: Int
    let replicas: [SequenceClassifierReplica]
    /// The processes training shares a batch with (`ProcessGroup.shards`); `single` trains the
    /// whole batch here. Evaluation and prediction always run the whole batch in this process.
    public var processGroup: ProcessGroup = .single

    /// Creates a model with PyTorch's default initialisation drawn from `seed`.
    public init(config: SequenceClassifierConfig, seed: UInt64, threads: Int = 1) {
        precondition(config.problem == nil, config.problem ?? "")
        self.config = config
        self.threads = max(1, threads)
        var rng = SeededRandom(seed: seed)
        let projection = config.projection > 0 ? Linear(inFeatures: config.inputSize, outFeatures: config.projection, rng: &rng) : nil
        let stack = RecurrentStack(cell: config.cell, inputSize: config.projection > 0 ? config.projection : config.inputSize,
                                   hiddenSize: config.hidden, numLayers: config.layers, bidirectional: config.bidirectional,
                                   dropout: config.dropout, rng: &rng)
        if config.unitForgetBias && config.cell == .lstm {
            for row in stack.layers { for layer in row { layer.setForgetBias(1) } }
        }
        let classifier = Linear(inFeatures: stack.outputSize, outFeatures: config.classes, rng: &rng)
        var reps = [SequenceClassifierReplica(config: config, projection: projection, stack: stack, classifier: classifier)]
        for _ in 1..<self.threads {
            reps.append(SequenceClassifierReplica(config: config, projection: projection.map { Linear(sharing: $0) },
                                                  stack: RecurrentStack(sharing: stack), classifier: Linear(sharing: classifier)))
        }
        replicas = reps
        if self.threads > 1 { Threading.useSingleThreadedBLAS() }
    }

    /// The primary's learned input projection (nil without one).
    public var projection: Linear? { replicas[0].projection }
    /// The primary's recurrent stack.
    public var rnn: RecurrentStack { replicas[0].stack }
    /// Number format of the recurrent products in every replica (see `Precision`); default fp32.
    public var precision: Precision {
        get { replicas[0].stack.precision }
        set { for r in replicas { r.stack.precision = newValue } }
    }
    /// The primary's output layer.
    public var classifier: Linear { replicas[0].classifier }

    /// Parameters with their PyTorch `state_dict` names.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        var list: [(name: String, parameter: Parameter)] = []
        if let p = projection { list += p.namedParameters.map { ("projection." + $0.name, $0.parameter) } }
        list += rnn.namedParameters.map { ("rnn." + $0.name, $0.parameter) }
        list += classifier.namedParameters.map { ("classifier." + $0.name, $0.parameter) }
        return list
    }

    /// Tensors for a checkpoint, PyTorch names and shapes.
    public var stateDict: [NamedTensor] {
        namedParameters.map { NamedTensor(name: $0.name, shape: $0.parameter.shape, values: $0.parameter.values) }
    }

    /// Loads values by name; every parameter must be present with its exact shape and finite
    /// values. `source` names the file in errors.
    public func load(_ tensors: [String: NamedTensor], source: String) throws {
        for (name, p) in namedParameters {
            guard let t = tensors[name] else { throw ModelLoadError.missingTensor(source, name) }
            guard t.shape == p.shape else { throw ModelLoadError.shapeMismatch(source, name, expected: p.shape, got: t.shape) }
            guard t.values.allSatisfy(\.isFinite) else { throw ModelLoadError.badMetadata(source, "tensor '\(name)' holds NaN or infinite values") }
        }
        for (name, p) in namedParameters { if let t = tensors[name] { p.values = t.values } }
    }

    /// One training forward and backward pass over `batch` (labels required).
    ///
    /// Afterwards the primary parameters' gradients hold d(mean loss)/d(parameter) of the
    /// whole batch (they are zeroed first); step an optimizer over `parameters` next.
    /// - Parameter seed: seeds this step's dropout masks (per shard).
    public func trainStep(_ batch: SequenceBatch, seed: UInt64 = 0) -> SequenceClassifierResult {
        run(batch, training: true, backward: true, seed: seed, probabilities: false).result
    }

    /// Forward only (no dropout): loss and accuracy when `batch` has labels, and the class
    /// probabilities `[batch, classes]` (many-to-one) or `[batch, time, classes]`
    /// (many-to-many; padded steps all zero).
    public func evaluate(_ batch: SequenceBatch) -> (result: SequenceClassifierResult, probabilities: [Float]) {
        let out = run(batch, training: false, backward: false, seed: 0, probabilities: true)
        return (out.result, out.probabilities)
    }

    /// Class probabilities of `batch` (labels ignored), shapes as in `evaluate`.
    public func predict(_ batch: SequenceBatch) -> [Float] {
        var unlabelled = batch
        unlabelled.labels = []
        unlabelled.labelSequences = []
        return run(unlabelled, training: false, backward: false, seed: 0, probabilities: true).probabilities
    }

    private func run(_ batch: SequenceBatch, training: Bool, backward: Bool, seed: UInt64,
                     probabilities wantProbabilities: Bool) -> (result: SequenceClassifierResult, probabilities: [Float]) {
        precondition(batch.features == config.inputSize, "batch has \(batch.features) features, model expects \(config.inputSize)")
        let B = batch.batch, T = batch.time, C = config.classes
        let manyToOne = config.mode == .manyToOne, ctc = config.mode == .ctc
        let hasLabels = ctc ? !batch.labelSequences.isEmpty : !batch.labels.isEmpty
        if hasLabels && ctc {
            precondition(batch.labelSequences.allSatisfy { $0.allSatisfy { $0 >= 1 && Int($0) < C } }, "CTC label outside 1..<\(C)")
        } else if hasLabels {
            precondition(batch.labels.count == (manyToOne ? B : B * T), "labels do not match the classifier's mode")
            precondition(batch.labels.allSatisfy { $0 >= 0 && Int($0) < C }, "label outside 0..<\(C)")
        }
        precondition(!backward || hasLabels, "training needs labels")
        let group = backward ? processGroup : .single
        let (first, ranges) = group.shards(count: B, threads: threads)
        // Each shard's share of the batch loss: sequences (many-to-one, CTC) or valid steps.
        let perSequence = manyToOne || ctc
        let totalWeight = perSequence ? Double(B) : Double(batch.lengths.reduce(0, +))
        let scales: [Float] = ranges.map { r in
            let w = perSequence ? Double(r.count) : Double(batch.lengths[r].reduce(0, +))
            return Float(w / max(totalWeight, 1))
        }
        var probs = [Float](repeating: 0, count: wantProbabilities ? (manyToOne ? B * C : B * T * C) : 0)
        // One slot per shard, allocated before the workers start: each writes only its own.
        let parts = UnsafeMutableBufferPointer<(lossSum: Double, correct: Int, count: Int)>.allocate(capacity: ranges.count)
        parts.initialize(repeating: (0, 0, 0))
        defer { parts.deallocate() }
        let slots = UncheckedBox(parts)
        let reps = replicas
        batch.inputs.withUnsafeBufferPointer { xb in
            batch.labels.withUnsafeBufferPointer { lb in
                probs.withUnsafeMutableBufferPointer { pb in
                    let ptrs = UncheckedBox((xb.baseAddress!, hasLabels ? lb.baseAddress : nil, pb.baseAddress, reps))
                    Threading.run(ranges.count) { k in
                        let (x, labels, p, reps) = ptrs.value
                        let rep = reps[k]
                        if backward { for q in rep.parameters { q.zeroGrad() } }
                        var rng = SeededRandom(seed: seed &* 1_000_003 &+ UInt64(first + k))
                        slots.value[k] = rep.run(input: x, rows: ranges[k], steps: T, lengths: batch.lengths, labels: labels,
                                                 labelSequences: ctc && hasLabels ? batch.labelSequences : nil,
                                                 training: training, backward: backward, gradScale: scales[k], rng: &rng,
                                                 probabilities: wantProbabilities ? p : nil)
                    }
                }
            }
        }
        if backward {
            let primary = replicas[0].parameters
            if ranges.isEmpty { for q in primary { q.zeroGrad() } }
            for k in 1..<max(ranges.count, 1) { accumulateGradients(into: primary, from: replicas[k].parameters) }
        }
        // Every shard's figures in global shard order (all ranks' shards when distributed).
        let all = group.allGather(parts.flatMap { [$0.lossSum, Double($0.correct), Double($0.count)] })
        var lossSum = 0.0, correct = 0, count = 0
        for i in stride(from: 0, to: all.count, by: 3) { lossSum += all[i]; correct += Int(all[i + 1]); count += Int(all[i + 2]) }
        return (SequenceClassifierResult(loss: count > 0 ? lossSum / Double(count) : 0, correct: correct, count: count), probs)
    }
}
