import Foundation
import RecurrentCore

/// What `SpeechInference` runs: class probabilities of a batch of examples and the mean loss
/// against their labels (shapes as `SpeechClassifier.probabilities`). A single model and an
/// ensemble of checkpoints both conform.
public protocol SpeechScorer {
    /// The task, which fixes the probabilities' shape.
    var task: SpeechTask { get }
    /// Classes per probability row.
    var classes: Int { get }
    /// Utterance task `[batch, classes]`; frame and sequence tasks the valid frames of the
    /// examples one after the other `[sum of frames, classes]`; and the mean loss.
    func probabilities(_ examples: [SpeechExample]) -> (probabilities: [Float], loss: Double)
    /// Sequence task: each example's decoded labels with the probability of that sequence
    /// (greedy best path when `beamWidth` is 1, prefix beam search otherwise; for an ensemble,
    /// see `SpeechEnsemble`), and the mean loss.
    func decodeSequences(_ examples: [SpeechExample], beamWidth: Int) -> (decoded: [(labels: [Int], probability: Double)], loss: Double)
    /// `decodeSequences` with the frame probabilities it decoded from (`[sum of frames,
    /// classes]`; an ensemble's are its members' average), so a caller that needs both runs the
    /// networks once.
    func decodeSequencesWithFrames(_ examples: [SpeechExample], beamWidth: Int)
        -> (decoded: [(labels: [Int], probability: Double)], loss: Double, frames: [Float])
}

extension SpeechScorer {
    /// One network: its frame probabilities decoded per example (`SpeechInference.decode`).
    public func decodeSequencesWithFrames(_ examples: [SpeechExample], beamWidth: Int)
        -> (decoded: [(labels: [Int], probability: Double)], loss: Double, frames: [Float]) {
        let (p, loss) = probabilities(examples)
        var decoded: [(labels: [Int], probability: Double)] = []
        var row = 0
        p.withUnsafeBufferPointer { pb in
            for e in examples {
                decoded.append(SpeechInference.decode(pb.baseAddress! + row * classes, frames: e.features.frames, classes: classes, beamWidth: beamWidth))
                row += e.features.frames
            }
        }
        return (decoded, loss, p)
    }

    public func decodeSequences(_ examples: [SpeechExample], beamWidth: Int) -> (decoded: [(labels: [Int], probability: Double)], loss: Double) {
        let r = decodeSequencesWithFrames(examples, beamWidth: beamWidth)
        return (r.decoded, r.loss)
    }
}

extension SpeechClassifier: SpeechScorer {
    /// Classes of the network's output layer.
    public var classes: Int { config.classes }
}

/// Errors assembling an ensemble; one line naming the checkpoint that does not fit.
public enum SpeechEnsembleError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No checkpoint given.
    case empty
    /// A member's task, class names or feature configuration differs from the first member's.
    case mismatch(path: String, first: String, what: String)

    /// One line naming the file.
    public var description: String {
        switch self {
        case .empty: return "an ensemble needs at least one checkpoint"
        case let .mismatch(path, first, what): return "\(path): \(what) differs from \(first)'s; an ensemble's checkpoints must agree"
        }
    }
}

/// Several checkpoints of one task, one label set and one front end whose class probabilities
/// are averaged (per utterance, or per frame for the frame task). Members may normalise their
/// features differently (per utterance, per speaker), and utterance-task members may differ in
/// any feature setting (trimming, filterbank, cepstra): each is fed the features of its own
/// configuration (`featureConfigurations`, `attachVariants`, `frontEnd`).
///
/// Sequence-task (CTC) models are combined per label *sequence*, not per frame: each emits its
/// labels as spikes on frames of its own choosing between blanks, so averaged frame probabilities
/// lose labels (three seeds of one connected-digit model: 7.65–11.47 % label error rate alone,
/// 12.98 % with their frames averaged). `decodeSequences` takes the sequence with the highest
/// mixture probability `(1/M) Σ_m P_m(labels | x)` among the candidates of every member's prefix
/// beam search (`CTC.mixtureDecode`, width `max(beamWidth, 4)`), and the loss is the mean over
/// examples of `−log` of the reference's mixture probability divided by its label count (CTC's
/// `reduction='mean'`; a reference no member can align counts 0, as in training).
///
/// Examples given to an ensemble carry *un-normalised* features (`FeatureNormalizer` of
/// `rawNormalizer`): each member normalises a copy with its own training-set statistics, so
/// members trained on different files combine correctly. The loss is that of the averaged
/// probabilities: mean −log p of the label per utterance (utterance task) or per valid frame
/// (frame task), the conventions of a single model's `loss`.
public final class SpeechEnsemble: SpeechScorer {
    /// The members, in the order given.
    public let members: [SpeechCheckpoint]
    /// The members' files, for messages.
    public let paths: [String]

    /// Reads and checks every checkpoint (see `SpeechCheckpoint.read`).
    /// - Throws: the first checkpoint error, or `SpeechEnsembleError.mismatch` naming the first
    ///   member whose task, class names (in order) or feature configuration differs.
    public convenience init(paths: [String], threads: Int = 1) throws {
        try self.init(members: paths.map { try SpeechCheckpoint.read(path: $0, threads: threads) }, paths: paths)
    }

    /// Bundles checkpoints already read; `paths` name them in messages.
    /// - Throws: `SpeechEnsembleError` as `init(paths:threads:)`.
    public init(members: [SpeechCheckpoint], paths: [String]) throws {
        guard let first = members.first else { throw SpeechEnsembleError.empty }
        precondition(paths.count == members.count, "one path per member")
        for (m, path) in zip(members, paths).dropFirst() {
            func mismatch(_ what: String) -> SpeechEnsembleError { .mismatch(path: path, first: paths[0], what: what) }
            if m.model.task != first.model.task { throw mismatch("task \(m.model.task.rawValue)") }
            if m.labels.names != first.labels.names { throw mismatch("class list [\(m.labels.names.joined(separator: ","))]") }
            if Self.frontEnd(m.features, task: first.model.task) != Self.frontEnd(first.features, task: first.model.task) {
                throw mismatch("feature configuration")
            }
        }
        self.members = members; self.paths = paths
        var configurations: [FeatureConfig] = []
        memberConfiguration = members.map { m in
            if let k = configurations.firstIndex(of: m.features) { return k }
            configurations.append(m.features)
            return configurations.count - 1
        }
        featureConfigurations = configurations
    }

    /// What members of `task` must agree on in their feature configurations. Utterance-task
    /// members give one probability row per file whatever frames and features they saw, so they
    /// may differ in any setting (normalisation, silence trimming, filterbank, cepstra): nothing.
    /// Frame and sequence outputs are combined frame by frame or along each member's frames, so
    /// those members must compute the same features and differ at most in normalisation (per
    /// utterance, per speaker).
    public static func frontEnd(_ features: FeatureConfig, task: SpeechTask) -> FeatureConfig {
        task == .utterance ? FeatureConfig() : features.withoutNormalization
    }

    /// The members' distinct feature configurations, the first member's first. Members may
    /// differ where `frontEnd` allows (normalisation; any setting for the utterance task):
    /// each file is then extracted once per configuration, the first into an example's
    /// `features`, the others into its `variants`.
    public let featureConfigurations: [FeatureConfig]
    /// Index into `featureConfigurations` of each member's.
    public let memberConfiguration: [Int]

    /// Fills each example's `variants` with its features under `featureConfigurations[1...]`,
    /// which `extract` gives for a configuration keyed by example path (every path of
    /// `examples` must be there).
    /// - Throws: what `extract` throws.
    public func attachVariants(_ examples: inout [SpeechExample], extract: (FeatureConfig) throws -> [String: FeatureMatrix]) rethrows {
        for config in featureConfigurations.dropFirst() {
            let byPath = try extract(config)
            for k in examples.indices {
                guard let f = byPath[examples[k].path] else { preconditionFailure("no features of \(examples[k].path) under a member's configuration") }
                examples[k].variants.append(f)
            }
        }
    }

    /// The members' task.
    public var task: SpeechTask { members[0].model.task }
    /// The members' class count.
    public var classes: Int { members[0].model.config.classes }
    /// The members' class names.
    public var labels: LabelSet { members[0].labels }
    /// The members' feature configuration.
    public var features: FeatureConfig { members[0].features }
    /// The identity normaliser to encode the ensemble's examples with (each member applies its own).
    public var rawNormalizer: FeatureNormalizer { FeatureNormalizer(featureCount: features.featureCount) }

    /// What to run: the single member's network when there is one member (its examples
    /// normalised with `inputNormalizer` beforehand, as a lone checkpoint is used), else the ensemble.
    public var scorer: any SpeechScorer { members.count == 1 ? members[0].model : self }
    /// The statistics to normalise `scorer`'s examples with: the single member's, else none
    /// (`rawNormalizer`, each member normalising its own copy).
    public var inputNormalizer: FeatureNormalizer { members.count == 1 ? members[0].normalizer : rawNormalizer }

    /// Member `k`'s probabilities of un-normalised `examples` (its configuration's features:
    /// `features` or one of `variants`), normalised with its own statistics.
    private func memberProbabilities(_ k: Int, _ examples: [SpeechExample]) -> [Float] {
        let m = members[k], v = memberConfiguration[k]
        let normalized = examples.map { e -> SpeechExample in
            var copy = e
            if v > 0 {
                precondition(e.variants.count == featureConfigurations.count - 1, "\(e.path): features of every configuration needed (attachVariants)")
                copy.features = e.variants[v - 1]
            }
            copy.variants = []
            // Cannot throw: every configuration gives rows of the width each member's
            // statistics were checked against when the checkpoint was read.
            try! m.normalizer.apply(to: &copy.features, source: e.path)
            return copy
        }
        return m.model.probabilities(normalized).probabilities
    }

    /// Sequence task: the decoded labels of un-normalised `examples` by the members' mixture
    /// (see the type's notes) with the mixture probability of each, and the mixture's mean loss.
    public func decodeSequences(_ examples: [SpeechExample], beamWidth: Int) -> (decoded: [(labels: [Int], probability: Double)], loss: Double) {
        precondition(task == .sequence, "decodeSequences is for the sequence task")
        let r = mixture(of: members.indices.map { memberProbabilities($0, examples) }, examples, decodeWidth: max(beamWidth, 4))
        return (r.decoded, r.loss)
    }

    /// `decodeSequences` and the members' averaged frame probabilities, from one pass of each.
    public func decodeSequencesWithFrames(_ examples: [SpeechExample], beamWidth: Int)
        -> (decoded: [(labels: [Int], probability: Double)], loss: Double, frames: [Float]) {
        precondition(task == .sequence, "decodeSequences is for the sequence task")
        let each = members.indices.map { memberProbabilities($0, examples) }
        let r = mixture(of: each, examples, decodeWidth: max(beamWidth, 4))
        return (r.decoded, r.loss, Self.average(each))
    }

    /// The element-wise mean of equally long probability arrays.
    private static func average(_ each: [[Float]]) -> [Float] {
        var sum = [Double](repeating: 0, count: each[0].count)
        for p in each { for i in p.indices { sum[i] += Double(p[i]) } }
        let scale = 1 / Double(each.count)
        return sum.map { Float($0 * scale) }
    }

    /// Averaged probabilities of un-normalised `examples` and the loss of the average (sequence
    /// task: the frames averaged, which no decoder here reads, and the mixture's loss).
    public func probabilities(_ examples: [SpeechExample]) -> (probabilities: [Float], loss: Double) {
        guard !examples.isEmpty else { return ([], 0) }
        let each = members.indices.map { memberProbabilities($0, examples) }
        let average = Self.average(each)
        // Averaged frames are no CTC model (see the type's notes): the sequence task's loss is the mixture's.
        let loss = task == .sequence ? mixture(of: each, examples, decodeWidth: nil).loss : loss(of: average, examples: examples)
        return (average, loss)
    }

    /// The members' CTC mixture over `examples` given each member's frame probabilities
    /// (`[sum of frames, classes]`): the mean loss of the references and, when `decodeWidth` is
    /// given, each example's decoded labels (`CTC.mixtureDecode` with that width).
    private func mixture(of each: [[Float]], _ examples: [SpeechExample], decodeWidth: Int?)
        -> (decoded: [(labels: [Int], probability: Double)], loss: Double) {
        guard !examples.isEmpty else { return ([], 0) }
        let C = classes
        // Log-probabilities serve as logits: their softmax is the probabilities themselves.
        let logs: [UnsafeMutablePointer<Float>] = each.map { p in
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(p.count, 1))
            for i in p.indices { buffer[i] = log(max(p[i], .leastNormalMagnitude)) }
            return buffer
        }
        defer { for buffer in logs { buffer.deallocate() } }
        var decoded: [(labels: [Int], probability: Double)] = []
        var lossSum = 0.0, row = 0
        for e in examples {
            let n = e.features.frames
            let rows = logs.map { UnsafePointer($0 + row * C) }
            if let width = decodeWidth {
                let best = CTC.mixtureDecode(logits: rows, frames: n, classes: C, beamWidth: width)
                decoded.append((best.labels.map { Int($0) }, exp(best.logProbability)))
            }
            let reference = CTC.mixtureLogProbability(logits: rows, frames: n, classes: C, target: e.labelSequence)
            if reference > -.infinity { lossSum -= reference / Double(max(e.labelSequence.count, 1)) }
            row += n
        }
        return (decoded, lossSum / Double(examples.count))
    }

    /// The loss of averaged probabilities against the examples' labels (see the type's notes).
    private func loss(of p: [Float], examples: [SpeechExample]) -> Double {
        let C = classes
        func nll(_ x: Float) -> Double { -log(max(Double(x), Double(Float.leastNormalMagnitude))) }
        switch task {
        case .utterance:
            var total = 0.0
            for (j, e) in examples.enumerated() { total += nll(p[j * C + max(0, e.label)]) }
            return total / Double(examples.count)
        case .frame:
            var total = 0.0, row = 0
            for e in examples {
                for t in 0..<e.features.frames { total += nll(p[(row + t) * C + Int(e.frameLabels[t])]) }
                row += e.features.frames
            }
            return row > 0 ? total / Double(row) : 0
        case .sequence:
            preconditionFailure("the sequence task's loss is the mixture's")
        }
    }
}
