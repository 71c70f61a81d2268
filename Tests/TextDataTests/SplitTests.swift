import Testing
@testable import TextData

@Suite struct SplitTests {
    @Test func boundariesFollowIntOfTrainFraction() throws {
        let ten = (0..<10).map(Int32.init)
        let split = try DataSplit(ids: ten)
        #expect(split.train == Array(0..<9).map(Int32.init))
        #expect(split.validation == [9])
        // 7 * 0.75 = 5.25 → 5 training tokens.
        let seven = try DataSplit(ids: Array(ten[0..<7]), validationFraction: 0.25)
        #expect(seven.train == [0, 1, 2, 3, 4])
        #expect(seven.validation == [5, 6])
        // Fraction 0 keeps everything for training.
        let all = try DataSplit(ids: ten, validationFraction: 0)
        #expect(all.train == ten && all.validation.isEmpty)
        // The two parts always rebuild the input, in order.
        for n in [2, 3, 11, 100, 1001] {
            let ids = (0..<n).map(Int32.init)
            let s = try DataSplit(ids: ids, validationFraction: 0.3)
            #expect(s.train + s.validation == ids)
            #expect(s.train.count == Int(Double(n) * 0.7))
        }
    }

    @Test func rejectsBadFractionsAndTinyInputs() {
        #expect(throws: TextDataError.self) { _ = try DataSplit(ids: [1, 2, 3], validationFraction: 1) }
        #expect(throws: TextDataError.self) { _ = try DataSplit(ids: [1, 2, 3], validationFraction: -0.1) }
        #expect(throws: TextDataError.self) { _ = try DataSplit(ids: [1, 2, 3], validationFraction: .nan) }
        #expect(throws: TextDataError.tooShortToSplit(source: "text", tokens: 1, validationFraction: 0.1)) {
            _ = try DataSplit(ids: [1])
        }
    }
}
