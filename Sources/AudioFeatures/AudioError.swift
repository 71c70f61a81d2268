/// Errors raised while reading or writing audio files.
///
/// Every case names the file and renders as one line through `description`.
public enum AudioError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened or is not in a format libsndfile understands.
    case notAudio(path: String, reason: String)
    /// A RIFF/WAVE file is shorter than its own header says (cut off while copying or writing).
    case truncated(path: String, reason: String)
    /// A header field claims more data than the file holds although the file itself is complete.
    case inconsistentHeader(path: String, reason: String)
    /// The file holds no sample frames.
    case empty(path: String)
    /// A sample is NaN or infinite (only possible in floating-point files).
    case nonFiniteSample(path: String, frame: Int)
    /// The file has more channels than the loader mixes down (`AudioReader.maxChannels`).
    case tooManyChannels(path: String, channels: Int)
    /// libsndfile or libsamplerate reported a failure while reading.
    case readFailed(path: String, reason: String)
    /// libsndfile or libsamplerate reported a failure while writing, or the request was invalid.
    case writeFailed(path: String, reason: String)
    /// A sample rate is not usable (zero, negative or absurdly large).
    case invalidSampleRate(path: String, rate: Int)
    /// The audio is shorter than one analysis frame, too short to classify.
    case shorterThanOneFrame(path: String, seconds: Double, frameSeconds: Double)

    /// One line naming the file and what is wrong with it.
    public var description: String {
        switch self {
        case let .notAudio(path, reason):
            return "\(path): not a readable audio file (\(reason))"
        case let .truncated(path, reason):
            return "\(path): truncated audio file: \(reason)"
        case let .inconsistentHeader(path, reason):
            return "\(path): inconsistent audio header: \(reason)"
        case let .empty(path):
            return "\(path): audio file holds no samples"
        case let .nonFiniteSample(path, frame):
            return "\(path): sample frame \(frame) is NaN or infinite"
        case let .tooManyChannels(path, channels):
            return "\(path): \(channels) channels, more than the \(AudioReader.maxChannels) the loader mixes down to mono"
        case let .readFailed(path, reason):
            return "\(path): read failed: \(reason)"
        case let .writeFailed(path, reason):
            return "\(path): write failed: \(reason)"
        case let .invalidSampleRate(path, rate):
            return "\(path): invalid sample rate \(rate) Hz"
        case let .shorterThanOneFrame(path, seconds, frameSeconds):
            return "\(path): \(Int((seconds * 1000).rounded())) ms of audio, shorter than one \(Int((frameSeconds * 1000).rounded())) ms analysis frame: too short to classify"
        }
    }
}
