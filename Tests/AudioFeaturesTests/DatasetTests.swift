import RecurrentCore
import Foundation
import Testing
@testable import AudioFeatures

@Suite struct DatasetTests {
    /// Writes FSDD-style files with distinct tones; returns the folder.
    func makeSet(_ names: [String]) throws -> URL {
        let dir = try makeTempDir()
        for (k, n) in names.enumerated() {
            let x = (0..<(1200 + 97 * k)).map { Float(0.2 * sin(Double($0) * (0.05 + 0.03 * Double(k)))) }
            try AudioWriter.write(dir.appendingPathComponent(n), interleaved: x, channels: 1, sampleRate: 8000)
        }
        return dir
    }

    let names = ["3_alice_0.wav", "3_alice_7.wav", "5_bob_2.wav", "5_bob_30.wav", "7_carol_4.wav", "7_carol_5.wav"]

    @Test func listsFilesWithFSDDLabelsSpeakersAndIndices() throws {
        let dir = try makeSet(names)
        try "not audio".write(to: dir.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        let u = try UtteranceDataset.list(folder: dir)
        #expect(u.map { $0.url.lastPathComponent } == names)  // sorted, non-audio skipped
        #expect(u.map(\.label) == ["3", "3", "5", "5", "7", "7"])
        #expect(u.map { $0.speaker ?? "" } == ["alice", "alice", "bob", "bob", "carol", "carol"])
        #expect(u.map { $0.index ?? -1 } == [0, 7, 2, 30, 4, 5])
    }

    @Test func otherLabelRules() throws {
        let dir = try makeSet(names)
        let byField = try UtteranceDataset.list(folder: dir, rule: LabelRule(parsing: "field:1"))
        #expect(byField.map(\.label) == ["alice", "alice", "bob", "bob", "carol", "carol"])
        let byRegex = try UtteranceDataset.list(folder: dir, rule: LabelRule(parsing: "regex:_([a-z])[a-z]*_"))
        #expect(byRegex.map(\.label) == ["a", "a", "b", "b", "c", "c"])
        #expect(throws: DatasetError.self) { _ = try UtteranceDataset.list(folder: dir, rule: .filenamePattern("^x(y)")) }
        #expect(throws: DatasetError.self) { _ = try LabelRule(parsing: "regex:(") }

        // Parent-folder labels.
        let root = try makeTempDir()
        for (cls, file) in [("yes", "a.wav"), ("no", "b.wav"), ("yes", "c.wav")] {
            let sub = root.appendingPathComponent(cls)
            try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
            try AudioWriter.write(sub.appendingPathComponent(file), interleaved: [0.1, 0.2], channels: 1, sampleRate: 8000)
        }
        let byFolder = try UtteranceDataset.list(folder: root, rule: .parentFolder)
        #expect(byFolder.map { "\($0.label)/\($0.url.lastPathComponent)" } == ["no/b.wav", "yes/a.wav", "yes/c.wav"])

        // CSV manifest with a header and relative paths.
        let manifest = dir.appendingPathComponent("list.csv")
        try "path,label\n3_alice_0.wav,three\n# comment\n5_bob_2.wav,five\n".write(to: manifest, atomically: true, encoding: .utf8)
        let byManifest = try UtteranceDataset.list(folder: dir, rule: .manifest(manifest))
        #expect(byManifest.map(\.label) == ["three", "five"])
        #expect(byManifest[1].url == dir.appendingPathComponent("5_bob_2.wav") && byManifest[1].speaker == "bob")
        try "a.wav\n".write(to: manifest, atomically: true, encoding: .utf8)
        #expect(throws: DatasetError.badManifest(path: manifest.path, line: 1, reason: "expected path,label")) {
            _ = try UtteranceDataset.readManifest(manifest)
        }
    }

    @Test func splits() throws {
        let u = try UtteranceDataset.list(folder: makeSet(names))
        let official = try UtteranceDataset.split(u, by: DatasetSplit(parsing: "official"))
        #expect(official.test.map { $0.url.lastPathComponent } == ["3_alice_0.wav", "5_bob_2.wav", "7_carol_4.wav"])
        #expect(official.train.map { $0.url.lastPathComponent } == ["3_alice_7.wav", "5_bob_30.wav", "7_carol_5.wav"])
        let bob = try UtteranceDataset.split(u, by: DatasetSplit(parsing: "speaker:bob"))
        #expect(bob.test.allSatisfy { $0.speaker == "bob" } && bob.test.count == 2 && bob.train.count == 4)
        let two = try UtteranceDataset.split(u, by: DatasetSplit(parsing: "speakers:bob,carol"))
        #expect(two.test.map { $0.url.lastPathComponent } == ["5_bob_2.wav", "5_bob_30.wav", "7_carol_4.wav", "7_carol_5.wav"])
        #expect(two.train.map { $0.url.lastPathComponent } == ["3_alice_0.wav", "3_alice_7.wav"])
        #expect(try DatasetSplit(parsing: "speakers:bob,carol").name == "speakers:bob,carol")
        #expect(throws: DatasetError.self) { _ = try DatasetSplit(parsing: "speakers:bob,,carol") }

        let r1 = try UtteranceDataset.split(u, by: DatasetSplit(parsing: "random:42:0.5"))
        let r2 = try UtteranceDataset.split(u, by: .random(seed: 42, testFraction: 0.5))
        #expect(r1.test == r2.test && r1.train == r2.train)
        #expect(r1.test.count == 3 && Set(r1.test + r1.train) == Set(u))
        let others = (1...20).map { try? UtteranceDataset.split(u, by: .random(seed: UInt64($0), testFraction: 0.5)).test }
        #expect(others.contains { $0 != r1.test })  // the seed matters
        #expect(throws: DatasetError.self) { _ = try DatasetSplit(parsing: "random:x") }
        #expect(throws: DatasetError.self) { _ = try DatasetSplit(parsing: "half") }
    }

    /// `--test-fraction` (the shared option) sets the fraction of a random split and nothing else.
    @Test func testFractionMakesOrCompletesARandomSplit() throws {
        #expect(try DatasetSplit.trainingText(split: nil, testFraction: nil, seed: 7) == "official")
        #expect(try DatasetSplit.trainingText(split: "speaker:bob", testFraction: nil, seed: 7) == "speaker:bob")
        #expect(try DatasetSplit.trainingText(split: nil, testFraction: 0.25, seed: 7) == "random:7:0.25")
        #expect(try DatasetSplit.trainingText(split: "random", testFraction: 0.25, seed: 7) == "random:7:0.25")
        #expect(try DatasetSplit.trainingText(split: "random:3", testFraction: 0.25, seed: 7) == "random:3:0.25")
        let u = try UtteranceDataset.list(folder: makeSet(names))
        let viaFraction = try UtteranceDataset.split(u, by: DatasetSplit(parsing: DatasetSplit.trainingText(split: nil, testFraction: 0.5, seed: 42)))
        #expect(viaFraction.test == (try UtteranceDataset.split(u, by: .random(seed: 42, testFraction: 0.5))).test)
        for (split, fraction, message) in [("official", 0.2, "--test-fraction: applies to a random split; --split official chooses the test files itself"),
                                           ("random:3:0.1", 0.2, "--test-fraction: --split random:3:0.1 already gives the test fraction"),
                                           (nil, 1.0, "--test-fraction: must be above 0 and below 1 (got 1.0)")] as [(String?, Double, String)] {
            let error = caught { _ = try DatasetSplit.trainingText(split: split, testFraction: fraction, seed: 1) }
            #expect(error.map { "\($0)" } == message)
        }
    }

    @Test func parallelExtractionIsDeterministicAndOrdered() throws {
        let dir = try makeSet(names)
        let urls = try UtteranceDataset.list(folder: dir).map(\.url)
        let ex = try MFCCExtractor()
        let serial = try urls.map { try ex.features(ofFile: $0) }
        #expect(try UtteranceDataset.extractFeatures(urls, threads: 1) == serial)
        #expect(try UtteranceDataset.extractFeatures(urls, threads: 3) == serial)
        #expect(serial[0].frames == FeatureConfig().frameCount(samples: 1200))

        let bad = dir.appendingPathComponent("9_zed_1.wav")
        try "junk".write(to: bad, atomically: true, encoding: .utf8)
        let e = caught { _ = try UtteranceDataset.extractFeatures(urls + [bad], threads: 2) }
        #expect((e as? AudioError).map { "\($0)".contains(bad.path) } == true)
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["RNN_DATA_DIR"] != nil))
    func fsddSmoke() throws {
        let root = URL(fileURLWithPath: ProcessInfo.processInfo.environment["RNN_DATA_DIR"]!)
        let folder = root.appendingPathComponent("fsdd/recordings")
        let all = try UtteranceDataset.list(folder: folder)
        #expect(all.count == 3000)
        let official = try UtteranceDataset.split(all, by: .official)
        #expect(official.test.count == 300 && official.train.count == 2700)
        let url = folder.appendingPathComponent("0_george_0.wav")
        let info = try AudioLoader.info(url)
        #expect(info.sampleRate == 8000 && info.channels == 1)
        let f = try MFCCExtractor().features(ofFile: url)
        let expectedFrames = info.frames <= 200 ? 1 : 1 + (info.frames - 200 + 79) / 80
        #expect(f.frames == expectedFrames && f.features == 39)
        #expect(f.values.allSatisfy { $0.isFinite })
    }
}
