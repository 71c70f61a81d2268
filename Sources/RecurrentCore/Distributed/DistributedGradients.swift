import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The engine's gradient exchange: after each rank's backward pass, every parameter's
/// gradient is copied into one flat buffer (with two slots saying whether this rank caught
/// SIGINT or SIGTERM, and two holding rank 0's training time), summed over the ranks in rank
/// order (`ProcessGroup.sumInRankOrder`) and copied back, so every rank holds the whole batch's
/// gradient and learns the same stop decision and the same clock for a time budget. The exchange starts after backward is done: none of it overlaps with computing.
/// A barrier first separates waiting for the slowest rank (`waitSeconds`) from the exchange
/// itself (`seconds`); on shared memory it costs microseconds.
struct DistributedGradients {
    let parameters: [Parameter]
    let group: ProcessGroup
    private var flat: [Float]
    /// Seconds spent exchanging (copies included), after every rank arrived.
    private(set) var seconds = 0.0
    /// Seconds spent waiting for the other ranks to finish their backward pass.
    private(set) var waitSeconds = 0.0

    init(parameters: [Parameter], group: ProcessGroup) {
        self.parameters = parameters
        self.group = group
        flat = group.isDistributed ? [Float](repeating: 0, count: parameters.reduce(0) { $0 + $1.count } + 4) : []
    }

    /// Sums the gradients over the ranks in place; returns the signal any rank caught and rank
    /// 0's `trainingTime` (every rank passes its own; rank 0's wins).
    mutating func sum(signal: Int32?, trainingTime: Double) -> (signal: Int32?, trainingTime: Double) {
        let arrived = ProgressReporter.monotonicSeconds()
        group.barrier()
        let t0 = ProgressReporter.monotonicSeconds()
        waitSeconds += t0 - arrived
        let (parameters, group) = (self.parameters, self.group)
        let isRoot = group.isRoot
        let agreed: (interrupt: Bool, terminate: Bool, time: Double) = flat.withUnsafeMutableBufferPointer { b in
            let base = b.baseAddress!
            var offset = 0
            for p in parameters { (base + offset).update(from: p.grad, count: p.count); offset += p.count }
            base[offset] = signal == SIGINT ? 1 : 0
            base[offset + 1] = signal != nil && signal != SIGINT ? 1 : 0
            // The time as two floats whose sum is exact (x + 0 + 0 = x on the other ranks' zeros).
            let high = Float(trainingTime)
            base[offset + 2] = isRoot ? high : 0
            base[offset + 3] = isRoot ? Float(trainingTime - Double(high)) : 0
            group.sumInRankOrder(base, count: b.count)
            offset = 0
            for p in parameters { p.grad.update(from: base + offset, count: p.count); offset += p.count }
            return (base[offset] > 0, base[offset + 1] > 0, Double(base[offset + 2]) + Double(base[offset + 3]))
        }
        seconds += ProgressReporter.monotonicSeconds() - t0
        return (agreed.interrupt ? SIGINT : agreed.terminate ? SIGTERM : nil, agreed.time)
    }
}
