import Foundation
import Testing
@testable import ImageFrames

@Test func areaAverageResizeMatchesHandComputedValues() {
    // 3x3 -> 2x2: each output pixel covers 1.5 x 1.5 source pixels. Output (0,0) takes
    // a00 fully, a01 and a10 half, a11 a quarter, divided by the area 2.25.
    let a: [Float] = [1, 2, 3,
                      4, 5, 6,
                      7, 8, 9]
    let out = FrameOps.resizeAreaAverage(FrameImage(width: 3, height: 3, channels: 1, samples: a), width: 2, height: 2)
    let e00: Float = (1 + 0.5 * 2 + 0.5 * 4 + 0.25 * 5) / 2.25
    let e01: Float = (3 + 0.5 * 2 + 0.5 * 6 + 0.25 * 5) / 2.25
    let e10: Float = (7 + 0.5 * 4 + 0.5 * 8 + 0.25 * 5) / 2.25
    let e11: Float = (9 + 0.5 * 6 + 0.5 * 8 + 0.25 * 5) / 2.25
    for (got, want) in zip(out.samples, [e00, e01, e10, e11]) { #expect(abs(got - want) < 1e-5) }
    // 4x2 -> 2x1: plain 2x2 block means.
    let b: [Float] = [0, 2, 4, 8,
                      2, 4, 6, 10]
    let small = FrameOps.resizeAreaAverage(FrameImage(width: 4, height: 2, channels: 1, samples: b), width: 2, height: 1)
    #expect(small.samples == [2, 7])
    // Upscaling 2x1 -> 4x1 repeats each pixel; 2x1 -> 3x1 blends the middle one half/half.
    let up = FrameOps.resizeAreaAverage(FrameImage(width: 2, height: 1, channels: 1, samples: [1, 3]), width: 3, height: 1)
    for (got, want) in zip(up.samples, [Float(1), 2, 3]) { #expect(abs(got - want) < 1e-6) }
    // Two channels are resized independently.
    let rg = FrameOps.resizeAreaAverage(FrameImage(width: 2, height: 1, channels: 2, samples: [1, 10, 3, 30]), width: 1, height: 1)
    #expect(rg.samples == [2, 20])
}

@Test func extractorConvertsColourAndFlattens() {
    // 2x1 RGBA -> grey 1x1: luma of each pixel, averaged; alpha ignored.
    let rgba: [Float] = [1, 0, 0, 0.5, 0, 0, 1, 1]
    let grey = FrameFeatureExtractor(config: FeatureConfig(width: 1, height: 1, colour: .grey), width: 2, height: 1, channels: 4)
    let g = grey.extract(FrameImage(width: 2, height: 1, channels: 4, samples: rgba))
    #expect(abs(g[0] - (0.299 + 0.114) / 2) < 1e-6)
    // Grey -> RGB replicates; same size is a copy, row-major [height, width, channels].
    let rgb = FrameFeatureExtractor(config: FeatureConfig(width: 2, height: 2, colour: .rgb), width: 2, height: 2, channels: 1)
    let r = rgb.extract(FrameImage(width: 2, height: 2, channels: 1, samples: [0.1, 0.2, 0.3, 0.4]))
    #expect(r == [0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3, 0.4, 0.4, 0.4])
}

@Test func featureConfigRoundTripsThroughJSON() throws {
    let config = FeatureConfig(width: 28, height: 20, colour: .rgb, mode: .rows, maxPixels: 1000)
    let back = try FeatureConfig(json: config.jsonString())
    #expect(back == config)
    #expect(back.featuresPerStep == 28 * 3 && back.steps(frames: 2) == 40)
    #expect(thrownFrameError { _ = try FeatureConfig(json: "{\"width\": 3}") } != nil)
    #expect(thrownFrameError { _ = try FeatureConfig(json: "not json") } != nil)
    let zero = FeatureConfig(width: 0, height: 4)
    #expect(thrownFrameError { _ = try FeatureConfig(json: zero.jsonString()) } != nil)
}

@Test func statisticsMatchHandComputedValuesAndRoundTrip() throws {
    // Two examples, 2 features per step: feature 0 takes 1, 3, 5; feature 1 takes 2, 2, 2.
    let a = FrameExample(features: [1, 2, 3, 2], time: 2, featuresPerStep: 2, label: 0, source: "a")
    let b = FrameExample(features: [5, 2], time: 1, featuresPerStep: 2, label: 1, source: "b")
    let per = try FeatureStatistics.compute([a, b], scope: .perFeature)
    #expect(per.mean == [3, 2])
    // Population std of {1, 3, 5} = sqrt(8/3); the constant feature is clamped.
    #expect(abs(per.std[0] - (8.0 / 3.0).squareRoot()) < 1e-5)
    #expect(per.std[1] == FeatureStatistics.minimumStd)
    // Global: all six values {1,2,3,2,5,2}: mean 2.5, variance (2.25+.25+.25+.25+6.25+.25)/6.
    let global = try FeatureStatistics.compute([a, b])
    #expect(global.mean == [2.5])
    #expect(abs(global.std[0] - (9.5 / 6.0).squareRoot()) < 1e-5)
    var x: [Float] = [1, 2, 3, 2]
    x.withUnsafeMutableBufferPointer { per.apply(to: $0, featuresPerStep: 2) }
    #expect(abs(x[0] + 2 / (8.0 / 3.0).squareRoot()) < 1e-5 && x[1] == 0)
    #expect(try FeatureStatistics(json: per.jsonString()) == per)
    #expect(try FeatureStatistics(json: global.jsonString()) == global)
    #expect(thrownFrameError { _ = try FeatureStatistics(json: "{\"scope\":\"global\",\"mean\":[1],\"std\":[0]}") } != nil)
    #expect(thrownFrameError { _ = try FeatureStatistics(json: "{\"scope\":\"global\",\"mean\":[1,2],\"std\":[1,1]}") } != nil)
}
