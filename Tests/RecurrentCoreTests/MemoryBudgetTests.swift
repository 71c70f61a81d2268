import Foundation
import Testing
import TestSupport
@testable import RecurrentCore

/// Values actually allocated for the weights of `parameters` (a tied weight counted once).
func allocatedValues(_ parameters: [Parameter]) -> Double {
    var seen = Set<ObjectIdentifier>()
    var total = 0
    for p in parameters where seen.insert(ObjectIdentifier(p)).inserted { total += p.count }
    return Double(total)
}

@Suite struct MemoryBudgetTests {
    /// The estimate counts exactly the values the models allocate, over cells, layers,
    /// one-hot input, tied weights, projections and both directions.
    @Test func parameterCountsMatchTheAllocatedModels() {
        for cell in CellKind.allCases {
            for (layers, embedding, tie) in [(1, 5, false), (2, 0, false), (3, 6, true)] {
                let c = LanguageModelConfig(cell: cell, layers: layers, hidden: 6, embedding: embedding, vocabSize: 7, tieWeights: tie)
                let model = RecurrentLanguageModel(config: c, seed: 1, threads: 2)
                #expect(c.memoryEstimate(batch: 2, steps: 3, threads: 2).parameters == allocatedValues(model.parameters), "\(c)")
            }
            for (projection, bidirectional, layers) in [(0, false, 1), (4, true, 2), (3, false, 3)] {
                let c = SequenceClassifierConfig(inputSize: 5, projection: projection, cell: cell, layers: layers, hidden: 4,
                                                 bidirectional: bidirectional, classes: 3)
                let model = SequenceClassifier(config: c, seed: 1)
                #expect(c.memoryEstimate(batch: 2, steps: 3, threads: 1).parameters == allocatedValues(model.parameters), "\(c)")
            }
        }
    }

    /// Worked by hand: an LSTM language model, V = 7, E = 5, H = 3, one layer.
    /// Embedding 7·5 = 35; LSTM 4·3·(5 + 3) + 2·4·3 = 120; decoder 3·7 + 7 = 28; 183 in all.
    /// Training with Adam on 2 threads: 4 bytes × (183 × (1 + 2 + 2 + 2·3) + workspace).
    @Test func aSmallEstimateWorkedByHand() {
        let c = LanguageModelConfig(cell: .lstm, layers: 1, hidden: 3, embedding: 5, vocabSize: 7)
        let e = c.memoryEstimate(batch: 2, steps: 4, threads: 2)
        #expect(e.parameters == 183 && e.gradientCopies == 2)
        // Workspace: 8 rows·steps × (gates 2·4·3 + states 4·3 + input 2·5) + 8 × (3·5 + 2·7 + 2·3).
        let workspace: Double = 8 * 46 + 8 * 35
        #expect(e.workspace == workspace)
        #expect(e.trainingBytes(optimizerSlots: 2) == 4 * (183 * 11 + e.workspace))
    }

    @Test func availableMemoryIsBoundedByPhysicalMemoryAndNamesItsLimit() throws {
        let (bytes, limit) = MemoryBudget.available()
        let physical = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
        #expect(bytes > 0 && bytes <= physical)
        #expect(limit.contains("physical memory") || limit.contains("limit"))
        try MemoryBudget.require(1_048_576, for: "a small model")
        var message = "no error"
        do { try MemoryBudget.require(physical * 2, for: "the model (9 parameters)", hint: "--hidden") } catch { message = "\(error)" }
        #expect(message.hasPrefix("the model (9 parameters) needs about \(MemoryBudget.text(physical * 2)) of memory but "))
        #expect(message.hasSuffix("; use a smaller --hidden"))
        #expect(MemoryBudget.text(1536) == "1.5 KiB" && MemoryBudget.text(3 * 1_073_741_824) == "3.0 GiB" && MemoryBudget.text(12) == "12 bytes")
    }

    /// An absurd configuration neither overflows nor traps: the count is a Double.
    @Test func absurdSizesGiveHugeFiniteEstimates() {
        let c = LanguageModelConfig(cell: .lstm, layers: 100_000, hidden: 1_000_000, embedding: 10_000_000, vocabSize: 1 << 20)
        let e = c.memoryEstimate(batch: 1 << 20, steps: 1 << 20, threads: 64)
        #expect(e.parameters > 4e17 && e.trainingBytes(optimizerSlots: 2).isFinite)
        #expect(throws: MemoryError.self) { try MemoryBudget.require(e.trainingBytes(optimizerSlots: 2), for: "x") }
    }
}

/// Runs `tool` with `arguments` under a virtual-memory limit of `kilobytes` (`ulimit -v`).
func runLimited(kilobytes: Int, _ tool: String, _ arguments: [String]) throws -> ProcessResult {
    try runProcess("/bin/sh", ["-c", "ulimit -v \(kilobytes) && exec \"$0\" \"$@\"", tool] + arguments)
}

@Suite(.enabled(if: builtExecutable("rnn-bench") != nil, "rnn-bench is not built next to the test bundle"))
struct BenchMemoryCheckTests {
    let bench = builtExecutable("rnn-bench") ?? "rnn-bench"

    /// A model that cannot fit is refused at once, in one line with both figures, exit 1.
    @Test func oversizedModelsAreRefusedInOneLine() throws {
        for args in [["train", "--hidden", "1000000"], ["sample", "--hidden", "1000000"], ["train", "--layers", "100000"]] {
            let start = Date()
            let r = try runProcess(bench, args)
            #expect(Date().timeIntervalSince(start) < 20)
            #expect(r.status == 1 && r.stdout.isEmpty, "\(args): \(r.stderr)")
            #expect(r.stderr.hasPrefix("rnn-bench: the model (") && r.stderr.contains(" parameters) needs about ")
                    && r.stderr.contains(" of memory but ") && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
        // Under a 2 GB process limit a 20000-unit model (6 GB of weights alone) is refused naming the limit.
        let limited = try runLimited(kilobytes: 2_000_000, bench, ["train", "--hidden", "20000", "--layers", "1"])
        #expect(limited.status == 1 && limited.stderr.contains("is available (process limit RLIMIT_AS; physical memory "), "\(limited.stderr)")
    }
}
