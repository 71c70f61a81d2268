import Foundation
import RecurrentCore

/// Speaker-level cepstral mean and variance normalisation (`FeatureConfig.speakerNormalization`).
///
/// The files of a set are grouped by speaker, and every feature of a group's files is shifted
/// and scaled to zero mean and unit variance over all the group's frames. A voice or a
/// microphone adds its own offset and scale to the cepstra; a speaker's many files estimate them
/// without the bias that one short file's mean carries (the mean of a one-word file is largely
/// the word). At test time the statistics come from the test files themselves, grouped the same
/// way: unsupervised adaptation to each new voice, no label read.
///
/// A file's group is its speaker from an FSDD-style name `{label}_{speaker}_{index}`; a file
/// without one is a group of its own (normalised with its own statistics).
public enum SpeakerNormalization {
    /// The group of a file: its speaker, else its path.
    public static func group(speaker: String?, path: String) -> String { speaker ?? path }

    /// Per-group statistics of `features` (`[frames, width]` each), grouped by `group(speaker:path:)`
    /// of `speakers` and `paths` (same order and count).
    /// - Throws: `FeatureNormalizerError.widthMismatch` naming the file when widths differ.
    public static func statistics(of features: [FeatureMatrix], speakers: [String?], paths: [String]) throws -> [String: FeatureNormalizer] {
        precondition(features.count == speakers.count && speakers.count == paths.count, "one speaker and path per feature matrix")
        var table: [String: FeatureNormalizer] = [:]
        for (k, f) in features.enumerated() {
            let g = group(speaker: speakers[k], path: paths[k])
            var n = table[g] ?? FeatureNormalizer(featureCount: f.features)
            try n.accumulate(f, source: paths[k])
            table[g] = n
        }
        return table
    }

    /// Normalises each matrix with its group's statistics from `statistics(of:speakers:paths:)`
    /// over the same matrices, and returns those statistics.
    public static func normalize(_ features: inout [FeatureMatrix], speakers: [String?], paths: [String]) throws -> [String: FeatureNormalizer] {
        let table = try statistics(of: features, speakers: speakers, paths: paths)
        for k in features.indices { try table[group(speaker: speakers[k], path: paths[k])]!.apply(to: &features[k], source: paths[k]) }
        return table
    }
}
