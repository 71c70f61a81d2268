import ArgumentParser
import AudioFeatures

/// The front end's options, shared by `train` (recorded in the checkpoint with the model) and
/// `features` (which prints what such a model is fed, before the training set's normalisation).
struct FeatureOptions: ParsableArguments {
    @Flag(name: .customLong("utterance-cmn"), help: "Subtract each utterance's mean from its static features (cepstral mean normalisation).")
    var utteranceCMN = false
    @Flag(name: .customLong("utterance-cmvn"), help: "Subtract each utterance's mean from its static features and divide them by their standard deviation (cepstral mean and variance normalisation).")
    var utteranceCMVN = false
    @Option(name: .customLong("mel-filters"), help: "Mel filters of the MFCC front end.")
    var melFilters: Int = FeatureConfig().melFilterCount
    @Option(help: "Cepstral coefficients kept, at most --mel-filters (each frame has three times as many features with Δ and ΔΔ).")
    var cepstra: Int = FeatureConfig().cepstralCount
    @Option(name: .customLong("trim-silence"), help: ArgumentHelp(
        "Drop each file's leading and trailing frames more than DB decibels below its loudest frame (keeping 3 frames "
            + "around the loud part), before any normalisation; not with the frame task.", valueName: "DB"))
    var trimSilence: Double?

    /// The feature configuration the flags describe.
    func config() throws -> FeatureConfig {
        if let p = FeatureConfig.frontEndProblem(melFilters: melFilters, cepstra: cepstra, trimDecibels: trimSilence) {
            throw ValidationError("\(p.option): \(p.reason)")
        }
        return FeatureConfig(meanNormalization: utteranceCMN, varianceNormalization: utteranceCMVN,
                             melFilters: melFilters, cepstra: cepstra, trimDecibels: trimSilence)
    }
}
