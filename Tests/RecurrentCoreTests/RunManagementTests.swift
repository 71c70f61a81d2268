import Foundation
import Testing
@testable import RecurrentCore

/// The scalar events of a run folder's event files, read with the independent reader:
/// per file, (step, tag, value) in order, and the steps of SessionLog START events.
private func readEvents(in folder: String) throws -> [(points: [(step: Int, tag: String, value: Float)], starts: [Int])] {
    let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("events.out.tfevents.") }.sorted()
    return try names.map { name in
        let records = try EventFileReader.records(Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))))
        var points: [(Int, String, Float)] = [], starts: [Int] = []
        for record in records.dropFirst() {
            var step = 0
            for (field, value) in EventFileReader.fields(record) {
                switch (field, value) {
                case (2, .varint(let s)): step = Int(s)
                case (5, .bytes(let summary)):
                    for (f, v) in EventFileReader.fields(summary) {
                        guard f == 1, case .bytes(let entry) = v else { continue }
                        var tag = "", x: Float = .nan
                        for (ef, ev) in EventFileReader.fields(entry) {
                            if ef == 1, case .bytes(let t) = ev { tag = String(decoding: t, as: UTF8.self) }
                            if ef == 2, case .fixed32(let bits) = ev { x = Float(bitPattern: bits) }
                        }
                        points.append((step, tag, x))
                    }
                case (7, .bytes(let session)):
                    if EventFileReader.fields(session).contains(where: { $0.0 == 1 && { if case .varint(1) = $0.1 { return true }; return false }($0) }) {
                        starts.append(step)
                    }
                default: break
                }
            }
        }
        return (points, starts)
    }
}

/// An engine on the linear task whose validation figure follows `script` (one value per
/// evaluation, the last repeated).
private func scriptedEngine(_ configure: (inout TrainingConfiguration) -> Void, out: String,
                            script: [Double]) -> (TrainingEngine<LinearModel>, LinearModel) {
    var c = TrainingConfiguration()
    c.optimizer = .sgd; c.learningRate = 0.1; c.evalEvery = 4; c.threads = 1; c.seed = 7; c.outDirectory = out
    configure(&c)
    let model = LinearModel()
    var calls = 0
    let evaluation = TrainingEvaluation(metricNames: ["val_loss"], validationMetric: "val_loss", direction: .lowerIsBetter) {
        defer { calls += 1 }
        return ["val_loss": script[min(calls, script.count - 1)]]
    }
    let engine = TrainingEngine(configuration: c, task: TrainingTask(label: "linear", model: model, data: PairSource(),
                                                                     evaluation: evaluation, fingerprint: ["inputs": "2"]))
    engine.progressOutput = { _ in }
    return (engine, model)
}

@Suite struct RunManagementTests {
    /// A row every --log-every steps with the mean loss of those steps, the rate, the gradient
    /// norm and the throughput; evaluation rows carry the metrics; the summary's train_loss is
    /// the last row's.
    @Test func logRowsEveryLogEverySteps() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let (engine, _) = linearEngine({ $0.steps = 23; $0.logEvery = 5; $0.evalEvery = 10 }, out: folder.path)
        let s = try engine.run()
        let log = TrainingLog.read(path: engine.logPath, metricNames: ["val_loss", "score"], itemName: "items")
        #expect(log.rows.map(\.step) == [5, 10, 15, 20, 23])
        #expect(log.rows.map { !$0.metrics[0].isNaN } == [false, true, false, true, true])
        let losses = s.stepLosses
        for (row, range) in zip(log.rows, [0..<5, 5..<10, 10..<15, 15..<20, 20..<23]) {
            let mean = losses[range].reduce(0, +) / Double(range.count)
            #expect(abs(row.trainLoss - mean) < 1e-6 * max(1, mean), "row \(row.step): \(row.trainLoss) vs \(mean)")
            #expect(abs(row.learningRate - 0.1) < 1e-7 && row.gradientNorm > 0 && row.itemsPerSecond > 0)
        }
        #expect(abs(s.trainLoss - log.rows.last!.trainLoss) < 1e-6)
        // Rows without an evaluation leave the metric columns empty.
        let lines = try String(contentsOfFile: engine.logPath, encoding: .utf8).split(separator: "\n")
        #expect(lines[1].split(separator: ",", omittingEmptySubsequences: false)[4...5] == ["", ""])
    }

    /// The gradient-norm column is the norm before clipping: for the linear model at its start
    /// it can be computed from the first batch by hand.
    @Test func gradientNormIsTheUnclippedNorm() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let (engine, _) = linearEngine({ $0.steps = 1; $0.logEvery = 1; $0.clip = 1e-3 }, out: folder.path)
        _ = try engine.run()
        var source = PairSource()
        let batch = source.next()
        var g = [0.0, 0.0, 0.0]
        let n = Double(batch.y.count)
        for i in 0..<batch.y.count {
            let e = 0.1 * Double(batch.x[2 * i]) - 0.1 * Double(batch.x[2 * i + 1]) - Double(batch.y[i])
            g[0] += 2 * e * Double(batch.x[2 * i]) / n; g[1] += 2 * e * Double(batch.x[2 * i + 1]) / n; g[2] += 2 * e / n
        }
        let row = TrainingLog.read(path: engine.logPath, metricNames: ["val_loss", "score"], itemName: "items").rows[0]
        // The step's seeded noise on b's gradient is below 5e-4.
        #expect(abs(row.gradientNorm - (g[0] * g[0] + g[1] * g[1] + g[2] * g[2]).squareRoot()) < 1e-3)
    }

    /// Every run writes an event file whose points are log.csv's; a resumed run adds a file that
    /// starts with a SessionLog START at the step it resumes from.
    @Test func tensorBoardFileOfARunReadsBack() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let (first, _) = linearEngine({ $0.steps = 10; $0.logEvery = 5; $0.evalEvery = 10 }, out: folder.path)
        _ = try first.run()
        let (second, _) = linearEngine({ $0.steps = 15; $0.logEvery = 5; $0.evalEvery = 10; $0.resume = true }, out: folder.path)
        _ = try second.run()
        let files = try readEvents(in: folder.path)
        #expect(files.count == 2)
        #expect(files[0].starts.isEmpty && files[1].starts == [10])
        let log = TrainingLog.read(path: second.logPath, metricNames: ["val_loss", "score"], itemName: "items")
        let points = files.flatMap(\.points)
        // log.csv holds 6 decimals (6 digits for the rate and norm); the events hold Float values.
        func close(_ tag: String, _ row: TrainingLogRow, _ x: Double) -> Bool {
            guard let v = points.last(where: { $0.step == row.step && $0.tag == tag })?.value else { return false }
            return abs(Double(v) - x) <= 2e-6 * max(1, abs(x))
        }
        for row in log.rows {
            #expect(close("train/loss", row, row.trainLoss), "step \(row.step)")
            #expect(close("train/learning_rate", row, row.learningRate) && close("train/grad_norm", row, row.gradientNorm))
            #expect(points.contains { $0.step == row.step && $0.tag == "train/items_per_s" && $0.value > 0 })
            if !row.metrics[0].isNaN { #expect(close("val/loss", row, row.metrics[0]) && close("val/score", row, row.metrics[1])) }
        }
        #expect(Set(points.map(\.step)) == [5, 10, 15])
    }

    /// --patience N: N evaluations without a better metric end the run; best.safetensors stays
    /// the best one's.
    @Test func patienceStopsEarlyKeepingTheBest() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let (engine, _) = scriptedEngine({ $0.steps = 40; $0.patience = 2 }, out: folder.path, script: [1.0, 0.5, 0.6, 0.7, 0.4])
        let s = try engine.run()
        // Evaluations at 4 (1.0), 8 (0.5, best), 12 (0.6), 16 (0.7): two without improvement.
        #expect(s.steps == 16 && s.stoppedEarly && s.bestStep == 8 && s.bestValidation == 0.5)
        let best = try ModelCheckpoint<LinearModel.Config>.read(path: engine.bestPath, format: LinearModel.format)
        #expect(best.metadata["step"] == "8")
        #expect(s.json.contains("\"stopped_early\":true"))
        // The count survives a resume: one more evaluation without improvement ends it at once.
        let (again, _) = scriptedEngine({ $0.steps = 40; $0.patience = 3; $0.resume = true }, out: folder.path, script: [0.9])
        #expect(try again.run().steps == 20)
        // Without validation there is nothing to watch.
        var c = TrainingConfiguration()
        c.steps = 4; c.patience = 1; c.outDirectory = folder.path + "/none"
        let none = TrainingEngine(configuration: c, task: TrainingTask(label: "linear", model: LinearModel(), data: PairSource(), evaluation: nil))
        #expect(throws: TrainingSetupError.invalid(option: "--patience", reason: "needs validation data to watch (a --val-fraction above 0)")) {
            try none.run()
        }
    }

    /// --init-from: the checkpoint's weights, fresh optimizer state (Adam's first step moves every
    /// weight by the learning rate), a new run; a checkpoint that does not fit is refused before
    /// anything is written.
    @Test func initFromLoadsWeightsWithAFreshOptimizer() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let (source, trained) = linearEngine({ $0.steps = 12; $0.optimizer = .adam; $0.learningRate = 0.05 }, out: folder.path + "/a")
        _ = try source.run()
        let start = trained.parameters.flatMap(\.values)
        let (tuned, model) = linearEngine({ $0.steps = 1; $0.optimizer = .adam; $0.learningRate = 0.01; $0.initFrom = source.bestPath },
                                          out: folder.path + "/b")
        let s = try tuned.run()
        #expect(s.steps == 1)
        for (after, before) in zip(model.parameters.flatMap(\.values), start) {
            #expect(abs(abs(after - before) - 0.01) < 1e-4, "moved \(after - before)")
        }
        // A checkpoint with other shapes is refused; the new folder stays empty.
        try ModelCheckpoint(format: LinearModel.format, configuration: LinearModel.Config(inputs: 3),
                            tensors: [NamedTensor(name: "w", shape: [3], values: [1, 2, 3]), NamedTensor(name: "b", shape: [1], values: [0])],
                            metadata: [:]).write(to: folder.path + "/other.safetensors")
        let (bad, _) = linearEngine({ $0.steps = 1; $0.initFrom = folder.path + "/other.safetensors" }, out: folder.path + "/c")
        #expect(throws: ModelLoadError.self) { try bad.run() }
        #expect(RunFolder.runFilesPresent(in: folder.path + "/c").isEmpty)
        // --init-from with --resume is refused.
        let (both, _) = linearEngine({ $0.steps = 1; $0.initFrom = source.bestPath; $0.resume = true }, out: folder.path + "/a")
        #expect(throws: TrainingSetupError.self) { try both.run() }
    }

    /// A new run never writes into a folder that holds one; --overwrite replaces its files.
    @Test func aFolderHoldingARunIsRefusedUnlessOverwritten() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let (first, _) = linearEngine({ $0.steps = 4 }, out: folder.path)
        _ = try first.run()
        let before = try Data(contentsOf: URL(fileURLWithPath: first.bestPath))
        let (second, _) = linearEngine({ $0.steps = 8; $0.learningRate = 0.01 }, out: folder.path)
        #expect(throws: RunFolderError.self) { try second.run() }
        #expect(before == (try Data(contentsOf: URL(fileURLWithPath: first.bestPath))))
        let (third, _) = linearEngine({ $0.steps = 8; $0.overwrite = true }, out: folder.path)
        #expect(try third.run().steps == 8)
        #expect(try readEvents(in: folder.path).count == 1)
        let config = try RunConfiguration.read(path: third.configPath)
        #expect(config.tool == "linear" && config.training.steps == 8 && !config.training.overwrite && config.task == ["inputs": "2"])
    }

    /// config.json of another version: absent fields keep their defaults, present ones are read.
    @Test func configurationReadsWithMissingFields() throws {
        let c = try JSONDecoder().decode(TrainingConfiguration.self, from: Data(#"{"steps":5,"learning_rate":0.5,"arguments":["--data","d"]}"#.utf8))
        #expect(c.steps == 5 && c.learningRate == 0.5 && c.commandLine == ["--data", "d"])
        #expect(c.logEvery == 10 && c.optimizer == .adam && c.epochs == nil && !c.resume)
    }

    /// Resuming with several changed settings names every one of them, by option.
    @Test func resumeListsEveryChangedSetting() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let (first, _) = linearEngine({ $0.steps = 4 }, out: folder.path)
        _ = try first.run()
        let (second, _) = linearEngine({ $0.steps = 8; $0.resume = true; $0.learningRate = 0.2; $0.clip = 1; $0.warmup = 2 }, out: folder.path)
        var message = ""
        do { _ = try second.run() } catch { message = "\(error)" }
        #expect(message == "\(folder.path): cannot --resume: these settings differ from the saved run: --clip (was 5, now 1), --lr (was 0.1, now 0.2), "
                + "--warmup (was 0, now 2); leave them out to continue the run, or start a new one (--init-from \(folder.path)/best.safetensors to start from its weights)")
    }
}

@Suite struct LossPlotInputTests {
    /// A run shorter than two log windows plots the loss of every step (not a single dot), with
    /// its evaluations; a longer one plots the log's rows.
    @Test func shortRunsPlotEveryStep() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        var plotted: TrainingLog?
        let (short, _) = linearEngine({ $0.steps = 6; $0.evalEvery = 0 }, out: folder.path + "/short")
        short.plotter = { _, log, _ in plotted = log }
        let s = try short.run()
        let train = plotted?.rows.filter { !$0.trainLoss.isNaN } ?? []
        #expect(train.map(\.step) == Array(1...6) && train.map(\.trainLoss) == s.stepLosses)
        #expect(plotted?.evaluationRows.map(\.step) == [6])
        let (long, _) = linearEngine({ $0.steps = 30; $0.evalEvery = 15 }, out: folder.path + "/long")
        long.plotter = { _, log, _ in plotted = log }
        _ = try long.run()
        #expect(plotted?.rows.map(\.step) == [10, 15, 20, 30])
    }
}
