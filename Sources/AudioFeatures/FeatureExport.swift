import Foundation

extension FeatureMatrix {
    /// The matrix as CSV: one line per frame, features separated by commas (`%.6g`-style
    /// shortest round-trip Float text).
    public func csvText() -> String {
        var out = ""
        out.reserveCapacity(frames * features * 10)
        for t in 0..<frames {
            for k in 0..<features {
                if k > 0 { out += "," }
                out += "\(values[t * features + k])"
            }
            out += "\n"
        }
        return out
    }

    /// The matrix as a NumPy `.npy` file (format 1.0, little-endian `<f4`, C order, shape
    /// `(frames, features)`), loadable with `numpy.load`.
    public func npyData() -> Data {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(frames), \(features)), }"
        // magic (6) + version (2) + header length (2) + header + '\n', padded to a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let n = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(n & 0xff), UInt8(n >> 8)])
        data.append(contentsOf: Array(header.utf8))
        var le = [UInt8]()
        le.reserveCapacity(values.count * 4)
        for v in values { let b = v.bitPattern.littleEndian; le += [UInt8(b & 0xff), UInt8((b >> 8) & 0xff), UInt8((b >> 16) & 0xff), UInt8(b >> 24)] }
        data.append(contentsOf: le)
        return data
    }
}

/// Synthesises a small spoken-digit utterance set with the `espeak-ng` program: every digit
/// word ("zero" … "nine") for each voice, speed and pitch, written as
/// `{digit}_{voice}_{index}.wav` (FSDD's naming; espeak-ng's own sample rate, resampled on
/// reading). Used by the demo when no recorded data set is available.
public enum SpokenDigitSynthesizer {
    /// Digit words.
    public static let words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

    /// Errors running the synthesiser.
    public enum SynthesisError: Error, CustomStringConvertible {
        /// espeak-ng is not installed or failed.
        case failed(path: String, reason: String)
        /// One line naming the output and the problem.
        public var description: String {
            switch self { case let .failed(path, reason): return "\(path): espeak-ng failed: \(reason)" }
        }
    }

    /// The espeak-ng executable, searched in `PATH`.
    public static func executable() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let p = "\(dir)/espeak-ng"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Writes the set into `folder` (created) and returns the files written.
    /// Voice names must not contain `_` or `/`.
    public static func generate(into folder: URL, voices: [String], speeds: [Int], pitches: [Int]) throws -> [URL] {
        guard let exe = executable() else { throw SynthesisError.failed(path: folder.path, reason: "espeak-ng not found in PATH (apt-get install espeak-ng)") }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var out: [URL] = []
        for voice in voices {
            guard !voice.contains("_"), !voice.contains("/") else {
                throw SynthesisError.failed(path: folder.path, reason: "voice name '\(voice)' contains '_' or '/'")
            }
            var index = 0
            for speed in speeds {
                for pitch in pitches {
                    for (d, word) in words.enumerated() {
                        let url = folder.appendingPathComponent("\(d)_\(voice)_\(index).wav")
                        let p = Process()
                        p.executableURL = URL(fileURLWithPath: exe)
                        p.arguments = ["-v", voice, "-s", "\(speed)", "-p", "\(pitch)", "-w", url.path, word]
                        p.standardOutput = FileHandle.nullDevice
                        p.standardError = FileHandle.nullDevice
                        do { try p.run() } catch { throw SynthesisError.failed(path: url.path, reason: "\(error)") }
                        p.waitUntilExit()
                        guard p.terminationStatus == 0 else {
                            throw SynthesisError.failed(path: url.path, reason: "exit status \(p.terminationStatus) for voice \(voice)")
                        }
                        out.append(url)
                    }
                    index += 1
                }
            }
        }
        return out
    }
}
