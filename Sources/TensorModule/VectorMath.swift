// Vectorised exp for the element-wise passes (SiLU, sigmoid, GLU, softmax): calling libm's
// expf per element costs more than a third of the encoder's GEMM time at Conformer sizes.
// Cephes-style range reduction and polynomial, ≈ 1 ulp on the clamped range.

@usableFromInline let expLog2e: Float = 1.44269504088896341
@usableFromInline let expC1: Float = 0.693359375
@usableFromInline let expC2: Float = -2.12194440e-4

/// e^x for 8 lanes; inputs are clamped to [-87.3, 88.3] (results stay finite and normal).
/// n = round(x·log2 e) by the 1.5·2²³ trick (plain vector adds: the generic SIMD float→int
/// conversion and `rounded` are lane-by-lane calls in Swift), r = x − n·ln 2 in two parts,
/// e^r by Cephes' polynomial, and 2^n assembled in the exponent bits.
@inlinable @inline(__always)
public func exp8(_ input: SIMD8<Float>) -> SIMD8<Float> {
    let magic = SIMD8<Float>(repeating: 12582912)   // 1.5 · 2^23
    let x0 = input.clamped(lowerBound: SIMD8(repeating: -87.3), upperBound: SIMD8(repeating: 88.3))
    let shifted = x0 * expLog2e + magic
    let fx = shifted - magic                            // round(x · log2 e), as a float
    let x = x0 - fx * expC1 - fx * expC2
    let z = x * x
    var y = SIMD8<Float>(repeating: 1.9875691500e-4)
    y = y * x + 1.3981999507e-3
    y = y * x + 8.3334519073e-3
    y = y * x + 4.1665795894e-2
    y = y * x + 1.6666665459e-1
    y = y * x + 5.0000001201e-1
    y = y * z + x + 1
    let n = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let scale = unsafeBitCast((n &+ 127) &<< 23, to: SIMD8<Float>.self)
    return y * scale
}

/// Applies `body` to `count` floats in blocks of 8 (the tail padded with zeros, so every lane
/// goes through the same arithmetic).
@inlinable @inline(__always)
func map8(_ x: UnsafeMutablePointer<Float>, count: Int, _ body: (SIMD8<Float>) -> SIMD8<Float>) {
    var i = 0
    while i + 8 <= count {
        let raw = UnsafeMutableRawPointer(x + i)
        let v = raw.loadUnaligned(as: SIMD8<Float>.self)
        raw.storeBytes(of: body(v), as: SIMD8<Float>.self)
        i += 8
    }
    if i < count {
        var v = SIMD8<Float>(repeating: 0)
        for j in 0..<(count - i) { v[j] = x[i + j] }
        let r = body(v)
        for j in 0..<(count - i) { x[i + j] = r[j] }
    }
}

/// Sum of `count` floats, 8 lanes at a time.
@inlinable @inline(__always)
func sum8(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var acc = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= count {
        acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < count { s += x[i]; i += 1 }
    return s
}
