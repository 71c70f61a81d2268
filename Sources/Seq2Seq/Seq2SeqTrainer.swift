import Foundation
import Plotting
import RecurrentCore

/// Settings of a training run. The run stops at the first limit reached among `steps`,
/// `epochs` and `timeBudget` (at least one must be set).
public struct TrainingOptions: Sendable {
    /// Pairs per batch.
    public var batchSize = 64
    /// Most optimizer steps.
    public var steps: Int?
    /// Most passes over the training pairs.
    public var epochs: Double?
    /// Most seconds of training (validation excluded from nothing: wall time).
    public var timeBudget: Double?
    /// Adam learning rate at the start; it follows a cosine to 5 % of itself over the run
    /// (progress = the larger of the step and the time fraction).
    public var learningRate: Float = 3e-3
    /// Global gradient-norm clip.
    public var clipNorm: Float = 5
    /// Teacher-forcing ratio (1 = always feed the gold previous token).
    public var teacherForcing: Float = 1
    /// Seed of batching order and teacher-forcing draws.
    public var seed: UInt64 = 1
    /// Validate (and write `log.csv` and `last`) every this many steps.
    public var evaluateEvery = 250
    /// Most validation pairs decoded at each validation.
    public var validationLimit = 1000
    /// Output directory for `last.safetensors`, `best.safetensors`, `log.csv`, `loss.png` (nil = none).
    public var outputDirectory: String?

    /// Creates the default settings.
    public init() {}
}

/// What a run achieved; its JSON form is the training command's last output line.
public struct TrainingSummary: Codable, Sendable {
    /// Optimizer steps taken.
    public var steps: Int
    /// Passes over the training pairs (fractional).
    public var epochs: Double
    /// Wall-clock seconds of the run.
    public var seconds: Double
    /// Mean training loss (nats per target token) over the last validation interval.
    public var trainLoss: Double
    /// Validation loss (nats per target token) at the end.
    public var validationLoss: Double
    /// Greedy validation exact match (0…1) at the end.
    public var validationExactMatch: Double
    /// Best validation exact match of the run (the `best` checkpoint's).
    public var bestValidationExactMatch: Double
    /// Greedy validation token accuracy (0…1) at the end.
    public var validationTokenAccuracy: Double
    /// Number of trainable scalars.
    public var parameters: Int
    /// Path of the best checkpoint, when an output directory was set.
    public var checkpoint: String?

    enum CodingKeys: String, CodingKey {
        case steps, epochs, seconds, parameters, checkpoint
        case trainLoss = "train_loss"
        case validationLoss = "validation_loss"
        case validationExactMatch = "validation_exact_match"
        case bestValidationExactMatch = "best_validation_exact_match"
        case validationTokenAccuracy = "validation_token_accuracy"
    }

    /// One-line JSON (sorted keys).
    public func jsonLine() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let d = try? e.encode(self), let s = String(data: d, encoding: .utf8) else { return "{}" }
        return s
    }
}

/// Trains a `Seq2SeqBundle` on encoded pairs with Adam, validating by greedy exact match.
public final class Seq2SeqTrainer {
    /// The model and vocabularies being trained.
    public let bundle: Seq2SeqBundle
    /// The run's settings.
    public let options: TrainingOptions
    private let train: [EncodedPair]
    private let validation: [SentencePair]
    private let validationEncoded: [EncodedPair]
    /// Extra checkpoint metadata (e.g. `task`).
    public var metadata: [String: String] = [:]

    /// Creates a trainer; throws `Seq2SeqError.invalidTraining` for unusable settings or data.
    public init(bundle: Seq2SeqBundle, train: [EncodedPair], validation: [SentencePair], options: TrainingOptions) throws(Seq2SeqError) {
        if options.steps == nil && options.epochs == nil && options.timeBudget == nil {
            throw .invalidTraining("give a number of steps, epochs or a time budget")
        }
        if let s = options.steps, s < 1 { throw .invalidTraining("steps \(s) is below 1") }
        if let e = options.epochs, !(e > 0) { throw .invalidTraining("epochs \(e) is not positive") }
        if let t = options.timeBudget, !(t > 0) { throw .invalidTraining("time budget \(t) is not positive") }
        if options.batchSize < 1 { throw .invalidTraining("batch size \(options.batchSize) is below 1") }
        if !(options.teacherForcing >= 0 && options.teacherForcing <= 1) {
            throw .invalidTraining("teacher forcing ratio \(options.teacherForcing) is not in 0…1")
        }
        if !(options.learningRate > 0) { throw .invalidTraining("learning rate \(options.learningRate) is not positive") }
        if train.isEmpty { throw .invalidTraining("no training pairs") }
        self.bundle = bundle
        self.options = options
        self.train = train
        self.validation = Array(validation.prefix(options.validationLimit))
        self.validationEncoded = Seq2SeqData.encode(self.validation, bundle.sourceVocabulary, bundle.targetVocabulary)
    }

    /// Runs training. Writes `log.csv` (`step,epoch,seconds,learning_rate,train_loss,validation_loss,
    /// validation_exact_match`), checkpoints `last.safetensors` / `best.safetensors` (best validation
    /// exact match) and `loss.png` into the output directory when one is set.
    ///
    /// Throws `TrainingError.nonFiniteLoss` on divergence, checkpoint and plot errors.
    public func run(progress: ProgressReporter? = nil, log: ((String) -> Void)? = nil) throws -> TrainingSummary {
        let model = bundle.model, cfg = model.config
        let adam = Adam(parameters: model.parameters, learningRate: options.learningRate)
        let batching = BatchingOptions(batchSize: options.batchSize, maxSourceLength: cfg.maxSourceLength,
                                       maxTargetLength: cfg.maxTargetLength, shuffleSeed: options.seed, sortBucketSize: options.batchSize * 16)
        let batchesPerEpoch = (train.count + options.batchSize - 1) / options.batchSize
        var totalSteps = options.steps
        if let e = options.epochs {
            let s = max(1, Int((e * Double(batchesPerEpoch)).rounded(.up)))
            totalSteps = min(totalSteps ?? s, s)
        }
        let start = ProgressReporter.monotonicSeconds()
        var epoch = 0, step = 0
        var batches: [Seq2SeqBatch] = []
        var cursor = 0
        var csv = "step,epoch,seconds,learning_rate,train_loss,validation_loss,validation_exact_match\n"
        var trainPoints: [(x: Double, y: Double)] = [], validPoints: [(x: Double, y: Double)] = []
        var windowLoss = 0.0, windowCount = 0, lastTrainLoss = Double.nan
        var best = -1.0, lastValid = (loss: Double.nan, exact: 0.0, token: 0.0)
        let dir = options.outputDirectory
        if let dir { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }

        func validate() throws {
            var exact = 0.0, token = 0.0, vloss = Double.nan
            if !validation.isEmpty {
                let result = try bundle.evaluate(validation)
                exact = result.exactMatch; token = result.tokenAccuracy
                let vb = (try? Seq2SeqBatcher.batches(validationEncoded, options: BatchingOptions(batchSize: 256, maxSourceLength: 1000, maxTargetLength: 1000))) ?? []
                var sum = 0.0, weight = 0.0
                for b in vb { let w = Double(b.targetMask.reduce(0, +)); sum += model.loss(batch: b) * w; weight += w }
                vloss = weight > 0 ? sum / weight : .nan
            }
            lastValid = (vloss, exact, token)
            let seconds = ProgressReporter.monotonicSeconds() - start
            let epochs = Double(step) / Double(batchesPerEpoch)
            csv += "\(step),\(String(format: "%.3f", epochs)),\(String(format: "%.2f", seconds)),\(adam.learningRate),\(String(format: "%.5f", lastTrainLoss)),\(String(format: "%.5f", vloss)),\(String(format: "%.5f", exact))\n"
            if !lastTrainLoss.isNaN { trainPoints.append((Double(step), lastTrainLoss)) }
            if !vloss.isNaN { validPoints.append((Double(step), vloss)) }
            let msg = "step \(step): train loss \(String(format: "%.4f", lastTrainLoss)), validation loss \(String(format: "%.4f", vloss)), exact match \(String(format: "%.2f", 100 * exact)) %"
            if let progress { progress.message(msg) } else { log?(msg) }
            if let dir {
                try Seq2SeqCheckpoint.save(bundle, extra: metadata, to: dir + "/last.safetensors")
                if exact > best { try Seq2SeqCheckpoint.save(bundle, extra: metadata, to: dir + "/best.safetensors") }
                try AtomicFile.write(text: csv, to: dir + "/log.csv")
            }
            best = max(best, exact)
        }

        while true {
            let elapsed = ProgressReporter.monotonicSeconds() - start
            if let t = totalSteps, step >= t { break }
            if let b = options.timeBudget, elapsed >= b { break }
            if cursor >= batches.count {
                var o = batching
                o.shuffleSeed = options.seed &+ UInt64(epoch) &* 7919
                do { batches = try Seq2SeqBatcher.batches(train, options: o) } catch {
                    throw Seq2SeqError.invalidTraining(error.description)
                }
                cursor = 0
                epoch += 1
            }
            var fraction = 0.0
            if let t = totalSteps { fraction = Double(step) / Double(t) }
            if let b = options.timeBudget { fraction = max(fraction, elapsed / b) }
            adam.learningRate = options.learningRate * Float(0.05 + 0.95 * 0.5 * (1 + cos(Double.pi * min(fraction, 1))))
            let batch = batches[cursor]
            cursor += 1
            let loss = model.trainStep(batch: batch, teacherForcing: options.teacherForcing, seed: options.seed &+ UInt64(step))
            step += 1
            if !loss.isFinite { throw TrainingError.nonFiniteLoss(step: step, value: loss) }
            _ = clipGradientNorm(model.parameters, maxNorm: options.clipNorm)
            adam.step()
            windowLoss += loss; windowCount += 1
            try progress?.update(step: step, loss: loss, tokens: Int(batch.targetMask.reduce(0, +)))
            if step % options.evaluateEvery == 0 {
                lastTrainLoss = windowLoss / Double(max(windowCount, 1)); windowLoss = 0; windowCount = 0
                try validate()
            }
        }
        if windowCount > 0 || step % options.evaluateEvery != 0 {
            if windowCount > 0 { lastTrainLoss = windowLoss / Double(windowCount) }
            try validate()
        }
        progress?.finish()
        if let dir, !trainPoints.isEmpty || !validPoints.isEmpty {
            var series: [Series] = []
            if !trainPoints.isEmpty { series.append(Series(name: "train", points: trainPoints)) }
            if !validPoints.isEmpty { series.append(Series(name: "validation", points: validPoints)) }
            try Plot.lineChart(series: series, title: "translate-toy loss", xLabel: "step", yLabel: "cross-entropy (nats/token)",
                               to: dir + "/loss.png")
        }
        return TrainingSummary(steps: step, epochs: Double(step) / Double(batchesPerEpoch),
                               seconds: ProgressReporter.monotonicSeconds() - start, trainLoss: lastTrainLoss,
                               validationLoss: lastValid.loss, validationExactMatch: lastValid.exact,
                               bestValidationExactMatch: max(best, 0), validationTokenAccuracy: lastValid.token,
                               parameters: model.parameterCount, checkpoint: dir.map { $0 + "/best.safetensors" })
    }
}
