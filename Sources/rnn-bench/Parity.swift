import ArgumentParser
import Foundation
import RecurrentCore

/// Errors of `rnn-bench parity`: one line naming the file and what is wrong.
enum ParityError: Error, CustomStringConvertible {
    case badInput(path: String, reason: String)

    var description: String {
        switch self {
        case .badInput(let path, let reason): return "\(path): \(reason)"
        }
    }
}

/// `rnn-bench parity`: runs a recurrent stack stored in a safetensors file on the input stored
/// with it and writes the outputs and final states, for layer-level comparison with
/// `torch.nn.RNN/LSTM/GRU` on packed sequences (`tools/torch_parity.py`).
///
/// Input file: metadata `cell` (`lstm`, `gru`, `rnn_tanh`, `rnn_relu`), `layers`, `hidden`,
/// `bidirectional` (`true`/`false`); tensors `weight_ih_l{k}[_reverse]`, `weight_hh_l{k}[_reverse]`,
/// `bias_ih_l{k}[_reverse]`, `bias_hh_l{k}[_reverse]` (PyTorch names and shapes), `input`
/// `[batch, time, features]`, optional `lengths` `[batch]` (whole numbers stored as F32, each in
/// 1...time), optional `h0` (and `c0` for LSTM) `[layers * directions, batch, hidden]`.
/// Output file: `output` `[batch, time, directions * hidden]` (zeros past each length), `h_n`
/// and for LSTM `c_n`, `[layers * directions, batch, hidden]`.
struct Parity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a stored recurrent stack on a stored input (packed-sequence semantics) and write outputs and final states.")
    @Option(help: "Safetensors file with the stack's weights, input, lengths and optional h0/c0.") var input: String
    @Option(help: "Safetensors file to write with output, h_n and c_n.") var output: String

    func run() throws {
        do {
            try runParity()
        } catch {
            FileHandle.standardError.write(Data("rnn-bench parity: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    func runParity() throws {
        let archive = try SafeTensors.read(path: input)
        let meta = archive.metadata
        func fail(_ reason: String) -> ParityError { ParityError.badInput(path: input, reason: reason) }
        guard let cellName = meta["cell"], let cell = CellKind(argument: cellName) else {
            throw fail("metadata 'cell' is missing or unknown (lstm, gru, rnn_tanh, rnn_relu)")
        }
        guard let layers = Int(meta["layers"] ?? ""), (1...64).contains(layers) else { throw fail("metadata 'layers' must be 1...64") }
        guard let hidden = Int(meta["hidden"] ?? ""), (1...65_536).contains(hidden) else { throw fail("metadata 'hidden' must be 1...65536") }
        let bidirectional = meta["bidirectional"] == "true"
        guard let x = archive.tensor("input"), x.shape.count == 3, x.shape.allSatisfy({ $0 >= 1 }) else {
            throw fail("tensor 'input' [batch, time, features] is missing or not 3-D with positive sizes")
        }
        let (B, T, I) = (x.shape[0], x.shape[1], x.shape[2])
        var lengths: [Int]? = nil
        if let l = archive.tensor("lengths") {
            guard l.shape == [B] else { throw fail("tensor 'lengths' has shape \(l.shape), expected [\(B)]") }
            var list: [Int] = []
            for v in l.values {
                guard v.isFinite, v == v.rounded(), v >= 1, v <= Float(T) else {
                    throw fail("lengths must be whole numbers in 1...\(T), got \(v)")
                }
                list.append(Int(v))
            }
            lengths = list
        }
        let D = bidirectional ? 2 : 1
        var initial: RecurrentState? = nil
        if let h0 = archive.tensor("h0") {
            guard h0.shape == [layers * D, B, hidden] else { throw fail("tensor 'h0' has shape \(h0.shape), expected \([layers * D, B, hidden])") }
            var c: [Float]? = nil
            if cell.hasCellState {
                guard let c0 = archive.tensor("c0"), c0.shape == h0.shape else { throw fail("LSTM needs 'c0' with the shape of 'h0'") }
                c = c0.values
            }
            initial = RecurrentState(h: h0.values, c: c)
        }
        var rng = SeededRandom(seed: 0)
        let stack = RecurrentStack(cell: cell, inputSize: I, hiddenSize: hidden, numLayers: layers,
                                   bidirectional: bidirectional, rng: &rng)
        for (name, p) in stack.namedParameters {
            guard let t = archive.tensor(name) else { throw fail("tensor '\(name)' is missing") }
            guard t.shape == p.shape else { throw fail("tensor '\(name)' has shape \(t.shape), expected \(p.shape)") }
            p.values = t.values
        }
        let (y, state) = stack.forward(Tensor(shape: x.shape, values: x.values), lengths: lengths, initial: initial,
                                       training: false, rng: &rng)
        var out = [NamedTensor(name: "output", shape: y.shape, values: y.values),
                   NamedTensor(name: "h_n", shape: [layers * D, B, hidden], values: state.h)]
        if let c = state.c { out.append(NamedTensor(name: "c_n", shape: [layers * D, B, hidden], values: c)) }
        try SafeTensors.write(out, metadata: ["format": "rnn-suite/parity-output/1"], to: output)
        print("wrote \(output): output \(y.shape)")
    }
}

/// `rnn-bench ctc-parity`: the CTC loss and its gradient with respect to the logits, for
/// comparison with `torch.nn.functional.ctc_loss` (`tools/torch_parity.py`).
///
/// Input file: tensors `logits` `[batch, time, classes]` (raw scores, class 0 the blank),
/// `input_lengths` `[batch]`, `targets` `[batch, max_target]` (labels in 1..<classes, padded),
/// `target_lengths` `[batch]` (whole numbers stored as F32); metadata `reduction` (`mean` or
/// `sum`) and `zero_infinity` (`true`/`false`). Output file: `loss` `[1]`, `grad` (the
/// logits' shape).
struct CTCParity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctc-parity",
        abstract: "Compute the CTC loss of stored logits and targets and write the loss and the logits' gradient.")
    @Option(help: "Safetensors file with logits, input_lengths, targets and target_lengths.") var input: String
    @Option(help: "Safetensors file to write with loss and grad.") var output: String

    func run() throws {
        do {
            try runCTC()
        } catch {
            FileHandle.standardError.write(Data("rnn-bench ctc-parity: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    func runCTC() throws {
        let archive = try SafeTensors.read(path: input)
        func fail(_ reason: String) -> ParityError { ParityError.badInput(path: input, reason: reason) }
        func wholeNumbers(_ name: String, count: Int, range: ClosedRange<Int>) throws -> [Int] {
            guard let t = archive.tensor(name), t.values.count == count else { throw fail("tensor '\(name)' must hold \(count) values") }
            return try t.values.map { v in
                guard v.isFinite, v == v.rounded(), range.contains(Int(v)) else { throw fail("'\(name)' must hold whole numbers in \(range), got \(v)") }
                return Int(v)
            }
        }
        guard let logits = archive.tensor("logits"), logits.shape.count == 3, logits.shape.allSatisfy({ $0 >= 1 }), logits.shape[2] >= 2 else {
            throw fail("tensor 'logits' [batch, time, classes >= 2] is missing or malformed")
        }
        let (B, T, C) = (logits.shape[0], logits.shape[1], logits.shape[2])
        let inputLengths = try wholeNumbers("input_lengths", count: B, range: 0...T)
        guard let padded = archive.tensor("targets"), padded.shape.count == 2, padded.shape[0] == B else {
            throw fail("tensor 'targets' [batch, max_target] is missing or malformed")
        }
        let width = padded.shape[1]
        let targetLengths = try wholeNumbers("target_lengths", count: B, range: 0...width)
        var targets: [[Int32]] = []
        for b in 0..<B {
            let row = padded.values[(b * width)..<(b * width + targetLengths[b])]
            guard row.allSatisfy({ $0 == $0.rounded() && $0 >= 1 && $0 < Float(C) }) else { throw fail("targets of row \(b) must be labels in 1..<\(C)") }
            targets.append(row.map { Int32($0) })
        }
        let reduction: CTC.Reduction
        switch archive.metadata["reduction"] ?? "mean" {
        case "mean": reduction = .mean
        case "sum": reduction = .sum
        case let other: throw fail("metadata 'reduction' must be mean or sum, got '\(other)'")
        }
        let zeroInfinity = archive.metadata["zero_infinity"] == "true"
        var grad = [Float](repeating: 0, count: logits.values.count)
        let loss = logits.values.withUnsafeBufferPointer { lp in
            grad.withUnsafeMutableBufferPointer { gp in
                CTC.batchLoss(logits: lp.baseAddress!, batch: B, time: T, classes: C, inputLengths: inputLengths, targets: targets,
                              reduction: reduction, zeroInfinity: zeroInfinity, gradLogits: gp.baseAddress!).loss
            }
        }
        try SafeTensors.write([NamedTensor(name: "loss", shape: [1], values: [Float(loss)]),
                               NamedTensor(name: "grad", shape: logits.shape, values: grad)],
                              metadata: ["format": "rnn-suite/ctc-parity-output/1"], to: output)
        print("wrote \(output): loss \(loss)")
    }
}
