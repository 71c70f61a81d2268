import Foundation
import RecurrentCore

/// Errors reading a speech checkpoint's metadata; one line naming the file.
public enum SpeechCheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A metadata entry is missing or malformed.
    case badMetadata(path: String, key: String, reason: String)

    /// One line naming the file and what is wrong.
    public var description: String {
        switch self {
        case let .badMetadata(path, key, reason): return "\(path): metadata '\(key)': \(reason)"
        }
    }
}

/// Everything needed to run a trained speech model on new audio: the network, the feature
/// configuration, the normalisation statistics of the training set and the class names.
///
/// Stored as safetensors: tensors with PyTorch names (`projection.weight`, `rnn.weight_ih_l0`,
/// ..., `classifier.weight`, `classifier.bias`) and `__metadata__` entries `format` =
/// `rnn-suite/speech/1`, `features` (`FeatureConfig` JSON), `normalizer` (`FeatureNormalizer`
/// JSON), `labels` (`{"names": [...]}`), `model` (`SequenceClassifierConfig` JSON; its `mode`
/// gives the task) and `training` (free-form JSON about the run that wrote it).
public struct SpeechCheckpoint {
    /// The checkpoint format (`rnn-suite/speech/1`; the model configuration is under `model`).
    public static let checkpointFormat = CheckpointFormat(name: "rnn-suite/speech", version: 1)
    /// The `format` metadata value.
    public static var format: String { checkpointFormat.tag }

    /// The network.
    public var model: SpeechClassifier
    /// Feature extraction settings.
    public var features: FeatureConfig
    /// Training-set statistics.
    public var normalizer: FeatureNormalizer
    /// Class names (index order of the network's outputs).
    public var labels: LabelSet
    /// Free-form JSON about the training run (`{}` when absent).
    public var training: String

    /// Bundles the parts of a checkpoint.
    public init(model: SpeechClassifier, features: FeatureConfig, normalizer: FeatureNormalizer,
                labels: LabelSet, training: String = "{}") {
        self.model = model; self.features = features; self.normalizer = normalizer
        self.labels = labels; self.training = training
    }

    /// Writes the checkpoint atomically to `path` through `ModelCheckpoint`, with `extra`
    /// metadata entries (e.g. the training step) besides the standard ones.
    public func write(to path: String, extra: [String: String] = [:]) throws {
        var meta = extra
        meta["features"] = String(decoding: try features.jsonData(), as: UTF8.self)
        meta["normalizer"] = String(decoding: try normalizer.jsonData(), as: UTF8.self)
        meta["labels"] = try ModelCheckpoint<LabelSet>.configurationJSON(labels)
        meta["training"] = training
        try ModelCheckpoint(format: Self.checkpointFormat, configuration: model.config, configurationKey: "model",
                            tensors: model.network.stateDict, metadata: meta).write(to: path)
    }

    /// Reads and validates a checkpoint through `ModelCheckpoint`: format, every metadata
    /// entry, consistency between them (feature width, class count) and the tensor set
    /// (strictly: a missing, unexpected or wrongly shaped tensor is an error naming it).
    /// - Throws: `CheckpointError`, `SpeechCheckpointError`, `ModelLoadError`, `FeatureError`.
    public static func read(path: String, threads: Int = 1) throws -> SpeechCheckpoint {
        let checkpoint = try ModelCheckpoint<SequenceClassifierConfig>.read(path: path, format: checkpointFormat, configurationKey: "model")
        let meta = checkpoint.metadata, config = checkpoint.configuration
        if let problem = config.problem { throw ModelLoadError.badMetadata(path, "model configuration: \(problem)") }
        func entry(_ key: String) throws -> Data {
            guard let s = meta[key] else { throw SpeechCheckpointError.badMetadata(path: path, key: key, reason: "missing") }
            return Data(s.utf8)
        }
        let features = try FeatureConfig.decode(jsonData: try entry("features"), source: path)
        let normalizer = try FeatureNormalizer.decode(jsonData: try entry("normalizer"), path: path)
        let labels: LabelSet
        do { labels = try JSONDecoder().decode(LabelSet.self, from: try entry("labels")) } catch let e as SpeechCheckpointError {
            throw e
        } catch {
            throw SpeechCheckpointError.badMetadata(path: path, key: "labels", reason: "not {\"names\": [...]}")
        }
        guard labels.count == config.classes, labels.names.count == labels.count else {
            throw SpeechCheckpointError.badMetadata(path: path, key: "labels", reason: "\(labels.count) distinct names for \(config.classes) classes")
        }
        guard normalizer.featureCount == features.featureCount, config.inputSize == features.featureCount else {
            throw SpeechCheckpointError.badMetadata(path: path, key: "model",
                reason: "input size \(config.inputSize), statistics for \(normalizer.featureCount) and features of width \(features.featureCount) disagree")
        }
        if config.problem == nil {
            try MemoryBudget.require(config.memoryEstimate(batch: 1, steps: 1, threads: threads).inferenceBytes,
                                     for: "\(path): the model of this checkpoint")
        }
        let model = try SpeechClassifier(config: config, seed: 0, threads: threads, source: path)
        let byName = try checkpoint.tensors(matching: model.network.stateDict.map { ($0.name, $0.shape) }, source: path)
        try model.network.load(byName, source: path)
        return SpeechCheckpoint(model: model, features: features, normalizer: normalizer, labels: labels,
                                training: meta["training"] ?? "{}")
    }
}

/// Results of running a model over labelled examples.
public struct SpeechEvaluation: Sendable {
    /// The task evaluated.
    public var task: SpeechTask
    /// Mean loss (nats) over utterances (utterance task), frames (frame task) or the CTC loss
    /// per label averaged over utterances (sequence task).
    public var loss: Double
    /// Utterances (utterance task) or frames (frame task), `[true][predicted]`; empty for the
    /// sequence task.
    public var confusion: ConfusionMatrix
    /// Number of examples evaluated.
    public var utterances: Int
    /// Frame task: segment error counts summed over utterances (see `SegmentScoring`);
    /// sequence task: label error counts of the decoded sequences against the references.
    public var segments: SegmentCounts?
    /// Frame and sequence tasks: utterances whose predicted sequence equals the reference one.
    public var exactUtterances: Int

    /// Utterance accuracy (utterance task), frame accuracy (frame task) or whole-sequence
    /// accuracy (sequence task).
    public var accuracy: Double {
        task == .sequence ? (utterances > 0 ? Double(exactUtterances) / Double(utterances) : 0) : confusion.accuracy
    }

    /// Sequence task: label error rate, (S + D + I) / N of the decoded sequences.
    public var labelErrorRate: Double? {
        guard task == .sequence, let s = segments, s.reference > 0 else { return nil }
        return Double(s.substitutions + s.deletions + s.insertions) / Double(s.reference)
    }
}

/// One file's prediction.
public struct SpeechPrediction: Sendable {
    /// The audio file.
    public var path: String
    /// Utterance task: the most probable class and its probability.
    public var label: String
    /// Probability of `label` (utterance task); mean probability of the chosen labels over the
    /// frames (frame task).
    public var probability: Double
    /// Frame task: the predicted label track (runs of equal labels, silence included), in seconds.
    public var segments: [LabelSegment]
    /// Frame task: predicted class index per frame `[frames]`; sequence task: the decoded
    /// label sequence's class indices.
    public var frameLabels: [Int]
    /// Utterance task: the probability of every class `[classes]` (index order of the label
    /// set); empty for the other tasks.
    public var classProbabilities: [Double] = []
}

/// Evaluation and prediction with a trained model.
public enum SpeechInference {
    /// Evaluates `model` on `examples` in batches of `batchSize` (length-sorted).
    /// `silence` is the class index dropped when scoring segments (frame task).
    /// Sequence task: `beamWidth` 1 decodes greedily (best path), more runs prefix beam search.
    /// With a distributed `group` the ranks take contiguous runs of the batches and every batch's
    /// figures are gathered and added in batch order: every rank gets the one-process result.
    public static func evaluate(_ model: some SpeechScorer, examples: [SpeechExample], silence: Int?,
                                batchSize: Int = 64, beamWidth: Int = 1, group: ProcessGroup = .single) -> SpeechEvaluation {
        let C = model.classes
        let batches = SpeechCorpus.orderedBatches(lengths: examples.map(\.features.frames), batchSize: batchSize)
        let parts = group.inParts(count: batches.count, width: 7 + C * C) { b in
            let f = batchFigures(model, batch: batches[b].map { examples[$0] }, silence: silence, beamWidth: beamWidth)
            return [f.lossSum, Double(f.rows), Double(f.exact), Double(f.segments.reference), Double(f.segments.substitutions),
                    Double(f.segments.deletions), Double(f.segments.insertions)] + f.confusion.counts.flatMap { $0.map(Double.init) }
        }
        var confusion = ConfusionMatrix(classes: C)
        var lossSum = 0.0, rowSum = 0
        var seg = SegmentCounts()
        var exact = 0
        for p in parts {
            lossSum += p[0]; rowSum += Int(p[1]); exact += Int(p[2])
            seg = seg + SegmentCounts(reference: Int(p[3]), substitutions: Int(p[4]), deletions: Int(p[5]), insertions: Int(p[6]))
            confusion.add(ConfusionMatrix(counts: (0..<C).map { t in (0..<C).map { Int(p[7 + t * C + $0]) } }))
        }
        return SpeechEvaluation(task: model.task, loss: rowSum > 0 ? lossSum / Double(rowSum) : 0, confusion: confusion,
                                utterances: examples.count, segments: model.task == .utterance ? nil : seg,
                                exactUtterances: exact)
    }

    /// One batch's summed loss, scored rows, exactly recognised utterances, segment (or, for the
    /// sequence task, label) error counts and confusion counts.
    private static func batchFigures(_ model: some SpeechScorer, batch: [SpeechExample], silence: Int?, beamWidth: Int)
        -> (lossSum: Double, rows: Int, exact: Int, segments: SegmentCounts, confusion: ConfusionMatrix) {
        let C = model.classes
        var confusion = ConfusionMatrix(classes: C)
        var lossSum = 0.0, rowSum = 0
        var seg = SegmentCounts()
        var exact = 0
        if model.task == .sequence {
            let (decoded, l) = model.decodeSequences(batch, beamWidth: beamWidth)
            for (e, d) in zip(batch, decoded) {
                let reference = e.labelSequence.map { Int($0) }
                seg = seg + SegmentScoring.align(reference: reference, hypothesis: d.labels)
                if d.labels == reference { exact += 1 }
            }
            return (l * Double(batch.count), batch.count, exact, seg, confusion)
        }
        let (p, l) = model.probabilities(batch)
        p.withUnsafeBufferPointer { pb in
            switch model.task {
            case .utterance:
                for (j, e) in batch.enumerated() { confusion.add(truth: e.label, predicted: argmax(pb.baseAddress! + j * C, C)) }
                lossSum += l * Double(batch.count); rowSum += batch.count
            case .frame:
                var row = 0
                for e in batch {
                    let n = e.features.frames
                    var pred = [Int](repeating: 0, count: n)
                    for t in 0..<n {
                        pred[t] = argmax(pb.baseAddress! + (row + t) * C, C)
                        confusion.add(truth: Int(e.frameLabels[t]), predicted: pred[t])
                    }
                    let ref = e.frameLabels.map { Int($0) }
                    let counts = SegmentScoring.score(reference: ref, predicted: pred, silence: silence)
                    seg = seg + counts
                    if counts.substitutions + counts.deletions + counts.insertions == 0 { exact += 1 }
                    row += n
                }
                lossSum += l * Double(row); rowSum += row
            case .sequence:
                preconditionFailure("decoded above")
            }
        }
        return (lossSum, rowSum, exact, seg, confusion)
    }

    /// Decodes per-frame class probabilities `[frames, classes]` (class 0 the blank): greedy
    /// best path when `beamWidth` is 1, prefix beam search otherwise. Returns the labels and
    /// the probability of the decoded sequence (of its best path when greedy).
    static func decode(_ probabilities: UnsafePointer<Float>, frames: Int, classes: Int, beamWidth: Int) -> (labels: [Int], probability: Double) {
        if beamWidth <= 1 {
            var logp = 0.0
            for t in 0..<frames { logp += log(Double(probabilities[t * classes + argmax(probabilities + t * classes, classes)])) }
            return (CTC.greedyDecode(scores: probabilities, frames: frames, classes: classes).map { Int($0) }, exp(logp))
        }
        // Log-probabilities are logits whose softmax is the probabilities themselves.
        var logits = [Float](repeating: 0, count: frames * classes)
        for i in 0..<(frames * classes) { logits[i] = log(max(probabilities[i], .leastNormalMagnitude)) }
        let r = logits.withUnsafeBufferPointer { CTC.beamDecode(logits: $0.baseAddress!, frames: frames, classes: classes, beamWidth: beamWidth) }
        return (r.labels.map { Int($0) }, exp(r.logProbability))
    }

    /// Predicts each example (labels in the examples are ignored). Frame t stands for the
    /// `step`-long span centred on its window's centre, `t·step + length/2` seconds (the time
    /// that label tracks are sampled at), so a run of frames a..<b becomes the segment
    /// `[a·step + (length − step)/2, b·step + (length − step)/2)` (a run from frame 0 starts at 0 s).
    /// Sequence task: `label` is the decoded sequence as text (`SpeechTask.text(of:)`) and
    /// `probability` that of the decoded sequence (greedy: of its best path).
    public static func predict(_ model: some SpeechScorer, examples: [SpeechExample], labels: LabelSet,
                               features: FeatureConfig, beamWidth: Int = 1) -> [SpeechPrediction] {
        let C = model.classes
        let step = Double(features.frameStep) / Double(features.sampleRate)
        let shift = (Double(features.frameLength) - Double(features.frameStep)) / 2 / Double(features.sampleRate)
        var out: [SpeechPrediction] = []
        for e in examples {
            if model.task == .sequence {
                let d = model.decodeSequences([e], beamWidth: beamWidth).decoded[0]
                out.append(SpeechPrediction(path: e.path, label: SpeechTask.text(of: d.labels.map { labels.names[$0] }),
                                            probability: d.probability, segments: [], frameLabels: d.labels))
                continue
            }
            let (p, _) = model.probabilities([e])
            p.withUnsafeBufferPointer { pb in
                switch model.task {
                case .utterance:
                    let k = argmax(pb.baseAddress!, C)
                    out.append(SpeechPrediction(path: e.path, label: labels.names[k], probability: Double(pb[k]),
                                                segments: [], frameLabels: [], classProbabilities: (0..<C).map { Double(pb[$0]) }))
                case .frame:
                    let n = e.features.frames
                    var pred = [Int](repeating: 0, count: n)
                    var psum = 0.0
                    for t in 0..<n { pred[t] = argmax(pb.baseAddress! + t * C, C); psum += Double(pb[t * C + pred[t]]) }
                    let segs = SegmentScoring.runs(pred).map {
                        LabelSegment(start: $0.start == 0 ? 0 : Double($0.start) * step + shift, end: Double($0.end) * step + shift,
                                     label: labels.names[$0.label])
                    }
                    let spoken = SegmentScoring.segments(pred, silence: labels.index(of: LabelTrack.silence)).map { labels.names[$0] }
                    out.append(SpeechPrediction(path: e.path, label: spoken.joined(separator: " "),
                                                probability: n > 0 ? psum / Double(n) : 0, segments: segs, frameLabels: pred))
                case .sequence:
                    preconditionFailure("decoded above")
                }
            }
        }
        return out
    }

    /// The reference of `example` written as `predict` writes its prediction's `label`: the
    /// class name (utterance task), the spoken labels separated by spaces (frame task) or the
    /// label sequence's text (sequence task).
    public static func reference(of example: SpeechExample, task: SpeechTask, labels: LabelSet) -> String {
        switch task {
        case .utterance:
            return labels.names.indices.contains(example.label) ? labels.names[example.label] : ""
        case .frame:
            return SegmentScoring.segments(example.frameLabels.map { Int($0) }, silence: labels.index(of: LabelTrack.silence))
                .map { labels.names[$0] }.joined(separator: " ")
        case .sequence:
            return SpeechTask.text(of: example.labelSequence.map { labels.names[Int($0)] })
        }
    }

    /// Index of the largest of `n` values.
    static func argmax(_ p: UnsafePointer<Float>, _ n: Int) -> Int {
        var best = 0
        for j in 1..<max(n, 1) where p[j] > p[best] { best = j }
        return best
    }
}

/// The held-out test split a checkpoint was trained with, recorded in its `training` metadata
/// (`{"data": FOLDER, "split": SPLIT, "label_pattern": RULE}`), so that `eval` without data
/// options evaluates the run's own test files and never its training files.
public struct SpeechEvaluationSource: Sendable, Equatable {
    /// The data folder, absolute.
    public var data: String
    /// The split, as on the command line (`official`, `speaker:NAME`, `random:S:F`).
    public var split: String
    /// The utterance label rule.
    public var labelPattern: String

    public init(data: String, split: String, labelPattern: String) {
        self.data = data; self.split = split; self.labelPattern = labelPattern
    }

    /// The metadata text for `options`, the data folder made absolute.
    public static func json(options o: SpeechTrainingOptions) -> String {
        let folder = URL(fileURLWithPath: o.dataPath).standardizedFileURL.path
        let object = ["data": folder, "split": o.split, "label_pattern": o.labelPattern]
        guard let d = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: d, as: UTF8.self)
    }

    /// The source recorded in `checkpoint`, or nil when it has none (written before it was recorded).
    public static func recorded(in checkpoint: SpeechCheckpoint) -> SpeechEvaluationSource? {
        guard let o = try? JSONSerialization.jsonObject(with: Data(checkpoint.training.utf8)) as? [String: Any],
              let data = o["data"] as? String, let split = o["split"] as? String else { return nil }
        return SpeechEvaluationSource(data: data, split: split, labelPattern: o["label_pattern"] as? String ?? "field:0:_")
    }
}
