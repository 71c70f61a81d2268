import Foundation
import RecurrentCore

/// Everything besides the weights that a frame classifier needs to read new data the way it
/// was trained: feature configuration, normalisation statistics, output label names and the
/// model configuration. Stored in the checkpoint's `__metadata__`.
public struct FrameModelInfo: Sendable, Equatable {
    /// The checkpoint format (`rnn-suite/frames/1`; the model configuration is under `model`).
    public static let checkpointFormat = CheckpointFormat(name: "rnn-suite/frames", version: 1)
    /// The `format` tag this code writes and accepts.
    public static var format: String { checkpointFormat.tag }

    /// How frames become features.
    public var features: FeatureConfig
    /// Normalisation applied after featurising (nil: none).
    public var statistics: FeatureStatistics?
    /// Names of the model's output classes: clip classes (many-to-one) or per-frame labels
    /// (many-to-many).
    public var classNames: [String]
    /// The network's configuration.
    public var model: SequenceClassifierConfig

    /// Creates the description.
    public init(features: FeatureConfig, statistics: FeatureStatistics?, classNames: [String], model: SequenceClassifierConfig) {
        self.features = features
        self.statistics = statistics
        self.classNames = classNames
        self.model = model
    }

    /// Whether the model labels every frame (many-to-many) rather than whole clips.
    public var perFrame: Bool { model.mode == .manyToMany }

    /// The checkpoint's `__metadata__` strings besides `format` and `model` (those are the
    /// `ModelCheckpoint`'s): `features`, `statistics` (when normalised), `classes`, plus
    /// `extra` entries such as the epoch.
    public func metadata(extra: [String: String] = [:]) -> [String: String] {
        var m = extra
        m["features"] = features.jsonString()
        if let statistics { m["statistics"] = statistics.jsonString() }
        m["classes"] = jsonArray(classNames)
        return m
    }

    /// Parses and cross-checks the metadata of a checkpoint whose model configuration is
    /// `model`; `path` names the file in errors.
    /// - Throws: `FrameError.invalidCheckpoint` for missing or invalid entries, or entries that
    ///   disagree (class count, feature width).
    public init(metadata m: [String: String], model: SequenceClassifierConfig, path: String) throws {
        func entry(_ key: String) throws -> String {
            guard let v = m[key] else { throw FrameError.invalidCheckpoint(path: path, reason: "metadata has no '\(key)'") }
            return v
        }
        do {
            features = try FeatureConfig(json: try entry("features"))
            statistics = try m["statistics"].map { try FeatureStatistics(json: $0) }
        } catch let error as FrameError {
            if case .invalidCheckpoint = error { throw error }
            throw FrameError.invalidCheckpoint(path: path, reason: error.description)
        }
        guard let data = try entry("classes").data(using: .utf8),
              let names = try? JSONDecoder().decode([String].self, from: data), names.count >= 2 else {
            throw FrameError.invalidCheckpoint(path: path, reason: "'classes' is not a JSON array of at least 2 names")
        }
        classNames = names
        if let problem = model.problem { throw FrameError.invalidCheckpoint(path: path, reason: "model configuration: \(problem)") }
        self.model = model
        guard model.classes == names.count else {
            throw FrameError.invalidCheckpoint(path: path, reason: "model has \(model.classes) classes but 'classes' lists \(names.count)")
        }
        guard model.inputSize == features.featuresPerStep else {
            throw FrameError.invalidCheckpoint(path: path, reason: "model reads \(model.inputSize) features per step, feature configuration gives \(features.featuresPerStep)")
        }
        if let s = statistics, s.mean.count != 1, s.mean.count != features.baseFeaturesPerStep {
            throw FrameError.invalidCheckpoint(path: path, reason: "statistics have \(s.mean.count) features, expected \(features.baseFeaturesPerStep)")
        }
    }
}

func jsonArray(_ names: [String]) -> String {
    guard let data = try? JSONEncoder().encode(names), let text = String(data: data, encoding: .utf8) else { return "[]" }
    return text
}

/// A trained frame classifier: the network and its `FrameModelInfo`.
public final class FrameModel {
    /// Feature configuration, statistics, class names, model configuration.
    public let info: FrameModelInfo
    /// The network.
    public let network: SequenceClassifier
    /// The test split of the run that wrote the checkpoint (nil for a model not read from
    /// one, or from a checkpoint that records none).
    public var testSplit: FrameTestSplit?

    /// Wraps a network; its configuration must be `info.model`.
    public init(info: FrameModelInfo, network: SequenceClassifier) {
        precondition(info.model == network.config, "network configuration differs from the model info")
        self.info = info
        self.network = network
    }

    /// Writes a safetensors checkpoint atomically through `ModelCheckpoint` (format
    /// `rnn-suite/frames/1`, configuration under `model`, the rest per `FrameModelInfo.metadata`).
    public func save(to path: String, extra: [String: String] = [:]) throws {
        do {
            try ModelCheckpoint(format: FrameModelInfo.checkpointFormat, configuration: info.model, configurationKey: "model",
                                tensors: network.stateDict, metadata: info.metadata(extra: extra)).write(to: path)
        } catch let error as CheckpointError {
            throw FrameError.outputFailed(path: path, reason: Self.reason(error.description, path: path))
        }
    }

    /// Reads a checkpoint written by `save`, validating format, metadata and the tensor set
    /// (strictly: a missing, unexpected or wrongly shaped tensor is an error naming it).
    /// - Parameter threads: batch shards for evaluation.
    /// - Throws: `FrameError.invalidCheckpoint` naming the file.
    public static func load(path: String, threads: Int = 1) throws -> FrameModel {
        do {
            let checkpoint = try ModelCheckpoint<SequenceClassifierConfig>.read(path: path, format: FrameModelInfo.checkpointFormat,
                                                                                configurationKey: "model")
            let info = try FrameModelInfo(metadata: checkpoint.metadata, model: checkpoint.configuration, path: path)
            try MemoryBudget.require(info.model.memoryEstimate(batch: 1, steps: 1, threads: threads).inferenceBytes,
                                     for: "\(path): the model of this checkpoint")
            let network = SequenceClassifier(config: info.model, seed: 0, threads: threads)
            try network.load(try checkpoint.tensors(matching: network.stateDict.map { ($0.name, $0.shape) }, source: path), source: path)
            let model = FrameModel(info: info, network: network)
            model.testSplit = FrameTestSplit(metadata: checkpoint.metadata)
            return model
        } catch let error as CheckpointError {
            throw FrameError.invalidCheckpoint(path: path, reason: reason(error.description, path: path))
        } catch let error as ModelLoadError {
            throw FrameError.invalidCheckpoint(path: path, reason: reason(error.description, path: path))
        }
    }

    /// A core error's text without its leading `path: `.
    static func reason(_ text: String, path: String) -> String {
        text.hasPrefix(path + ": ") ? String(text.dropFirst(path.count + 2)) : text
    }

    /// One prediction: the most probable class and the full distribution.
    public struct Prediction: Sendable, Equatable {
        /// Clip folder or image file.
        public var source: String
        /// Most probable class per output: one entry (many-to-one) or one per time step.
        public var labels: [String]
        /// Probabilities `[outputs, classes]` (outputs = 1 or time steps).
        public var probabilities: [[Float]]
    }

    /// Classifies clip folders or image files (as at training: same features and statistics).
    /// - Throws: the `FrameError` of the first path that cannot be read.
    public func predict(paths: [String]) throws -> [Prediction] {
        var examples: [FrameExample] = []
        for path in paths {
            let item: FrameItem
            if FrameIndex.isDirectory(path) {
                item = try FrameIndex.clipItem(folder: path, className: "")
            } else {
                guard FileManager.default.fileExists(atPath: path) else {
                    throw FrameError.unreadable(path: path, reason: "no such file or folder")
                }
                if info.features.mode != .rows {
                    throw FrameError.notAClip(path: path)
                }
                item = FrameItem(name: path, frames: [path], className: "")
            }
            let features = try FrameDataset.stepFeatures(frames: item.frames, config: info.features, statistics: info.statistics)
            examples.append(FrameExample(features: features, time: info.features.steps(frames: item.frames.count),
                                         featuresPerStep: info.features.featuresPerStep, label: 0, source: path))
        }
        var out: [Prediction] = []
        let C = info.classNames.count
        for start in stride(from: 0, to: examples.count, by: 64) {
            let idx = Array(start..<min(start + 64, examples.count))
            let batch = FrameBatching.batch(examples, indices: idx, perFrame: false, labelled: false)
            let p = network.predict(batch)
            for (j, i) in idx.enumerated() {
                var rows: [[Float]] = []
                if info.perFrame {
                    for t in 0..<examples[i].time { rows.append(Array(p[((j * batch.time) + t) * C ..< ((j * batch.time) + t + 1) * C])) }
                } else {
                    rows.append(Array(p[j * C ..< (j + 1) * C]))
                }
                let labels = rows.map { r in info.classNames[r.indices.max { r[$0] < r[$1] } ?? 0] }
                out.append(Prediction(source: examples[i].source, labels: labels, probabilities: rows))
            }
        }
        return out
    }

    /// Accuracy, loss and confusion matrix on `dataset` (labels must use this model's class
    /// names; per-frame models need per-step labels).
    public func evaluate(_ dataset: FrameDataset, batchSize: Int = 128) throws -> FrameEvaluation {
        try FrameEvaluation.compute(network: network, examples: dataset.examples, perFrame: info.perFrame,
                                    classes: info.classNames.count, batchSize: batchSize)
    }
}

/// Accuracy and confusion counts of a classifier on a set of examples.
public struct FrameEvaluation: Sendable, Equatable {
    /// Mean cross-entropy (nats) over labelled outputs.
    public var loss: Double
    /// Labelled outputs (clips, or frames for per-frame models) by true and predicted class,
    /// `[classes][classes]`; print with `text(labels:)`, draw with `TrainingCLI.writeConfusionPlot`.
    public var confusion: ConfusionMatrix

    /// The predicted class of every output, per example in order (one per clip, or one per
    /// frame for per-frame models).
    public var predictions: [[Int]] = []

    /// Correct outputs.
    public var correct: Int { confusion.correct }
    /// Labelled outputs.
    public var count: Int { confusion.total }
    /// `correct / count` (0 when empty).
    public var accuracy: Double { confusion.accuracy }

    /// Runs `network` over `examples` in batches of `batchSize`. With a distributed `group` the
    /// ranks take contiguous runs of the batches and every batch's figures are gathered and added
    /// in batch order: every rank gets the one-process result.
    public static func compute(network: SequenceClassifier, examples: [FrameExample], perFrame: Bool, classes C: Int,
                               batchSize: Int, group: ProcessGroup = .single) throws -> FrameEvaluation {
        let starts = Array(stride(from: 0, to: examples.count, by: max(1, batchSize)))
        var predictions: [[Int]] = []
        let parts = try group.inParts(count: starts.count, width: 2 + C * C) { b in
            let e = try batchFigures(network: network, examples: examples, perFrame: perFrame, classes: C,
                                     indices: Array(starts[b]..<min(starts[b] + max(1, batchSize), examples.count)))
            predictions += e.predictions
            return [e.lossSum, Double(e.count)] + e.confusion.counts.flatMap { $0.map(Double.init) }
        }
        var confusion = ConfusionMatrix(classes: C)
        var lossSum = 0.0, count = 0
        for p in parts {
            lossSum += p[0]
            count += Int(p[1])
            confusion.add(ConfusionMatrix(counts: (0..<C).map { t in (0..<C).map { Int(p[2 + t * C + $0]) } }))
        }
        // Across ranks each holds only its own batches' predictions: none are reported then.
        return FrameEvaluation(loss: count > 0 ? lossSum / Double(count) : 0, confusion: confusion,
                               predictions: group.size > 1 ? [] : predictions)
    }

    /// One batch's summed loss, labelled outputs, confusion counts and predictions.
    private static func batchFigures(network: SequenceClassifier, examples: [FrameExample], perFrame: Bool, classes C: Int,
                                     indices idx: [Int]) throws
        -> (lossSum: Double, count: Int, confusion: ConfusionMatrix, predictions: [[Int]]) {
        var confusion = ConfusionMatrix(classes: C)
        for i in idx {
            if perFrame && examples[i].stepLabels == nil {
                throw FrameError.invalidArgument("\(examples[i].source): per-frame model, but the clip has no labels.txt")
            }
            let labels = perFrame ? (examples[i].stepLabels ?? []) : [examples[i].label]
            if let bad = labels.first(where: { $0 < 0 || $0 >= C }) {
                throw FrameError.invalidArgument("\(examples[i].source): label index \(bad) outside the model's \(C) classes")
            }
        }
        let batch = FrameBatching.batch(examples, indices: idx, perFrame: perFrame, labelled: true)
        let (result, p) = network.evaluate(batch)
        var predictions: [[Int]] = []
        for (j, i) in idx.enumerated() {
            let steps = perFrame ? examples[i].time : 1
            predictions.append([])
            for t in 0..<steps {
                let row = perFrame ? (j * batch.time + t) * C : j * C
                var best = 0
                for c in 1..<C where p[row + c] > p[row + best] { best = c }
                let truth = perFrame ? examples[i].stepLabels![t] : examples[i].label
                confusion.add(truth: truth, predicted: best)
                predictions[predictions.count - 1].append(best)
            }
        }
        return (result.loss * Double(result.count), result.count, confusion, predictions)
    }
}

/// Packing examples into padded `SequenceBatch`es.
public enum FrameBatching {
    /// Examples `indices` of `examples` as a batch `[batch, maxTime, featuresPerStep]`, zero
    /// padded (`SequenceBatch(padding:)`); labels `[batch]` (clip labels) or `[batch, maxTime]`
    /// (per-step labels, padding 0) when `labelled`. With `shift` and `config`, example `j`'s
    /// frames are first translated by `shift(j)` (see `shiftFrames`).
    public static func batch(_ examples: [FrameExample], indices: [Int], perFrame: Bool, labelled: Bool,
                             shift: ((Int) -> (dy: Int, dx: Int))? = nil, config: FeatureConfig? = nil,
                             fill: Float = 0) -> SequenceBatch {
        precondition(!indices.isEmpty, "empty batch")
        let labels: SequenceLabels
        if !labelled {
            labels = .none
        } else if perFrame {
            labels = .perStep(indices.map { (examples[$0].stepLabels ?? []).map { Int32($0) } })
        } else {
            labels = .perSequence(indices.map { Int32(examples[$0].label) })
        }
        var batch = SequenceBatch(padding: indices.map { examples[$0].features }, features: examples[indices[0]].featuresPerStep,
                                  labels: labels)
        guard let shift, let config else { return batch }
        // Shifted examples overwrite their own rows of the padded batch (every value of the row
        // up to the example's length), so nothing is allocated per example.
        let rowStride = batch.time * batch.features
        batch.inputs.withUnsafeMutableBufferPointer { x in
            for (j, i) in indices.enumerated() {
                let s = shift(j), e = examples[i]
                guard s.dy != 0 || s.dx != 0 else { continue }
                e.features.withUnsafeBufferPointer { src in
                    shiftFrames(src.baseAddress!, into: x.baseAddress! + j * rowStride, frames: e.time / config.stepsPerFrame,
                                config: config, dy: s.dy, dx: s.dx, fill: fill)
                }
            }
        }
        return batch
    }

    /// Translates every frame `[height, width, channels]` by (dy, dx) pixels, filling the
    /// uncovered border with `fill` (the normalised value of a black pixel). With
    /// `config.deltas` each step holds a frame and its difference plane; both planes move
    /// together and the difference plane's border is filled with 0 (no change).
    static func shiftFrames(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, frames: Int,
                            config: FeatureConfig, dy: Int, dx: Int, fill: Float) {
        let h = config.height, w = config.width, c = config.channels, per = config.featuresPerFrame
        let planesPerFrame = config.deltas ? 2 : 1
        for p in 0..<(frames * planesPerFrame) {
            let s = src + p * per, d = dst + p * per
            let value = p % planesPerFrame == 0 ? fill : 0
            for y in 0..<h {
                let sy = y - dy
                let row = d + y * w * c
                guard sy >= 0 && sy < h else { row.update(repeating: value, count: w * c); continue }
                for x in 0..<w {
                    let sx = x - dx
                    if sx >= 0 && sx < w {
                        for k in 0..<c { row[x * c + k] = s[(sy * w + sx) * c + k] }
                    } else {
                        for k in 0..<c { row[x * c + k] = value }
                    }
                }
            }
        }
    }
}
