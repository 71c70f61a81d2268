import Foundation
import RecurrentCore

/// The corpus `lm-train` uses when given none: real English text that every Debian or Ubuntu
/// machine has without a network, the licence texts in `/usr/share/common-licenses/`; where that
/// folder is missing, text the project generates itself from a small seeded grammar.
public enum DefaultCorpus {
    /// The licence files read, in this order (symbolic links such as `GPL` → `GPL-3` are not
    /// listed, so nothing is read twice). Missing files are skipped.
    public static let licenseFiles = [
        "GPL-3", "GPL-2", "GPL-1", "LGPL-3", "LGPL-2.1", "LGPL-2", "GFDL-1.3", "GFDL-1.2",
        "Apache-2.0", "MPL-2.0", "MPL-1.1", "Artistic", "BSD", "CC0-1.0",
    ]

    /// Folder the licence texts are read from.
    public static let licenseDirectory = "/usr/share/common-licenses"

    /// The default corpus and a one-line description of where it came from.
    ///
    /// Reads the files of `licenseFiles` found in `directory` (plain files only, each valid
    /// UTF-8, joined with `"\n"`); when none is found, returns `generated()`.
    public static func load(directory: String = licenseDirectory) -> (text: String, description: String) {
        var parts: [String] = []
        var names: [String] = []
        for name in licenseFiles {
            let path = directory + "/" + name
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  attributes[.type] as? FileAttributeType == .typeRegular,
                  let text = try? TextCorpus.loadFile(path: path, byteLimit: 4 << 20) else { continue }
            parts.append(text)
            names.append(name)
        }
        if parts.isEmpty {
            let text = generated()
            return (text, "generated sample text (\(grouped(text.unicodeScalars.count)) characters; "
                    + "\(directory) not found)")
        }
        let text = parts.joined(separator: "\n")
        return (text, "\(names.count) licence texts from \(directory) (\(names.joined(separator: ", ")); "
                + "\(grouped(text.unicodeScalars.count)) characters)")
    }

    /// Deterministic English-like text from a small grammar: sentences of determiners,
    /// adjectives, nouns, verbs and prepositional phrases, wrapped at 72 columns into
    /// paragraphs separated by blank lines. The same `seed` and `characterCount` give the same
    /// text on every machine; the result has at least `characterCount` characters (ASCII).
    public static func generated(characterCount: Int = 200_000, seed: UInt64 = 1) -> String {
        var rng = SeededRandom(seed: seed)
        func pick(_ words: [String]) -> String { words[rng.nextInt(below: words.count)] }
        let determiners = ["the", "a", "every", "one", "that", "this", "no"]
        let adjectives = ["old", "quiet", "red", "small", "bright", "cold", "patient", "busy", "gentle",
                          "heavy", "strange", "green", "early", "tired", "clever"]
        let nouns = ["river", "farmer", "lantern", "city", "bird", "teacher", "garden", "machine", "letter",
                     "window", "mountain", "child", "market", "ship", "winter", "song", "road", "baker"]
        let verbs = ["sees", "follows", "finds", "carries", "remembers", "builds", "watches", "answers",
                     "keeps", "opens", "crosses", "paints", "hears", "moves"]
        let intransitive = ["sleeps", "waits", "sings", "returns", "shines", "falls", "listens", "wanders"]
        let prepositions = ["near", "under", "behind", "beyond", "across", "beside", "after", "before"]
        let adverbs = ["slowly", "again", "today", "quietly", "at last", "at night", "once more", "often"]
        let conjunctions = ["and", "but", "while", "because", "so"]

        func nounPhrase() -> String {
            var words = [pick(determiners)]
            if rng.nextInt(below: 2) == 0 { words.append(pick(adjectives)) }
            words.append(pick(nouns))
            if rng.nextInt(below: 4) == 0 { words += [pick(prepositions), pick(determiners), pick(nouns)] }
            return words.joined(separator: " ")
        }
        func clause() -> String {
            var text = nounPhrase() + " "
            if rng.nextInt(below: 3) == 0 {
                text += pick(intransitive)
            } else {
                text += pick(verbs) + " " + nounPhrase()
            }
            if rng.nextInt(below: 3) == 0 { text += " " + pick(adverbs) }
            return text
        }
        func sentence() -> String {
            var text = clause()
            if rng.nextInt(below: 3) == 0 { text += ", " + pick(conjunctions) + " " + clause() }
            let end = [".", ".", ".", "!", "?"][rng.nextInt(below: 5)]
            return text.prefix(1).uppercased() + text.dropFirst() + end
        }

        var output = ""
        var count = 0
        while count < characterCount {
            // One paragraph: 3 to 7 sentences, wrapped at 72 columns.
            var line = ""
            var paragraph = ""
            for _ in 0..<(3 + rng.nextInt(below: 5)) {
                for word in sentence().split(separator: " ") {
                    if !line.isEmpty && line.count + 1 + word.count > 72 {
                        paragraph += line + "\n"
                        line = ""
                    }
                    line += line.isEmpty ? String(word) : " " + word
                }
            }
            paragraph += line + "\n\n"
            output += paragraph
            count += paragraph.count
        }
        return output
    }
}

/// The tiny-shakespeare corpus (Karpathy's char-rnn data, 1,115,394 characters) when the data
/// folder named by `RNN_DATA_DIR` holds it.
public enum TinyShakespeare {
    /// The corpus path under a data folder: `<dataDirectory>/tinyshakespeare/input.txt`.
    public static func path(dataDirectory: String) -> String {
        (dataDirectory.hasSuffix("/") ? dataDirectory : dataDirectory + "/") + "tinyshakespeare/input.txt"
    }

    /// The corpus path under `$RNN_DATA_DIR` if the variable is set and the file exists.
    public static func pathIfPresent(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard let directory = environment["RNN_DATA_DIR"], !directory.isEmpty else { return nil }
        let file = path(dataDirectory: directory)
        return FileManager.default.fileExists(atPath: file) ? file : nil
    }

    /// The text of `$RNN_DATA_DIR/tinyshakespeare/input.txt`, or nil when it is not there.
    ///
    /// - Throws: `TextDataError` when the file is present but unreadable or not UTF-8.
    public static func loadIfPresent(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String? {
        guard let file = pathIfPresent(environment: environment) else { return nil }
        return try TextCorpus.loadFile(path: file)
    }
}
