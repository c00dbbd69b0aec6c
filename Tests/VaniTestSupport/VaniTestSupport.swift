// Shared helpers for tests: fixture paths, .npy loading and tolerance comparisons that report
// the worst element (index, both values) on failure.

import Foundation
import TensorModule

/// Paths inside the repository, found from this file's location.
public enum Fixtures {
    /// The package root (three levels above this file).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// `Tests/Fixtures`, or `$VANI_FIXTURES` when set (to test against another copy).
    public static let directory: URL = {
        if let path = ProcessInfo.processInfo.environment["VANI_FIXTURES"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return root.appendingPathComponent("Tests/Fixtures")
    }()

    /// `Tests/Fixtures/<relative>`.
    public static func url(_ relative: String) -> URL { directory.appendingPathComponent(relative) }

    /// Reads `Tests/Fixtures/<relative>` as float32 .npy.
    public static func npy(_ relative: String) throws -> (shape: [Int], values: [Float]) {
        try NPY.read(url(relative))
    }
}

/// The outcome of comparing two float arrays.
public struct Comparison: CustomStringConvertible, Sendable {
    public var maxAbs: Float
    public var worstIndex: Int
    public var actual: Float
    public var expected: Float
    public var count: Int
    public var withinTolerance: Bool
    public var tolerance: String

    public var description: String {
        "max |Δ| = \(maxAbs) at index \(worstIndex) (actual \(actual), expected \(expected)) over \(count) values; tolerance \(tolerance)"
    }
}

/// Compares element-wise with |a − e| ≤ atol + rtol·|e|; the worst element is the one that
/// exceeds its bound the most (or the largest difference when all pass).
public func compare(_ actual: [Float], _ expected: [Float], atol: Float, rtol: Float = 0) -> Comparison {
    precondition(actual.count == expected.count, "compare: \(actual.count) values vs \(expected.count) expected")
    var worst = 0
    var worstExcess = -Float.infinity
    var maxAbs: Float = 0
    var ok = true
    for i in 0..<actual.count {
        let d = abs(actual[i] - expected[i])
        let bound = atol + rtol * abs(expected[i])
        if !(d <= bound) { ok = false }
        let excess = d.isNaN ? .infinity : d - bound
        if excess > worstExcess { worstExcess = excess; worst = i }
        if d > maxAbs || d.isNaN { maxAbs = d.isNaN ? .nan : max(maxAbs, d) }
    }
    return Comparison(maxAbs: maxAbs, worstIndex: worst,
                      actual: actual.isEmpty ? 0 : actual[worst], expected: expected.isEmpty ? 0 : expected[worst],
                      count: actual.count, withinTolerance: ok,
                      tolerance: "atol \(atol)" + (rtol > 0 ? " + rtol \(rtol)" : ""))
}

/// Index of a flat position in a row-major shape, for messages: `[t, c]`.
public func multiIndex(_ flat: Int, shape: [Int]) -> [Int] {
    var rest = flat
    var index = [Int](repeating: 0, count: shape.count)
    for axis in stride(from: shape.count - 1, through: 0, by: -1) where shape[axis] > 0 {
        index[axis] = rest % shape[axis]
        rest /= shape[axis]
    }
    return index
}
