// `vani-convert --dtype bf16|int8`: the weight matrices that `Precision.isReduced` names are
// written narrower (Weights/FORMAT.md § Reduced precision): bf16 as BF16 [out, in]; int8 as I8
// [out, in] per output channel with its F32 scales [out] stored right after it under
// `<name>_scale` (`x.weight` → `x.weight_scale`), w ≈ scale[o] · q[o, i]. Every other tensor stays
// as it was. The quantization is the engine's own (`ReducedWeights`), so a file stored int8 and
// an fp32 file quantized at load give the same bits.

import ConformerModel
import Foundation
import WeightFormat

/// Narrowing of the reduced weight matrices for `vani-convert --dtype`.
public enum Narrowing {
    /// The declarations that hold tensor `name` [shape] stored as `dtype`: the tensor itself
    /// (narrowed when `Precision.isReduced` names it) and, for int8, its scales.
    public static func declarations(name: String, shape: [Int], dtype: Precision) -> [TensorDeclaration] {
        guard dtype != .fp32, dtype != .tf32, Precision.isReduced(tensor: name), shape.count >= 2 else {
            return [TensorDeclaration(name: name, dtype: .f32, shape: shape)]
        }
        switch dtype {
        case .fp32, .tf32: return [TensorDeclaration(name: name, dtype: .f32, shape: shape)]   // tf32 stores fp32
        case .bf16: return [TensorDeclaration(name: name, dtype: .bf16, shape: shape)]
        case .int8:
            return [TensorDeclaration(name: name, dtype: .i8, shape: shape),
                    TensorDeclaration(name: Precision.scaleName(of: name), dtype: .f32, shape: [shape[0]])]
        }
    }

    /// Writes tensor `name` [shape] from fp32 `values` as `declarations` laid it out.
    public static func write(_ name: String, shape: [Int], values: UnsafeBufferPointer<Float>, dtype: Precision,
                             to writer: SafetensorsWriter) throws(WeightFormatError) {
        let decls = declarations(name: name, shape: shape, dtype: dtype)
        guard decls[0].dtype != .f32 else { return try writer.write(name, floats: values) }
        let out = shape[0], k = values.count / max(1, out)
        let base = values.baseAddress!
        switch decls[0].dtype {
        case .bf16:
            let w = ReducedWeights.bf16(from: base, out: out, in: k)
            try writeRows(name, w, out: out, k: k, elementBytes: 2, to: writer)
        default:
            let w = ReducedWeights.int8(from: base, out: out, in: k)
            try writeRows(name, w, out: out, k: k, elementBytes: 1, to: writer)
            try writer.write(decls[1].name, floats: w.scales!.buffer)
        }
    }

    /// The rows of `w` without their padding.
    private static func writeRows(_ name: String, _ w: ReducedWeights, out: Int, k: Int, elementBytes: Int,
                                  to writer: SafetensorsWriter) throws(WeightFormatError) {
        if w.stride == k { return try writer.write(name, bytes: UnsafeRawBufferPointer(start: w.values, count: out * k * elementBytes)) }
        var packed = [UInt8](repeating: 0, count: out * k * elementBytes)
        packed.withUnsafeMutableBytes { dst in
            for o in 0..<out {
                (dst.baseAddress! + o * k * elementBytes).copyMemory(from: w.values + o * w.stride * elementBytes,
                                                                     byteCount: k * elementBytes)
            }
        }
        let result = packed.withUnsafeBytes { b in Result { () throws(WeightFormatError) in try writer.write(name, bytes: b) } }
        try result.get()
    }

    /// Largest |source − stored| allowed for one value of a row whose largest magnitude is
    /// `rowMax`: half a bf16 step (2⁻⁸ relative), or half an int8 step of the row's scale.
    public static func tolerance(rowMax: Float, dtype: Precision) -> Float {
        switch dtype {
        case .fp32, .tf32: return 0
        case .bf16: return rowMax * 0x1p-8
        case .int8: return rowMax / 127 * 0.5001
        }
    }

    /// Rewrites the weights file `input` (fp32, f16 or bf16) with its reduced matrices stored as
    /// `dtype`, every other tensor copied byte for byte, the metadata kept plus `vani.dtype`.
    /// Returns the output's size in bytes.
    public static func rewrite(_ input: URL, to output: URL, dtype: Precision) throws(ONNXImportError) -> Int {
        let archive: WeightsArchive
        do { archive = try WeightsArchive(contentsOf: input) } catch { throw .output(error) }
        if let stored = archive.metadata["vani.dtype"], stored != "fp32" {
            throw .inconsistent(reason: "\(input.path) already stores its matrices as \(stored): rewrite the fp32 file")
        }
        var metadata = archive.metadata
        metadata["vani.dtype"] = dtype.rawValue
        var decls: [TensorDeclaration] = []
        for name in archive.tensorNames {
            guard let info = archive.info(name) else { continue }
            let narrowed = declarations(name: name, shape: info.shape, dtype: dtype)
            decls += info.dtype.isFloat && narrowed[0].dtype != .f32
                ? narrowed : [TensorDeclaration(name: name, dtype: info.dtype, shape: info.shape)]
        }
        do {
            let writer = try SafetensorsWriter(url: output, tensors: decls, metadata: metadata)
            for name in archive.tensorNames {
                guard let info = archive.info(name) else { continue }
                if info.dtype.isFloat, declarations(name: name, shape: info.shape, dtype: dtype)[0].dtype != .f32 {
                    let w = try archive.floats(name, shape: info.shape)
                    try write(name, shape: info.shape, values: w.buffer, dtype: dtype, to: writer)
                    withExtendedLifetime(w) {}
                } else {
                    try writer.write(name, bytes: try archive.raw(name, shape: info.shape).bytes)
                }
                archive.evict(name)
            }
            try writer.finish()
            return writer.fileSize
        } catch { throw .output(error) }
    }
}

extension DType {
    /// Whether the type is a floating-point one the engine can widen (F32, F16, BF16).
    var isFloat: Bool { self == .f32 || self == .f16 || self == .bf16 }
}
