import Foundation
import RecurrentCore

/// What a speech model predicts.
public enum SpeechTask: String, Codable, Sendable, CaseIterable {
    /// One label per utterance (many-to-one).
    case utterance
    /// One label per frame (many-to-many).
    case frame
    /// One label sequence per utterance, unaligned (CTC over every frame, class 0 the blank).
    case sequence

    /// The classifier mode of the task.
    public var mode: SequenceClassifierConfig.Mode {
        switch self {
        case .utterance: return .manyToOne
        case .frame: return .manyToMany
        case .sequence: return .ctc
        }
    }

    /// The task of a classifier mode.
    public init(mode: SequenceClassifierConfig.Mode) {
        switch mode {
        case .manyToOne: self = .utterance
        case .manyToMany: self = .frame
        case .ctc: self = .sequence
        }
    }

    /// The CTC blank's class name (class 0 of the sequence task).
    public static let blank = "<blank>"

    /// The label sequence written in a sequence-task label: its space-separated words when it
    /// has spaces (`"seven three"`), else its characters (`"73"`, as in `{digits}_{speaker}_{n}`).
    public static func tokens(of label: String) -> [String] {
        label.contains(" ") ? label.split(separator: " ").map(String.init) : label.map { String($0) }
    }

    /// A decoded label sequence as text: joined without a separator when every token is one
    /// character, else with spaces (the inverse of `tokens(of:)`).
    public static func text(of tokens: [String]) -> String {
        tokens.allSatisfy { $0.count == 1 } ? tokens.joined() : tokens.joined(separator: " ")
    }
}

/// A speech classifier: `RecurrentCore.SequenceClassifier` (optional projection → recurrent
/// stack → pooling (utterance task) → linear classifier) fed with `SpeechExample`s.
///
/// Batches of examples become padded `[batch, time, features]` tensors with per-example
/// lengths; probabilities come back per utterance `[batch, classes]` or, for the frame task,
/// per valid frame with the examples' frames one after the other `[sum of frames, classes]`.
public final class SpeechClassifier {
    /// The wrapped network (PyTorch names `projection.*`, `rnn.*`, `classifier.*`).
    public let network: SequenceClassifier
    /// The task, from the network's mode.
    public var task: SpeechTask { SpeechTask(mode: network.config.mode) }
    /// The network's configuration.
    public var config: SequenceClassifierConfig { network.config }
    private var stepCount: UInt64 = 0

    /// Creates a network with PyTorch's default initialisation from `seed`.
    /// - Throws: `ModelLoadError.badMetadata` naming `source` when the configuration is out of range.
    public init(config: SequenceClassifierConfig, seed: UInt64, threads: Int = 1, source: String = "model configuration") throws {
        if let problem = config.problem { throw ModelLoadError.badMetadata(source, "model configuration: \(problem)") }
        network = SequenceClassifier(config: config, seed: seed, threads: threads)
    }

    /// Parameters in `state_dict` order.
    public var parameters: [Parameter] { network.parameters }

    /// The padded batch `[batch, time, features]` of `examples` (at least one frame each),
    /// with labels when `labelled`.
    func batch(_ examples: [SpeechExample], labelled: Bool) -> SequenceBatch {
        let labels: SequenceLabels
        if !labelled || task == .sequence { labels = .none } else if task == .utterance {
            labels = .perSequence(examples.map { Int32(max(0, $0.label)) })
        } else {
            labels = .perStep(examples.map(\.frameLabels))
        }
        var batch = SequenceBatch(padding: examples.map(\.features.values), features: config.inputSize, labels: labels)
        if labelled && task == .sequence { batch.labelSequences = examples.map(\.labelSequence) }
        return batch
    }

    /// One training forward and backward pass: afterwards the parameters' gradients hold the
    /// gradient of the mean loss over the batch's utterances (or valid frames).
    /// - Returns: the mean loss (nats) and the number of rows it averages.
    @discardableResult
    public func computeGradients(_ examples: [SpeechExample]) -> (loss: Double, rows: Int) {
        stepCount &+= 1
        let r = network.trainStep(batch(examples, labelled: true), seed: stepCount)
        return (r.loss, r.count)
    }

    /// Class probabilities: utterance task `[batch, classes]`; frame and sequence tasks the
    /// examples' valid frames one after the other, `[sum of frames, classes]`. Also the mean loss
    /// against the examples' labels.
    public func probabilities(_ examples: [SpeechExample]) -> (probabilities: [Float], loss: Double) {
        guard !examples.isEmpty else { return ([], 0) }
        let b = batch(examples, labelled: true)
        let (result, p) = network.evaluate(b)
        if task == .utterance { return (p, result.loss) }
        let C = config.classes, T = b.time
        var out: [Float] = []
        out.reserveCapacity(b.lengths.reduce(0, +) * C)
        for (i, n) in b.lengths.enumerated() { out += p[(i * T * C)..<((i * T + n) * C)] }
        return (out, result.loss)
    }
}
