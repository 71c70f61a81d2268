import Foundation
import Testing
@testable import RecurrentCore

/// Every frame path of `frames` frames over `classes` classes with its collapse (repeats
/// merged, blanks dropped), for the brute-force references below.
private func forEachPath(frames: Int, classes: Int, _ body: ([Int], [Int32]) -> Void) {
    var path = [Int](repeating: 0, count: frames)
    let count = Int(pow(Double(classes), Double(frames)))
    for code in 0..<count {
        var x = code
        for t in 0..<frames { path[t] = x % classes; x /= classes }
        var collapsed: [Int32] = []
        var previous = -1
        for c in path {
            if c != 0 && c != previous { collapsed.append(Int32(c)) }
            previous = c
        }
        body(path, collapsed)
    }
}

/// Independent reference: the probability of `target` as the sum, over every one of the
/// `classes^frames` frame paths, of the path's probability when its collapse equals the target.
private func bruteForceProbability(logits: [Float], frames: Int, classes: Int, target: [Int32]) -> Double {
    var probs = [Double](repeating: 0, count: frames * classes)
    for t in 0..<frames {
        let row = (0..<classes).map { Double(logits[t * classes + $0]) }
        let m = row.max()!
        let s = row.reduce(0) { $0 + exp($1 - m) }
        for c in 0..<classes { probs[t * classes + c] = exp(row[c] - m) / s }
    }
    var total = 0.0
    forEachPath(frames: frames, classes: classes) { path, collapsed in
        guard collapsed == target else { return }
        var p = 1.0
        for t in 0..<frames { p *= probs[t * classes + path[t]] }
        total += p
    }
    return total
}

/// The most probable label sequence by brute force (sum over paths per collapsed sequence).
private func bruteForceBestLabels(logits: [Float], frames: Int, classes: Int) -> [Int32] {
    var byLabels: [[Int32]: Double] = [:]
    forEachPath(frames: frames, classes: classes) { _, collapsed in
        if byLabels[collapsed] == nil {
            byLabels[collapsed] = bruteForceProbability(logits: logits, frames: frames, classes: classes, target: collapsed)
        }
    }
    return byLabels.max { $0.value < $1.value }!.key
}

@Suite("CTC loss and decoding")
struct CTCTests {
    @Test("loss equals minus the log of the brute-force sum over alignments", arguments: [
        [Int32](), [1], [2, 1], [1, 1], [2, 2, 1], [1, 2, 1],
    ])
    func lossMatchesBruteForce(target: [Int32]) {
        var rng = SeededRandom(seed: UInt64(target.count * 31 + 7))
        let frames = 6, classes = 3
        let logits = (0..<(frames * classes)).map { _ in rng.uniform(-2, 2) }
        let nll = logits.withUnsafeBufferPointer {
            CTC.sequenceLoss(logits: $0.baseAddress!, frames: frames, classes: classes, target: target, gradLogits: nil)
        }
        let reference = -log(bruteForceProbability(logits: logits, frames: frames, classes: classes, target: target))
        #expect(abs(nll - reference) < 1e-9 * max(1, abs(reference)), "target \(target): \(nll) vs brute force \(reference)")
    }

    @Test("an impossible target is infinite; zeroInfinity makes it 0 with zero gradient")
    func impossibleAlignment() {
        // [1, 1] needs three frames (1, blank, 1); two frames cannot hold it.
        let logits: [Float] = [0.1, 0.2, 0.3, -0.5, 0.4, 0.0]
        var grad = [Float](repeating: 9, count: 6)
        let nll = logits.withUnsafeBufferPointer { lp in
            grad.withUnsafeMutableBufferPointer { gp in
                CTC.sequenceLoss(logits: lp.baseAddress!, frames: 2, classes: 3, target: [1, 1], gradLogits: gp.baseAddress!)
            }
        }
        #expect(nll == .infinity)
        #expect(grad.allSatisfy { $0 == 0 })
        let batch = logits.withUnsafeBufferPointer { lp in
            grad.withUnsafeMutableBufferPointer { gp in
                CTC.batchLoss(logits: lp.baseAddress!, batch: 1, time: 2, classes: 3, inputLengths: [2], targets: [[1, 1]],
                              zeroInfinity: true, gradLogits: gp.baseAddress!)
            }
        }
        #expect(batch.loss == 0)
        #expect(grad.allSatisfy { $0 == 0 })
        // With three frames the same target is possible and its probability is the single path 1, 0, 1.
        let three: [Float] = [0.1, 0.2, 0.3, -0.5, 0.4, 0.0, 1.0, 0.5, -1.0]
        let nll3 = three.withUnsafeBufferPointer {
            CTC.sequenceLoss(logits: $0.baseAddress!, frames: 3, classes: 3, target: [1, 1], gradLogits: nil)
        }
        #expect(abs(nll3 + log(bruteForceProbability(logits: three, frames: 3, classes: 3, target: [1, 1]))) < 1e-9)
    }

    @Test("gradient with respect to the logits matches central differences")
    func gradientMatchesFiniteDifferences() {
        var rng = SeededRandom(seed: 11)
        let batch = 2, time = 5, classes = 4
        var logits = (0..<(batch * time * classes)).map { _ in rng.uniform(-1.5, 1.5) }
        let lengths = [5, 4]
        let targets: [[Int32]] = [[3, 1, 1], [2, 3]]
        func loss(_ x: [Float]) -> Double {
            x.withUnsafeBufferPointer {
                CTC.batchLoss(logits: $0.baseAddress!, batch: batch, time: time, classes: classes, inputLengths: lengths,
                              targets: targets, gradLogits: nil).loss
            }
        }
        var grad = [Float](repeating: 0, count: logits.count)
        _ = logits.withUnsafeBufferPointer { lp in
            grad.withUnsafeMutableBufferPointer { gp in
                CTC.batchLoss(logits: lp.baseAddress!, batch: batch, time: time, classes: classes, inputLengths: lengths,
                              targets: targets, gradLogits: gp.baseAddress!)
            }
        }
        let h: Float = 1e-2
        for i in 0..<logits.count {
            let old = logits[i]
            logits[i] = old + h; let up = loss(logits)
            logits[i] = old - h; let down = loss(logits)
            logits[i] = old
            let numeric = (up - down) / Double(2 * h)
            #expect(abs(Double(grad[i]) - numeric) < 1e-4 + 1e-3 * abs(numeric), "logit \(i): \(grad[i]) vs \(numeric)")
        }
        // Frames past the second sequence's length get no gradient.
        let padded = (1 * time + 4) * classes
        #expect(grad[padded..<(padded + classes)].allSatisfy { $0 == 0 })
    }

    @Test("mean reduction divides by target length, then by the batch (PyTorch's convention)")
    func meanReduction() {
        var rng = SeededRandom(seed: 5)
        let time = 6, classes = 3
        let logits = (0..<(2 * time * classes)).map { _ in rng.uniform(-1, 1) }
        let targets: [[Int32]] = [[1, 2, 1], [2]]
        let one = (0..<2).map { b in
            -log(bruteForceProbability(logits: Array(logits[(b * time * classes)..<((b + 1) * time * classes)]),
                                       frames: time, classes: classes, target: targets[b]))
        }
        let (mean, _) = logits.withUnsafeBufferPointer {
            CTC.batchLoss(logits: $0.baseAddress!, batch: 2, time: time, classes: classes, inputLengths: [6, 6],
                          targets: targets, reduction: .mean, gradLogits: nil)
        }
        let (sum, _) = logits.withUnsafeBufferPointer {
            CTC.batchLoss(logits: $0.baseAddress!, batch: 2, time: time, classes: classes, inputLengths: [6, 6],
                          targets: targets, reduction: .sum, gradLogits: nil)
        }
        #expect(abs(mean - (one[0] / 3 + one[1] / 1) / 2) < 1e-9)
        #expect(abs(sum - (one[0] + one[1])) < 1e-9)
    }

    @Test("greedy decoding collapses repeats and drops blanks")
    func greedy() {
        // Frame argmaxes: 1 1 0 1 2 2 0 0 -> labels 1 1 2.
        let argmax = [1, 1, 0, 1, 2, 2, 0, 0]
        var scores = [Float](repeating: 0, count: argmax.count * 3)
        for (t, c) in argmax.enumerated() { scores[t * 3 + c] = 5 }
        let labels = scores.withUnsafeBufferPointer { CTC.greedyDecode(scores: $0.baseAddress!, frames: argmax.count, classes: 3) }
        #expect(labels == [1, 1, 2])
    }

    @Test("beam search finds the most probable labelling where greedy decoding does not")
    func beamBeatsGreedy() {
        // Two frames: blank is the single most likely class in each (0.4), but label 1 summed
        // over its alignments (1·1, 1·blank, blank·1) is the most likely labelling.
        let p: [[Double]] = [[0.4, 0.35, 0.25], [0.4, 0.35, 0.25]]
        let logits = p.flatMap { $0.map { Float(log($0)) } }
        let greedy = logits.withUnsafeBufferPointer { CTC.greedyDecode(scores: $0.baseAddress!, frames: 2, classes: 3) }
        #expect(greedy == [])
        let beam = logits.withUnsafeBufferPointer { CTC.beamDecode(logits: $0.baseAddress!, frames: 2, classes: 3, beamWidth: 4) }
        #expect(beam.labels == [1])
        // P([1]) = 0.35*0.35 + 0.35*0.4 + 0.4*0.35 = 0.4025 > P([]) = 0.16.
        #expect(abs(exp(beam.logProbability) - 0.4025) < 1e-6)
    }

    @Test("a wide beam agrees with the brute-force best labelling on random posteriors")
    func beamMatchesBruteForce() {
        var rng = SeededRandom(seed: 3)
        for _ in 0..<5 {
            let frames = 5, classes = 3
            let logits = (0..<(frames * classes)).map { _ in rng.uniform(-2, 2) }
            let beam = logits.withUnsafeBufferPointer {
                CTC.beamDecode(logits: $0.baseAddress!, frames: frames, classes: classes, beamWidth: 64)
            }
            let best = bruteForceBestLabels(logits: logits, frames: frames, classes: classes)
            #expect(beam.labels == best)
            let p = bruteForceProbability(logits: logits, frames: frames, classes: classes, target: best)
            #expect(abs(exp(beam.logProbability) - p) < 1e-9)
        }
    }

    @Test("a narrow beam keeps the same prefixes as a plain prefix beam search in probabilities, sorted in full")
    func narrowBeamMatchesPlainPrefixSearch() {
        var rng = SeededRandom(seed: 17)
        for width in [1, 2, 3, 5] {
            for _ in 0..<3 {
                let frames = 10, classes = 4
                let logits = (0..<(frames * classes)).map { _ in rng.uniform(-2, 2) }
                let got = logits.withUnsafeBufferPointer {
                    CTC.beamSearch(logits: $0.baseAddress!, frames: frames, classes: classes, beamWidth: width)
                }
                let expected = plainBeamSearch(logits: logits, frames: frames, classes: classes, width: width)
                #expect(got.map(\.labels) == expected.map(\.labels), "width \(width)")
                for (g, e) in zip(got, expected) { #expect(abs(exp(g.logProbability) - e.probability) < 1e-12) }
            }
        }
    }

    @Test("mixture decoding picks the brute-force best of the models' averaged sequence probabilities")
    func mixtureMatchesBruteForce() {
        var rng = SeededRandom(seed: 11)
        for _ in 0..<4 {
            let frames = 4, classes = 3
            let models = (0..<3).map { _ in (0..<(frames * classes)).map { _ in rng.uniform(-2, 2) } }
            // Every labelling with its probability averaged over the models, by brute force.
            var labellings = Set<[Int32]>()
            forEachPath(frames: frames, classes: classes) { _, collapsed in labellings.insert(collapsed) }
            func mixture(_ y: [Int32]) -> Double {
                models.map { bruteForceProbability(logits: $0, frames: frames, classes: classes, target: y) }.reduce(0, +) / 3
            }
            let best = labellings.max { mixture($0) < mixture($1) }!
            let decoded = models[0].withUnsafeBufferPointer { a in
                models[1].withUnsafeBufferPointer { b in
                    models[2].withUnsafeBufferPointer { c in
                        CTC.mixtureDecode(logits: [a.baseAddress!, b.baseAddress!, c.baseAddress!], frames: frames, classes: classes,
                                          beamWidth: 64)
                    }
                }
            }
            #expect(decoded.labels == best)
            #expect(abs(exp(decoded.logProbability) - mixture(best)) < 1e-9)
        }
    }

    @Test("mixture decoding keeps labels that two models spike on different frames; the best path of averaged frames loses them")
    func mixtureKeepsLabelsOfShiftedSpikes() {
        // Model A says 1 at frame 0 and 2 at frame 2, model B one frame later; each is sure of
        // the blank elsewhere (0.98) and only fairly sure of its spikes (0.6).
        func model(spikes: [Int: Int]) -> [Float] {
            (0..<4).flatMap { t -> [Float] in
                guard let label = spikes[t] else { return [0.98, 0.01, 0.01].map { Float(log($0)) } }
                var row: [Double] = [0.2, 0.2, 0.2]
                row[label] = 0.6
                return row.map { Float(log($0)) }
            }
        }
        let a = model(spikes: [0: 1, 2: 2]), b = model(spikes: [1: 1, 3: 2])
        let averaged: [Float] = zip(a, b).map { Float(log((exp(Double($0)) + exp(Double($1))) / 2)) }
        // Averaged, the blank is the most probable class of every frame.
        let fromFrames = averaged.withUnsafeBufferPointer { CTC.greedyDecode(scores: $0.baseAddress!, frames: 4, classes: 3) }
        #expect(fromFrames == [])
        let decoded = a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in CTC.mixtureDecode(logits: [pa.baseAddress!, pb.baseAddress!], frames: 4, classes: 3, beamWidth: 4) }
        }
        #expect(decoded.labels == [1, 2])
        let expected = (bruteForceProbability(logits: a, frames: 4, classes: 3, target: [1, 2])
            + bruteForceProbability(logits: b, frames: 4, classes: 3, target: [1, 2])) / 2
        #expect(abs(exp(decoded.logProbability) - expected) < 1e-9)
    }

    @Test("the best alignment is the brute-force most probable path's: each label's first frame", arguments: [
        [Int32](), [1], [2, 1], [1, 1], [2, 2, 1], [1, 2, 1],
    ])
    func bestAlignmentMatchesBruteForce(target: [Int32]) {
        var rng = SeededRandom(seed: UInt64(target.count * 17 + 3))
        let frames = 6, classes = 3
        let logits = (0..<(frames * classes)).map { _ in rng.uniform(-2, 2) }
        let got = logits.withUnsafeBufferPointer { CTC.bestAlignment(logits: $0.baseAddress!, frames: frames, classes: classes, target: target) }
        // Reference: the single most probable frame path whose collapse is the target (random
        // logits: no ties), and where it first emits each label.
        var best: (score: Double, path: [Int])? = nil
        forEachPath(frames: frames, classes: classes) { path, collapsed in
            guard collapsed == target else { return }
            var score = 0.0
            for t in 0..<frames { score += Double(logits[t * classes + path[t]]) }   // the softmax's normaliser is the same for every path
            if best == nil || score > best!.score { best = (score, path) }
        }
        var firsts: [Int] = []
        if let path = best?.path {
            for t in 0..<frames where path[t] != 0 && (t == 0 || path[t] != path[t - 1]) { firsts.append(t) }
        }
        #expect(got == firsts, "target \(target): \(String(describing: got)) vs brute force \(firsts)")
    }

    @Test("no alignment when the frames cannot hold the target")
    func bestAlignmentOfAnImpossibleTarget() {
        let logits: [Float] = [0.1, 0.2, 0.3, -0.5, 0.4, 0.0]
        let got = logits.withUnsafeBufferPointer { CTC.bestAlignment(logits: $0.baseAddress!, frames: 2, classes: 3, target: [1, 1]) }
        #expect(got == nil)
        let fits = logits.withUnsafeBufferPointer { CTC.bestAlignment(logits: $0.baseAddress!, frames: 2, classes: 3, target: [1, 2]) }
        #expect(fits == [0, 1])
    }
}

/// Prefix beam search written plainly, in probabilities rather than logs, every extension
/// sorted at every frame: the prefixes left after the last frame, most probable first.
private func plainBeamSearch(logits: [Float], frames: Int, classes: Int, width: Int) -> [(labels: [Int32], probability: Double)] {
    // Per prefix: probability of the alignments ending in a blank, and in its last label.
    var beams: [[Int32]: (blank: Double, label: Double)] = [[]: (1, 0)]
    func ranked(_ d: [[Int32]: (blank: Double, label: Double)]) -> [(labels: [Int32], probability: Double)] {
        d.map { ($0.key, $0.value.blank + $0.value.label) }.sorted { a, b in
            a.1 != b.1 ? a.1 > b.1 : a.0.lexicographicallyPrecedes(b.0)
        }
    }
    for t in 0..<frames {
        let row = logits[(t * classes)..<((t + 1) * classes)].map { exp(Double($0)) }
        let sum = row.reduce(0, +)
        let p = row.map { $0 / sum }
        var next: [[Int32]: (blank: Double, label: Double)] = [:]
        for (prefix, e) in beams {
            next[prefix, default: (0, 0)].blank += (e.blank + e.label) * p[0]
            if let last = prefix.last { next[prefix, default: (0, 0)].label += e.label * p[Int(last)] }
            for c in 1..<classes {
                next[prefix + [Int32(c)], default: (0, 0)].label += (Int32(c) == prefix.last ? e.blank : e.blank + e.label) * p[c]
            }
        }
        let keep = Set(ranked(next).prefix(width).map(\.labels))
        beams = next.filter { keep.contains($0.key) }
    }
    return ranked(beams)
}
