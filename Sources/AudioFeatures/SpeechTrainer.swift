import Foundation
import Plotting
import RecurrentCore

/// Settings of a training run.
public struct SpeechTrainingOptions: Sendable {
    /// Passes over the training set (upper bound when `timeBudget` is set).
    public var epochs: Int = 20
    /// Wall-clock limit in seconds for the training steps (evaluation excluded), nil = none.
    public var timeBudget: Double? = nil
    /// Examples per step.
    public var batchSize: Int = 32
    /// Peak learning rate of Adam; cosine decay to 5 % of it over the run.
    public var learningRate: Float = 3e-3
    /// Global gradient-norm clip (0 = off).
    public var clipNorm: Float = 5
    /// Seed of initialisation, shuffling and dropout.
    public var seed: UInt64 = 1
    /// Data-parallel threads.
    public var threads: Int = Threading.defaultThreads
    /// Output folder for `log.csv`, `loss.png`, `best.safetensors`, `last.safetensors` (nil = none).
    public var outputFolder: URL? = nil
    /// Label shown in progress lines.
    public var progressLabel: String = "speech"

    /// Default settings.
    public init() {}
}

/// One row of `log.csv`: the state after an epoch.
public struct SpeechEpochRecord: Sendable {
    /// Epoch number (1-based).
    public var epoch: Int
    /// Optimiser steps so far.
    public var steps: Int
    /// Mean training loss over the epoch's steps.
    public var trainLoss: Double
    /// Held-out loss.
    public var testLoss: Double
    /// Held-out utterance or frame accuracy.
    public var testAccuracy: Double
    /// Held-out segment accuracy (frame task), nil otherwise.
    public var segmentAccuracy: Double?
    /// Seconds since the start of training.
    public var seconds: Double
}

/// What a finished run returns.
public struct SpeechTrainingResult: Sendable {
    /// Per-epoch records.
    public var history: [SpeechEpochRecord]
    /// Evaluation of the final model on the held-out examples.
    public var final: SpeechEvaluation
    /// Epoch whose held-out loss was lowest (saved as `best.safetensors`).
    public var bestEpoch: Int
    /// Training seconds (evaluation excluded).
    public var trainingSeconds: Double
    /// Optimiser steps.
    public var steps: Int
}

/// The training loop: Adam with cosine-decayed learning rate, gradient clipping, length-bucketed
/// shuffled mini-batches, an evaluation on the held-out examples after every epoch, `log.csv`,
/// `loss.png`, and checkpoints `last.safetensors` (every epoch) and `best.safetensors` (lowest
/// held-out loss) in the output folder.
public enum SpeechTrainer {
    /// Trains `checkpoint.model` in place on `train`, evaluating on `test`.
    /// - Parameters:
    ///   - log: receives progress and per-epoch lines (one line per call).
    /// - Throws: `TrainingError.nonFiniteLoss` when the loss diverges; file errors from writing outputs.
    public static func train(_ checkpoint: SpeechCheckpoint, train: [SpeechExample], test: [SpeechExample],
                             options: SpeechTrainingOptions, trainingInfo: @escaping (SpeechEpochRecord) -> String = { _ in "{}" },
                             progress: ProgressReporter? = nil, log: (String) -> Void) throws -> SpeechTrainingResult {
        let model = checkpoint.model
        let silence = checkpoint.labels.index(of: LabelTrack.silence)
        let params = model.parameters
        let adam = Adam(parameters: params, learningRate: options.learningRate)
        var rng = SeededRandom(seed: options.seed &+ 0x5eed)
        let lengths = train.map(\.features.frames)
        let batchesPerEpoch = max(1, (train.count + options.batchSize - 1) / options.batchSize)
        let totalSteps = options.epochs * batchesPerEpoch
        let reporter = progress ?? ProgressReporter(totalSteps: options.timeBudget == nil ? totalSteps : nil,
                                                    timeBudget: options.timeBudget, label: options.progressLabel)
        let start = ProgressReporter.monotonicSeconds()
        var trainSeconds = 0.0
        var history: [SpeechEpochRecord] = []
        var bestLoss = Double.infinity, bestEpoch = 0
        var step = 0
        var outOfTime = false
        if let dir = options.outputFolder {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
        var csv = "epoch,steps,train_loss,test_loss,test_accuracy,segment_accuracy,seconds\n"
        var final = SpeechInference.evaluate(model, examples: test, silence: silence)
        for epoch in 1...max(1, options.epochs) {
            var lossSum = 0.0, lossCount = 0
            let epochStart = ProgressReporter.monotonicSeconds()
            for batchIdx in SpeechCorpus.batches(lengths: lengths, batchSize: options.batchSize, rng: &rng) {
                let fraction: Double
                if let budget = options.timeBudget {
                    let used = trainSeconds + ProgressReporter.monotonicSeconds() - epochStart
                    if used >= budget { outOfTime = true; break }
                    fraction = used / budget
                } else {
                    fraction = Double(step) / Double(max(totalSteps, 1))
                }
                adam.learningRate = options.learningRate * Float(0.05 + 0.95 * 0.5 * (1 + cos(Double.pi * min(fraction, 1))))
                let batch = batchIdx.map { train[$0] }
                let (loss, rows) = model.computeGradients(batch)
                if options.clipNorm > 0 { clipGradientNorm(params, maxNorm: options.clipNorm) }
                adam.step()
                step += 1
                lossSum += loss; lossCount += 1
                try reporter.update(step: step, loss: loss, tokens: rows)
            }
            trainSeconds += ProgressReporter.monotonicSeconds() - epochStart
            if lossCount == 0 { break }
            final = SpeechInference.evaluate(model, examples: test, silence: silence)
            let rec = SpeechEpochRecord(epoch: epoch, steps: step, trainLoss: lossSum / Double(lossCount),
                                        testLoss: final.loss, testAccuracy: final.accuracy,
                                        segmentAccuracy: final.segments?.accuracy,
                                        seconds: ProgressReporter.monotonicSeconds() - start)
            history.append(rec)
            var line = String(format: "epoch %d: train loss %.4f, test loss %.4f, test %@ accuracy %.2f %%",
                              epoch, rec.trainLoss, rec.testLoss, model.task == .frame ? "frame" : "utterance",
                              100 * rec.testAccuracy)
            if let s = rec.segmentAccuracy { line += String(format: ", segment accuracy %.2f %%", 100 * s) }
            reporter.message(line)
            log(line)
            csv += "\(epoch),\(step),\(rec.trainLoss),\(rec.testLoss),\(rec.testAccuracy),\(rec.segmentAccuracy.map { "\($0)" } ?? ""),\(rec.seconds)\n"
            if let dir = options.outputFolder {
                var ck = checkpoint
                ck.training = trainingInfo(rec)
                try ck.write(to: dir.appendingPathComponent("last.safetensors").path)
                if rec.testLoss < bestLoss {
                    bestLoss = rec.testLoss; bestEpoch = epoch
                    try ck.write(to: dir.appendingPathComponent("best.safetensors").path)
                }
                try AtomicFile.write(text: csv, to: dir.appendingPathComponent("log.csv").path)
            } else if rec.testLoss < bestLoss {
                bestLoss = rec.testLoss; bestEpoch = epoch
            }
            if outOfTime { break }
        }
        reporter.finish()
        if let dir = options.outputFolder, !history.isEmpty {
            let series = [Series(name: "train", points: history.map { (Double($0.epoch), $0.trainLoss) }),
                          Series(name: "test", points: history.map { (Double($0.epoch), $0.testLoss) })]
            try Plot.lineChart(series: series, title: "speech-classify loss", xLabel: "epoch", yLabel: "loss (nats)",
                               to: dir.appendingPathComponent("loss.png").path)
        }
        return SpeechTrainingResult(history: history, final: final, bestEpoch: bestEpoch, trainingSeconds: trainSeconds, steps: step)
    }
}
