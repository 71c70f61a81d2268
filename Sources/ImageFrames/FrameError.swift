/// Every failure of the ImageFrames loaders and generators on bad input.
///
/// `description` is one line that names the file (or files) involved and what is wrong with it.
public enum FrameError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened or read at all.
    case unreadable(path: String, reason: String)
    /// The file does not start with the 8-byte PNG signature.
    case notPNG(path: String)
    /// The PNG stream ends before its last chunk (`IEND`) is complete.
    case truncatedPNG(path: String, detail: String)
    /// A chunk's stored CRC differs from the CRC of its contents.
    case crcMismatch(path: String, chunk: String)
    /// The header announces more pixels than the caller allows.
    case imageTooLarge(path: String, width: Int, height: Int, limit: Int)
    /// libpng rejected the file for another reason (message from the decoder).
    case invalidPNG(path: String, detail: String)
    /// A PNG could not be written.
    case writeFailed(path: String, reason: String)
    /// Two frames of one clip have different sizes (width x height x channels).
    case frameSizeMismatch(first: String, firstSize: String, other: String, otherSize: String)
    /// A clip folder holds no PNG frames.
    case emptyClip(path: String)
    /// A class folder holds no clips (or no images, in the single-image layout).
    case emptyClass(path: String)
    /// A data-set folder holds no class folders.
    case noClasses(path: String)
    /// A clip's `labels.txt` has a different number of labels than the clip has frames.
    case labelCountMismatch(path: String, labels: Int, frames: Int)
    /// A manifest line could not be understood or names a missing file.
    case invalidManifest(path: String, line: Int, reason: String)
    /// An IDX file (MNIST format) is malformed: bad magic, sizes, or length.
    case invalidIDX(path: String, reason: String)
    /// Two files that must agree (e.g. IDX images and labels) do not.
    case inconsistentFiles(first: String, second: String, reason: String)
    /// A JSON document (feature configuration or statistics) is invalid.
    case invalidJSON(what: String, reason: String)
    /// A parameter given by the caller is out of range.
    case invalidArgument(String)
    /// A single image given to a model that classifies clips (folders of frames).
    case notAClip(path: String)
    /// A model checkpoint is not a usable frame-classify checkpoint (other task or format,
    /// bad metadata, tensors that do not fit the configuration).
    case invalidCheckpoint(path: String, reason: String)
    /// A file the run writes (log, plot, checkpoint) could not be written.
    case outputFailed(path: String, reason: String)

    /// One line naming the file and the problem.
    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "\(path): cannot read file: \(reason)"
        case let .notPNG(path):
            return "\(path): not a PNG file (missing PNG signature)"
        case let .truncatedPNG(path, detail):
            return "\(path): truncated PNG (\(detail))"
        case let .crcMismatch(path, chunk):
            return "\(path): PNG CRC error in chunk \(chunk)"
        case let .imageTooLarge(path, width, height, limit):
            return "\(path): PNG header says \(width)x\(height) = \(width * height) pixels, more than the limit of \(limit)"
        case let .invalidPNG(path, detail):
            return "\(path): invalid PNG: \(detail)"
        case let .writeFailed(path, reason):
            return "\(path): cannot write PNG: \(reason)"
        case let .frameSizeMismatch(first, firstSize, other, otherSize):
            return "\(other): frame size \(otherSize) differs from \(firstSize) of \(first) in the same clip"
        case let .emptyClip(path):
            return "\(path): clip folder has no PNG frames"
        case let .emptyClass(path):
            return "\(path): class folder has no clips or images"
        case let .noClasses(path):
            return "\(path): data-set folder has no class folders"
        case let .labelCountMismatch(path, labels, frames):
            return "\(path): \(labels) labels for \(frames) frames (one label per frame expected)"
        case let .invalidManifest(path, line, reason):
            return "\(path):\(line): \(reason)"
        case let .invalidIDX(path, reason):
            return "\(path): invalid IDX file: \(reason)"
        case let .inconsistentFiles(first, second, reason):
            return "\(first) and \(second): \(reason)"
        case let .invalidJSON(what, reason):
            return "\(what): invalid JSON: \(reason)"
        case let .invalidArgument(message):
            return "invalid argument: \(message)"
        case let .notAClip(path):
            return "\(path): a single image, but this model classifies clips (folders of PNG frames); give the clip's folder"
        case let .invalidCheckpoint(path, reason):
            return "\(path): not a usable frame-classify checkpoint: \(reason)"
        case let .outputFailed(path, reason):
            return "\(path): cannot write: \(reason)"
        }
    }
}
