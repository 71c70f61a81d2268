import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The engine's gradient exchange: after each rank's backward pass, every parameter's
/// gradient is copied into one flat buffer (with two slots saying whether this rank caught
/// SIGINT or SIGTERM), summed over the ranks in rank order (`ProcessGroup.sumInRankOrder`) and
/// copied back, so every rank holds the whole batch's gradient and learns the same stop
/// decision. The exchange starts after backward is done: none of it overlaps with computing.
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
        flat = group.isDistributed ? [Float](repeating: 0, count: parameters.reduce(0) { $0 + $1.count } + 2) : []
    }

    /// Sums the gradients over the ranks in place; returns the signal any rank caught.
    mutating func sum(signal: Int32?) -> Int32? {
        let arrived = ProgressReporter.monotonicSeconds()
        group.barrier()
        let t0 = ProgressReporter.monotonicSeconds()
        waitSeconds += t0 - arrived
        let (parameters, group) = (self.parameters, self.group)
        let caught: (interrupt: Bool, terminate: Bool) = flat.withUnsafeMutableBufferPointer { b in
            let base = b.baseAddress!
            var offset = 0
            for p in parameters { (base + offset).update(from: p.grad, count: p.count); offset += p.count }
            base[offset] = signal == SIGINT ? 1 : 0
            base[offset + 1] = signal != nil && signal != SIGINT ? 1 : 0
            group.sumInRankOrder(base, count: b.count)
            offset = 0
            for p in parameters { p.grad.update(from: base + offset, count: p.count); offset += p.count }
            return (base[offset] > 0, base[offset + 1] > 0)
        }
        seconds += ProgressReporter.monotonicSeconds() - t0
        return caught.interrupt ? SIGINT : caught.terminate ? SIGTERM : nil
    }
}
