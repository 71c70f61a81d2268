import Foundation
import Plotting
import RecurrentCore

/// Settings of a training run.
public struct FrameTrainingOptions: Sendable, Equatable {
    /// Passes over the training set (nil: until the time budget ends).
    public var epochs: Int?
    /// Wall-clock limit in seconds (nil: none). Training stops after the step that crosses it.
    public var timeBudget: Double?
    /// Examples per step.
    public var batchSize: Int
    /// Adam's peak learning rate; it follows a cosine from this value down to
    /// `learningRate * finalRateFraction` over the run (by steps, or by time with a budget).
    public var learningRate: Float
    /// Fraction of the peak rate reached at the end of the run.
    public var finalRateFraction: Float
    /// Global gradient-norm clip (0: none).
    public var clipNorm: Float
    /// Seeds shuffling, dropout and augmentation.
    public var seed: UInt64
    /// Random translation of every training example by up to this many pixels per axis (the
    /// same shift for all frames of a clip); 0 = off.
    public var shift: Int
    /// Where `best.safetensors`, `last.safetensors`, `log.csv` and `loss.png` go (nil: nowhere).
    public var outDirectory: String?

    /// Creates options; defaults: 10 epochs, batch 64, rate 2e-3 to 2 % of it, clip 5, seed 1.
    public init(epochs: Int? = 10, timeBudget: Double? = nil, batchSize: Int = 64, learningRate: Float = 2e-3,
                finalRateFraction: Float = 0.02, clipNorm: Float = 5, seed: UInt64 = 1, shift: Int = 0,
                outDirectory: String? = nil) {
        self.epochs = epochs; self.timeBudget = timeBudget; self.batchSize = batchSize
        self.learningRate = learningRate; self.finalRateFraction = finalRateFraction; self.clipNorm = clipNorm
        self.seed = seed; self.shift = shift; self.outDirectory = outDirectory
    }
}

/// What a training run achieved; encodes to the JSON summary line of `frame-classify train`.
public struct FrameTrainingSummary: Codable, Sendable, Equatable {
    /// Epochs run (the last may be partial when the time budget ended it).
    public var epochs: Double
    /// Optimizer steps.
    public var steps: Int
    /// Seconds spent training (evaluation included).
    public var seconds: Double
    /// Mean training loss of the last epoch.
    public var trainLoss: Double
    /// Training accuracy of the last epoch (running, with dropout and augmentation).
    public var trainAccuracy: Double
    /// Test loss after the last epoch.
    public var testLoss: Double
    /// Test accuracy after the last epoch (the model in `last.safetensors`).
    public var testAccuracy: Double
    /// Best test accuracy after any epoch (the model in `best.safetensors`).
    public var bestTestAccuracy: Double
    /// Epoch of the best test accuracy (1-based).
    public var bestEpoch: Int
    /// Training examples.
    public var trainExamples: Int
    /// Test examples (or labelled frames, per-frame).
    public var testCount: Int
    /// Trainable parameters.
    public var parameters: Int
    /// Training throughput, examples per second.
    public var examplesPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case epochs, steps, seconds, parameters
        case trainLoss = "train_loss", trainAccuracy = "train_accuracy", testLoss = "test_loss"
        case testAccuracy = "test_accuracy", bestTestAccuracy = "best_test_accuracy", bestEpoch = "best_epoch"
        case trainExamples = "train_examples", testCount = "test_count", examplesPerSecond = "examples_per_second"
    }
}

/// Trains a `FrameModel` with Adam on shuffled mini-batches, evaluating on the test set after
/// every epoch and writing checkpoints, `log.csv` and `loss.png` when an output folder is set.
public final class FrameTrainer {
    /// The model being trained (its parameters change in place).
    public let model: FrameModel
    /// Settings.
    public let options: FrameTrainingOptions
    private let train: [FrameExample]
    private let test: [FrameExample]

    /// Creates a trainer over normalised examples whose labels index `model.info.classNames`.
    /// - Throws: `FrameError.invalidArgument` for empty data, bad options, or per-frame models
    ///   on clips without per-frame labels.
    public init(model: FrameModel, train: [FrameExample], test: [FrameExample], options: FrameTrainingOptions) throws {
        guard !train.isEmpty else { throw FrameError.invalidArgument("the training set is empty") }
        guard options.batchSize >= 1 else { throw FrameError.invalidArgument("batch size \(options.batchSize) must be positive") }
        guard options.epochs.map({ $0 >= 1 }) ?? (options.timeBudget != nil) else {
            throw FrameError.invalidArgument("give a positive number of epochs or a time budget")
        }
        if let b = options.timeBudget, !(b > 0) { throw FrameError.invalidArgument("time budget \(b) must be positive") }
        guard options.learningRate > 0, options.learningRate.isFinite else {
            throw FrameError.invalidArgument("learning rate \(options.learningRate) must be positive")
        }
        let C = model.info.classNames.count
        for e in train + test {
            if model.info.perFrame {
                guard let s = e.stepLabels else {
                    throw FrameError.invalidArgument("\(e.source): per-frame training needs a labels.txt in every clip")
                }
                if let bad = s.first(where: { $0 < 0 || $0 >= C }) {
                    throw FrameError.invalidArgument("\(e.source): frame label \(bad) outside \(C) labels")
                }
            } else if e.label < 0 || e.label >= C {
                throw FrameError.invalidArgument("\(e.source): label \(e.label) outside \(C) classes")
            }
            guard e.featuresPerStep == model.info.model.inputSize else {
                throw FrameError.invalidArgument("\(e.source): \(e.featuresPerStep) features per step, model expects \(model.info.model.inputSize)")
            }
        }
        self.model = model
        self.train = train
        self.test = test
        self.options = options
    }

    /// Runs the training.
    /// - Parameters:
    ///   - progress: live progress (step, loss, examples/s); nil for silence.
    ///   - message: receives one line per epoch.
    /// - Throws: `TrainingError.nonFiniteLoss` when the loss diverges (the checkpoints of
    ///   earlier epochs stay), `FrameError.outputFailed` when an output cannot be written.
    public func run(progress: ProgressReporter? = nil, message: (String) -> Void = { _ in }) throws -> FrameTrainingSummary {
        let net = model.network, info = model.info
        let adam = Adam(parameters: net.parameters, learningRate: options.learningRate)
        var rng = SeededRandom(seed: options.seed)
        let stepsPerEpoch = (train.count + options.batchSize - 1) / options.batchSize
        let totalSteps = options.epochs.map { $0 * stepsPerEpoch }
        let start = ProgressReporter.monotonicSeconds()
        let fill: Float = {
            guard let s = info.statistics, s.mean.count == 1 else { return 0 }
            return (0 - s.mean[0]) / s.std[0]
        }()
        if let dir = options.outDirectory {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw FrameError.outputFailed(path: dir, reason: "cannot create folder")
            }
        }
        var csv = "epoch,step,seconds,learning_rate,train_loss,train_accuracy,test_loss,test_accuracy\n"
        var stepPoints: [(x: Double, y: Double)] = [], testPoints: [(x: Double, y: Double)] = [], trainPoints: [(x: Double, y: Double)] = []
        var step = 0, epoch = 0, best = -1.0, bestEpoch = 0
        var last = (trainLoss: 0.0, trainAcc: 0.0, eval: FrameEvaluation(loss: 0, correct: 0, count: 0, confusion: []))
        var examplesSeen = 0, timeUp = false, epochsRun = 0.0
        var chunkLoss = 0.0, chunkSteps = 0
        while !timeUp && (options.epochs.map { epoch < $0 } ?? true) {
            epoch += 1
            var order = Array(train.indices)
            rng.shuffle(&order)
            var lossSum = 0.0, correct = 0, count = 0, batchesDone = 0
            for b in 0..<stepsPerEpoch {
                let idx = Array(order[(b * options.batchSize)..<min((b + 1) * options.batchSize, order.count)])
                let shifts: [(dy: Int, dx: Int)] = idx.map { _ in
                    options.shift > 0 ? (rng.nextInt(in: -options.shift...options.shift), rng.nextInt(in: -options.shift...options.shift)) : (0, 0)
                }
                let batch = FrameBatching.batch(train, indices: idx, perFrame: info.perFrame, labelled: true,
                                                shift: options.shift > 0 ? { shifts[$0] } : nil, config: info.features, fill: fill)
                let elapsed = ProgressReporter.monotonicSeconds() - start
                var fraction = totalSteps.map { Double(step) / Double(max($0, 1)) } ?? 0
                if let budget = options.timeBudget { fraction = max(fraction, elapsed / budget) }
                let lo = options.finalRateFraction
                adam.learningRate = options.learningRate * (lo + (1 - lo) * Float(0.5 * (1 + cos(Double.pi * min(fraction, 1)))))
                let result = net.trainStep(batch, seed: options.seed &+ UInt64(step))
                step += 1
                if let progress {
                    try progress.update(step: step, loss: result.loss, tokens: idx.count)
                } else if !result.loss.isFinite {
                    throw TrainingError.nonFiniteLoss(step: step, value: result.loss)
                }
                if options.clipNorm > 0 { clipGradientNorm(net.parameters, maxNorm: options.clipNorm) }
                adam.step()
                lossSum += result.loss * Double(result.count); correct += result.correct; count += result.count
                examplesSeen += idx.count
                batchesDone += 1
                chunkLoss += result.loss; chunkSteps += 1
                if chunkSteps == max(1, stepsPerEpoch / 10) {
                    stepPoints.append((Double(epoch - 1) + Double(b + 1) / Double(stepsPerEpoch), chunkLoss / Double(chunkSteps)))
                    chunkLoss = 0; chunkSteps = 0
                }
                if let budget = options.timeBudget, ProgressReporter.monotonicSeconds() - start >= budget { timeUp = true; break }
            }
            epochsRun += Double(batchesDone) / Double(stepsPerEpoch)
            let eval = try test.isEmpty ? FrameEvaluation(loss: 0, correct: 0, count: 0, confusion: [])
                : FrameEvaluation.compute(network: net, examples: test, perFrame: info.perFrame,
                                          classes: info.classNames.count, batchSize: 256)
            let trainLoss = count > 0 ? lossSum / Double(count) : 0, trainAcc = count > 0 ? Double(correct) / Double(count) : 0
            last = (trainLoss, trainAcc, eval)
            let seconds = ProgressReporter.monotonicSeconds() - start
            csv += "\(epoch),\(step),\(fmt(seconds, 2)),\(adam.learningRate),\(fmt(trainLoss, 5)),\(fmt(trainAcc, 5)),\(fmt(eval.loss, 5)),\(fmt(eval.accuracy, 5))\n"
            trainPoints.append((epochsRun, trainLoss))
            if !test.isEmpty { testPoints.append((epochsRun, eval.loss)) }
            message("epoch \(epoch): train loss \(fmt(trainLoss, 4)) acc \(fmt(100 * trainAcc, 2)) %, test loss \(fmt(eval.loss, 4)) acc \(fmt(100 * eval.accuracy, 2)) % (\(eval.correct)/\(eval.count)), \(fmt(seconds, 1)) s")
            if let dir = options.outDirectory {
                let extra = ["epoch": String(epoch), "step": String(step), "test_accuracy": fmt(eval.accuracy, 5)]
                try model.save(to: dir + "/last.safetensors", extra: extra)
                if eval.accuracy > best { try model.save(to: dir + "/best.safetensors", extra: extra) }
                do { try AtomicFile.write(text: csv, to: dir + "/log.csv") } catch {
                    throw FrameError.outputFailed(path: dir + "/log.csv", reason: "\(error)")
                }
                var series = [Series(name: "train (steps)", points: stepPoints), Series(name: "train (epoch)", points: trainPoints)]
                if !testPoints.isEmpty { series.append(Series(name: "test", points: testPoints)) }
                do {
                    try Plot.lineChart(series: series, title: "frame-classify loss", xLabel: "epoch", yLabel: "cross-entropy (nats)",
                                       to: dir + "/loss.png")
                } catch {
                    throw FrameError.outputFailed(path: dir + "/loss.png", reason: error.description)
                }
            }
            if eval.accuracy > best { best = eval.accuracy; bestEpoch = epoch }
        }
        progress?.finish()
        let seconds = ProgressReporter.monotonicSeconds() - start
        return FrameTrainingSummary(epochs: (epochsRun * 1000).rounded() / 1000, steps: step, seconds: (seconds * 100).rounded() / 100,
                                    trainLoss: last.trainLoss, trainAccuracy: last.trainAcc, testLoss: last.eval.loss,
                                    testAccuracy: last.eval.accuracy, bestTestAccuracy: max(best, 0), bestEpoch: bestEpoch,
                                    trainExamples: train.count, testCount: last.eval.count, parameters: net.parameterCount,
                                    examplesPerSecond: seconds > 0 ? (Double(examplesSeen) / seconds).rounded() : 0)
    }
}

/// `x` with `digits` decimals.
func fmt(_ x: Double, _ digits: Int) -> String {
    String(format: "%.\(digits)f", x)
}
