import Foundation
import Testing
@testable import RecurrentCore

/// What a run folder holds after a crash, and what resuming accepts.
@Suite struct CrashConsistencyTests {
    let setup: (inout TrainingConfiguration) -> Void = { $0.steps = 12; $0.optimizer = .adam; $0.learningRate = 0.05 }

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// A run stopped after `last.safetensors` of the step-8 save was in place but before its
    /// resume file was: the folder pairs step-8 weights with the step-4 state. Resuming
    /// continues from step 4 (the one complete save) and ends exactly where an uninterrupted
    /// run does; `last.safetensors` is rewritten to match first.
    @Test func resumeAfterAStopBetweenTheTwoWritesMatchesTheUninterruptedRun() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let (full, fullModel) = linearEngine(setup, out: folder.path + "/full")
        let a = try full.run()
        let out = folder.path + "/split"
        let (first, _) = linearEngine({ setup(&$0); $0.steps = 4 }, out: out)
        _ = try first.run()
        let stateAt4 = try bytes(first.statePath)
        let (second, _) = linearEngine({ setup(&$0); $0.steps = 8; $0.resume = true }, out: out)
        _ = try second.run()
        try stateAt4.write(to: URL(fileURLWithPath: first.statePath))
        #expect(try SafeTensors.read(path: first.lastPath).metadata["step"] == "8")

        var messages: [String] = []
        let (third, model) = linearEngine({ setup(&$0); $0.resume = true }, out: out)
        third.progressOutput = { messages.append($0) }
        let b = try third.run()
        #expect(b.stepLosses == Array(a.stepLosses.suffix(8)))
        #expect(model.w.values == fullModel.w.values && model.b.values == fullModel.b.values)
        #expect(messages.contains { $0.contains("\(out)/last.safetensors was not from the save in \(out)/last.train.safetensors") })
        #expect(messages.contains { $0.contains("resuming from \(out)/last.train.safetensors at step 4") })
    }

    /// `last.safetensors` from the same step of another run (same step number, other weights):
    /// the save id tells them apart, and the resume uses the state's own weights.
    @Test func aCheckpointOfTheSameStepFromAnotherSaveIsNotPairedWithTheState() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let (full, fullModel) = linearEngine(setup, out: folder.path + "/full")
        let a = try full.run()
        let out = folder.path + "/split"
        let (first, _) = linearEngine({ setup(&$0); $0.steps = 4 }, out: out)
        _ = try first.run()
        try ModelCheckpoint(format: LinearModel.format, configuration: LinearModel.Config(),
                            tensors: [NamedTensor(name: "w", shape: [2], values: [9, 9]), NamedTensor(name: "b", shape: [1], values: [9])],
                            metadata: ["step": "4"]).write(to: first.lastPath)
        let (second, model) = linearEngine({ setup(&$0); $0.resume = true }, out: out)
        let b = try second.run()
        #expect(b.stepLosses == Array(a.stepLosses.suffix(8)))
        #expect(model.w.values == fullModel.w.values && model.b.values == fullModel.b.values)
    }

    /// Rewrites the resume file of `engine` with `change` applied to its metadata and tensors.
    func tamper(_ path: String, metadata change: (inout [String: String]) -> Void = { _ in },
                tensors changeTensors: (inout [NamedTensor]) -> Void = { _ in }) throws {
        let st = try SafeTensors.read(path: path)
        var meta = st.metadata, tensors = st.tensors
        change(&meta)
        changeTensors(&tensors)
        try SafeTensors.write(tensors, metadata: meta, to: path)
    }

    /// Each corruption of the resume file is refused with one line naming the file and the
    /// field or tensor, and nothing in the folder changes.
    @Test func corruptTrainingStatesAreRefusedNamingFileAndField() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let (first, _) = linearEngine({ setup(&$0); $0.steps = 4 }, out: folder.path)
        _ = try first.run()
        let path = first.statePath
        let good = try bytes(path), goodLast = try bytes(first.lastPath)
        let cases: [(String, ((inout [String: String]) -> Void)?, ((inout [NamedTensor]) -> Void)?)] = [
            ("\(path): metadata 'step' is '2147483647', not a step count", { $0["step"] = "2147483647"; $0["optimizer_steps"] = "2147483647" }, nil),
            ("\(path): metadata 'step' is missing", { $0["step"] = nil }, nil),
            ("\(path): metadata 'step' is '-3', not a step count", { $0["step"] = "-3" }, nil),
            ("\(path): metadata 'step' is 4 but 'optimizer_steps' is 9; the file is inconsistent", { $0["optimizer_steps"] = "9" }, nil),
            ("\(path): metadata 'optimizer_steps' is missing", { $0["optimizer_steps"] = nil }, nil),
            ("\(path): metadata 'step' is 40, beyond this run's budget of 12 steps; cannot --resume",
             { $0["step"] = "40"; $0["optimizer_steps"] = "40" }, nil),
            ("\(path): metadata 'save_id' is missing", { $0["save_id"] = nil }, nil),
            ("\(path): metadata 'position' is missing or invalid", { $0["position"] = "{\"epoch\":-1,\"batch\":0}" }, nil),
            ("\(path): tensor 'optimizer.exp_avg.1' holds nan at element 0; a checkpoint must hold finite numbers", nil, {
                if let i = $0.firstIndex(where: { $0.name == "optimizer.exp_avg.1" }) { $0[i].values[0] = .nan }
            }),
            ("\(path): the weights do not match metadata 'parameters_hash'; the file is damaged", nil, {
                if let i = $0.firstIndex(where: { $0.name == "parameter.0" }) { $0[i].values[1] += 1 }
            }),
            ("\(path): optimizer state 'exp_avg.1' is missing", nil, { $0.removeAll { $0.name == "optimizer.exp_avg.1" } }),
        ]
        for (expected, meta, tensors) in cases {
            try good.write(to: URL(fileURLWithPath: path))
            try tamper(path, metadata: meta ?? { _ in }, tensors: tensors ?? { _ in })
            let tampered = try bytes(path)
            let (engine, _) = linearEngine({ setup(&$0); $0.resume = true }, out: folder.path)
            var message = "no error"
            do { _ = try engine.run() } catch { message = "\(error)" }
            #expect(message == expected)
            #expect(try bytes(path) == tampered && (try bytes(first.lastPath)) == goodLast)
        }
    }

    /// A NaN in a model checkpoint is refused on loading, naming the file and the tensor.
    @Test func nonFiniteCheckpointValuesAreRefused() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
        let path = folder.path + "/m.safetensors"
        for bad in [Float.nan, .infinity, -.infinity] {
            try SafeTensors.write([NamedTensor(name: "w", shape: [2], values: [1, 2]), NamedTensor(name: "b", shape: [1], values: [bad])],
                                  metadata: ["format": "test/linear/1", "config": "{\"inputs\":2}"], to: path)
            var message = "no error"
            do { try LinearModel().loadCheckpoint(from: path) } catch { message = "\(error)" }
            #expect(message == "\(path): tensor 'b' holds \(bad) at element 0; a checkpoint must hold finite numbers")
        }
    }

    /// Temporary files of dead processes go when a run starts in their folder; those of a live
    /// process and other names stay.
    @Test func staleTemporariesOfDeadProcessesAreRemoved() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
        let ended = Process()
        ended.executableURL = URL(fileURLWithPath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        let dead = ended.processIdentifier
        let names = [".last.safetensors.tmp-\(dead)-k3x9", ".last.train.safetensors.tmp-\(dead)-0a", ".log.csv.tmp-\(dead)-zz",
                     ".last.safetensors.tmp-\(getpid())-k3x9", ".last.safetensors.tmp-1-k3x9", ".notes.tmp-x", "keep.tmp-\(dead)-ab"]
        for n in names { try Data([1, 2, 3]).write(to: URL(fileURLWithPath: folder.path + "/" + n)) }
        var messages: [String] = []
        let (engine, _) = linearEngine({ $0.steps = 1 }, out: folder.path)
        engine.progressOutput = { messages.append($0) }
        _ = try engine.run()
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: folder.path))
        #expect(left.isDisjoint(with: names.prefix(3)))
        #expect(left.isSuperset(of: names.suffix(4)))
        #expect(messages.contains { $0.contains("removed 3 temporary file(s) left in \(folder.path) by a stopped run") })
        #expect(AtomicFile.temporaryOwner(".a.tmp-12-x") == 12 && AtomicFile.temporaryOwner(".a.tmp-12") == nil
                && AtomicFile.temporaryOwner("a.tmp-12-x") == nil && AtomicFile.temporaryOwner(".a.tmp-12-X") == nil)
    }
}

/// Divergence seen at an evaluation, and losses that grow huge without overflowing.
@Suite struct DivergenceTests {
    /// A linear-model run whose validation loss is `figures[k]` at its k-th evaluation.
    func engine(out: String, steps: Int, figures: [Double]) -> TrainingEngine<LinearModel> {
        var c = TrainingConfiguration()
        c.optimizer = .sgd; c.learningRate = 0.1; c.evalEvery = 2; c.threads = 1; c.steps = steps; c.outDirectory = out
        let model = LinearModel()
        var k = 0
        let evaluation = TrainingEvaluation(metricNames: ["val_loss"], validationMetric: "val_loss", direction: .lowerIsBetter) {
            defer { k += 1 }
            return ["val_loss": figures[min(k, figures.count - 1)]]
        }
        let task = TrainingTask(label: "linear", model: model, data: PairSource(), evaluation: evaluation, fingerprint: [:])
        return TrainingEngine(configuration: c, task: task)
    }

    /// A NaN validation loss at step 6 stops the run with one error and saves nothing more:
    /// `last.safetensors` stays the step-4 save, `best.safetensors` the best finite one (step 2).
    @Test func aNonFiniteValidationLossStopsBeforeSaving() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let e = engine(out: folder.path, steps: 10, figures: [0.5, 0.7, .nan, 0.1])
        var messages: [String] = []
        e.progressOutput = { messages.append($0) }
        var stopped = "no error"
        do { _ = try e.run() } catch { stopped = "\(error)" }
        #expect(stopped.hasPrefix("training diverged: val_loss is nan after step 6; "), "\(stopped)")
        #expect(try SafeTensors.read(path: e.lastPath).metadata["step"] == "4")
        #expect(try SafeTensors.read(path: e.bestPath).metadata["step"] == "2")
        #expect(try SafeTensors.read(path: e.statePath).metadata["step"] == "4")
        let log = try String(contentsOfFile: e.logPath, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",")[0] }
        #expect(log == ["step", "2", "4"])
        #expect(!messages.contains { $0.contains("diverged") })
    }

    /// A first evaluation already non-finite leaves no checkpoint at all (none was good).
    @Test func aFirstEvaluationThatIsInfiniteLeavesNothing() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let e = engine(out: folder.path, steps: 10, figures: [.infinity])
        #expect(throws: TrainingError.self) { try e.run() }
        #expect(!FileManager.default.fileExists(atPath: e.lastPath) && !FileManager.default.fileExists(atPath: e.bestPath))
    }

    /// A finite loss 1000 times the first step's gets one warning line; the run goes on.
    @Test func aHugeFiniteLossGivesOneWarning() throws {
        let folder = EngineFolder()
        defer { folder.cleanUp() }
        let e = engine(out: folder.path, steps: 8, figures: [0.5, 3e30, 4e30, 1])
        var messages: [String] = []
        e.progressOutput = { messages.append($0) }
        let s = try e.run()
        #expect(s.steps == 8 && s.bestStep == 2)
        let warnings = messages.filter { $0.contains("warning") }
        #expect(warnings.count == 1, "\(messages)")
        #expect(warnings.first?.hasPrefix("linear: warning: val_loss 3e+30 at step 4 is over 1000 times the first step's training loss (") == true,
                "\(warnings)")
        // An ordinary run has none.
        let calm = engine(out: folder.path + "/calm", steps: 8, figures: [0.5, 0.4])
        var calmMessages: [String] = []
        calm.progressOutput = { calmMessages.append($0) }
        _ = try calm.run()
        #expect(!calmMessages.contains { $0.contains("warning") })
    }
}
