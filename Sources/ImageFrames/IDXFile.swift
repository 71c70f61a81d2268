import CZlib
import Foundation

/// An unsigned-byte IDX array (the MNIST file format), read through zlib so both gzip-compressed
/// (`.gz`) and plain files work.
///
/// Layout: bytes 0-1 zero, byte 2 the element type (only `0x08`, unsigned byte, is accepted),
/// byte 3 the number of dimensions, then one big-endian `UInt32` per dimension, then the
/// elements row-major. The header is validated before reading: each dimension must be
/// positive, their product must not exceed `maxElements`, and the data that follows must hold
/// exactly that many bytes (memory grows only with the bytes actually read).
public struct IDXArray: Sendable, Equatable {
    /// Dimensions, e.g. `[count, rows, cols]` for images or `[count]` for labels.
    public var dimensions: [Int]
    /// Elements, row-major over `dimensions`.
    public var bytes: [UInt8]

    /// Creates an array; `bytes.count` must equal the product of `dimensions`.
    public init(dimensions: [Int], bytes: [UInt8]) {
        self.dimensions = dimensions
        self.bytes = bytes
    }

    /// Reads an IDX file.
    /// - Parameter maxElements: upper bound on the element count accepted from the header.
    /// - Throws: `FrameError.unreadable` or `FrameError.invalidIDX` naming the file.
    public static func read(path: String, maxElements: Int = 1 << 28) throws -> IDXArray {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw FrameError.unreadable(path: path, reason: "no such readable file")
        }
        guard let file = gzopen(path, "rb") else {
            throw FrameError.unreadable(path: path, reason: "cannot open")
        }
        defer { gzclose(file) }
        var header = [UInt8](repeating: 0, count: 4)
        try readExactly(file, &header, 0, 4, path: path, what: "header")
        guard header[0] == 0, header[1] == 0 else {
            throw FrameError.invalidIDX(path: path, reason: String(format: "bad magic number 0x%02x%02x%02x%02x", header[0], header[1], header[2], header[3]))
        }
        guard header[2] == 0x08 else {
            throw FrameError.invalidIDX(path: path, reason: String(format: "element type 0x%02x is not unsigned byte (0x08)", header[2]))
        }
        let ndim = Int(header[3])
        guard (1...4).contains(ndim) else {
            throw FrameError.invalidIDX(path: path, reason: "\(ndim) dimensions (1...4 supported)")
        }
        var dimBytes = [UInt8](repeating: 0, count: 4 * ndim)
        try readExactly(file, &dimBytes, 0, 4 * ndim, path: path, what: "dimensions")
        var dims: [Int] = []
        var total = 1
        for d in 0..<ndim {
            let v = Int(dimBytes[4 * d]) << 24 | Int(dimBytes[4 * d + 1]) << 16 | Int(dimBytes[4 * d + 2]) << 8 | Int(dimBytes[4 * d + 3])
            guard v > 0 else { throw FrameError.invalidIDX(path: path, reason: "dimension \(d) is 0") }
            dims.append(v)
            total = total.multipliedReportingOverflow(by: v).overflow ? Int.max : total * v
            guard total <= maxElements else {
                throw FrameError.invalidIDX(path: path, reason: "header dimensions \(dims.map(String.init).joined(separator: "x"))... exceed the limit of \(maxElements) elements")
            }
        }
        // Read in chunks: memory grows with the data actually present, never from the header alone.
        var data: [UInt8] = []
        let chunk = 1 << 16
        var buffer = [UInt8](repeating: 0, count: chunk)
        while data.count < total {
            let want = min(chunk, total - data.count)
            let got = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(want)) }
            if got < 0 { throw FrameError.invalidIDX(path: path, reason: "corrupt compressed data: \(gzErrorText(file))") }
            if got == 0 { break }
            data.append(contentsOf: buffer[0..<Int(got)])
        }
        guard data.count == total else {
            throw FrameError.invalidIDX(path: path, reason: "header announces \(total) bytes of data, file holds \(data.count) (truncated)")
        }
        let extra = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress, 1) }
        if extra < 0 { throw FrameError.invalidIDX(path: path, reason: "corrupt compressed data: \(gzErrorText(file))") }
        guard extra == 0 else {
            throw FrameError.invalidIDX(path: path, reason: "trailing bytes after the \(total) data bytes announced by the header")
        }
        return IDXArray(dimensions: dims, bytes: data)
    }

    private static func readExactly(_ file: gzFile, _ buffer: inout [UInt8], _ offset: Int, _ count: Int,
                                    path: String, what: String) throws {
        let got = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress! + offset, UInt32(count)) }
        if got < 0 { throw FrameError.invalidIDX(path: path, reason: "corrupt compressed data: \(gzErrorText(file))") }
        guard Int(got) == count else {
            throw FrameError.invalidIDX(path: path, reason: "file ends inside the \(what) (\(got) of \(count) bytes)")
        }
    }

    private static func gzErrorText(_ file: gzFile) -> String {
        var code: Int32 = 0
        guard let message = gzerror(file, &code) else { return "zlib error \(code)" }
        return String(cString: message)
    }
}

/// MNIST images and labels loaded from a pair of IDX files.
public struct MNISTSet: Sendable {
    /// Number of examples.
    public var count: Int
    /// Image height and width (28 for MNIST).
    public var rows: Int, cols: Int
    /// Pixels `[count, rows, cols]`, 0 (background) ... 255 (ink).
    public var images: [UInt8]
    /// Labels `[count]`, 0...9.
    public var labels: [UInt8]

    /// Loads `images` (3-D IDX) and `labels` (1-D IDX, values 0...9) and checks that they agree.
    public static func load(imagesPath: String, labelsPath: String) throws -> MNISTSet {
        let images = try IDXArray.read(path: imagesPath)
        let labels = try IDXArray.read(path: labelsPath)
        guard images.dimensions.count == 3 else {
            throw FrameError.invalidIDX(path: imagesPath, reason: "expected 3 dimensions [count, rows, cols], found \(images.dimensions.count)")
        }
        guard labels.dimensions.count == 1 else {
            throw FrameError.invalidIDX(path: labelsPath, reason: "expected 1 dimension [count], found \(labels.dimensions.count)")
        }
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw FrameError.inconsistentFiles(first: imagesPath, second: labelsPath,
                                               reason: "\(images.dimensions[0]) images but \(labels.dimensions[0]) labels")
        }
        if let bad = labels.bytes.firstIndex(where: { $0 > 9 }) {
            throw FrameError.invalidIDX(path: labelsPath, reason: "label \(labels.bytes[bad]) at index \(bad) is not a digit 0...9")
        }
        return MNISTSet(count: labels.dimensions[0], rows: images.dimensions[1], cols: images.dimensions[2],
                        images: images.bytes, labels: labels.bytes)
    }

    /// Loads `t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz` from `directory`.
    public static func loadTest(directory: String) throws -> MNISTSet {
        try load(imagesPath: (directory as NSString).appendingPathComponent("t10k-images-idx3-ubyte.gz"),
                 labelsPath: (directory as NSString).appendingPathComponent("t10k-labels-idx1-ubyte.gz"))
    }
}
