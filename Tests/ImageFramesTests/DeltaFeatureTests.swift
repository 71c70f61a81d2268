import Foundation
import RecurrentCore
import Testing
@testable import ImageFrames

/// Frame-difference (`deltas`) features: layout, normalisation, configuration, augmentation
/// and checkpoints.
@Suite struct DeltaFeatureTests {
    /// Three frames of two features become `[frame, frame - previous]` per step, written out by hand.
    @Test func appendingDeltasMatchesHandComputedSteps() {
        let base: [Float] = [1, 2,
                             4, 6,
                             5, 5]
        let wide = FrameDataset.appendingDeltas(base, frames: 3, featuresPerFrame: 2)
        #expect(wide == [1, 2, 0, 0,
                         4, 6, 3, 4,
                         5, 5, 1, -1])
    }

    @Test func configurationCarriesDeltasThroughJSON() throws {
        let config = FeatureConfig(width: 6, height: 4, deltas: true)
        #expect(config.baseFeaturesPerStep == 24 && config.featuresPerStep == 48 && config.featuresPerFrame == 24)
        let back = try FeatureConfig(json: config.jsonString())
        #expect(back == config && back.deltas)
        // A configuration written without the key (older checkpoints) means no deltas.
        let old = try FeatureConfig(json: "{\"colour\":\"grey\",\"height\":4,\"maxPixels\":100,\"mode\":\"frames\",\"width\":6}")
        #expect(!old.deltas && old.featuresPerStep == 24)
        // Rows cannot carry frame differences.
        let rows = FeatureConfig(width: 6, height: 4, mode: .rows, deltas: true)
        #expect(thrownFrameError { try rows.validate() } != nil)
        #expect(thrownFrameError { _ = try FeatureConfig(json: rows.jsonString()) } != nil)
    }

    /// Loading with deltas: the frame part equals the plain load, the difference part equals
    /// the raw pixel difference divided by the global standard deviation (no mean offset), and
    /// the statistics are those of the frames alone.
    @Test func splitWithDeltasHoldsNormalisedDifferences() throws {
        let tmp = TempFolder(); defer { tmp.cleanup() }
        let options = ShapesOptions(width: 8, height: 8, frames: 4, antiAlias: .on)
        try FrameGenerator.writeShapes(root: tmp.path, trainPerClass: 2, testPerClass: 1, seed: 11, options: options)
        let plainConfig = FeatureConfig(width: 4, height: 4)
        let deltaConfig = FeatureConfig(width: 4, height: 4, deltas: true)
        let plain = try FrameSplit.load(root: tmp.path, layout: .clips, config: plainConfig, threads: 1)
        let wide = try FrameSplit.load(root: tmp.path, layout: .clips, config: deltaConfig, threads: 2)
        let raw = try FrameSplit.load(root: tmp.path, layout: .clips, config: plainConfig, scope: nil, threads: 1)
        #expect(wide.statistics == plain.statistics)
        let std = try #require(plain.statistics?.std.first)
        for (set, (p, r)) in zip([wide.train, wide.test], [(plain.train, raw.train), (plain.test, raw.test)]) {
            #expect(set.examples.count == p.examples.count)
            for (i, e) in set.examples.enumerated() {
                #expect(e.featuresPerStep == 32 && e.time == 4 && e.features.count == 128)
                for t in 0..<4 {
                    for k in 0..<16 {
                        #expect(e.features[t * 32 + k] == p.examples[i].features[t * 16 + k])
                        let want: Float = t == 0 ? 0 : (r.examples[i].features[t * 16 + k] - r.examples[i].features[(t - 1) * 16 + k]) / std
                        #expect(abs(e.features[t * 32 + 16 + k] - want) < 1e-5)
                    }
                }
            }
        }
        // Statistics must be applied before differences are appended.
        var widened = wide.train
        #expect(thrownFrameError { try plain.statistics!.apply(to: &widened) } != nil)
    }

    /// Shifting a step of a 2x2 frame and its difference plane: both move, the frame border
    /// takes the fill value and the difference border 0.
    @Test func shiftMovesFrameAndDifferencePlanes() {
        let config = FeatureConfig(width: 2, height: 2, deltas: true)
        let src: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
        var dst = [Float](repeating: 9, count: 8)
        src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBufferPointer { d in
                FrameBatching.shiftFrames(s.baseAddress!, into: d.baseAddress!, frames: 1, config: config, dy: 0, dx: 1, fill: -1)
            }
        }
        #expect(dst == [-1, 1, -1, 3, 0, 5, 0, 7])
    }

    /// A shifted batch: each example's frames translated into its own padded row (1x2 frames,
    /// fill -1), unshifted examples copied, and the padding of the shorter one left at 0.
    @Test func shiftedBatchMovesEachExampleInItsRow() {
        let config = FeatureConfig(width: 2, height: 1)
        let long = FrameExample(features: [1, 2, 3, 4, 5, 6], time: 3, featuresPerStep: 2, label: 0, source: "a")
        let short = FrameExample(features: [7, 8], time: 1, featuresPerStep: 2, label: 1, source: "b")
        let b = FrameBatching.batch([long, short], indices: [0, 1, 0], perFrame: false, labelled: true,
                                    shift: { j in j == 1 ? (0, 1) : j == 2 ? (0, -1) : (0, 0) }, config: config, fill: -1)
        #expect(b.time == 3 && b.lengths == [3, 1, 3])
        #expect(b.inputs == [1, 2, 3, 4, 5, 6,
                             -1, 7, 0, 0, 0, 0,
                             2, -1, 4, -1, 6, -1])
        #expect(b.labels == [0, 1, 0])
    }

    /// A reloaded checkpoint keeps the deltas setting and predicts what the loaded test set gives.
    @Test func checkpointWithDeltasPredictsLikeTheLoadedSet() throws {
        let tmp = TempFolder(); defer { tmp.cleanup() }
        let options = ShapesOptions(width: 12, height: 12, frames: 5, antiAlias: .off)
        try FrameGenerator.writeShapes(root: tmp.sub("d"), trainPerClass: 2, testPerClass: 1, seed: 4, options: options)
        let split = try FrameClassification.loadSplit(root: tmp.sub("d"), rows: false,
                                                      features: FeatureConfig(width: 6, height: 6, deltas: true), threads: 1).split
        let model = try FrameClassification.makeModel(split: split, network: FrameNetworkOptions(hidden: 5, projection: 4), seed: 3, threads: 1)
        #expect(model.info.model.inputSize == 72)
        try model.save(to: tmp.sub("m.safetensors"))
        let loaded = try FrameModel.load(path: tmp.sub("m.safetensors"))
        #expect(loaded.info == model.info && loaded.info.features.deltas)
        let predicted = try loaded.predict(paths: [split.test.examples[2].source])
        let direct = model.network.predict(FrameBatching.batch(split.test.examples, indices: [2], perFrame: false, labelled: false))
        for c in 0..<6 { #expect(abs(direct[c] - predicted[0].probabilities[0][c]) < 1e-6) }
    }
}
