import Foundation
import RecurrentCore

/// One loaded example: a `[time, featuresPerStep]` matrix and its labels.
public struct FrameExample: Sendable, Equatable {
    /// Features `[time, featuresPerStep]`, row-major.
    public var features: [Float]
    /// Number of time steps.
    public var time: Int
    /// Features per time step.
    public var featuresPerStep: Int
    /// Class index into `FrameDataset.classNames`.
    public var label: Int
    /// Per-step labels `[time]` into `FrameDataset.frameClassNames` (from `labels.txt`; in
    /// `.rows` mode each frame's label is repeated for its rows), or nil.
    public var stepLabels: [Int]?
    /// Source clip folder or image file.
    public var source: String

    /// Creates an example; `features.count` must be `time * featuresPerStep`.
    public init(features: [Float], time: Int, featuresPerStep: Int, label: Int, stepLabels: [Int]? = nil, source: String) {
        precondition(features.count == time * featuresPerStep, "feature count does not match the shape")
        self.features = features
        self.time = time
        self.featuresPerStep = featuresPerStep
        self.label = label
        self.stepLabels = stepLabels
        self.source = source
    }
}

/// A loaded data set: examples, class names and the feature configuration used.
public struct FrameDataset: Sendable {
    /// Class names; `FrameExample.label` indexes this list.
    public var classNames: [String]
    /// Per-frame label names; `FrameExample.stepLabels` index this list (empty if unused).
    public var frameClassNames: [String]
    /// How features were computed.
    public var config: FeatureConfig
    /// The examples, in the index's order.
    public var examples: [FrameExample]

    /// Creates a data set.
    public init(classNames: [String], frameClassNames: [String], config: FeatureConfig, examples: [FrameExample]) {
        self.classNames = classNames
        self.frameClassNames = frameClassNames
        self.config = config
        self.examples = examples
    }

    /// Decodes and featurises every item of `index` on `threads` threads (results do not
    /// depend on the thread count), normalises with `statistics` when given, then appends
    /// frame differences when `config.deltas` is set (see `FeatureConfig`).
    /// - Parameters:
    ///   - classNames: label vocabulary (default: the index's); every item's class must be in it.
    ///   - frameClassNames: per-frame label vocabulary (default: the index's).
    /// - Returns: examples of `[time, config.featuresPerStep]`.
    /// - Throws: the `FrameError` of the first failing item in index order (PNG errors,
    ///   `.frameSizeMismatch` naming both files, ...).
    public static func load(index: FrameIndex, config: FeatureConfig, statistics: FeatureStatistics? = nil,
                            classNames: [String]? = nil, frameClassNames: [String]? = nil,
                            threads: Int? = nil) throws -> FrameDataset {
        try load(index: index, config: config, statistics: statistics, classNames: classNames,
                 frameClassNames: frameClassNames, threads: threads, withDeltas: true)
    }

    /// `load`, optionally leaving out the frame differences (examples then have
    /// `config.baseFeaturesPerStep` features per step until `appendDeltas()`).
    static func load(index: FrameIndex, config: FeatureConfig, statistics: FeatureStatistics?,
                     classNames: [String]?, frameClassNames: [String]?, threads: Int?,
                     withDeltas: Bool) throws -> FrameDataset {
        try config.validate()
        let classes = classNames ?? index.classNames
        let frameClasses = frameClassNames ?? index.frameClassNames
        let classLookup = Dictionary(classes.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let frameLookup = Dictionary(frameClasses.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let items = index.items
        let deltas = withDeltas && config.deltas
        let examples = try Threading.parallelMap(count: items.count, threads: threads ?? Threading.defaultThreads) { i in
            let item = items[i]
            guard let label = classLookup[item.className] else {
                throw FrameError.invalidArgument("\(item.name): class '\(item.className)' is not among the known classes")
            }
            var stepLabels: [Int]? = nil
            if let names = item.frameLabels {
                var steps: [Int] = []
                steps.reserveCapacity(names.count * config.stepsPerFrame)
                for name in names {
                    guard let k = frameLookup[name] else {
                        throw FrameError.invalidArgument("\(item.name): frame label '\(name)' is not among the known labels")
                    }
                    for _ in 0..<config.stepsPerFrame { steps.append(k) }
                }
                stepLabels = steps
            }
            let features = try stepFeatures(frames: item.frames, config: config, statistics: statistics, deltas: deltas)
            return FrameExample(features: features, time: config.steps(frames: item.frames.count),
                                featuresPerStep: deltas ? config.featuresPerStep : config.baseFeaturesPerStep,
                                label: label, stepLabels: stepLabels, source: item.name)
        }
        return FrameDataset(classNames: classes, frameClassNames: frameClasses, config: config, examples: examples)
    }

    /// Model input of a sequence of frame files: `featurise`, normalisation with `statistics`
    /// when given, then frame differences when `config.deltas` is set.
    /// - Returns: `[time, config.featuresPerStep]`.
    public static func stepFeatures(frames: [String], config: FeatureConfig, statistics: FeatureStatistics?) throws -> [Float] {
        try stepFeatures(frames: frames, config: config, statistics: statistics, deltas: config.deltas)
    }

    static func stepFeatures(frames: [String], config: FeatureConfig, statistics: FeatureStatistics?, deltas: Bool) throws -> [Float] {
        var features = try featurise(frames: frames, config: config)
        if let statistics {
            features.withUnsafeMutableBufferPointer { statistics.apply(to: $0, featuresPerStep: config.baseFeaturesPerStep) }
        }
        return deltas ? appendingDeltas(features, frames: frames.count, featuresPerFrame: config.featuresPerFrame) : features
    }

    /// Frame features `[frames, featuresPerFrame]` widened to `[frames, 2 * featuresPerFrame]`:
    /// step `t` holds frame `t` followed by frame `t` minus frame `t - 1` (zeros at `t = 0`).
    public static func appendingDeltas(_ base: [Float], frames: Int, featuresPerFrame n: Int) -> [Float] {
        precondition(base.count == frames * n, "feature count does not match frames x featuresPerFrame")
        return [Float](unsafeUninitializedCapacity: 2 * frames * n) { out, initialized in
            base.withUnsafeBufferPointer { src in
                guard let s = src.baseAddress, let d = out.baseAddress else { return }
                for f in 0..<frames {
                    let cur = s + f * n, dst = d + 2 * f * n
                    (dst).initialize(from: cur, count: n)
                    let diff = dst + n
                    if f == 0 {
                        diff.initialize(repeating: 0, count: n)
                    } else {
                        let prev = cur - n
                        for k in 0..<n { diff[k] = cur[k] - prev[k] }
                    }
                }
            }
            initialized = 2 * frames * n
        }
    }

    /// Appends frame differences to every example that does not have them yet (examples
    /// loaded with `withDeltas: false`); no-op unless `config.deltas`.
    mutating func appendDeltas() {
        guard config.deltas else { return }
        let n = config.featuresPerFrame, wide = config.featuresPerStep
        for i in examples.indices where examples[i].featuresPerStep == n {
            let e = examples[i]
            examples[i].features = Self.appendingDeltas(e.features, frames: e.time, featuresPerFrame: n)
            examples[i].featuresPerStep = wide
        }
    }

    /// Features of a sequence of frame files, `[frames * featuresPerFrame]` (= `[time,
    /// baseFeaturesPerStep]` in either mode), not normalised and without frame differences.
    /// All frames must have the size of the first.
    public static func featurise(frames: [String], config: FeatureConfig) throws -> [Float] {
        let perFrame = config.featuresPerFrame
        var extractor: FrameFeatureExtractor? = nil
        // Every element is written by the extractor, so the array is not zero-filled first.
        return try [Float](unsafeUninitializedCapacity: frames.count * perFrame) { buffer, initialized in
            guard let base = buffer.baseAddress else { return }
            for (f, path) in frames.enumerated() {
                try PNGImage.withDecoded(path: path, maxPixels: config.maxPixels) { w, h, c, samples in
                    if let e = extractor {
                        guard e.sourceWidth == w, e.sourceHeight == h, e.sourceChannels == c else {
                            throw FrameError.frameSizeMismatch(
                                first: frames[0], firstSize: "\(e.sourceWidth)x\(e.sourceHeight)x\(e.sourceChannels)",
                                other: path, otherSize: "\(w)x\(h)x\(c)")
                        }
                    } else {
                        extractor = FrameFeatureExtractor(config: config, width: w, height: h, channels: c)
                    }
                    extractor!.extract(samples, into: base + f * perFrame)
                }
            }
            initialized = frames.count * perFrame
        }
    }
}

/// A train/test pair loaded with the same vocabularies, normalised by statistics of the
/// training set.
public struct FrameSplit: Sendable {
    /// Training examples (normalised).
    public var train: FrameDataset
    /// Test examples (normalised with the training statistics).
    public var test: FrameDataset
    /// Statistics computed on the training set (nil when normalisation was off).
    public var statistics: FeatureStatistics?

    /// Creates a split.
    public init(train: FrameDataset, test: FrameDataset, statistics: FeatureStatistics?) {
        self.train = train
        self.test = test
        self.statistics = statistics
    }

    /// Loads `root` (its `train/` + `test/` folders, or a seeded split, see
    /// `FrameIndex.scanSplit`), computes statistics of `scope` on the training set (none when
    /// `scope` is nil; frame features only, before differences) and applies them to both
    /// parts, then appends frame differences when `config.deltas` is set.
    public static func load(root: String, layout: FrameLayout, config: FeatureConfig,
                            scope: FeatureStatistics.Scope? = .global, testFraction: Double = 0.2,
                            seed: UInt64 = 1, threads: Int? = nil) throws -> FrameSplit {
        let (trainIndex, testIndex) = try FrameIndex.scanSplit(root: root, layout: layout,
                                                               testFraction: testFraction, seed: seed)
        let frameClasses = NaturalOrder.sorted(Array(Set(trainIndex.frameClassNames).union(testIndex.frameClassNames)))
        var train = try FrameDataset.load(index: trainIndex, config: config, statistics: nil, classNames: trainIndex.classNames,
                                          frameClassNames: frameClasses, threads: threads, withDeltas: false)
        var test = try FrameDataset.load(index: testIndex, config: config, statistics: nil, classNames: trainIndex.classNames,
                                         frameClassNames: frameClasses, threads: threads, withDeltas: false)
        var statistics: FeatureStatistics? = nil
        if let scope {
            let s = try FeatureStatistics.compute(train.examples, scope: scope)
            try s.apply(to: &train)
            try s.apply(to: &test)
            statistics = s
        }
        train.appendDeltas()
        test.appendDeltas()
        return FrameSplit(train: train, test: test, statistics: statistics)
    }
}
