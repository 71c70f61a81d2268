/// A decoded image as float samples in [0, 1], interleaved `[height, width, channels]`.
///
/// `channels` is 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA), as stored in the file
/// (palettes are expanded by the decoder). Alpha is carried but ignored by the features.
public struct FrameImage: Sendable, Equatable {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// Samples per pixel (1...4).
    public var channels: Int
    /// Samples `[height, width, channels]`, row-major, each in [0, 1].
    public var samples: [Float]

    /// Creates an image; `samples.count` must be `width * height * channels`.
    public init(width: Int, height: Int, channels: Int, samples: [Float]) {
        precondition(samples.count == width * height * channels, "sample count does not match the size")
        self.width = width
        self.height = height
        self.channels = channels
        self.samples = samples
    }

    /// Size as `WxHxC`, used in error messages.
    public var sizeDescription: String { "\(width)x\(height)x\(channels)" }
}
