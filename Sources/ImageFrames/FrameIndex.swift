import Foundation
import RecurrentCore

/// One example before loading: its frame files in time order and its labels (as names).
public struct FrameItem: Sendable, Equatable {
    /// Where the example comes from (clip folder or image file), for messages.
    public var name: String
    /// Frame files in time order (natural order of their names); one file for single images.
    public var frames: [String]
    /// Class name of the whole example.
    public var className: String
    /// Per-frame label names `[frames.count]` from the clip's `labels.txt`, if present.
    public var frameLabels: [String]?

    /// Creates an item.
    public init(name: String, frames: [String], className: String, frameLabels: [String]? = nil) {
        self.name = name
        self.frames = frames
        self.className = className
        self.frameLabels = frameLabels
    }
}

/// How a data-set folder is organised.
public enum FrameLayout: String, Codable, Sendable {
    /// `DIR/<class>/<clip>/<frame>.png`, optional `labels.txt` per clip (one label per frame,
    /// one per line): one example per clip (many-to-one, or per-frame with labels).
    case clips
    /// `DIR/<class>/<image>.png`: one example per image (use `FeatureConfig.mode = .rows` for
    /// row sequences, "sequential MNIST").
    case images
}

/// The examples of a data set (file lists and label names), found by scanning folders or
/// reading a CSV manifest; nothing is decoded yet.
public struct FrameIndex: Sendable, Equatable {
    /// Class names, sorted in natural order; a label index points into this list.
    public var classNames: [String]
    /// Items in a deterministic order (class, then natural order of names).
    public var items: [FrameItem]

    /// Creates an index.
    public init(classNames: [String], items: [FrameItem]) {
        self.classNames = classNames
        self.items = items
    }

    /// Sorted, distinct per-frame label names used by the items (empty when none has labels).
    public var frameClassNames: [String] {
        NaturalOrder.sorted(Array(Set(items.flatMap { $0.frameLabels ?? [] })))
    }

    /// Scans `directory` laid out as `layout`.
    /// - Throws: `FrameError.noClasses`, `.emptyClass`, `.emptyClip`, `.labelCountMismatch`,
    ///   `.unreadable`.
    public static func scan(directory: String, layout: FrameLayout) throws -> FrameIndex {
        let classes = try subfolders(of: directory)
        guard !classes.isEmpty else { throw FrameError.noClasses(path: directory) }
        var items: [FrameItem] = []
        for className in classes {
            let classDir = join(directory, className)
            switch layout {
            case .images:
                let images = try pngFiles(in: classDir)
                guard !images.isEmpty else { throw FrameError.emptyClass(path: classDir) }
                for image in images {
                    let path = join(classDir, image)
                    items.append(FrameItem(name: path, frames: [path], className: className))
                }
            case .clips:
                let clips = try subfolders(of: classDir)
                guard !clips.isEmpty else { throw FrameError.emptyClass(path: classDir) }
                for clip in clips {
                    items.append(try clipItem(folder: join(classDir, clip), className: className))
                }
            }
        }
        return FrameIndex(classNames: classes, items: items)
    }

    /// Reads a CSV manifest of `path,label` lines. Paths are relative to the manifest's folder
    /// (or absolute) and name a PNG file (single image) or a clip folder. A first line
    /// `path,label` is a header and skipped; blank lines and lines starting with `#` are
    /// ignored; the label is the text after the last comma; fields may be double-quoted.
    public static func manifest(path: String) throws -> FrameIndex {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw FrameError.unreadable(path: path, reason: FileManager.default.fileExists(atPath: path) ? "not UTF-8 text" : "no such file")
        }
        let base = (path as NSString).deletingLastPathComponent
        var items: [FrameItem] = []
        var classes = Set<String>()
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if items.isEmpty && classes.isEmpty && line.lowercased().replacingOccurrences(of: " ", with: "") == "path,label" { continue }
            guard let comma = line.lastIndex(of: ",") else {
                throw FrameError.invalidManifest(path: path, line: number + 1, reason: "expected 'path,label'")
            }
            let file = unquote(String(line[..<comma]))
            let label = unquote(String(line[line.index(after: comma)...]))
            guard !file.isEmpty, !label.isEmpty else {
                throw FrameError.invalidManifest(path: path, line: number + 1, reason: "empty path or label")
            }
            let full = file.hasPrefix("/") ? file : join(base, file)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDir) else {
                throw FrameError.invalidManifest(path: path, line: number + 1, reason: "no such file or folder '\(full)'")
            }
            if isDir.boolValue {
                items.append(try clipItem(folder: full, className: label))
            } else {
                items.append(FrameItem(name: full, frames: [full], className: label))
            }
            classes.insert(label)
        }
        guard !items.isEmpty else {
            throw FrameError.invalidManifest(path: path, line: 0, reason: "manifest lists no examples")
        }
        return FrameIndex(classNames: NaturalOrder.sorted(Array(classes)), items: items)
    }

    /// Splits into train and test: per class, the items are shuffled with `SeededRandom(seed)`
    /// and `round(testFraction * n)` of them (at least one when `n > 1` and the fraction is
    /// positive) go to test. Both parts keep this index's class names and item order.
    public func split(testFraction: Double, seed: UInt64) throws -> (train: FrameIndex, test: FrameIndex) {
        guard testFraction >= 0, testFraction < 1 else {
            throw FrameError.invalidArgument("test fraction \(testFraction) outside [0, 1)")
        }
        var rng = SeededRandom(seed: seed)
        var isTest = [Bool](repeating: false, count: items.count)
        for name in classNames {
            var members = items.indices.filter { items[$0].className == name }
            rng.shuffle(&members)
            var k = Int((testFraction * Double(members.count)).rounded())
            if testFraction > 0 && members.count > 1 { k = max(k, 1) }
            k = min(k, members.count - 1)
            for m in members.prefix(max(k, 0)) { isTest[m] = true }
        }
        let train = items.indices.filter { !isTest[$0] }.map { items[$0] }
        let test = items.indices.filter { isTest[$0] }.map { items[$0] }
        return (FrameIndex(classNames: classNames, items: train), FrameIndex(classNames: classNames, items: test))
    }

    /// Train and test indices of `root`: its `train/` and `test/` sub-folders when both exist
    /// (class names: the union of both, sorted), otherwise a seeded split of `root` itself.
    public static func scanSplit(root: String, layout: FrameLayout, testFraction: Double = 0.2,
                                 seed: UInt64 = 1) throws -> (train: FrameIndex, test: FrameIndex) {
        let trainDir = join(root, "train"), testDir = join(root, "test")
        if isDirectory(trainDir) && isDirectory(testDir) {
            var train = try scan(directory: trainDir, layout: layout)
            var test = try scan(directory: testDir, layout: layout)
            let names = NaturalOrder.sorted(Array(Set(train.classNames).union(test.classNames)))
            train.classNames = names
            test.classNames = names
            return (train, test)
        }
        return try scan(directory: root, layout: layout).split(testFraction: testFraction, seed: seed)
    }

    // MARK: - Folder helpers

    static func clipItem(folder: String, className: String) throws -> FrameItem {
        let frames = try pngFiles(in: folder).map { join(folder, $0) }
        guard !frames.isEmpty else { throw FrameError.emptyClip(path: folder) }
        var labels: [String]? = nil
        let labelFile = join(folder, "labels.txt")
        if FileManager.default.fileExists(atPath: labelFile) {
            guard let text = try? String(contentsOfFile: labelFile, encoding: .utf8) else {
                throw FrameError.unreadable(path: labelFile, reason: "not readable UTF-8 text")
            }
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            while let last = lines.last, last.isEmpty { lines.removeLast() }
            guard lines.count == frames.count else {
                throw FrameError.labelCountMismatch(path: labelFile, labels: lines.count, frames: frames.count)
            }
            if let blank = lines.firstIndex(where: \.isEmpty) {
                throw FrameError.invalidManifest(path: labelFile, line: blank + 1, reason: "empty label")
            }
            labels = lines
        }
        return FrameItem(name: folder, frames: frames, className: className, frameLabels: labels)
    }

    static func entries(of directory: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: directory).filter { !$0.hasPrefix(".") }
        } catch {
            throw FrameError.unreadable(path: directory, reason: isDirectory(directory) ? "cannot list folder" : "no such folder")
        }
    }

    static func subfolders(of directory: String) throws -> [String] {
        NaturalOrder.sorted(try entries(of: directory).filter { isDirectory(join(directory, $0)) })
    }

    static func pngFiles(in directory: String) throws -> [String] {
        NaturalOrder.sorted(try entries(of: directory).filter {
            $0.lowercased().hasSuffix(".png") && !isDirectory(join(directory, $0))
        })
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    static func join(_ a: String, _ b: String) -> String {
        a.hasSuffix("/") ? a + b : a + "/" + b
    }

    static func unquote(_ s: String) -> String {
        let t = s.trimmingCharacters(in: .whitespaces)
        if t.count >= 2, t.hasPrefix("\""), t.hasSuffix("\"") {
            return String(t.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"")
        }
        return t
    }
}
