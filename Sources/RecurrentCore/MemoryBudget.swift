#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// What a model needs in memory, computed from its configuration before anything is allocated.
/// Counts are `Double` so that absurd configurations (`--hidden 1000000`) cannot overflow.
public struct MemoryEstimate: Sendable, Equatable {
    /// Trainable values, exactly as many as the model allocates.
    public var parameters: Double
    /// Floats of the activations and other buffers of one step, all batch shards together.
    public var workspace: Double
    /// Copies of the parameters' gradients (one per batch shard, plus any the model keeps for
    /// inference).
    public var gradientCopies: Int

    /// An estimate.
    public init(parameters: Double, workspace: Double, gradientCopies: Int) {
        self.parameters = parameters
        self.workspace = workspace
        self.gradientCopies = gradientCopies
    }

    /// Bytes of a training run with an optimizer keeping `optimizerSlots` values per parameter:
    /// the values, the gradients, the slots, the workspace, and the resume file being written
    /// (weights and slots as arrays and as encoded bytes).
    public func trainingBytes(optimizerSlots: Int) -> Double {
        4 * (parameters * Double(1 + gradientCopies + optimizerSlots + 2 * (1 + optimizerSlots)) + workspace)
    }

    /// Bytes of loading a checkpoint and running the model: the file's bytes, the decoded
    /// tensors, the model's values and gradients, the workspace.
    public var inferenceBytes: Double {
        4 * (parameters * Double(3 + gradientCopies) + workspace)
    }

    /// Trainable values of a recurrent stack (PyTorch's `nn.LSTM`/`GRU`/`RNN`): per layer and
    /// direction `gates·H·(input + H) + 2·gates·H`, the input of layers above the first being
    /// `directions·H`.
    public static func recurrentParameters(cell: CellKind, input: Int, hidden: Int, layers: Int, bidirectional: Bool) -> Double {
        let g = Double(cell.gateCount), H = Double(hidden), D = bidirectional ? 2.0 : 1.0
        var total = 0.0
        for l in 0..<max(0, layers) {
            let inputSize = l == 0 ? Double(input) : D * H
            total += D * (g * H * (inputSize + H) + 2 * g * H)
        }
        return total
    }

    /// Floats a recurrent stack keeps for one forward and backward pass over `rows` sequences
    /// of `steps`: per layer and direction the gate pre-activations and their gradients, the
    /// hidden and cell states and their gradients, and the layer's input and its gradient.
    public static func recurrentWorkspace(cell: CellKind, input: Int, hidden: Int, layers: Int, bidirectional: Bool,
                                          rows: Int, steps: Int) -> Double {
        let g = Double(cell.gateCount), H = Double(hidden), D = bidirectional ? 2.0 : 1.0
        let n = Double(max(1, rows)) * Double(max(1, steps))
        var total = 0.0
        for l in 0..<max(0, layers) {
            let inputSize = l == 0 ? Double(input) : D * H
            total += n * (D * (2 * g + 4) * H + 2 * inputSize)
        }
        return total
    }
}

/// A model that does not fit in the memory this process may use.
public struct MemoryError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What was being set up (e.g. `the model`, or a checkpoint's path).
    public var what: String
    /// Bytes it needs.
    public var needed: Double
    /// Bytes available, and where the bound comes from.
    public var available: Double
    public var limit: String
    /// The options that make it smaller, e.g. `--hidden, --layers, --embedding or --batch`.
    public var hint: String

    /// One line: what, how much it needs, how much there is and why, what to change.
    public var description: String {
        "\(what) needs about \(MemoryBudget.text(needed)) of memory but \(MemoryBudget.text(available)) is available (\(limit))"
            + (hint.isEmpty ? "" : "; use a smaller \(hint)")
    }
}

/// The memory a process may use, and the check every tool makes before allocating a model.
///
/// Available memory is the lowest of: physical memory, the process limits `RLIMIT_AS` and
/// `RLIMIT_DATA`, and the control group's `memory.max` (cgroup v2, this group and the ones
/// above it) or `memory.limit_in_bytes` (cgroup v1).
public enum MemoryBudget {
    /// The bytes available and a description of the bound that sets it.
    public static func available() -> (bytes: Double, limit: String) {
        var bounds: [(Double, String)] = []
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        if pages > 0 && pageSize > 0 { bounds.append((Double(pages) * Double(pageSize), "physical memory")) }
        for (resource, name) in [(RLIMIT_AS, "RLIMIT_AS"), (RLIMIT_DATA, "RLIMIT_DATA")] {
            var r = rlimit()
            #if canImport(Glibc)
            let got = getrlimit(__rlimit_resource_t(resource.rawValue), &r)
            #else
            let got = getrlimit(resource, &r)
            #endif
            if got == 0 && r.rlim_cur != rlim_t.max { bounds.append((Double(r.rlim_cur), "process limit \(name)")) }
        }
        if let c = controlGroupLimit() { bounds.append((c, "control group memory limit")) }
        guard let lowest = bounds.min(by: { $0.0 < $1.0 }) else { return (.infinity, "no limit known") }
        let physical = bounds.first { $0.1 == "physical memory" }
        let detail = lowest.1 == "physical memory" || physical == nil
            ? lowest.1 : "\(lowest.1); physical memory \(text(physical!.0))"
        return (lowest.0, detail)
    }

    /// The lowest `memory.max` of this process's cgroup v2 group and its parents, or the cgroup
    /// v1 memory limit; nil when there is none.
    static func controlGroupLimit() -> Double? {
        func number(_ path: String) -> Double? {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
            return Double(text.trimmingCharacters(in: .whitespacesAndNewlines))   // "max" gives nil
        }
        var limits: [Double] = []
        if let groups = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
           let line = groups.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) {
            var path = String(line.dropFirst(3))
            while true {
                if let n = number("/sys/fs/cgroup" + (path == "/" ? "" : path) + "/memory.max") { limits.append(n) }
                guard path != "/" && !path.isEmpty, let slash = path.lastIndex(of: "/") else { break }
                path = slash == path.startIndex ? "/" : String(path[..<slash])
            }
        }
        // cgroup v1 reports "no limit" as a number near 2^63.
        if let n = number("/sys/fs/cgroup/memory/memory.limit_in_bytes"), n < 1e18 { limits.append(n) }
        return limits.min()
    }

    /// Throws when `bytes` exceed what is available.
    /// - Parameters:
    ///   - what: the subject of the message (`the model`, a checkpoint's path …).
    ///   - hint: the options that make the model smaller.
    /// - Throws: `MemoryError`, one line with both figures.
    public static func require(_ bytes: Double, for what: String, hint: String = "") throws {
        let (available, limit) = available()
        if !(bytes <= available) { throw MemoryError(what: what, needed: bytes, available: available, limit: limit, hint: hint) }
    }

    /// `1.5 GiB`, `320.0 MiB`, `12 bytes`.
    public static func text(_ bytes: Double) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        if !bytes.isFinite { return "\(bytes) bytes" }
        if bytes < 1024 { return "\(Int(bytes)) bytes" }
        var value = bytes / 1024, unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return String(format: "%.1f %@", value, units[unit])
    }
}

extension OptimizerKind {
    /// Values the optimizer keeps per parameter (an upper bound: SGD's momentum buffer and
    /// RMSProp's are counted even when unused).
    public var slotCount: Int {
        switch self {
        case .sgd: return 1
        case .adam, .adamw, .rmsprop: return 2
        }
    }
}

extension LanguageModelConfig {
    /// Memory of the model, training on `batch` rows of `steps` tokens on `threads` shards:
    /// embedding `V·E`, the recurrent stack, the decoder `H·V + V` (`V` with tied weights).
    public func memoryEstimate(batch: Int, steps: Int, threads: Int) -> MemoryEstimate {
        let V = Double(vocabSize), E = Double(embedding), H = Double(hidden)
        let input = embedding > 0 ? embedding : vocabSize
        var p = (embedding > 0 ? V * E : 0) + (tieWeights ? V : H * V + V)
        p += MemoryEstimate.recurrentParameters(cell: cell, input: input, hidden: hidden, layers: layers, bidirectional: false)
        let n = Double(max(1, batch)) * Double(max(1, steps))
        let work = MemoryEstimate.recurrentWorkspace(cell: cell, input: input, hidden: hidden, layers: layers, bidirectional: false,
                                                     rows: batch, steps: steps) + n * (3 * E + 2 * V + 2 * H)
        return MemoryEstimate(parameters: p, workspace: work, gradientCopies: max(1, threads))
    }
}

extension SequenceClassifierConfig {
    /// Memory of the network, training on `batch` sequences of `steps` frames on `threads`
    /// shards: the projection `I·P + P`, the recurrent stack, the classifier `D·H·C + C`.
    public func memoryEstimate(batch: Int, steps: Int, threads: Int) -> MemoryEstimate {
        let I = Double(inputSize), P = Double(projection), C = Double(classes), D = bidirectional ? 2.0 : 1.0
        let input = projection > 0 ? projection : inputSize
        var p = (projection > 0 ? I * P + P : 0) + D * Double(hidden) * C + C
        p += MemoryEstimate.recurrentParameters(cell: cell, input: input, hidden: hidden, layers: layers, bidirectional: bidirectional)
        let n = Double(max(1, batch)) * Double(max(1, steps))
        let work = MemoryEstimate.recurrentWorkspace(cell: cell, input: input, hidden: hidden, layers: layers,
                                                     bidirectional: bidirectional, rows: batch, steps: steps)
            + n * (2 * I + 3 * P + 2 * C + 2 * D * Double(hidden))
        return MemoryEstimate(parameters: p, workspace: work, gradientCopies: max(1, threads))
    }
}
