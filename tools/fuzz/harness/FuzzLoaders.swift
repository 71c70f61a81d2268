// The loaders' fuzz targets: bytes in, either a value or a thrown error out; anything else (a
// trap, a sanitizer report, a hang) is a defect.
//
// Built by `tools/fuzz/run` with `-sanitize=fuzzer,address` and `-D FUZZING`: libFuzzer's driver
// then calls `LLVMFuzzerTestOneInput` with each input, and `RNN_FUZZ_TARGET` names the target. In a
// normal build the same targets run over files given on the command line
// (`fuzz-loaders TARGET FILE...`), to replay a saved input without the fuzzing runtime.
import AudioFeatures
import Foundation
import ImageFrames
import RecurrentCore
import Seq2Seq
import TextData

/// The fuzz targets by name.
let fuzzTargets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
    "safetensors": { bytes in
        _ = try? SafeTensors.read(data: Array(bytes), source: "input")
    },
    "wav": { bytes in
        let path = scratchFile(bytes, suffix: "wav")
        // The reader and the whole feature pipeline (resampling to 16 kHz, MFCC, deltas).
        guard let extractor = try? MFCCExtractor(config: FeatureConfig()) else { return }
        _ = try? extractor.features(ofFile: URL(fileURLWithPath: path))
    },
    "png": { bytes in
        let path = scratchFile(bytes, suffix: "png")
        _ = try? PNGImage.load(path: path, maxPixels: 1 << 20)
    },
    "tsv": { bytes in
        guard let pairs = try? PairTSV.parse(Data(bytes), path: "input"), !pairs.isEmpty else { return }
        // Tokenising, building a vocabulary from the sources and encoding the targets with it.
        for level in [TokenLevel.character, .word] {
            let vocabulary = Vocabulary(texts: pairs.map(\.source), tokenization: level)
            var unknown: [String: Int] = [:]
            for pair in pairs { _ = vocabulary.decode(vocabulary.encode(text: pair.target, unknown: &unknown)) }
        }
    },
    "text": { bytes in
        guard let text = try? TextCorpus.decodeUTF8(Array(bytes), path: "input") else { return }
        for level in [TokenLevel.character, .word] {
            let vocabulary = Vocabulary.build(from: text, level: level, minCount: 2)
            _ = try? vocabulary.encode(text)
        }
    },
    "idx": { bytes in
        let path = scratchFile(bytes, suffix: "idx")
        _ = try? IDXArray.read(path: path, maxElements: 1 << 20)
    },
]

/// Writes `bytes` to this process's scratch file for targets whose loaders read paths.
func scratchFile(_ bytes: UnsafeRawBufferPointer, suffix: String) -> String {
    let folder = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let path = "\(folder)/rnn-fuzz-\(getpid()).\(suffix)"
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0, "cannot create \(path)")
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        precondition(n > 0, "cannot write \(path)")
        offset += n
    }
    close(fd)
    return path
}

#if FUZZING
/// The target chosen by `RNN_FUZZ_TARGET`, looked up once.
let fuzzTarget: @Sendable (UnsafeRawBufferPointer) -> Void = {
    let name = ProcessInfo.processInfo.environment["RNN_FUZZ_TARGET"] ?? ""
    guard let target = fuzzTargets[name] else {
        FileHandle.standardError.write(Data("fuzz-loaders: set RNN_FUZZ_TARGET to one of \(fuzzTargets.keys.sorted().joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return target
}()

/// libFuzzer's entry for each input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    fuzzTarget(UnsafeRawBufferPointer(start: data, count: count))
    return 0
}

/// libFuzzer's driver (argument parsing, the fuzzing loop), for programs with their own `main`.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM links an executable's entry point under its own name, so the program keeps a Swift
/// `main` and hands the command line to libFuzzer's driver.
@main
struct FuzzLoaders {
    static func main() {
        _ = fuzzTarget
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, { fuzzOneInput($0, $1) }))
    }
}
#else
@main
struct FuzzLoaders {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = fuzzTargets[name], arguments.count >= 2 else {
            FileHandle.standardError.write(Data("usage: fuzz-loaders \(fuzzTargets.keys.sorted().joined(separator: "|")) FILE...\n".utf8))
            exit(2)
        }
        for file in arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: file) else {
                FileHandle.standardError.write(Data("fuzz-loaders: \(file): cannot be read\n".utf8))
                exit(1)
            }
            data.withUnsafeBytes { target($0) }
            print("ok \(file)")
        }
    }
}
#endif
