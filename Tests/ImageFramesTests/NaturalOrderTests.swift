import Testing
@testable import ImageFrames

@Test func naturalOrderComparesDigitRunsNumerically() {
    #expect(NaturalOrder.less("f2.png", "f10.png"))
    #expect(!NaturalOrder.less("f10.png", "f2.png"))
    #expect(NaturalOrder.less("frame9", "frame10"))
    #expect(NaturalOrder.less("a", "b"))
    #expect(NaturalOrder.less("clip2_frame10", "clip10_frame2"))
    // Longer than any fixed-width integer: still compared by value.
    #expect(NaturalOrder.less("x99999999999999999999999", "x100000000000000000000000"))
    #expect(NaturalOrder.compare("f7", "f7") == 0)
}

@Test func naturalOrderSortsAFrameList() {
    let names = ["f10.png", "f1.png", "f2.png", "f01.png", "f100.png", "g1.png", "f20.png", "f3.png"]
    let expected = ["f1.png", "f01.png", "f2.png", "f3.png", "f10.png", "f20.png", "f100.png", "g1.png"]
    #expect(NaturalOrder.sorted(names) == expected)
    // Total order: the result does not depend on the input order.
    #expect(NaturalOrder.sorted(expected.reversed()) == expected)
}
