import Foundation
import RecurrentCore
import Testing
@testable import AudioFeatures

/// Averaging checkpoints: probabilities against each member run alone, losses against direct
/// formulas, CTC members combined per label sequence, and the refusals.
@Suite struct SpeechEnsembleTests {
    let width = FeatureConfig().featureCount

    /// A random `[frames, width]` matrix around `offset`.
    func matrix(frames: Int, seed: UInt64, offset: Float = 0) -> FeatureMatrix {
        var rng = SeededRandom(seed: seed)
        return FeatureMatrix(frames: frames, features: width,
                             values: (0..<(frames * width)).map { _ in offset + Float(rng.nextDouble() * 4 - 2) })
    }

    /// A checkpoint with a small network of `mode` and statistics fitted to shifted random data,
    /// so that each member's normaliser differs.
    func member(seed: UInt64, mode: SequenceClassifierConfig.Mode, names: [String], shift: Float) throws -> SpeechCheckpoint {
        let config = SequenceClassifierConfig(inputSize: width, cell: .gru, layers: 1, hidden: 8, bidirectional: true,
                                              classes: names.count, mode: mode, pooling: .mean)
        let normalizer = try FeatureNormalizer.fitted(to: (0..<3).map { matrix(frames: 7, seed: seed * 10 + $0, offset: shift) },
                                                      featureCount: width)
        return SpeechCheckpoint(model: try SpeechClassifier(config: config, seed: seed), features: FeatureConfig(),
                                normalizer: normalizer, labels: LabelSet(names: names))
    }

    /// Each member alone: examples normalised with its own statistics, then its network.
    func alone(_ m: SpeechCheckpoint, _ raw: [SpeechExample]) throws -> [Float] {
        let normalized = try raw.map { e -> SpeechExample in
            var c = e
            try m.normalizer.apply(to: &c.features)
            return c
        }
        return m.model.probabilities(normalized).probabilities
    }

    @Test func utteranceProbabilitiesAreTheMeanOfTheMembersAndTheLossIsOfTheMean() throws {
        let names = ["one", "two", "three"]
        let members = try [member(seed: 1, mode: .manyToOne, names: names, shift: 0),
                           member(seed: 2, mode: .manyToOne, names: names, shift: 0.5),
                           member(seed: 3, mode: .manyToOne, names: names, shift: -1)]
        let raw = [SpeechExample(path: "a", features: matrix(frames: 5, seed: 7), label: 0),
                   SpeechExample(path: "b", features: matrix(frames: 9, seed: 8), label: 2)]
        let ensemble = try SpeechEnsemble(members: members, paths: ["m1", "m2", "m3"])
        let (p, loss) = ensemble.probabilities(raw)
        let each = try members.map { try alone($0, raw) }
        #expect(p.count == 2 * 3)
        for i in p.indices {
            let mean = (Double(each[0][i]) + Double(each[1][i]) + Double(each[2][i])) / 3
            #expect(abs(Double(p[i]) - mean) < 1e-6)
        }
        // The members disagree (otherwise the average proves nothing).
        #expect(zip(each[0], each[1]).contains { abs($0 - $1) > 1e-3 })
        // The loss from the members' own rows averaged here, not from the ensemble's output.
        func mean(_ i: Int) -> Double { each.map { Double($0[i]) }.reduce(0, +) / 3 }
        let expected = -(log(mean(0)) + log(mean(3 + 2))) / 2
        #expect(abs(loss - expected) < 1e-6)
        // Evaluation through the ensemble agrees with the argmax of the averaged rows.
        let ev = SpeechInference.evaluate(ensemble.scorer, examples: raw, silence: nil)
        let predicted = (0..<2).map { j in (0..<3).max { p[j * 3 + $0] < p[j * 3 + $1] }! }
        #expect(ev.confusion.correct == zip(predicted, [0, 2]).filter { $0 == $1 }.count)
        #expect(ev.utterances == 2)
    }

    @Test func oneMemberRunsItsOwnNetworkOnNormalisedInput() throws {
        let m = try member(seed: 4, mode: .manyToOne, names: ["x", "y"], shift: 0.3)
        let ensemble = try SpeechEnsemble(members: [m], paths: ["m"])
        #expect(ensemble.scorer as? SpeechClassifier === m.model)
        #expect(ensemble.inputNormalizer == m.normalizer)
        #expect(ensemble.rawNormalizer.count == 0)
    }

    @Test func frameLossIsOfTheAveragedFrames() throws {
        let raw = [SpeechExample(path: "a", features: matrix(frames: 6, seed: 11), frameLabels: [0, 1, 1, 2, 2, 0], labelSequence: [1, 2]),
                   SpeechExample(path: "b", features: matrix(frames: 4, seed: 12), frameLabels: [2, 2, 1, 0], labelSequence: [2])]
        // Frame task, two members: mean −log p(label) over the 10 valid frames of the averaged rows.
        let names = ["silence", "a", "b"]
        let frameMembers = try [member(seed: 5, mode: .manyToMany, names: names, shift: 0),
                                member(seed: 6, mode: .manyToMany, names: names, shift: 1)]
        let (p, loss) = try SpeechEnsemble(members: frameMembers, paths: ["f1", "f2"]).probabilities(raw)
        let labels = raw.flatMap(\.frameLabels)
        #expect(p.count == 10 * 3)
        let each = try frameMembers.map { try alone($0, raw) }
        for i in p.indices { #expect(abs(Double(p[i]) - (Double(each[0][i]) + Double(each[1][i])) / 2) < 1e-6) }
        var total = 0.0
        for (row, label) in labels.enumerated() {
            let i = row * 3 + Int(label)
            let averaged = (Double(each[0][i]) + Double(each[1][i])) / 2
            total -= log(averaged)
        }
        let expected = total / 10
        #expect(abs(loss - expected) < 1e-6)
    }

    @Test func membersThatDisagreeAreRefusedByName() throws {
        let a = try member(seed: 1, mode: .manyToOne, names: ["one", "two"], shift: 0)
        let reordered = try member(seed: 2, mode: .manyToOne, names: ["two", "one"], shift: 0)
        let frames = try member(seed: 3, mode: .manyToMany, names: ["one", "two"], shift: 0)
        var otherFeatures = try member(seed: 4, mode: .manyToMany, names: ["one", "two"], shift: 0)
        otherFeatures.features.lifter = 10
        // Normalising differently is no disagreement: each member is fed its own configuration.
        var otherNormalization = try member(seed: 5, mode: .manyToOne, names: ["one", "two"], shift: 0)
        otherNormalization.features.utteranceMeanNormalization = true
        func message(_ members: [SpeechCheckpoint]) -> String {
            do { _ = try SpeechEnsemble(members: members, paths: members.indices.map { "m\($0).safetensors" }); return "accepted" } catch {
                return "\(error)"
            }
        }
        #expect(message([a, reordered]) == "m1.safetensors: class list [two,one] differs from m0.safetensors's; an ensemble's checkpoints must agree")
        #expect(message([a, a, frames]) == "m2.safetensors: task frame differs from m0.safetensors's; an ensemble's checkpoints must agree")
        #expect(message([frames, otherFeatures]).hasPrefix("m1.safetensors: feature configuration differs"))
        #expect(message([a, otherNormalization, a]) == "accepted")
        let mixed = try SpeechEnsemble(members: [a, otherNormalization, a], paths: ["m0", "m1", "m2"])
        #expect(mixed.featureConfigurations == [a.features, otherNormalization.features] && mixed.memberConfiguration == [0, 1, 0])
        // Trimming silence differently: one row per file either way for the utterance task; the
        // frame task averages frame by frame, so its members must frame a file alike.
        var trimmed = try member(seed: 6, mode: .manyToOne, names: ["one", "two"], shift: 0)
        trimmed.features.trimDecibels = 30
        #expect(message([a, trimmed]) == "accepted")
        var fewerCepstra = try member(seed: 9, mode: .manyToOne, names: ["one", "two"], shift: 0)
        fewerCepstra.features.cepstralCount = 10
        #expect(message([a, fewerCepstra]) == "accepted")
        var trimmedFrames = try member(seed: 8, mode: .manyToMany, names: ["one", "two"], shift: 0)
        trimmedFrames.features.trimDecibels = 30
        #expect(message([frames, trimmedFrames]).hasPrefix("m1.safetensors: feature configuration differs"))
        #expect(message([]) == "an ensemble needs at least one checkpoint")
        let ctc = try member(seed: 7, mode: .ctc, names: [SpeechTask.blank, "a", "b"], shift: 0.2)
        #expect(message([ctc, ctc]) == "accepted")
        #expect(message([ctc, a]) == "m1.safetensors: task utterance differs from m0.safetensors's; an ensemble's checkpoints must agree")
    }

    /// CTC members combine per label sequence: the decoded labels of each example are the
    /// candidate (from every member's own beam of 4) with the highest mean of the members'
    /// sequence probabilities, each computed here from that member alone (its own statistics and
    /// network, `CTC.sequenceLoss`); the loss is −log of the reference's mean probability per label.
    @Test func sequenceMembersCombineWholeLabelSequences() throws {
        let names = [SpeechTask.blank, "a", "b"]
        let members = try [member(seed: 8, mode: .ctc, names: names, shift: 0),
                           member(seed: 9, mode: .ctc, names: names, shift: 0.7),
                           member(seed: 10, mode: .ctc, names: names, shift: -0.4)]
        let raw = [SpeechExample(path: "a", features: matrix(frames: 6, seed: 21), labelSequence: [1, 2]),
                   SpeechExample(path: "b", features: matrix(frames: 5, seed: 22), labelSequence: [2]),
                   SpeechExample(path: "c", features: matrix(frames: 7, seed: 23), labelSequence: [1, 1, 2])]
        let ensemble = try SpeechEnsemble(members: members, paths: ["c1", "c2", "c3"])
        let (decoded, loss) = ensemble.decodeSequences(raw, beamWidth: 1)
        let each = try members.map { try alone($0, raw).map { Float(log(Double($0))) } }
        var row = 0, expectedLoss = 0.0, exact = 0, differs = false
        for (j, e) in raw.enumerated() {
            let n = e.features.frames
            func probability(_ m: Int, _ y: [Int32]) -> Double {
                each[m].withUnsafeBufferPointer { exp(-CTC.sequenceLoss(logits: $0.baseAddress! + row * 3, frames: n, classes: 3, target: y, gradLogits: nil)) }
            }
            var candidates = Set<[Int32]>()
            for m in 0..<3 {
                each[m].withUnsafeBufferPointer {
                    for c in CTC.beamSearch(logits: $0.baseAddress! + row * 3, frames: n, classes: 3, beamWidth: 4) { candidates.insert(c.labels) }
                }
            }
            func mean(_ y: [Int32]) -> Double { (0..<3).map { probability($0, y) }.reduce(0, +) / 3 }
            let best = candidates.max { mean($0) < mean($1) }!
            #expect(decoded[j].labels == best.map { Int($0) }, "\(e.path)")
            #expect(abs(decoded[j].probability - mean(best)) < 1e-6 * mean(best))
            let alone = (0..<3).map { m in each[m].withUnsafeBufferPointer {
                CTC.beamDecode(logits: $0.baseAddress! + row * 3, frames: n, classes: 3, beamWidth: 4).labels } }
            if alone.contains(where: { $0 != best }) { differs = true }
            expectedLoss -= log(mean(e.labelSequence)) / Double(e.labelSequence.count)
            if best == e.labelSequence { exact += 1 }
            row += n
        }
        #expect(differs, "the members agree on every example, which proves little")
        #expect(abs(loss - expectedLoss / 3) < 1e-6)
        #expect(abs(ensemble.probabilities(raw).loss - expectedLoss / 3) < 1e-6, "probabilities' loss is the mixture's too")
        // With frames: the same decoding and loss, and the frames are the members' mean, each
        // member's probabilities computed alone above.
        let withFrames = ensemble.decodeSequencesWithFrames(raw, beamWidth: 1)
        #expect(withFrames.decoded.map(\.labels) == decoded.map(\.labels) && withFrames.loss == loss)
        let probabilitiesAlone = try members.map { try alone($0, raw) }
        #expect(withFrames.frames.count == probabilitiesAlone[0].count)
        for i in withFrames.frames.indices {
            let mean = probabilitiesAlone.map { Double($0[i]) }.reduce(0, +) / 3
            #expect(abs(Double(withFrames.frames[i]) - mean) < 1e-6)
        }
        // Evaluation and prediction go through the same combination.
        let ev = SpeechInference.evaluate(ensemble.scorer, examples: raw, silence: nil)
        #expect(ev.exactUtterances == exact)
        #expect(abs(ev.loss - loss) < 1e-9)
        let predicted = SpeechInference.predict(ensemble.scorer, examples: raw, labels: LabelSet(names: names), features: FeatureConfig())
        #expect(predicted.map(\.frameLabels) == decoded.map(\.labels))
    }
}
