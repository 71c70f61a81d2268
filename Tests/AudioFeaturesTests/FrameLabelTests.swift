import RecurrentCore
import Foundation
import Testing
@testable import AudioFeatures

@Suite struct FrameLabelTests {
    @Test func parsesAudacityLabelTrack() throws {
        let text = "0.100000\t0.300000\tthree\r\n\\\t440.0\t880.0\n\n0.300000\t0.450000\tfive\n0.6\t0.6\tmark\n0.7\t0.8\t\n"
        let track = try LabelTrack(parsing: text, path: "a.txt")
        #expect(track.segments == [
            LabelSegment(start: 0.1, end: 0.3, label: "three"),
            LabelSegment(start: 0.3, end: 0.45, label: "five"),
            LabelSegment(start: 0.6, end: 0.6, label: "mark"),
            LabelSegment(start: 0.7, end: 0.8, label: ""),
        ])
    }

    @Test func eachFrameTakesTheLabelAtItsCentre() throws {
        let track = try LabelTrack(parsing: "0.1\t0.3\tthree\n0.3\t0.45\tfive\n", path: "a.txt")
        // Default config: frame i covers samples [80i, 80i + 200) at 8 kHz, centre 0.0125 + 0.01 i s.
        // "three" holds centres in [0.1, 0.3): i = 9 … 28; "five" centres in [0.3, 0.45): i = 29 … 43.
        let labels = track.frameLabels(frameCount: 60, config: FeatureConfig())
        for i in 0..<60 {
            let expected = (9...28).contains(i) ? "three" : (29...43).contains(i) ? "five" : "silence"
            #expect(labels[i] == expected, "frame \(i)")
        }
    }

    @Test func badTracksAreRejectedWithFileAndLine() {
        let cases: [(String, (LabelError) -> Bool)] = [
            ("0.1\t0.3\ta\n0.2\t0.4\tb\n", { if case .overlappingSegments(_, 2, _, _) = $0 { return true }; return false }),
            ("0.5\t0.3\ta\n", { if case .reversedSegment(_, 1, _, _) = $0 { return true }; return false }),
            ("0.1 0.3 a\n", { if case .malformedLine(_, 1, _) = $0 { return true }; return false }),
            ("0.1\tabc\ta\n", { if case .malformedLine(_, 1, _) = $0 { return true }; return false }),
            ("-1\t0.3\ta\n", { if case .malformedLine(_, 1, _) = $0 { return true }; return false }),
        ]
        for (text, matches) in cases {
            let e = caught { _ = try LabelTrack(parsing: text, path: "/data/x.txt") }
            guard let le = e as? LabelError else { Issue.record("no error for \(text)"); continue }
            #expect(matches(le), "\(le)")
            #expect("\(le)".hasPrefix("/data/x.txt:") && !"\(le)".contains("\n"))
        }
    }

    @Test func segmentsPastTheEndOfAudioBeyondTheToleranceAreRejected() throws {
        let ok = try LabelTrack(parsing: "0.5\t1.005\ta\n", path: "t.txt")
        try ok.validate(duration: 1.0)  // within the 10 ms tolerance
        let late = try LabelTrack(parsing: "0.1\t0.2\ta\n0.5\t1.02\tb\n", path: "t.txt")
        #expect(throws: LabelError.pastEndOfAudio(path: "t.txt", line: 2, end: 1.02, duration: 1.0)) {
            try late.validate(duration: 1.0)
        }
    }

    @Test func labelFileBesideTheAudioGivesFeaturesAndFrameLabels() throws {
        let dir = try makeTempDir()
        let wav = dir.appendingPathComponent("utt.wav")
        let x = (0..<4000).map { Float(0.3 * sin(Double($0) * 0.2)) }  // 0.5 s
        try AudioWriter.write(wav, interleaved: x, channels: 1, sampleRate: 8000)
        try "0.2\t0.3\tseven\n".write(to: dir.appendingPathComponent("utt.txt"), atomically: true, encoding: .utf8)
        let (f, labels) = try LabelTrack.labelledFeatures(audio: wav, extractor: MFCCExtractor())
        #expect(f.frames == 49 && labels.count == 49)  // 1 + ceil((4000 - 200) / 80)
        #expect(labels.filter { $0 == "seven" }.count == 10)  // centres 0.2025 … 0.2925
        try "0.2\t0.6\tseven\n".write(to: dir.appendingPathComponent("utt.txt"), atomically: true, encoding: .utf8)
        #expect(throws: LabelError.self) { _ = try LabelTrack.labelledFeatures(audio: wav, extractor: MFCCExtractor()) }
    }
}
