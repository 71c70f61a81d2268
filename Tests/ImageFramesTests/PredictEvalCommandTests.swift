import Foundation
import RecurrentCore
import TestSupport
import Testing
@testable import ImageFrames

/// frame-classify's predict and eval formats, the recorded test split and the single-image check.
@Suite(.serialized, .enabled(if: builtExecutable("frame-classify") != nil, "frame-classify is not built next to the test bundle"))
struct FramePredictEvalTests {
    let tool = builtExecutable("frame-classify") ?? "frame-classify"

    /// Shapes clips without train/ and test/ folders (the classes directly in `root`), so that
    /// training splits them by --test-fraction.
    func unsplitShapes(_ tmp: TempFolder) throws -> String {
        let options = ShapesOptions(width: 8, height: 8, frames: 3, antiAlias: .off)
        try FrameGenerator.writeShapes(root: tmp.sub("gen"), trainPerClass: 4, testPerClass: 1, seed: 5, options: options)
        return tmp.sub("gen") + "/train"
    }

    func train(_ data: String, out: String) throws -> ProcessResult {
        try runProcess(tool, ["train", "--data", data, "--out", out, "--size", "4x4", "--hidden", "6", "--projection", "0", "--batch", "4",
                              "--steps", "4", "--eval-every", "4", "--threads", "1", "--seed", "2", "--test-fraction", "0.25"])
    }

    @Test func evalDefaultsToTheRecordedTestSplitInEveryFormat() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        let data = try unsplitShapes(tmp)
        let out = tmp.sub("run")
        let r = try train(data, out: out)
        #expect(r.status == 0, "\(r.stderr)")
        let ckpt = out + "/best.safetensors"
        let model = try FrameModel.load(path: ckpt)
        let split = try #require(model.testSplit)
        #expect(split.testFraction == 0.25 && split.seed == 2 && split.data == URL(fileURLWithPath: data).standardizedFileURL.path)
        // The same clips as the training split's test part, none of its training clips.
        let (trainIndex, testIndex) = try FrameIndex.scanSplit(root: data, layout: .clips, testFraction: 0.25, seed: 2)
        let testSet = try split.testSet(model: model)
        #expect(testSet.examples.map(\.source) == testIndex.items.map(\.name))
        #expect(Set(testSet.examples.map(\.source)).isDisjoint(with: trainIndex.items.map(\.name)))
        let expected = try model.evaluate(testSet)

        let errors = tmp.sub("errors.tsv")
        let json = try runProcess(tool, ["eval", "--checkpoint", ckpt, "--format", "json", "--errors", errors])
        #expect(json.status == 0, "\(json.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(o["examples"] as? Int == testIndex.items.count && o["correct"] as? Int == expected.correct)
        #expect(abs((o["accuracy"] as? Double ?? -1) - expected.accuracy) < 1e-6)
        #expect(o["data"] as? String == "the run's test split of \(split.data)")
        // --errors: one line per wrong clip, the reference being the clip's class folder.
        let lines = try String(contentsOfFile: errors, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "input\treference\tprediction" && lines.count - 1 == expected.count - expected.correct)
        for line in lines.dropFirst() {
            let f = line.split(separator: "\t").map(String.init)
            #expect(f.count == 3 && f[1] != f[2] && URL(fileURLWithPath: f[0]).deletingLastPathComponent().lastPathComponent == f[1])
            #expect(model.info.classNames.contains(f[2]))
        }
        let tsv = try runProcess(tool, ["eval", "--checkpoint", ckpt, "--format", "tsv"])
        #expect(tsv.stdout.split(separator: "\n").contains("examples\t\(testIndex.items.count)"), "\(tsv.stdout)")
        let text = try runProcess(tool, ["eval", "--checkpoint", ckpt])
        #expect(text.stdout.contains("\naccuracy: \(String(format: "%.2f", 100 * expected.accuracy)) %\n"), "\(text.stdout)")
        // With --data: all of the folder, and the text says so.
        let all = try runProcess(tool, ["eval", "--checkpoint", ckpt, "--data", data, "--format", "json"])
        let a = try #require(try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [String: Any])
        #expect(a["examples"] as? Int == trainIndex.items.count + testIndex.items.count && a["data"] as? String == "all examples of \(data)")
    }

    @Test func predictTopKAndTheSingleImageCheck() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        let data = try unsplitShapes(tmp)
        let out = tmp.sub("run")
        #expect(try train(data, out: out).status == 0)
        let ckpt = out + "/best.safetensors"
        let model = try FrameModel.load(path: ckpt)
        let (_, testIndex) = try FrameIndex.scanSplit(root: data, layout: .clips, testFraction: 0.25, seed: 2)
        let clips = testIndex.items.prefix(2).map(\.name)
        let expected = try model.predict(paths: clips)
        let r = try runProcess(tool, ["predict", "--checkpoint", ckpt, "--top-k", "6", "--format", "json"] + clips)
        #expect(r.status == 0, "\(r.stderr)")
        let objects = try r.stdout.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects.count == 2)
        for (o, e) in zip(objects, expected) {
            #expect(o["input"] as? String == e.source)
            let top = try #require(o["top"] as? [[String: Any]])
            let p = top.map { $0["probability"] as? Double ?? -1 }
            // Six classes: all of them, best first, summing to one, matching the model's distribution.
            #expect(top.count == 6 && p == p.sorted(by: >) && abs(p.reduce(0, +) - 1) < 1e-5)
            #expect(top[0]["label"] as? String == e.labels[0])
            for entry in top {
                let i = try #require(model.info.classNames.firstIndex(of: entry["label"] as? String ?? ""))
                #expect(abs((entry["probability"] as? Double ?? -1) - Double(e.probabilities[0][i])) < 1e-6)
            }
        }
        let text = try runProcess(tool, ["predict", "--checkpoint", ckpt, "--top-k", "2", clips[0]])
        #expect(text.stdout.hasPrefix("\(clips[0])  \(expected[0].labels[0]) ("), "\(text.stdout)")
        #expect(text.stdout.split(separator: "\n").count == 1 && text.stdout.components(separatedBy: ") ").count == 2)
        // One PNG of a clip, to a clip model: refused, saying why.
        let frame = try #require(testIndex.items.first?.frames.first)
        let single = try runProcess(tool, ["predict", "--checkpoint", ckpt, frame])
        #expect(single.status == 1 && single.stdout.isEmpty)
        #expect(single.stderr == "frame-classify: \(frame): a single image, but this model classifies clips (folders of PNG frames); give the clip's folder\n",
                "\(single.stderr)")
    }
}

@Suite struct FileTreeTests {
    @Test func removesAFolderTreeWithoutFollowingLinks() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        let root = tmp.sub("tree")
        try FileManager.default.createDirectory(atPath: root + "/a/b", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/a/b/f.png"))
        try Data("y".utf8).write(to: URL(fileURLWithPath: root + "/top.txt"))
        let outside = tmp.sub("keep.txt")
        try Data("z".utf8).write(to: URL(fileURLWithPath: outside))
        try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: outside)
        try FileTree.remove(root)
        #expect(!FileManager.default.fileExists(atPath: root))
        #expect(FileManager.default.fileExists(atPath: outside))
        try FileTree.remove(root)   // already gone: no error
    }
}
