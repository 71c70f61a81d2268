import Foundation
import RecurrentCore

/// Network settings of a frame classifier, before the data fixes the input width and classes.
public struct FrameNetworkOptions: Sendable, Equatable {
    /// Recurrent cell.
    public var cell: CellKind
    /// Recurrent layers.
    public var layers: Int
    /// Hidden units per direction.
    public var hidden: Int
    /// Two directions per layer.
    public var bidirectional: Bool
    /// Learned projection width (0: none; nil: 128 for whole-frame steps wider than 128
    /// features, otherwise none).
    public var projection: Int?
    /// Pooling of many-to-one models.
    public var pooling: SequenceClassifierConfig.Pooling
    /// Dropout between layers and before the classifier.
    public var dropout: Float
    /// Label every frame from the clips' `labels.txt` (many-to-many) instead of whole clips.
    public var perFrame: Bool

    /// Creates options; defaults: one LSTM layer of 128, last-state pooling, no dropout.
    public init(cell: CellKind = .lstm, layers: Int = 1, hidden: Int = 128, bidirectional: Bool = false, projection: Int? = nil,
                pooling: SequenceClassifierConfig.Pooling = .last, dropout: Float = 0, perFrame: Bool = false) {
        self.cell = cell; self.layers = layers; self.hidden = hidden; self.bidirectional = bidirectional
        self.projection = projection; self.pooling = pooling; self.dropout = dropout; self.perFrame = perFrame
    }
}

/// Loading speed of a data set.
public struct FrameLoadStatistics: Sendable, Equatable {
    /// Frames decoded and featurised (train and test).
    public var frames: Int
    /// Wall-clock seconds.
    public var seconds: Double
    /// `frames / seconds`.
    public var framesPerSecond: Double { seconds > 0 ? Double(frames) / seconds : 0 }
}

/// The frame-classify workflow as library calls: pick features, load a split, build and train
/// a model.
public enum FrameClassification {
    /// The layout a data folder implies: `.images` for `--rows` (one image per example),
    /// `.clips` otherwise.
    public static func layout(rows: Bool) -> FrameLayout { rows ? .images : .clips }

    /// Feature configuration for a data set: `size` when given, else the first frame's size
    /// in row mode, and in frame mode that size reduced by the smallest integer factor that
    /// brings its longer side to at most 24 pixels. `deltas` appends frame differences to every
    /// step (frame mode only).
    /// - Throws: the scanning or decoding error of the first frame; `FrameError.invalidArgument`
    ///   for `deltas` with `rows`.
    public static func featureConfig(root: String, rows: Bool, size: (width: Int, height: Int)?, rgb: Bool,
                                     deltas: Bool = false, testFraction: Double = 0.2, seed: UInt64 = 1) throws -> FeatureConfig {
        let colour: FeatureConfig.Colour = rgb ? .rgb : .grey
        let mode: FeatureConfig.SequenceMode = rows ? .rows : .frames
        if let size {
            let c = FeatureConfig(width: size.width, height: size.height, colour: colour, mode: mode, deltas: deltas)
            try c.validate()
            return c
        }
        let (train, _) = try FrameIndex.scanSplit(root: root, layout: layout(rows: rows), testFraction: testFraction, seed: seed)
        guard let first = train.items.first?.frames.first else { throw FrameError.noClasses(path: root) }
        let image = try PNGImage.load(path: first, maxPixels: FeatureConfig(width: 1, height: 1).maxPixels)
        var w = image.width, h = image.height
        if !rows {
            let k = (max(w, h) + 23) / 24
            w = max(1, w / k); h = max(1, h / k)
        }
        let c = FeatureConfig(width: min(w, 4096), height: min(h, 4096), colour: colour, mode: mode, deltas: deltas)
        try c.validate()
        return c
    }

    /// Loads `root` (train/test folders or a seeded split) with `features`, normalised by
    /// global training statistics, and measures the loading speed.
    public static func loadSplit(root: String, rows: Bool, features: FeatureConfig, testFraction: Double = 0.2,
                                 seed: UInt64 = 1, threads: Int? = nil) throws -> (split: FrameSplit, load: FrameLoadStatistics) {
        let start = ProgressReporter.monotonicSeconds()
        let split = try FrameSplit.load(root: root, layout: layout(rows: rows), config: features, scope: .global,
                                        testFraction: testFraction, seed: seed, threads: threads)
        let seconds = ProgressReporter.monotonicSeconds() - start
        let frames = (split.train.examples + split.test.examples).reduce(0) { $0 + $1.time / features.stepsPerFrame }
        return (split, FrameLoadStatistics(frames: frames, seconds: seconds))
    }

    /// A new model for `split` with `network` options (initialised from `seed`).
    /// - Parameter batch: the training batch, for the memory check.
    /// - Throws: `FrameError.invalidArgument` for per-frame training without frame labels, or
    ///   out-of-range network sizes; `MemoryError` for a model too large to train in memory.
    public static func makeModel(split: FrameSplit, network: FrameNetworkOptions, seed: UInt64, threads: Int,
                                 batch: Int = 1, optimizer: OptimizerKind = .adam) throws -> FrameModel {
        let features = split.train.config
        let names = network.perFrame ? split.train.frameClassNames : split.train.classNames
        if network.perFrame && names.isEmpty {
            throw FrameError.invalidArgument("--per-frame needs clips with a labels.txt (one label per frame)")
        }
        guard names.count >= 2 else {
            throw FrameError.invalidArgument("need at least 2 classes, found \(names.count) (\(names.joined(separator: ", ")))")
        }
        let projection = network.projection ?? (features.mode == .frames && features.featuresPerStep > 128 ? 128 : 0)
        let config = SequenceClassifierConfig(inputSize: features.featuresPerStep, projection: projection, projectionActivation: .tanh,
                                              cell: network.cell, layers: network.layers, hidden: network.hidden,
                                              bidirectional: network.bidirectional, dropout: network.dropout, classes: names.count,
                                              mode: network.perFrame ? .manyToMany : .manyToOne, pooling: network.pooling)
        if let problem = config.problem { throw FrameError.invalidArgument(problem) }
        let longest = split.train.examples.map(\.time).max() ?? 1
        let estimate = config.memoryEstimate(batch: batch, steps: longest, threads: threads)
        try MemoryBudget.require(estimate.trainingBytes(optimizerSlots: optimizer.slotCount),
                                 for: "the model (\(Int(exactly: estimate.parameters).map(String.init) ?? "\(estimate.parameters)") parameters)",
                                 hint: "--hidden, --layers, --projection or --batch")
        let info = FrameModelInfo(features: features, statistics: split.statistics, classNames: names, model: config)
        return FrameModel(info: info, network: SequenceClassifier(config: config, seed: seed, threads: max(1, threads)))
    }

    /// Data for evaluating a checkpoint on `root`: its `test/` folder when it has `train/` and
    /// `test/`, otherwise every example of `root`; features and statistics from the model,
    /// labels mapped to the model's class names.
    /// - Throws: `FrameError.invalidArgument` when the data has a class the model does not know.
    public static func evaluationSet(root: String, model: FrameModel, threads: Int? = nil) throws -> FrameDataset {
        let layout = layout(rows: model.info.features.mode == .rows)
        let testDir = root.hasSuffix("/") ? root + "test" : root + "/test"
        let trainDir = root.hasSuffix("/") ? root + "train" : root + "/train"
        let dir = FrameIndex.isDirectory(testDir) && FrameIndex.isDirectory(trainDir) ? testDir : root
        let index = try FrameIndex.scan(directory: dir, layout: layout)
        return try dataset(index: index, model: model, place: dir, threads: threads)
    }

    /// The examples of `index` with the model's features, statistics and class names.
    /// - Throws: `FrameError.invalidArgument` when the data has a class the model does not know.
    static func dataset(index: FrameIndex, model: FrameModel, place dir: String, threads: Int?) throws -> FrameDataset {
        let known = Set(model.info.classNames)
        if !model.info.perFrame, let unknown = index.classNames.first(where: { !known.contains($0) }) {
            throw FrameError.invalidArgument("\(dir)/\(unknown): class '\(unknown)' is not one of the model's classes (\(model.info.classNames.joined(separator: ", ")))")
        }
        if model.info.perFrame, let unknown = index.frameClassNames.first(where: { !known.contains($0) }) {
            throw FrameError.invalidArgument("\(dir): frame label '\(unknown)' is not one of the model's labels")
        }
        return try FrameDataset.load(index: index, config: model.info.features, statistics: model.info.statistics,
                                     classNames: model.info.perFrame ? index.classNames : model.info.classNames,
                                     frameClassNames: model.info.perFrame ? model.info.classNames : nil, threads: threads)
    }
}

/// The held-out test split of a training run, recorded in its checkpoints (metadata key
/// `test_split`: `{"data": ROOT, "test_fraction": F, "seed": S}`), so that `eval` without a
/// data folder reads the run's own test examples and never its training examples.
public struct FrameTestSplit: Sendable, Equatable {
    /// The checkpoint metadata key.
    public static let metadataKey = "test_split"
    /// The data root, absolute.
    public var data: String
    /// Test share when the root has no `train/` and `test/` folders.
    public var testFraction: Double
    /// The run's seed (it shuffles that split).
    public var seed: UInt64

    public init(data: String, testFraction: Double, seed: UInt64) {
        self.data = data; self.testFraction = testFraction; self.seed = seed
    }

    /// The metadata text.
    public var json: String {
        let object: [String: Any] = ["data": data, "test_fraction": testFraction, "seed": seed]
        guard let d = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: d, as: UTF8.self)
    }

    /// The split recorded in checkpoint metadata, or nil when there is none.
    public init?(metadata: [String: String]) {
        guard let text = metadata[Self.metadataKey],
              let o = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let data = o["data"] as? String, let fraction = (o["test_fraction"] as? NSNumber)?.doubleValue,
              let seed = (o["seed"] as? NSNumber)?.uint64Value else { return nil }
        self.init(data: data, testFraction: fraction, seed: seed)
    }

    /// The test examples of the split, with the model's features, statistics and classes.
    public func testSet(model: FrameModel, threads: Int? = nil) throws -> FrameDataset {
        let layout = FrameClassification.layout(rows: model.info.features.mode == .rows)
        let (_, test) = try FrameIndex.scanSplit(root: data, layout: layout, testFraction: testFraction, seed: seed)
        return try FrameClassification.dataset(index: test, model: model, place: data, threads: threads)
    }
}
