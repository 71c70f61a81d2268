/// Natural ordering of file names: runs of decimal digits compare by numeric value, so
/// `f2.png` sorts before `f10.png`; other characters compare by Unicode scalar value.
public enum NaturalOrder {
    /// `true` when `a` sorts strictly before `b` in natural order.
    ///
    /// Digit runs of any length are compared exactly (no integer overflow). When two names are
    /// equal under this rule (`f01` and `f1`), the one with fewer leading zeros comes first and
    /// then plain scalar order decides, so the order is total and deterministic.
    public static func less(_ a: String, _ b: String) -> Bool {
        compare(a, b) < 0
    }

    /// Sorts `names` in natural order.
    public static func sorted(_ names: [String]) -> [String] {
        names.sorted(by: less)
    }

    /// Three-way comparison: negative, zero or positive as `a` is before, equal to or after `b`.
    public static func compare(_ a: String, _ b: String) -> Int {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        var i = 0, j = 0
        var zeroTie = 0
        while i < x.count && j < y.count {
            if isDigit(x[i]) && isDigit(y[j]) {
                var i0 = i, j0 = j
                while i < x.count && isDigit(x[i]) { i += 1 }
                while j < y.count && isDigit(y[j]) { j += 1 }
                let zerosA = leadingZeros(x, i0, i), zerosB = leadingZeros(y, j0, j)
                i0 += zerosA; j0 += zerosB
                // Fewer significant digits means a smaller number.
                if i - i0 != j - j0 { return (i - i0) < (j - j0) ? -1 : 1 }
                while i0 < i {
                    if x[i0] != y[j0] { return x[i0].value < y[j0].value ? -1 : 1 }
                    i0 += 1; j0 += 1
                }
                if zeroTie == 0 && zerosA != zerosB { zeroTie = zerosA < zerosB ? -1 : 1 }
            } else {
                if x[i] != y[j] { return x[i].value < y[j].value ? -1 : 1 }
                i += 1; j += 1
            }
        }
        if i < x.count { return 1 }
        if j < y.count { return -1 }
        if zeroTie != 0 { return zeroTie }
        return a == b ? 0 : (a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) ? -1 : 1)
    }

    @inline(__always) private static func isDigit(_ s: Unicode.Scalar) -> Bool {
        s.value >= 48 && s.value <= 57
    }

    /// Leading zeros of the digit run `s[from..<to]`, keeping at least one digit.
    private static func leadingZeros(_ s: [Unicode.Scalar], _ from: Int, _ to: Int) -> Int {
        var k = from
        while k < to - 1 && s[k].value == 48 { k += 1 }
        return k - from
    }
}
