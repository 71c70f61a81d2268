import Foundation
import Plotting
import RecurrentCore

/// Everything `lm-train train` can be told.
public struct LanguageModelTrainingOptions: Sendable {
    /// Text file or folder of `.txt` files; nil = the built-in default corpus.
    public var dataPath: String?
    public var level: TokenLevel = .character
    public var minCount = 1
    public var cell: CellKind = .lstm
    public var layers = 2
    public var hidden = 256
    /// 0 = one-hot input.
    public var embedding = 64
    public var dropout: Float = 0
    public var tieWeights = false
    public var batching: BatchingMode = .streams
    /// 0 with window batching = all windows in one batch.
    public var batch = 32
    public var seqLen = 64
    /// `adam`, `sgd` or `rmsprop`.
    public var optimizer = "adam"
    /// nil = 2e-3 (Adam, RMSProp) or 1.0 (SGD).
    public var learningRate: Float?
    /// `constant` or `cosine` (decay to 10 % of the rate over the run: over the steps when
    /// `steps`/`epochs` are given, over the time budget otherwise).
    public var lrSchedule = "constant"
    /// Linear warm-up steps.
    public var warmup = 0
    /// Global-norm clipping; 0 disables it.
    public var clip: Float = 5
    public var steps: Int?
    public var epochs: Int?
    /// Seconds of training (evaluation included).
    public var timeBudget: Double?
    public var evalEvery = 250
    public var valFraction = 0.1
    public var seed: UInt64 = 0
    public var outDir = "runs/lm"
    public var resume = false
    public var threads = Threading.defaultThreads
    /// Print a sample every this many seconds while training (nil = never).
    public var sampleEvery: Double?
    public var sampleLength = 200

    public init() {}

    /// The learning rate in effect.
    public var effectiveLearningRate: Float { learningRate ?? (optimizer == "sgd" ? 1.0 : 2e-3) }
}

/// Errors of a training run (other than data and checkpoint errors).
public enum LanguageModelTrainingError: Error, CustomStringConvertible {
    case invalidOption(String)
    case resumeMismatch(path: String, field: String, saved: String, now: String)
    case missingResumeCheckpoint(String)

    public var description: String {
        switch self {
        case .invalidOption(let m): return m
        case .resumeMismatch(let p, let f, let s, let n):
            return "\(p): cannot --resume: \(f) was \(s) in the saved run, now \(n); use the same settings or another --out"
        case .missingResumeCheckpoint(let p): return "\(p): no checkpoint to --resume from"
        }
    }
}

/// One row of `log.csv`.
public struct TrainingLogRow: Sendable, Equatable {
    public var step: Int
    public var trainLoss: Double
    public var validationLoss: Double
    public var tokensPerSecond: Double
    public var seconds: Double
}

/// The result of a training run (the JSON summary).
public struct LanguageModelTrainingSummary: Sendable {
    public var validationLoss: Double
    public var bestValidationLoss: Double
    public var tokensPerSecond: Double
    public var steps: Int
    public var seconds: Double
    public var lastTrainLoss: Double
    public var checkpoint: String
    /// Training loss of every step of this process, in order (for tests and plots).
    public var stepLosses: [Double]

    /// `{"val_loss":…, "tokens_per_s":…, "steps":…, "seconds":…, …}` on one line.
    public var json: String {
        func num(_ x: Double) -> String { x.isFinite ? String(format: "%.4f", x) : "null" }
        return "{\"val_loss\":\(num(validationLoss)),\"best_val_loss\":\(num(bestValidationLoss)),\"train_loss\":\(num(lastTrainLoss)),"
            + "\"tokens_per_s\":\(String(format: "%.0f", tokensPerSecond)),\"steps\":\(steps),\"seconds\":\(String(format: "%.1f", seconds)),"
            + "\"checkpoint\":\"\(checkpoint.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"}"
    }
}

/// Trains a `RecurrentLanguageModel` on text: data loading, batching, the optimisation loop,
/// periodic validation, checkpoints (`last`, `best`, resumable training state), `log.csv` and
/// `loss.png`.
public final class LanguageModelTrainer {
    public let options: LanguageModelTrainingOptions
    /// Where progress and samples go (stderr by default).
    public var progressOutput: ((String) -> Void)?
    /// Forces plain progress lines (tests).
    public var forcePlainProgress = false

    public init(options: LanguageModelTrainingOptions) { self.options = options }

    static let stateFormat = "rnn-suite/lm-train-state/1"

    /// Paths inside the output directory.
    public var lastPath: String { options.outDir + "/last.safetensors" }
    public var bestPath: String { options.outDir + "/best.safetensors" }
    public var statePath: String { options.outDir + "/last.train.safetensors" }
    public var logPath: String { options.outDir + "/log.csv" }
    public var plotPath: String { options.outDir + "/loss.png" }

    /// Settings that must not change across `--resume`, as (name, value) pairs.
    func fingerprint(config: LanguageModelConfig, source: String) -> [(String, String)] {
        [("data", source), ("--level", options.level.rawValue), ("--min-count", "\(options.minCount)"),
         ("--cell", config.cell.rawValue), ("--layers", "\(config.layers)"), ("--hidden", "\(config.hidden)"),
         ("--embedding", "\(config.embedding)"), ("--dropout", "\(config.dropout)"), ("--tie-weights", "\(config.tieWeights)"),
         ("--batching", options.batching.rawValue), ("--batch", "\(options.batch)"), ("--seq-len", "\(options.seqLen)"),
         ("--optimizer", options.optimizer), ("--lr", "\(options.effectiveLearningRate)"), ("--clip", "\(options.clip)"),
         ("--lr-schedule", options.lrSchedule), ("--warmup", "\(options.warmup)"),
         ("--val-fraction", "\(options.valFraction)"), ("--seed", "\(options.seed)"), ("--threads", "\(options.threads)")]
    }

    /// Runs training to the end and returns the summary. Throws on bad input before writing
    /// anything; a non-finite loss stops training (the last good checkpoint stays).
    public func run() throws -> LanguageModelTrainingSummary {
        let o = options
        guard ["adam", "sgd", "rmsprop"].contains(o.optimizer) else {
            throw LanguageModelTrainingError.invalidOption("--optimizer must be adam, sgd or rmsprop (got '\(o.optimizer)')")
        }
        guard o.layers >= 1, o.hidden >= 1, o.embedding >= 0, o.seqLen >= 1, o.batch >= 0 else {
            throw LanguageModelTrainingError.invalidOption("--layers, --hidden and --seq-len must be at least 1, --embedding and --batch at least 0")
        }
        guard ["constant", "cosine"].contains(o.lrSchedule) else {
            throw LanguageModelTrainingError.invalidOption("--lr-schedule must be constant or cosine (got '\(o.lrSchedule)')")
        }
        guard o.dropout >= 0 && o.dropout < 1 else { throw LanguageModelTrainingError.invalidOption("--dropout must be in [0, 1)") }
        guard o.valFraction >= 0 && o.valFraction < 1 else { throw LanguageModelTrainingError.invalidOption("--val-fraction must be at least 0 and below 1") }
        guard o.batch > 0 || o.batching == .windows else {
            throw LanguageModelTrainingError.invalidOption("--batch 0 (all windows in one batch) needs --batching windows")
        }
        if o.tieWeights && o.embedding != o.hidden {
            throw LanguageModelTrainingError.invalidOption("--tie-weights needs --embedding equal to --hidden (\(o.embedding) vs \(o.hidden))")
        }

        // Data.
        let text: String, source: String
        if let path = o.dataPath {
            text = try TextCorpus.load(path: path)
            source = path
        } else {
            let d = DefaultCorpus.load()
            text = d.text
            source = d.description
        }
        let vocab = Vocabulary.build(from: text, level: o.level, minCount: o.minCount)
        let ids = try vocab.encode(text, source: source)
        let split = try DataSplit(ids: ids, validationFraction: o.valFraction, source: source)
        var batcher: any TokenBatcher
        switch o.batching {
        case .streams: batcher = try StreamBatcher(tokens: split.train, batchSize: o.batch, seqLen: o.seqLen, source: source)
        case .windows: batcher = try WindowBatcher(tokens: split.train, batchSize: o.batch, seqLen: o.seqLen, seed: o.seed, source: source)
        }
        let validate = o.valFraction > 0
        guard !validate || split.validation.count >= 2 else {
            throw TextDataError.invalidSetting(flag: "--val-fraction", value: "\(o.valFraction)", reason: "leaves fewer than 2 validation tokens")
        }

        let config = LanguageModelConfig(cell: o.cell, layers: o.layers, hidden: o.hidden, embedding: o.embedding,
                                         vocabSize: vocab.count, dropout: o.dropout, tieWeights: o.tieWeights)
        let model = RecurrentLanguageModel(config: config, seed: o.seed, threads: o.threads)
        let params = model.parameters
        let lr = o.effectiveLearningRate
        let optimizer: any Optimizer
        switch o.optimizer {
        case "sgd": optimizer = SGD(parameters: params, learningRate: lr)
        case "rmsprop": optimizer = RMSProp(parameters: params, learningRate: lr)
        default: optimizer = Adam(parameters: params, learningRate: lr)
        }
        (optimizer as? SlotOptimizer)?.threads = o.threads

        // Resume.
        var step = 0, elapsedBefore = 0.0, best = Double.infinity
        var log: [TrainingLogRow] = []
        let print = progressOutput ?? { FileHandle.standardError.write(Data($0.utf8)) }
        let fp = fingerprint(config: config, source: source)
        if o.resume {
            guard FileManager.default.fileExists(atPath: lastPath), FileManager.default.fileExists(atPath: statePath) else {
                throw LanguageModelTrainingError.missingResumeCheckpoint(lastPath)
            }
            let st = try SafeTensors.read(path: statePath)
            guard st.metadata["format"] == Self.stateFormat else {
                throw ModelLoadError.badMetadata(statePath, "not an lm-train training state (format '\(st.metadata["format"] ?? "none")')")
            }
            let saved = Self.decodePairs(st.metadata["fingerprint"] ?? "")
            for (k, v) in fp {
                let s = saved[k] ?? "(absent)"
                if s != v { throw LanguageModelTrainingError.resumeMismatch(path: statePath, field: k, saved: s, now: v) }
            }
            let loaded = try LanguageModelCheckpoint.load(path: lastPath, threads: 1)
            guard loaded.vocabulary == vocab, loaded.model.config == config else {
                throw LanguageModelTrainingError.resumeMismatch(path: lastPath, field: "model or vocabulary", saved: "different", now: "this data")
            }
            var byName: [String: NamedTensor] = [:]
            for t in loaded.model.stateDict { byName[t.name] = t }
            try model.load(byName, source: lastPath)
            var optState: [String: [Float]] = [:]
            for t in st.tensors where t.name.hasPrefix("optimizer.") { optState[String(t.name.dropFirst(10))] = t.values }
            step = Int(st.metadata["step"] ?? "") ?? 0
            try optimizer.load(state: optState, stepCount: Int(st.metadata["optimizer_steps"] ?? "") ?? step)
            let pos = try JSONDecoder().decode(BatchPosition.self, from: Data((st.metadata["position"] ?? "{}").utf8))
            try batcher.seek(to: pos)
            if let h = st.tensor("state.h") {
                model.setCarriedState(RecurrentState(h: h.values, c: st.tensor("state.c")?.values), batch: o.batch)
            }
            elapsedBefore = Double(st.metadata["seconds"] ?? "") ?? 0
            best = Double(st.metadata["best_val_loss"] ?? "") ?? .infinity
            log = Self.readLog(logPath).filter { $0.step <= step }
            print("resuming from \(lastPath) at step \(step) (\(pos))\n")
        }

        try FileManager.default.createDirectory(atPath: o.outDir, withIntermediateDirectories: true)
        let totalSteps: Int? = o.steps ?? o.epochs.map { $0 * batcher.batchesPerEpoch }
        if totalSteps == nil && o.timeBudget == nil {
            throw LanguageModelTrainingError.invalidOption("give one of --steps, --epochs or --time-budget")
        }
        let reporter: ProgressReporter = forcePlainProgress || progressOutput != nil
            ? ProgressReporter(totalSteps: totalSteps, timeBudget: o.timeBudget, label: "lm-train", isTTY: false, interval: .seconds(10), output: print)
            : ProgressReporter(totalSteps: totalSteps, timeBudget: o.timeBudget, label: "lm-train")
        let clock = ProgressReporter.monotonicSeconds
        let start = clock()
        var trainSeconds = 0.0, trainTokens = 0
        var windowLoss = 0.0, windowSteps = 0, windowTokens = 0, windowTrainSeconds = 0.0
        var lastLoss = Double.nan, lastVal = Double.nan
        var stepLosses: [Double] = []
        var lastSampleTime = start

        func evaluateAndSave(final: Bool) throws {
            // Without a validation split (--val-fraction 0) there is no validation loss and the
            // latest model counts as the best.
            let val = validate ? LanguageModelScoring.chunkedLoss(model: model, ids: split.validation, seqLen: o.seqLen) : Double.nan
            lastVal = val
            let elapsed = elapsedBefore + clock() - start
            let tps = windowTrainSeconds > 0 ? Double(windowTokens) / windowTrainSeconds : 0
            if windowSteps > 0 || final {
                log.append(TrainingLogRow(step: step, trainLoss: windowSteps > 0 ? windowLoss / Double(windowSteps) : lastLoss,
                                          validationLoss: val, tokensPerSecond: tps, seconds: elapsed))
            }
            windowLoss = 0; windowSteps = 0; windowTokens = 0; windowTrainSeconds = 0
            let extra = ["step": "\(step)", "val_loss": String(format: "%.6f", val)]
            try LanguageModelCheckpoint.save(model: model, vocabulary: vocab, to: lastPath, extra: extra)
            if val < best || !validate {
                best = val
                try LanguageModelCheckpoint.save(model: model, vocabulary: vocab, to: bestPath, extra: extra)
            }
            try saveTrainingState(model: model, optimizer: optimizer, position: batcher.position, step: step,
                                  seconds: elapsed, best: best, fingerprint: fp)
            try writeLog(log)
            if validate { reporter.message(String(format: "step %d: validation loss %.4f (best %.4f)", step, val, best)) }
        }

        func sample() {
            let sampler = TokenSampler(model: model, temperature: 0.8, topK: nil, seed: UInt64(step))
            var token: Int32 = vocab.endOfLineID ?? 0
            var out = TokenDecoder(vocabulary: vocab)
            var textOut = ""
            for _ in 0..<o.sampleLength {
                token = sampler.next(after: token)
                textOut += (try? out.append(token)) ?? ""
            }
            reporter.message("--- sample at step \(step) ---\n" + textOut + "\n---")
        }

        var stoppedByNaN: TrainingError?
        trainLoop: while true {
            if let s = totalSteps, step >= s { break }
            if let b = o.timeBudget, elapsedBefore + clock() - start >= b { break }
            // Throughput counts everything a training step costs (loader, step, optimizer,
            // progress output) but not validation or checkpoint writing.
            let t0 = clock()
            let batch = batcher.next()
            let loss = model.trainStep(inputs: batch.inputs, targets: batch.targets, batch: batch.batchSize, steps: batch.seqLen,
                                       carryState: !batch.resetsState, seed: o.seed &* 7_919 &+ UInt64(step))
            if !loss.isFinite {
                stoppedByNaN = TrainingError.nonFiniteLoss(step: step + 1, value: loss)
                break trainLoop
            }
            if o.clip > 0 { clipGradientNorm(params, maxNorm: o.clip) }
            optimizer.learningRate = learningRate(step: step, elapsed: elapsedBefore + clock() - start, totalSteps: totalSteps)
            optimizer.step()
            step += 1
            lastLoss = loss
            stepLosses.append(loss)
            try reporter.update(step: step, loss: loss, tokens: batch.inputs.count)
            let dt = clock() - t0
            trainSeconds += dt; trainTokens += batch.inputs.count
            windowLoss += loss; windowSteps += 1; windowTokens += batch.inputs.count; windowTrainSeconds += dt
            if o.evalEvery > 0 && step % o.evalEvery == 0 { try evaluateAndSave(final: false) }
            if let every = o.sampleEvery, clock() - lastSampleTime >= every {
                sample()
                lastSampleTime = clock()
            }
        }
        reporter.finish()
        if let err = stoppedByNaN {
            print("\(err.description)\n")
            throw err
        }
        if log.last?.step != step || step == 0 { try evaluateAndSave(final: true) }
        try plotLoss(log)
        return LanguageModelTrainingSummary(
            validationLoss: lastVal, bestValidationLoss: best,
            tokensPerSecond: trainSeconds > 0 ? Double(trainTokens) / trainSeconds : 0,
            steps: step, seconds: elapsedBefore + clock() - start, lastTrainLoss: lastLoss, checkpoint: bestPath,
            stepLosses: stepLosses)
    }

    /// The learning rate for 0-based `step`: warm-up, then constant or cosine decay to 10 %.
    func learningRate(step: Int, elapsed: Double, totalSteps: Int?) -> Float {
        let base = options.effectiveLearningRate
        if step < options.warmup { return base * Float(step + 1) / Float(options.warmup) }
        guard options.lrSchedule == "cosine" else { return base }
        let progress: Double
        if let total = totalSteps {
            progress = Double(step - options.warmup) / Double(max(1, total - options.warmup))
        } else if let budget = options.timeBudget {
            progress = elapsed / budget
        } else {
            progress = 0
        }
        let p = min(max(progress, 0), 1)
        return base * Float(0.1 + 0.9 * 0.5 * (1 + cos(Double.pi * p)))
    }

    func saveTrainingState(model: RecurrentLanguageModel, optimizer: any Optimizer, position: BatchPosition, step: Int,
                           seconds: Double, best: Double, fingerprint: [(String, String)]) throws {
        var tensors: [NamedTensor] = optimizer.state.map { NamedTensor(name: "optimizer." + $0.name, shape: [$0.values.count], values: $0.values) }
        if let s = model.carriedState {
            tensors.append(NamedTensor(name: "state.h", shape: [s.h.count], values: s.h))
            if let c = s.c { tensors.append(NamedTensor(name: "state.c", shape: [c.count], values: c)) }
        }
        let pos = String(decoding: try JSONEncoder().encode(position), as: UTF8.self)
        let meta = ["format": Self.stateFormat, "step": "\(step)", "optimizer_steps": "\(optimizer.stepCount)",
                    "position": pos, "seconds": String(format: "%.3f", seconds),
                    "best_val_loss": best.isFinite ? String(format: "%.9g", best) : "inf",
                    "fingerprint": Self.encodePairs(fingerprint)]
        try SafeTensors.write(tensors, metadata: meta, to: statePath)
    }

    static func encodePairs(_ pairs: [(String, String)]) -> String {
        let obj = Dictionary(pairs, uniquingKeysWith: { a, _ in a })
        let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func decodePairs(_ text: String) -> [String: String] {
        ((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: String]) ?? [:]
    }

    func writeLog(_ rows: [TrainingLogRow]) throws {
        var s = "step,train_loss,val_loss,tokens_per_s,seconds\n"
        for r in rows {
            s += String(format: "%d,%.6f,%.6f,%.1f,%.2f\n", r.step, r.trainLoss, r.validationLoss, r.tokensPerSecond, r.seconds)
        }
        try AtomicFile.write(text: s, to: logPath)
    }

    static func readLog(_ path: String) -> [TrainingLogRow] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let f = line.split(separator: ",").map(String.init)
            guard f.count == 5, let s = Int(f[0]), let a = Double(f[1]), let b = Double(f[2]), let c = Double(f[3]), let d = Double(f[4]) else { return nil }
            return TrainingLogRow(step: s, trainLoss: a, validationLoss: b, tokensPerSecond: c, seconds: d)
        }
    }

    func plotLoss(_ rows: [TrainingLogRow]) throws {
        guard !rows.isEmpty else { return }
        let train = Series(name: "train", points: rows.map { (Double($0.step), $0.trainLoss) })
        let val = Series(name: "validation", points: rows.map { (Double($0.step), $0.validationLoss) })
        do {
            try Plot.lineChart(series: [train, val], title: "lm-train loss", xLabel: "step", yLabel: "cross-entropy (nats/token)", to: plotPath)
        } catch {
            throw LanguageModelTrainingError.invalidOption("\(plotPath): \(error)")
        }
    }
}
