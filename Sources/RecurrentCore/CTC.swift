#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Connectionist temporal classification (Graves et al., 2006): the loss of a label sequence
/// given per-frame class scores, summed over every alignment, and its decoders.
///
/// Conventions are PyTorch's `nn.CTCLoss`: class 0 is the blank; `reduction: .mean` divides each
/// sequence's negative log-likelihood by its target length (at least 1) and averages over the
/// batch; `zeroInfinity` turns the infinite loss of an impossible alignment (a target longer
/// than the frames allow) and its gradient into zeros.
///
/// The inputs here are raw logits (the softmax is fused), not log-probabilities: the gradient
/// with respect to logit `z[t, c]` of one sequence's loss is `softmax(z_t)[c] - γ_t(c)`, where
/// `γ_t(c)` is the posterior probability that frame `t` emits `c` (from the forward-backward
/// pass). Recursions run in log space in double precision.
public enum CTC {
    /// How sequence losses combine into the batch loss.
    public enum Reduction: Sendable { case mean, sum }

    /// Negative log-likelihood of one sequence and, optionally, its gradient.
    ///
    /// - Parameters:
    ///   - logits: `[frames, classes]`, row-major (frame `t` at `logits + t * classes`).
    ///   - frames: frames used (the input length).
    ///   - classes: classes including the blank (index 0).
    ///   - target: labels in `1..<classes` (no blanks), possibly empty.
    ///   - gradLogits: `[frames, classes]`, receives `scale * d(nll)/d(logits)` (nil: skip).
    ///   - scale: multiplies the gradient.
    /// - Returns: the negative log-likelihood in nats; `+infinity` when no alignment exists
    ///   (the gradient is then zero).
    public static func sequenceLoss(logits: UnsafePointer<Float>, frames: Int, classes: Int, target: [Int32],
                                    gradLogits: UnsafeMutablePointer<Float>?, scale: Double = 1) -> Double {
        let (ext, needed) = extended(target, classes: classes)
        let T = frames, C = classes, S = ext.count
        let negInf = -Double.infinity
        let logp = logSoftmax(logits, frames: T, classes: C)
        if let g = gradLogits { for i in 0..<(T * C) { g[i] = 0 } }
        if T < needed || (T == 0 && !target.isEmpty) { return .infinity }
        if T == 0 { return 0 }

        // alpha[t][s]: log-probability of the prefixes ending in extended position s at frame t.
        var alpha = [Double](repeating: negInf, count: T * S)
        alpha[0] = logp[ext[0]]
        if S > 1 { alpha[1] = logp[ext[1]] }
        for t in 1..<T {
            for s in 0..<S {
                var a = alpha[(t - 1) * S + s]
                if s >= 1 { a = logAdd(a, alpha[(t - 1) * S + s - 1]) }
                if s >= 2 && ext[s] != 0 && ext[s] != ext[s - 2] { a = logAdd(a, alpha[(t - 1) * S + s - 2]) }
                alpha[t * S + s] = a == negInf ? negInf : a + logp[t * C + ext[s]]
            }
        }
        let logLikelihood = S > 1 ? logAdd(alpha[(T - 1) * S + S - 1], alpha[(T - 1) * S + S - 2]) : alpha[(T - 1) * S]
        if logLikelihood == negInf { return .infinity }
        guard let g = gradLogits else { return -logLikelihood }

        // beta[t][s]: log-probability of the suffixes from extended position s at frame t
        // (including frame t's emission, so alpha * beta counts it twice).
        var beta = [Double](repeating: negInf, count: T * S)
        beta[(T - 1) * S + S - 1] = logp[(T - 1) * C + ext[S - 1]]
        if S > 1 { beta[(T - 1) * S + S - 2] = logp[(T - 1) * C + ext[S - 2]] }
        for t in stride(from: T - 2, through: 0, by: -1) {
            for s in 0..<S {
                var b = beta[(t + 1) * S + s]
                if s + 1 < S { b = logAdd(b, beta[(t + 1) * S + s + 1]) }
                if s + 2 < S && ext[s] != 0 && ext[s] != ext[s + 2] { b = logAdd(b, beta[(t + 1) * S + s + 2]) }
                beta[t * S + s] = b == negInf ? negInf : b + logp[t * C + ext[s]]
            }
        }
        var occupancy = [Double](repeating: negInf, count: C)
        for t in 0..<T {
            for c in 0..<C { occupancy[c] = negInf }
            for s in 0..<S {
                let ab = alpha[t * S + s] + beta[t * S + s]
                if ab != negInf { occupancy[ext[s]] = logAdd(occupancy[ext[s]], ab) }
            }
            for c in 0..<C {
                // gamma_t(c) = sum_s alpha*beta / (p * y_t(c)).
                let gamma = occupancy[c] == negInf ? 0 : exp(occupancy[c] - logp[t * C + c] - logLikelihood)
                g[t * C + c] = Float(scale * (exp(logp[t * C + c]) - gamma))
            }
        }
        return -logLikelihood
    }

    /// The batch loss of batch-first logits `[batch, time, classes]` and its gradient (same
    /// shape; frames past a sequence's input length get zero gradient).
    ///
    /// - Parameters:
    ///   - logits: `[batch, time, classes]`.
    ///   - batch: sequences.
    ///   - time: frames per row (the padded length).
    ///   - classes: classes including the blank.
    ///   - inputLengths: frames of each sequence (`<= time`).
    ///   - targets: each sequence's labels (`1..<classes`).
    ///   - reduction: `.mean` (PyTorch's default) or `.sum`.
    ///   - zeroInfinity: impossible sequences contribute 0 loss and 0 gradient instead of infinity.
    ///   - gradLogits: `[batch, time, classes]` output (nil: loss only).
    /// - Returns: the reduced loss and each sequence's negative log-likelihood.
    public static func batchLoss(logits: UnsafePointer<Float>, batch: Int, time: Int, classes: Int,
                                 inputLengths: [Int], targets: [[Int32]], reduction: Reduction = .mean,
                                 zeroInfinity: Bool = false,
                                 gradLogits: UnsafeMutablePointer<Float>?) -> (loss: Double, sequenceLosses: [Double]) {
        precondition(inputLengths.count == batch && targets.count == batch, "CTC: lengths and targets must have one entry per sequence")
        var total = 0.0
        var losses = [Double](repeating: 0, count: batch)
        if let g = gradLogits { for i in 0..<(batch * time * classes) { g[i] = 0 } }
        for b in 0..<batch {
            precondition(inputLengths[b] >= 0 && inputLengths[b] <= time, "CTC: input length \(inputLengths[b]) outside 0...\(time)")
            let weight = reduction == .mean ? 1 / (Double(max(targets[b].count, 1)) * Double(batch)) : 1
            let base = b * time * classes
            var nll = sequenceLoss(logits: logits + base, frames: inputLengths[b], classes: classes, target: targets[b],
                                   gradLogits: gradLogits.map { $0 + base }, scale: weight)
            if nll == .infinity && zeroInfinity { nll = 0 }
            losses[b] = nll
            total += nll * weight
        }
        return (total, losses)
    }

    /// Best-path decoding: the most likely class of each frame, repeats collapsed, blanks dropped.
    /// - Parameter scores: `[frames, classes]` logits or log-probabilities (only the argmax matters).
    public static func greedyDecode(scores: UnsafePointer<Float>, frames: Int, classes: Int) -> [Int32] {
        var out: [Int32] = []
        var previous = -1
        for t in 0..<frames {
            let row = scores + t * classes
            var best = 0
            for c in 1..<classes where row[c] > row[best] { best = c }
            if best != 0 && best != previous { out.append(Int32(best)) }
            previous = best
        }
        return out
    }

    /// Prefix beam search: keeps the `beamWidth` most probable label prefixes, each prefix's
    /// probability summed over all alignments that end in a blank or in its last label.
    /// `beamWidth` 1 is not the same as greedy decoding (it merges alignments).
    /// - Parameter logits: `[frames, classes]` logits (a softmax is taken per frame).
    /// - Returns: the most probable label sequence and its log-probability.
    public static func beamDecode(logits: UnsafePointer<Float>, frames: Int, classes: Int,
                                  beamWidth: Int) -> (labels: [Int32], logProbability: Double) {
        beamSearch(logits: logits, frames: frames, classes: classes, beamWidth: beamWidth)[0]
    }

    /// Prefix beam search as `beamDecode`, returning every prefix left in the beam after the
    /// last frame (at most `beamWidth`), most probable first (equal ones in lexicographic order).
    public static func beamSearch(logits: UnsafePointer<Float>, frames: Int, classes: Int,
                                  beamWidth: Int) -> [(labels: [Int32], logProbability: Double)] {
        precondition(beamWidth >= 1, "beam width must be at least 1")
        struct Entry { var blank: Double; var label: Double; var total: Double { logAdd(blank, label) } }
        let negInf = -Double.infinity
        // Prefixes are nodes of a trie (node 0 the empty prefix), so the beam is keyed by node
        // numbers rather than by label arrays that would be hashed and copied at every frame.
        var trie = PrefixTrie(classes: classes)
        var beams: [(node: Int, entry: Entry)] = [(0, Entry(blank: 0, label: negInf))]
        var next: [Int: Entry] = [:]
        next.reserveCapacity(beamWidth * classes)
        let all = logSoftmax(logits, frames: frames, classes: classes)
        for t in 0..<frames {
            let logp = all[(t * classes)..<((t + 1) * classes)]
            let base = logp.startIndex
            next.removeAll(keepingCapacity: true)
            func add(_ node: Int, blank: Double = negInf, label: Double = negInf) {
                var e = next[node] ?? Entry(blank: negInf, label: negInf)
                e.blank = logAdd(e.blank, blank)
                e.label = logAdd(e.label, label)
                next[node] = e
            }
            for (node, e) in beams {
                let last = trie.last(node)
                // A blank keeps the prefix; so does repeating its last label without a blank between.
                add(node, blank: e.total + logp[base])
                if last > 0 { add(node, label: e.label + logp[base + last]) }
                for c in 1..<classes {
                    // Repeating the last label starts a new one only after a blank.
                    let from = c == last ? e.blank : e.total
                    add(trie.child(node, c), label: from + logp[base + c])
                }
            }
            // The beamWidth best, each total computed once: a selection into a short sorted list
            // instead of sorting every extension; equal totals are ordered by their labels.
            var kept: [(node: Int, total: Double, entry: Entry)] = []
            kept.reserveCapacity(beamWidth + 1)
            func before(_ p: Double, _ a: Int, _ q: Double, _ b: Int) -> Bool {
                p != q ? p > q : trie.labels(a).lexicographicallyPrecedes(trie.labels(b))
            }
            for (node, entry) in next {
                let total = entry.total
                if kept.count == beamWidth, let worst = kept.last, !before(total, node, worst.total, worst.node) { continue }
                var i = kept.count
                while i > 0, before(total, node, kept[i - 1].total, kept[i - 1].node) { i -= 1 }
                kept.insert((node, total, entry), at: i)
                if kept.count > beamWidth { kept.removeLast() }
            }
            beams = kept.map { ($0.node, $0.entry) }
        }
        return beams.map { (labels: trie.labels($0.node), logProbability: $0.entry.total) }
            .sorted { ranksBefore($0.logProbability, $0.labels, $1.logProbability, $1.labels) }
    }

    /// Decoding with several models at once (an ensemble of CTC networks over the same input):
    /// the label sequence with the highest *mixture* probability `(1/M) Σ_m P_m(labels | x)`,
    /// each `P_m` summed over all of model m's alignments (the forward pass of `sequenceLoss`),
    /// among the candidates that each model's prefix beam search of width `beamWidth` keeps.
    /// Models place a label's spike on frames of their own, so their frame probabilities are
    /// not averaged: each scores whole label sequences.
    /// - Parameters:
    ///   - logits: one `[frames, classes]` array of logits per model (a softmax is taken per frame).
    /// - Returns: the chosen labels and the log of their mixture probability.
    public static func mixtureDecode(logits: [UnsafePointer<Float>], frames: Int, classes: Int,
                                     beamWidth: Int) -> (labels: [Int32], logProbability: Double) {
        precondition(!logits.isEmpty, "mixture decoding needs at least one model")
        var candidates: [[Int32]] = []
        var seen = Set<[Int32]>()
        for l in logits {
            for c in beamSearch(logits: l, frames: frames, classes: classes, beamWidth: beamWidth) where seen.insert(c.labels).inserted {
                candidates.append(c.labels)
            }
        }
        var best: (labels: [Int32], logProbability: Double)? = nil
        for c in candidates {
            let score = mixtureLogProbability(logits: logits, frames: frames, classes: classes, target: c)
            guard let b = best else { best = (c, score); continue }
            if score > b.logProbability || (score == b.logProbability && c.lexicographicallyPrecedes(b.labels)) { best = (c, score) }
        }
        return best!
    }

    /// The most probable single alignment of `target` (Viterbi, over the same paths as
    /// `sequenceLoss`): for each label, the frame at which that path first emits it, so the
    /// frames are increasing. Ties between paths go to the one that stays longer in the earlier
    /// state. Nil when no alignment exists (fewer frames than the target needs).
    /// - Parameters:
    ///   - logits: `[frames, classes]`, row-major (a softmax is taken per frame).
    ///   - target: labels in `1..<classes` (no blanks).
    public static func bestAlignment(logits: UnsafePointer<Float>, frames: Int, classes: Int, target: [Int32]) -> [Int]? {
        let (ext, needed) = extended(target, classes: classes)
        let T = frames, C = classes, L = target.count, S = ext.count
        if L == 0 { return [] }
        if T < needed { return nil }
        let logp = logSoftmax(logits, frames: T, classes: C)
        let negInf = -Double.infinity
        // score[t][s]: best log-probability of a path prefix in extended position s at frame t;
        // from[t][s]: the position it came from at frame t - 1.
        var score = [Double](repeating: negInf, count: T * S)
        var from = [Int32](repeating: -1, count: T * S)
        score[0] = logp[ext[0]]
        score[1] = logp[ext[1]]
        for t in 1..<T {
            for s in 0..<S {
                var best = score[(t - 1) * S + s], arg = s
                if s >= 1, score[(t - 1) * S + s - 1] > best { best = score[(t - 1) * S + s - 1]; arg = s - 1 }
                if s >= 2, ext[s] != 0, ext[s] != ext[s - 2], score[(t - 1) * S + s - 2] > best { best = score[(t - 1) * S + s - 2]; arg = s - 2 }
                if best > negInf {
                    score[t * S + s] = best + logp[t * C + ext[s]]
                    from[t * S + s] = Int32(arg)
                }
            }
        }
        let last = (T - 1) * S
        var s = score[last + S - 1] >= score[last + S - 2] ? S - 1 : S - 2
        guard score[last + s] > negInf else { return nil }
        var first = [Int](repeating: 0, count: L)
        for t in stride(from: T - 1, through: 0, by: -1) {
            if s % 2 == 1 { first[s / 2] = t }
            if t > 0 { s = Int(from[t * S + s]) }
        }
        return first
    }

    /// `log((1/M) Σ_m P_m(target | x))` over the models' logits; `-infinity` when no model has an
    /// alignment of `target` in `frames` frames.
    public static func mixtureLogProbability(logits: [UnsafePointer<Float>], frames: Int, classes: Int, target: [Int32]) -> Double {
        var total = -Double.infinity
        for l in logits {
            total = logAdd(total, -sequenceLoss(logits: l, frames: frames, classes: classes, target: target, gradLogits: nil))
        }
        return total - log(Double(logits.count))
    }
}

/// The label prefixes of a beam search as a trie: node 0 is the empty prefix, every other
/// node one label appended to its parent's prefix.
private struct PrefixTrie {
    let classes: Int
    private var parent: [Int] = [-1]
    private var label: [Int] = [0]
    /// Child of node n by label c, keyed n * classes + c.
    private var children: [Int: Int] = [:]

    init(classes: Int) { self.classes = classes }

    /// The last label of `node`'s prefix, 0 for the empty prefix (0 is the blank, never a label).
    func last(_ node: Int) -> Int { label[node] }

    /// The node of `node`'s prefix followed by label `c`, made on first use.
    mutating func child(_ node: Int, _ c: Int) -> Int {
        let key = node * classes + c
        if let n = children[key] { return n }
        parent.append(node)
        label.append(c)
        children[key] = parent.count - 1
        return parent.count - 1
    }

    /// The labels of `node`'s prefix, first to last.
    func labels(_ node: Int) -> [Int32] {
        var out: [Int32] = []
        var n = node
        while n > 0 { out.append(Int32(label[n])); n = parent[n] }
        return out.reversed()
    }
}

/// `target` checked against `classes` and extended with a blank before, between and after its
/// labels (blank, l1, blank, l2, ..., blank: length 2L + 1), and the fewest frames any alignment
/// needs: one per label, plus a blank between equal neighbours.
private func extended(_ target: [Int32], classes: Int) -> (ext: [Int], needed: Int) {
    precondition(classes >= 2, "CTC needs a blank and at least one label")
    for l in target { precondition(l >= 1 && Int(l) < classes, "CTC label \(l) outside 1..<\(classes)") }
    var ext = [Int](repeating: 0, count: 2 * target.count + 1)
    for (i, l) in target.enumerated() { ext[2 * i + 1] = Int(l) }
    var needed = target.count
    for i in 1..<max(target.count, 1) where target[i] == target[i - 1] { needed += 1 }
    return (ext, needed)
}

/// Per-frame log-softmax of `[frames, classes]` logits, in double precision.
private func logSoftmax(_ logits: UnsafePointer<Float>, frames: Int, classes: Int) -> [Double] {
    var out = [Double](repeating: 0, count: frames * classes)
    for t in 0..<frames {
        let z = logits + t * classes
        var m = -Double.infinity
        for c in 0..<classes { m = max(m, Double(z[c])) }
        var s = 0.0
        for c in 0..<classes { s += exp(Double(z[c]) - m) }
        let lse = m + log(s)
        for c in 0..<classes { out[t * classes + c] = Double(z[c]) - lse }
    }
    return out
}

/// Beam order: a prefix of log-probability `p` and labels `a` comes before one of `q` and `b`
/// when it is more probable, equal ones in lexicographic order.
@inline(__always)
private func ranksBefore(_ p: Double, _ a: [Int32], _ q: Double, _ b: [Int32]) -> Bool {
    p != q ? p > q : a.lexicographicallyPrecedes(b)
}

/// log(exp(a) + exp(b)) without overflow; -infinity is the log of zero.
@inline(__always)
private func logAdd(_ a: Double, _ b: Double) -> Double {
    if a == -.infinity { return b }
    if b == -.infinity { return a }
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b))
}
