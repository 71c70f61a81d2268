import Foundation

/// The resume file `last.train.safetensors`: everything resuming needs, in one file that is
/// replaced atomically, so a crash can never pair the parts of two different saves. It holds
/// the weights (`parameter.<i>`, in the order of the model's `parameters`), optimizer slots
/// (`optimizer.<slot>.<i>`), carried state (`state.<name>`), and in the metadata the step, the
/// optimizer's step count, data position, training time, best metric, the run's fingerprint,
/// the save's id (`save_id`, also written into `last.safetensors` of the same save) and a
/// hash of the weights (`parameters_hash`, FNV-1a over the values' bits).
struct TrainingState {
    static let format = "rnn-suite/train-state/2"

    var step: Int
    var optimizerSteps: Int
    var position: BatchPosition
    var trainSeconds: Double
    var wallSeconds: Double
    var best: Double
    var bestStep: Int
    var fingerprint: [String: String]
    var saveID: String
    var parameters: [NamedTensor]
    var optimizer: [String: [Float]]
    var carried: [NamedTensor]
    /// Evaluations since the best one (for `--patience`); metadata `evaluations_since_best`,
    /// 0 when absent.
    var evaluationsSinceBest = 0

    /// The hash recorded as `parameters_hash`: 64-bit FNV-1a over the bit patterns of all
    /// values, tensor after tensor.
    static func parametersHash<S: Sequence>(_ tensors: S) -> UInt64 where S.Element == [Float] {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for values in tensors {
            for v in values {
                var bits = v.bitPattern
                for _ in 0..<4 { h = (h ^ UInt64(bits & 0xff)) &* 0x100_0000_01b3; bits >>= 8 }
            }
        }
        return h
    }

    func write(to path: String) throws {
        var tensors = parameters.enumerated().map { NamedTensor(name: "parameter.\($0.offset)", shape: $0.element.shape, values: $0.element.values) }
        tensors += optimizer.keys.sorted().map { NamedTensor(name: "optimizer." + $0, shape: [optimizer[$0]!.count], values: optimizer[$0]!) }
        tensors += carried.map { NamedTensor(name: "state." + $0.name, shape: $0.shape, values: $0.values) }
        let pos = String(decoding: try JSONEncoder().encode(position), as: UTF8.self)
        let meta = ["format": Self.format, "step": "\(step)", "optimizer_steps": "\(optimizerSteps)", "position": pos,
                    "train_seconds": String(format: "%.6f", trainSeconds), "seconds": String(format: "%.6f", wallSeconds),
                    "best": best.isNaN ? "nan" : best.isInfinite ? (best > 0 ? "inf" : "-inf") : String(format: "%.17g", best),
                    "best_step": "\(bestStep)", "fingerprint": TrainingFingerprint.encode(fingerprint), "save_id": saveID,
                    "parameters_hash": String(Self.parametersHash(parameters.map(\.values)), radix: 16),
                    "evaluations_since_best": "\(evaluationsSinceBest)"]
        try SafeTensors.write(tensors, metadata: meta, to: path)
    }

    /// Reads and checks a resume file: every field present and well-formed, the weights
    /// matching their hash, every value finite, the step equal to the optimizer's step count.
    /// - Throws: `ModelLoadError` naming the file and the field or tensor.
    static func read(path: String) throws -> TrainingState {
        let st = try SafeTensors.read(path: path)
        func bad(_ what: String) -> ModelLoadError { .badMetadata(path, what) }
        let meta = st.metadata
        guard meta["format"] == format else {
            throw bad("not a training state this version can resume (format '\(meta["format"] ?? "none")', expected '\(format)')")
        }
        func count(_ key: String) throws -> Int {
            guard let text = meta[key] else { throw bad("metadata '\(key)' is missing") }
            // Steps are counted in Int32 range everywhere else (progress, logs): a larger value is corrupt.
            guard let n = Int(text), n >= 0, n < Int(Int32.max) else { throw bad("metadata '\(key)' is '\(text)', not a step count") }
            return n
        }
        func seconds(_ key: String) throws -> Double {
            guard let text = meta[key] else { throw bad("metadata '\(key)' is missing") }
            guard let x = Double(text), x >= 0, x.isFinite else { throw bad("metadata '\(key)' is '\(text)', not a number of seconds") }
            return x
        }
        let step = try count("step")
        let optimizerSteps = try count("optimizer_steps")
        guard optimizerSteps == step else {
            throw bad("metadata 'step' is \(step) but 'optimizer_steps' is \(optimizerSteps); the file is inconsistent")
        }
        let bestStep = try count("best_step")
        guard bestStep <= step else { throw bad("metadata 'best_step' is \(bestStep), after 'step' \(step)") }
        guard let posText = meta["position"],
              let position = try? JSONDecoder().decode(BatchPosition.self, from: Data(posText.utf8)),
              position.epoch >= 0, position.batch >= 0 else {
            throw bad("metadata 'position' is missing or invalid")
        }
        guard let bestText = meta["best"] else { throw bad("metadata 'best' is missing") }
        // "nan" (no evaluation), "inf" and "-inf" (no evaluation yet) are valid.
        guard let best = Double(bestText) else { throw bad("metadata 'best' is '\(bestText)', not a number") }
        guard let saveID = meta["save_id"], !saveID.isEmpty else { throw bad("metadata 'save_id' is missing") }
        guard let fpText = meta["fingerprint"] else { throw bad("metadata 'fingerprint' is missing") }
        try requireFiniteTensors(st.tensors, source: path)
        var parameters: [NamedTensor] = [], optimizer: [String: [Float]] = [:], carried: [NamedTensor] = []
        for t in st.tensors {
            if t.name.hasPrefix("parameter.") {
                guard Int(t.name.dropFirst(10)) == parameters.count else { throw bad("tensor '\(t.name)' is out of order") }
                parameters.append(t)
            } else if t.name.hasPrefix("optimizer.") {
                optimizer[String(t.name.dropFirst(10))] = t.values
            } else if t.name.hasPrefix("state.") {
                carried.append(NamedTensor(name: String(t.name.dropFirst(6)), shape: t.shape, values: t.values))
            } else {
                throw ModelLoadError.unexpectedTensor(path, t.name)
            }
        }
        guard let hashText = meta["parameters_hash"] else { throw bad("metadata 'parameters_hash' is missing") }
        guard UInt64(hashText, radix: 16) == parametersHash(parameters.map(\.values)) else {
            throw bad("the weights do not match metadata 'parameters_hash'; the file is damaged")
        }
        let sinceBest = meta["evaluations_since_best"] == nil ? 0 : try count("evaluations_since_best")
        return TrainingState(step: step, optimizerSteps: optimizerSteps, position: position,
                             trainSeconds: try seconds("train_seconds"), wallSeconds: try seconds("seconds"), best: best,
                             bestStep: bestStep, fingerprint: TrainingFingerprint.decode(fpText), saveID: saveID,
                             parameters: parameters, optimizer: optimizer, carried: carried, evaluationsSinceBest: sinceBest)
    }
}

/// Errors of resuming a run.
public enum TrainingResumeError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The output folder holds no complete saved run.
    case nothingToResume(path: String)
    /// A setting differs from the saved run's (`field` is the configuration field name).
    case configurationDiffers(path: String, field: String, saved: String, now: String)
    /// Settings differ from the saved run's: every one, as (option, saved, now).
    case settingsDiffer(path: String, differences: [TrainingFingerprint.Difference])
    /// The saved run is already past this run's budget in steps.
    case beyondBudget(path: String, step: Int, budget: Int)

    /// One line naming the file and what is wrong.
    public var description: String {
        switch self {
        case .nothingToResume(let p): return "\(p): no saved run to --resume from"
        case let .configurationDiffers(p, f, s, n):
            return "\(p): cannot --resume: setting '\(f)' was \(s) in the saved run, now \(n); use the same settings or another --out"
        case let .settingsDiffer(p, d):
            let list = d.map { "\($0.option) (was \($0.saved), now \($0.now))" }.joined(separator: ", ")
            return "\(p): cannot --resume: \(d.count == 1 ? "this setting differs" : "these settings differ") from the saved run: \(list); "
                + "leave \(d.count == 1 ? "it" : "them") out to continue the run, or start a new one (--init-from \(p)/best.safetensors to start from its weights)"
        case let .beyondBudget(p, s, b):
            return "\(p): metadata 'step' is \(s), beyond this run's budget of \(b) steps; cannot --resume"
        }
    }
}
