import Foundation
import Testing
@testable import RecurrentCore

// MARK: - A tiny synthetic task

/// A batch of the synthetic regression: rows `x` (`[rows, 2]`) and targets `y` (`[rows]`).
struct PairBatch: TrainingBatch {
    var x: [Float]
    var y: [Float]
    var itemCount: Int { y.count }
}

/// `y = 3 x0 - 2 x1 + 0.5` sampled at deterministic points: batch `k` of epoch `e` depends only
/// on `(e, k)`, so the source is seekable.
struct PairSource: BatchSource {
    let batchesPerEpoch: Int
    let rows: Int
    var position = BatchPosition()

    init(batchesPerEpoch: Int = 5, rows: Int = 4) {
        self.batchesPerEpoch = batchesPerEpoch
        self.rows = rows
    }

    mutating func next() -> PairBatch {
        var rng = SeededRandom(seed: UInt64(position.epoch * 1000 + position.batch))
        var x: [Float] = [], y: [Float] = []
        for _ in 0..<rows {
            let a = rng.nextFloat() * 2 - 1, b = rng.nextFloat() * 2 - 1
            x += [a, b]
            y.append(3 * a - 2 * b + 0.5)
        }
        position.batch += 1
        if position.batch == batchesPerEpoch { position = BatchPosition(epoch: position.epoch + 1, batch: 0) }
        return PairBatch(x: x, y: y)
    }

    mutating func seek(to position: BatchPosition) throws {
        guard position.batch >= 0, position.batch < batchesPerEpoch, position.epoch >= 0 else {
            throw TrainingSetupError.invalid(option: "position", reason: "\(position) out of range")
        }
        self.position = position
    }
}

/// Linear model `w0 x0 + w1 x1 + b` with mean squared error, a noisy gradient (the step's seed
/// adds a small perturbation, so resuming must reproduce the seeds), and a carried running
/// value (the sum of the losses so far) that the resume file must keep.
final class LinearModel: TrainableModel {
    let w = Parameter(name: "w", shape: [2])
    let b = Parameter(name: "b", shape: [1])
    var runningLoss: Float = 0
    /// Steps whose loss is replaced by NaN (1-based step numbers).
    var nanAtCall: Int?
    var calls = 0
    var parameters: [Parameter] { [w, b] }

    init() { w.values = [0.1, -0.1]; b.values = [0] }

    func trainStep(on batch: PairBatch, seed: UInt64) -> Double {
        calls += 1
        w.zeroGrad(); b.zeroGrad()
        var rng = SeededRandom(seed: seed)
        let n = batch.y.count
        var loss: Float = 0
        for i in 0..<n {
            let e = w.value[0] * batch.x[2 * i] + w.value[1] * batch.x[2 * i + 1] + b.value[0] - batch.y[i]
            loss += e * e / Float(n)
            w.grad[0] += 2 * e * batch.x[2 * i] / Float(n)
            w.grad[1] += 2 * e * batch.x[2 * i + 1] / Float(n)
            b.grad[0] += 2 * e / Float(n)
        }
        b.grad[0] += (rng.nextFloat() - 0.5) * 1e-3
        runningLoss += loss
        if calls == nanAtCall { return .nan }
        return Double(loss)
    }

    static let format = CheckpointFormat(name: "test/linear", version: 1)
    struct Config: Codable, Equatable { var inputs = 2 }

    func writeCheckpoint(to path: String, extra: [String: String]) throws {
        try ModelCheckpoint(format: Self.format, configuration: Config(),
                            tensors: [NamedTensor(name: "w", shape: [2], values: w.values), NamedTensor(name: "b", shape: [1], values: b.values)],
                            metadata: extra).write(to: path)
    }

    func loadCheckpoint(from path: String) throws {
        let c = try ModelCheckpoint<Config>.read(path: path, format: Self.format)
        let t = try c.tensors(matching: [("w", [2]), ("b", [1])], source: path)
        w.values = t["w"]!.values
        b.values = t["b"]!.values
    }

    var carriedState: [NamedTensor] { [NamedTensor(name: "running", shape: [1], values: [runningLoss])] }
    func restoreCarriedState(_ tensors: [String: NamedTensor]) throws { runningLoss = tensors["running"]?.values.first ?? 0 }
}

/// A temporary folder removed at the end of a test.
struct EngineFolder {
    let path = FileManager.default.temporaryDirectory.path + "/engine-tests-" + UUID().uuidString
    func cleanUp() { try? FileManager.default.removeItem(atPath: path) }
}

/// A fresh model and engine; the validation metric is the error on fixed points.
func linearEngine(_ configure: (inout TrainingConfiguration) -> Void, out: String, nanAtCall: Int? = nil,
                  direction: MetricDirection = .lowerIsBetter) -> (TrainingEngine<LinearModel>, LinearModel) {
    var c = TrainingConfiguration()
    c.optimizer = .sgd; c.learningRate = 0.1; c.evalEvery = 4; c.threads = 1; c.seed = 7; c.outDirectory = out
    configure(&c)
    let model = LinearModel()
    model.nanAtCall = nanAtCall
    let evaluation = TrainingEvaluation(metricNames: ["val_loss", "score"], validationMetric: direction == .lowerIsBetter ? "val_loss" : "score",
                                        direction: direction) {
        let e = Double(model.w.value[0] - 3), f = Double(model.w.value[1] + 2), g = Double(model.b.value[0] - 0.5)
        let loss = e * e + f * f + g * g
        return ["val_loss": loss, "score": -loss]
    }
    let task = TrainingTask(label: "linear", model: model, data: PairSource(), evaluation: evaluation, fingerprint: ["inputs": "2"])
    let engine = TrainingEngine(configuration: c, task: task)
    engine.progressOutput = { _ in }
    return (engine, model)
}

// MARK: - Tests

@Suite struct TrainingEngineTests {
    @Test func budgetInStepsAndEpochs() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let (a, _) = linearEngine({ $0.steps = 7 }, out: folder.path + "/a")
        let s = try a.run()
        #expect(s.steps == 7 && s.stepLosses.count == 7)
        #expect(abs(s.epochs - 7.0 / 5) < 1e-12)
        // Evaluations at 4 and at the end (7).
        let log = try String(contentsOfFile: a.logPath, encoding: .utf8).split(separator: "\n")
        #expect(log.first == "step,train_loss,lr,grad_norm,val_loss,score,items_per_s,seconds")
        #expect(log.dropFirst().map { $0.split(separator: ",")[0] } == ["4", "7"])
        // 2 epochs of 5 batches.
        let (b, _) = linearEngine({ $0.epochs = 2 }, out: folder.path + "/b")
        #expect(try b.run().steps == 10)
        // Steps and epochs together: the smaller.
        let (c, _) = linearEngine({ $0.epochs = 2; $0.steps = 3 }, out: folder.path + "/c")
        #expect(try c.run().steps == 3)
        // A time budget stops the run (after at least one step).
        let (d, _) = linearEngine({ $0.timeBudget = 0.05; $0.evalEvery = 0 }, out: folder.path + "/d")
        let sd = try d.run()
        #expect(sd.steps >= 1 && sd.trainSeconds >= 0.05)
        // No budget at all is refused before anything is written.
        let (e, _) = linearEngine({ _ in }, out: folder.path + "/e")
        #expect(throws: TrainingSetupError.self) { try e.run() }
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/e"))
    }

    @Test func trainingConvergesAndBestFollowsTheMetricDirection() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        for direction in [MetricDirection.lowerIsBetter, .higherIsBetter] {
            let (engine, model) = linearEngine({ $0.steps = 60 }, out: folder.path + "/\(direction)", direction: direction)
            let s = try engine.run()
            #expect(abs(model.w.value[0] - 3) < 0.05 && abs(model.w.value[1] + 2) < 0.05)
            let best = try ModelCheckpoint<LinearModel.Config>.read(path: engine.bestPath, format: LinearModel.format)
            // The run improves monotonically here, so the best is the last evaluation.
            #expect(s.bestStep == 60 && best.metadata["step"] == "60")
            #expect(s.validationMetric == (direction == .lowerIsBetter ? "val_loss" : "score"))
            let json = try JSONSerialization.jsonObject(with: Data(s.json.utf8)) as? [String: Any]
            #expect(Set(json?.keys.map { $0 } ?? []) == Set(TrainingRunSummary.keys))
            #expect(json?["tool"] as? String == "linear" && json?["run_dir"] as? String == engine.configuration.outDirectory)
        }
    }

    /// The rate the optimizer used at each step, recovered from plain SGD on a constant gradient.
    @Test func scheduleValuesMatchTheFormulas() {
        var c = TrainingConfiguration()
        c.learningRate = 0.4; c.warmup = 2; c.lrSchedule = .cosine; c.lrFloor = 0.25
        let cosine = c.makeSchedule(totalSteps: 10)
        // Warm-up: 0.4 * 1/2, 0.4 * 2/2; then cosine over 8 steps from 0.4 to 0.1.
        #expect(abs(cosine.rate(at: 0) - 0.2) < 1e-7)
        #expect(abs(cosine.rate(at: 1) - 0.4) < 1e-7)
        #expect(abs(cosine.rate(at: 2) - 0.4) < 1e-7)
        #expect(abs(cosine.rate(at: 6) - 0.25) < 1e-7)           // half-way: (0.4 + 0.1) / 2
        #expect(abs(cosine.rate(at: 4) - (0.1 + 0.3 * 0.853_553_390_593_273_7)) < 1e-6)   // (1 + cos(pi/4)) / 2
        #expect(abs(cosine.rate(at: 10) - 0.1) < 1e-7 && abs(cosine.rate(at: 50) - 0.1) < 1e-7)
        // By time: a quarter of the budget used after warm-up.
        let timed = c.makeSchedule(totalSteps: nil)
        #expect(abs(timed.rate(at: 1, timeFraction: 0.01) - 0.4) < 1e-7)
        #expect(abs(timed.rate(at: 99, timeFraction: 0.5) - 0.25) < 1e-7)
        #expect(abs(timed.rate(at: 99, timeFraction: 1) - 0.1) < 1e-7)
        // Step decay: a third of 12 steps = every 4, factor 0.5.
        c.warmup = 0; c.lrSchedule = .step; c.lrDecayFactor = 0.5
        let step = c.makeSchedule(totalSteps: 12)
        #expect([0, 3, 4, 7, 8, 11].map { step.rate(at: $0) } == [0.4, 0.4, 0.2, 0.2, 0.1, 0.1])
        #expect(abs(c.makeSchedule(totalSteps: nil).rate(at: 0, timeFraction: 0.7) - 0.1) < 1e-7)   // 2 thirds passed
        c.lrDecayEvery = 5
        #expect(c.makeSchedule(totalSteps: 12).rate(at: 5) == 0.2)
        c.lrSchedule = .constant
        #expect(c.makeSchedule(totalSteps: 12).rate(at: 11) == 0.4)
    }

    @Test func theEngineAppliesTheScheduleAndClipping() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        // SGD without momentum: w' = w - lr * g. Clipping by 1e-3 makes every update exactly
        // lr * 1e-3 / (|g| + 1e-6) * g, so the step's rate can be read back from |w' - w|.
        let (engine, model) = linearEngine({ $0.steps = 6; $0.evalEvery = 0; $0.clip = 1e-3; $0.learningRate = 0.4
                                             $0.warmup = 2; $0.lrSchedule = .cosine; $0.lrFloor = 0.25 }, out: folder.path)
        var moves: [Float] = []
        var previous = model.parameters.flatMap(\.values)
        var task = engine.task
        task.afterStep = { _ in
            let now = model.parameters.flatMap(\.values)
            let d = zip(now, previous).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
            moves.append(Float(d))
            previous = now
            return nil
        }
        let e2 = TrainingEngine(configuration: engine.configuration, task: task)
        e2.progressOutput = { _ in }
        _ = try e2.run()
        // rates: warm-up 0.2, 0.4; cosine over 4 steps from 0.4 to 0.1: 0.4, 0.35607, 0.25, 0.14393.
        let expected: [Double] = [0.2, 0.4, 0.4, 0.1 + 0.3 * 0.853_553_390_593_273_7, 0.25, 0.1 + 0.3 * 0.146_446_609_406_726_3]
        for (m, r) in zip(moves, expected) { #expect(abs(Double(m) - r * 1e-3) < 2e-7, "move \(m) vs rate \(r)") }
        #expect(moves.count == 6)
    }

    @Test func resumeIsBitIdentical() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let setup: (inout TrainingConfiguration) -> Void = { $0.steps = 13; $0.optimizer = .adam; $0.learningRate = 0.05 }
        let (full, fullModel) = linearEngine(setup, out: folder.path + "/full")
        let a = try full.run()
        let (first, _) = linearEngine({ setup(&$0); $0.steps = 6 }, out: folder.path + "/split")
        _ = try first.run()
        let (second, model) = linearEngine({ setup(&$0); $0.resume = true }, out: folder.path + "/split")
        let b = try second.run()
        #expect(b.stepLosses == Array(a.stepLosses.suffix(7)))
        #expect(model.w.values == fullModel.w.values && model.b.values == fullModel.b.values)
        #expect(model.runningLoss == fullModel.runningLoss)   // carried state restored
        #expect(b.steps == 13 && b.bestStep == a.bestStep)
        let logA = try String(contentsOfFile: full.logPath, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",")[0] }
        let logB = try String(contentsOfFile: second.logPath, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",")[0] }
        // The resumed log keeps the first part's rows: 4 and its final 6, then 8, 12 and the end.
        #expect(logA == ["step", "4", "8", "10", "12", "13"] && logB == ["step", "4", "6", "8", "10", "12", "13"])
    }

    @Test func resumeRefusesADifferentSetting() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let (first, _) = linearEngine({ $0.steps = 4 }, out: folder.path)
        _ = try first.run()
        let before = try Data(contentsOf: URL(fileURLWithPath: folder.path + "/last.train.safetensors"))
        let (second, _) = linearEngine({ $0.steps = 8; $0.resume = true; $0.clip = 1 }, out: folder.path)
        #expect(throws: TrainingResumeError.settingsDiffer(path: folder.path, differences: [.init(field: "clip", saved: "5", now: "1")])) {
            try second.run()
        }
        // The refused resume left the run as it was.
        #expect(before == (try Data(contentsOf: URL(fileURLWithPath: folder.path + "/last.train.safetensors"))))
        // A longer budget alone is allowed with a constant rate.
        let (third, _) = linearEngine({ $0.steps = 8; $0.resume = true }, out: folder.path)
        #expect(try third.run().steps == 8)
        let (none, _) = linearEngine({ $0.steps = 8; $0.resume = true }, out: folder.path + "/nothing")
        #expect(throws: TrainingResumeError.nothingToResume(path: folder.path + "/nothing")) { try none.run() }
    }

    /// A cosine schedule runs over the budget: a resumed run with a longer budget keeps the saved
    /// run's horizon, so the steps beyond it run at the schedule's final rate (the floor).
    @Test func resumeWithALongerBudgetKeepsTheScheduleHorizon() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let setup: (inout TrainingConfiguration) -> Void = { $0.lrSchedule = .cosine; $0.lrFloor = 0.25; $0.learningRate = 0.4 }
        let (first, _) = linearEngine({ setup(&$0); $0.steps = 4 }, out: folder.path)
        _ = try first.run()
        let (longer, _) = linearEngine({ setup(&$0); $0.steps = 8; $0.resume = true }, out: folder.path)
        #expect(try longer.run().steps == 8)
        let rows = TrainingLog.read(path: longer.logPath, metricNames: ["val_loss", "score"], itemName: "items").rows
        // Steps 5 to 8 ran at 0.4 * 0.25 = 0.1, the rate the 4-step cosine ends at.
        #expect(rows.last?.step == 8 && rows.last?.learningRate == 0.1)
        #expect(rows.first?.step == 4 && abs((rows.first?.learningRate ?? 0) - 0.1) > 0.01)
    }

    @Test func nonFiniteLossStopsAndKeepsTheLastGoodCheckpoint() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let (engine, model) = linearEngine({ $0.steps = 20 }, out: folder.path, nanAtCall: 7)
        var stopped: String?
        do { _ = try engine.run() } catch let e as TrainingError { stopped = e.description }
        #expect(stopped?.hasPrefix("training diverged: loss is nan at step 7;") == true, "\(stopped ?? "no error")")
        // The last checkpoint is the evaluation at step 4, with its weights, not the diverged ones.
        let last = try ModelCheckpoint<LinearModel.Config>.read(path: engine.lastPath, format: LinearModel.format)
        #expect(last.metadata["step"] == "4")
        // ... the same weights as a run that ends at step 4.
        let (reference, _) = linearEngine({ $0.steps = 4 }, out: folder.path + "/reference")
        _ = try reference.run()
        let four = try ModelCheckpoint<LinearModel.Config>.read(path: reference.lastPath, format: LinearModel.format)
        #expect(last.tensors.map { $0.values.map(\.bitPattern) } == four.tensors.map { $0.values.map(\.bitPattern) })
        #expect(model.calls == 7)
        let log = try String(contentsOfFile: engine.logPath, encoding: .utf8).split(separator: "\n")
        #expect(log.count == 2)   // header and step 4
    }

    @Test func strictCheckpointErrorsNameTensorAndFile() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
        let path = folder.path + "/m.safetensors"
        func write(_ tensors: [NamedTensor], format: String = "test/linear/1", config: String = "{\"inputs\":2}") throws {
            try SafeTensors.write(tensors, metadata: ["format": format, "config": config], to: path)
        }
        func message() -> String {
            do { try LinearModel().loadCheckpoint(from: path); return "no error" } catch { return "\(error)" }
        }
        let w = NamedTensor(name: "w", shape: [2], values: [1, 2]), b = NamedTensor(name: "b", shape: [1], values: [3])
        try write([w, b])
        #expect(message() == "no error")
        try write([w])
        #expect(message() == "\(path): tensor 'b' is missing")
        try write([w, b, NamedTensor(name: "extra", shape: [1], values: [0])])
        #expect(message() == "\(path): unexpected tensor 'extra' for this configuration")
        try write([NamedTensor(name: "w", shape: [1, 2], values: [1, 2]), b])
        #expect(message() == "\(path): tensor 'w' has shape [1, 2], expected [2]")
        try write([w, b], format: "test/linear/2")
        #expect(message() == "\(path): checkpoint format is 'test/linear/2', expected 'test/linear/1'")
        try write([w, b], config: "{\"inputs\":\"two\"}")
        #expect(message().hasPrefix("\(path): metadata 'config' is not a valid configuration: 'inputs'"))
        // Writing and reading back keeps the configuration and metadata.
        let c = ModelCheckpoint(format: LinearModel.format, configuration: LinearModel.Config(inputs: 5), tensors: [w], metadata: ["k": "v"])
        try c.write(to: path)
        let r = try ModelCheckpoint<LinearModel.Config>.read(path: path, format: LinearModel.format)
        #expect(r.configuration.inputs == 5 && r.metadata == ["k": "v"] && r.tensors == [w])
    }

    @Test func fingerprintUsesFieldNames() {
        var c = TrainingConfiguration()
        c.learningRate = 0.5; c.steps = 3
        let f = c.fingerprint
        #expect(f["learning_rate"] == "0.5" && f["optimizer"] == "adam" && f["lr_schedule"] == "constant")
        #expect(f["steps"] == nil && f["out_directory"] == nil && f["resume"] == nil)
        var d = c
        d.steps = 99; d.evalEvery = 1; d.outDirectory = "elsewhere"
        #expect(TrainingFingerprint.firstDifference(saved: c.fingerprint, now: d.fingerprint) == nil)
        d.warmup = 3
        #expect(TrainingFingerprint.firstDifference(saved: c.fingerprint, now: d.fingerprint)! == ("warmup", "0", "3"))
    }
}
