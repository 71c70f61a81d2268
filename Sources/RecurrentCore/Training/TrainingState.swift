import Foundation

/// The resume file `last.train.safetensors`: optimizer slots (`optimizer.<slot>.<i>`),
/// carried state (`state.<name>`), and in the metadata the step, data position, training time,
/// best metric and the run's fingerprint. Written after `last.safetensors` at the same step.
struct TrainingState {
    static let format = "rnn-suite/train-state/1"

    var step: Int
    var optimizerSteps: Int
    var position: BatchPosition
    var trainSeconds: Double
    var wallSeconds: Double
    var best: Double
    var bestStep: Int
    var fingerprint: [String: String]
    var optimizer: [String: [Float]]
    var carried: [NamedTensor]

    func write(to path: String) throws {
        var tensors = optimizer.keys.sorted().map { NamedTensor(name: "optimizer." + $0, shape: [optimizer[$0]!.count], values: optimizer[$0]!) }
        tensors += carried.map { NamedTensor(name: "state." + $0.name, shape: $0.shape, values: $0.values) }
        let pos = String(decoding: try JSONEncoder().encode(position), as: UTF8.self)
        let meta = ["format": Self.format, "step": "\(step)", "optimizer_steps": "\(optimizerSteps)", "position": pos,
                    "train_seconds": String(format: "%.6f", trainSeconds), "seconds": String(format: "%.6f", wallSeconds),
                    "best": best.isNaN ? "nan" : best.isInfinite ? (best > 0 ? "inf" : "-inf") : String(format: "%.17g", best),
                    "best_step": "\(bestStep)", "fingerprint": TrainingFingerprint.encode(fingerprint)]
        try SafeTensors.write(tensors, metadata: meta, to: path)
    }

    static func read(path: String) throws -> TrainingState {
        let st = try SafeTensors.read(path: path)
        func bad(_ what: String) -> ModelLoadError { .badMetadata(path, what) }
        guard st.metadata["format"] == format else {
            throw bad("not a training state this version can resume (format '\(st.metadata["format"] ?? "none")', expected '\(format)')")
        }
        guard let step = Int(st.metadata["step"] ?? ""), step >= 0 else { throw bad("metadata 'step' is missing or invalid") }
        guard let posText = st.metadata["position"],
              let position = try? JSONDecoder().decode(BatchPosition.self, from: Data(posText.utf8)) else {
            throw bad("metadata 'position' is missing or invalid")
        }
        var optimizer: [String: [Float]] = [:], carried: [NamedTensor] = []
        for t in st.tensors {
            if t.name.hasPrefix("optimizer.") { optimizer[String(t.name.dropFirst(10))] = t.values }
            else if t.name.hasPrefix("state.") { carried.append(NamedTensor(name: String(t.name.dropFirst(6)), shape: t.shape, values: t.values)) }
        }
        let bestText = st.metadata["best"] ?? "nan"
        let best: Double = bestText == "inf" ? .infinity : bestText == "-inf" ? -.infinity : Double(bestText) ?? .nan
        return TrainingState(step: step, optimizerSteps: Int(st.metadata["optimizer_steps"] ?? "") ?? step, position: position,
                             trainSeconds: Double(st.metadata["train_seconds"] ?? "") ?? 0,
                             wallSeconds: Double(st.metadata["seconds"] ?? "") ?? 0, best: best,
                             bestStep: Int(st.metadata["best_step"] ?? "") ?? 0,
                             fingerprint: TrainingFingerprint.decode(st.metadata["fingerprint"] ?? ""),
                             optimizer: optimizer, carried: carried)
    }
}

/// Errors of resuming a run.
public enum TrainingResumeError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The output folder holds no complete saved run.
    case nothingToResume(path: String)
    /// A setting differs from the saved run's (`field` is the configuration field name).
    case configurationDiffers(path: String, field: String, saved: String, now: String)
    /// The checkpoint and the resume file are from different steps (a run killed between them).
    case stepMismatch(path: String, checkpointStep: String, stateStep: Int)

    /// One line naming the file and what is wrong.
    public var description: String {
        switch self {
        case .nothingToResume(let p): return "\(p): no saved run to --resume from"
        case let .configurationDiffers(p, f, s, n):
            return "\(p): cannot --resume: setting '\(f)' was \(s) in the saved run, now \(n); use the same settings or another --out"
        case let .stepMismatch(p, c, s):
            return "\(p): checkpoint is from step \(c) but the training state from step \(s); cannot --resume"
        }
    }
}
