import Foundation
import RecurrentCore
import Testing
import TestSupport
@testable import AudioFeatures

/// Two-pass recognition of connected words (`RescoredSequenceScorer`): the cuts on constructed
/// energies, the refusals, and a run on tone digits checked against their label tracks.
@Suite struct RescoredSequencesTests {
    /// Words at 50 dB, silence at 0 dB; `spans` are the words' frames.
    func energies(count: Int, words spans: [Range<Int>], dips: [Range<Int>] = []) -> [Double] {
        var e = [Double](repeating: 0, count: count)
        for s in spans { for t in s { e[t] = 50 } }
        for d in dips { for t in d { e[t] = 2 } }
        return e
    }

    /// Worked by hand (the energies are averaged over three frames first, so a 0/50 edge gives
    /// one frame at 16.7 dB): a 15-frame gap between the first two words, a 3-frame dip inside
    /// the first word (quiet, but shorter than the gap), a 10-frame gap, leading and trailing
    /// silence.
    @Test func wordsAreCutAroundTheLongestQuietStretchBetweenThem() {
        let e = energies(count: 100, words: [10..<30, 45..<70, 80..<95], dips: [20..<23])
        // Gap 30..<45 is quiet (≤ 3 dB) from frame 31 to 43: the first word ends 3 frames into
        // it, the second starts 3 frames before its end; likewise gap 70..<80 (quiet 71...78);
        // leading quiet frames 0...8, trailing 96...99.
        #expect(RescoredSequenceScorer.wordRanges(energies: e, wordFrames: [12, 47, 82]) == [6..<34, 41..<74, 76..<99])
    }

    @Test func aShortGapIsCutInTheMiddleAndWordsWithoutSilenceKeepTheEdges() {
        let e = energies(count: 40, words: [0..<20, 24..<40])
        // Quiet frames 21 and 22 only: one cut after frame 22; no quiet part before the first
        // word or after the last.
        #expect(RescoredSequenceScorer.wordRanges(energies: e, wordFrames: [2, 26]) == [0..<23, 23..<40])
        let one = energies(count: 15, words: [3..<10])
        #expect(RescoredSequenceScorer.wordRanges(energies: one, wordFrames: [5]) == [0..<14])
        #expect(RescoredSequenceScorer.wordRanges(energies: one, wordFrames: []) == [])
    }

    func checkpoint(mode: SequenceClassifierConfig.Mode, names: [String], features: FeatureConfig = FeatureConfig()) throws -> SpeechCheckpoint {
        let width = features.featureCount
        let config = SequenceClassifierConfig(inputSize: width, cell: .gru, layers: 1, hidden: 4, bidirectional: false,
                                              classes: names.count, mode: mode, pooling: .mean)
        return SpeechCheckpoint(model: try SpeechClassifier(config: config, seed: 1), features: features,
                                normalizer: FeatureNormalizer(featureCount: width), labels: LabelSet(names: names))
    }

    @Test func refusesWhatCannotBeCombined() throws {
        let digits = [SpeechTask.blank, "1", "2", "3"]
        let sequence = try SpeechEnsemble(members: [checkpoint(mode: .ctc, names: digits)], paths: ["seq"])
        let words = try SpeechEnsemble(members: [checkpoint(mode: .manyToOne, names: ["1", "2", "3"])], paths: ["words"])
        #expect(throws: Never.self) { _ = try RescoredSequenceScorer(sequence: sequence, sequencePath: "seq", words: words, wordsPath: "words", threads: 1) }
        #expect(throws: RescoredSequenceScorer.Problem.task(path: "words", expected: .sequence, got: .utterance)) {
            _ = try RescoredSequenceScorer(sequence: words, sequencePath: "words", words: words, wordsPath: "words", threads: 1)
        }
        #expect(throws: RescoredSequenceScorer.Problem.task(path: "seq", expected: .utterance, got: .sequence)) {
            _ = try RescoredSequenceScorer(sequence: sequence, sequencePath: "seq", words: sequence, wordsPath: "seq", threads: 1)
        }
        let other = try SpeechEnsemble(members: [checkpoint(mode: .manyToOne, names: ["1", "2", "four"])], paths: ["other"])
        #expect(throws: RescoredSequenceScorer.Problem.unknownLabel(path: "other", label: "four", sequencePath: "seq")) {
            _ = try RescoredSequenceScorer(sequence: sequence, sequencePath: "seq", words: other, wordsPath: "other", threads: 1)
        }
        var trim = FeatureConfig()
        trim.trimDecibels = 30
        let trimmed = try SpeechEnsemble(members: [checkpoint(mode: .ctc, names: digits, features: trim)], paths: ["trimmed"])
        let problem = RescoredSequenceScorer.Problem.trimmed(path: "trimmed")
        #expect(throws: problem) {
            _ = try RescoredSequenceScorer(sequence: trimmed, sequencePath: "trimmed", words: words, wordsPath: "words", threads: 1)
        }
        #expect(problem.description.hasPrefix("trimmed: trims silence"))
    }

    /// Tone digits with silence around them (`SpeechSequenceTaskTests.writeToneDigits`): a CTC model on connected digits of two
    /// voices and an utterance model on the same two voices' isolated digits, a few seconds of
    /// training each. On the third voice's connected digits every word range of a file whose
    /// word count the first pass got right holds the middle of that word as its label track
    /// gives it (the track is written by `make-sequences`, not read by either pass), the words'
    /// names come from the utterance model (renaming two of its classes swaps them in the
    /// output), and the rescored label error rate is at most 10 %.
    @Test func piecesFollowTheLabelTracksAndTheWordsAreNamed() throws {
        let source = try makeTempDir("rescoresource"), set = try makeTempDir("rescoreset")
        defer { for u in [source, set] { try? FileManager.default.removeItem(at: u) } }
        try SpeechSequenceTaskTests.writeToneDigits(into: source, padded: true)
        var c = ConnectedDigits.Options()
        c.trainCount = 48; c.testCount = 12; c.testSpeakers = ["cc"]; c.digits = 2...4; c.gapMilliseconds = 40...120; c.seed = 2
        _ = try ConnectedDigits.make(source: source, out: set, options: c)

        var s = SpeechTrainingOptions()
        s.dataPath = set.path; s.task = .sequence; s.cell = .gru; s.hidden = 16; s.bidirectional = true; s.batch = 8; s.valFraction = 0.15
        let sequenceData = try SpeechTraining.prepare(options: s, seed: 1, threads: 2)
        _ = try trainSpeech(s, data: sequenceData, epochs: 40, out: set.path + "/seq")
        var u = SpeechTrainingOptions()
        u.dataPath = source.path; u.task = .utterance; u.split = "speaker:cc"; u.cell = .gru; u.hidden = 12; u.bidirectional = true
        u.batch = 6; u.valFraction = 0; u.utteranceCMN = true   // make-sequences changes each word's gain
        let wordData = try SpeechTraining.prepare(options: u, seed: 1, threads: 2)
        let wordReport = try trainSpeech(u, data: wordData, epochs: 30, out: set.path + "/words")

        let sequence = try SpeechEnsemble(paths: [set.path + "/seq/best.safetensors"])
        let words = try SpeechEnsemble(paths: [set.path + "/words/best.safetensors"])
        let scorer = try RescoredSequenceScorer(sequence: sequence, sequencePath: "seq", words: words, wordsPath: "words", threads: 2)
        let test = sequenceData.test
        #expect(test.count == 12)
        let firstPass = sequence.scorer.decodeSequencesWithFrames(test, beamWidth: 1)
        let first = firstPass.decoded
        let pieces = scorer.pieces(test, decoded: first.map(\.labels), frames: firstPass.frames)
        var checked = 0
        for (k, e) in test.enumerated() where first[k].labels.count == e.labelSequence.count {
            let (audio, ranges) = try #require(pieces[k], "\(e.path): no pieces")
            let track = try String(contentsOf: URL(fileURLWithPath: String(e.path.dropLast(4)) + ".txt"), encoding: .utf8)
            let spans = track.split(separator: "\n").map { line -> Double in
                let f = line.split(separator: "\t").map(String.init)
                return (Double(f[0])! + Double(f[1])!) / 2
            }
            #expect(spans.count == ranges.count)
            for (middle, r) in zip(spans, ranges) {
                let at = Int(middle * 8000)
                #expect(r.contains(at), "\(e.path): word at \(middle) s outside samples \(r) of \(audio.count)")
                checked += 1
            }
        }
        #expect(checked >= 20, "only \(checked) words in files whose count the first pass got right")
        let rescored = scorer.decodeSequences(test, beamWidth: 1).decoded
        #expect(zip(rescored, first).allSatisfy { $0.labels.count == $1.labels.count }, "the word count stays the first pass's")
        // The second pass names the words: the same network with its classes "1" and "2" named the
        // other way round swaps them in every rescored sequence.
        let m = words.members[0]
        let swappedNames = m.labels.names.map { $0 == "1" ? "2" : $0 == "2" ? "1" : $0 }
        let swapped = try RescoredSequenceScorer(
            sequence: sequence, sequencePath: "seq",
            words: try SpeechEnsemble(members: [SpeechCheckpoint(model: m.model, features: m.features, normalizer: m.normalizer,
                                                                  labels: LabelSet(names: swappedNames))], paths: ["swapped"]),
            wordsPath: "swapped", threads: 2)
        let one = try #require(sequence.labels.index(of: "1")), two = try #require(sequence.labels.index(of: "2"))
        let expected = rescored.map { $0.labels.map { $0 == one ? two : $0 == two ? one : $0 } }
        #expect(swapped.decodeSequences(test, beamWidth: 1).decoded.map(\.labels) == expected)
        #expect(expected != rescored.map(\.labels), "the test set holds 1s or 2s")
        let ev = SpeechInference.evaluate(scorer, examples: test, silence: nil, batchSize: test.count)
        let ler = try #require(ev.labelErrorRate)
        let firstLER = SpeechInference.evaluate(sequence.scorer, examples: test, silence: nil).labelErrorRate ?? -1
        #expect(ler <= 0.10, "rescored label error rate \(ler), first pass \(firstLER), words alone \(wordReport.test.accuracy)")
    }

    /// Through the built tool: what cannot be combined is one line and exit status 1.
    @Test(.enabled(if: builtExecutable("speech-classify") != nil, "speech-classify is not built next to the test bundle"))
    func theToolRefusesWithOneLine() throws {
        let tool = builtExecutable("speech-classify") ?? "speech-classify"
        let dir = try makeTempDir("rescorecli")
        defer { try? FileManager.default.removeItem(at: dir) }
        try SpeechSequenceTaskTests.writeToneDigits(into: dir, padded: true)
        let seq = dir.path + "/seq.safetensors", words = dir.path + "/words.safetensors"
        try checkpoint(mode: .ctc, names: [SpeechTask.blank, "1", "2", "3"]).write(to: seq)
        try checkpoint(mode: .manyToOne, names: ["1", "2", "3"]).write(to: words)
        let wrongWay = try runProcess(tool, ["eval", "--checkpoint", seq, "--rescore", seq, "--data", dir.path])
        #expect(wrongWay.status == 1 && wrongWay.stdout.isEmpty, "\(wrongWay.stdout)")
        #expect(wrongWay.stderr == "speech-classify: \(seq): its task is sequence, where utterance is needed\n", "\(wrongWay.stderr)")
        let warped = try runProcess(tool, ["eval", "--checkpoint", seq, "--rescore", words, "--data", dir.path, "--warp", "1.1"])
        #expect(warped.status != 0 && warped.stderr.contains("--rescore: cannot be combined with --warp or --adapt-warp"), "\(warped.stderr)")
        // The two go together: the first pass of an untrained network, then the words named.
        let ok = try runProcess(tool, ["eval", "--checkpoint", seq, "--rescore", words, "--data", dir.path, "--format", "json"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(ok.stdout.utf8)) as? [String: Any])
        #expect(o["words_named_by"] as? String == words && o["label_error_rate"] is Double, "\(ok.stdout)")
        // predict decodes the files given together as eval does: the same labels as eval's errors file.
        let errors = dir.path + "/errors.tsv"
        _ = try runProcess(tool, ["eval", "--checkpoint", seq, "--rescore", words, "--data", dir.path, "--errors", errors])
        let wrong = try String(contentsOfFile: errors, encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".wav") }.sorted().map { dir.path + "/" + $0 }
        let predicted = try runProcess(tool, ["predict", "--checkpoint", seq, "--rescore", words, "--format", "tsv"] + files)
        #expect(predicted.status == 0, "\(predicted.stderr)")
        let rows = predicted.stdout.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        #expect(rows.count == files.count)
        let byFile = Dictionary(rows.map { (String($0[0]), String($0[1])) }, uniquingKeysWith: { a, _ in a })
        #expect(!wrong.isEmpty)
        for w in wrong { #expect(byFile[String(w[0])] == String(w[2]), "\(w[0]): predict \(byFile[String(w[0])] ?? "-"), eval \(w[2])") }
    }
}
