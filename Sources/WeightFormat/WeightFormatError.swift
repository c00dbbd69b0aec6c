// Errors of the weights file: every message names the file or tensor and ends with what to do.

/// Why a weights file could not be read or written, or why a tensor request failed.
public enum WeightFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be opened, sized or mapped (`reason` is the system's message).
    case cannotOpen(path: String, reason: String)
    /// The file is shorter than the 8-byte header length, or the header runs past its end.
    case truncated(path: String, fileSize: Int, needed: Int)
    /// The JSON header is not valid JSON or not an object of the expected form.
    case corruptHeader(path: String, reason: String)
    /// One tensor entry of the header is malformed (missing field, unknown dtype, bad shape).
    case badEntry(path: String, tensor: String, reason: String)
    /// A tensor's byte range lies outside the data section, disagrees with dtype × shape,
    /// overlaps another tensor or leaves a hole.
    case badOffsets(path: String, tensor: String, reason: String)
    /// A tensor the caller asked for is not in the file.
    case missingTensor(path: String, tensor: String)
    /// A tensor exists but has another shape than the caller expects.
    case shapeMismatch(path: String, tensor: String, expected: [Int], actual: [Int])
    /// A tensor's dtype cannot be viewed as Float32.
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// Writing failed (`reason` is the system's message or the misuse).
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open weights file \(path): \(reason). Check the path and its permissions."
        case let .truncated(path, fileSize, needed):
            return "weights file \(path) is truncated: it has \(fileSize) bytes but its header needs "
                + "at least \(needed). Download or convert it again."
        case let .corruptHeader(path, reason):
            return "weights file \(path) has a corrupt header: \(reason). It is not a valid "
                + "safetensors file; convert it again with vani-convert."
        case let .badEntry(path, tensor, reason):
            return "weights file \(path), tensor '\(tensor)': \(reason). Convert the file again "
                + "with vani-convert."
        case let .badOffsets(path, tensor, reason):
            return "weights file \(path), tensor '\(tensor)': \(reason). The file is damaged or "
                + "truncated; download or convert it again."
        case let .missingTensor(path, tensor):
            return "weights file \(path) has no tensor '\(tensor)'. It was made for another model "
                + "layout; convert the model again with this version of vani-convert."
        case let .shapeMismatch(path, tensor, expected, actual):
            return "weights file \(path), tensor '\(tensor)' has shape \(actual) but the model "
                + "expects \(expected). The file does not match its config; convert it again."
        case let .unsupportedDType(path, tensor, dtype):
            return "weights file \(path), tensor '\(tensor)' has dtype \(dtype), which cannot be "
                + "read as float32 (F32, F16 and BF16 can). Convert it again with vani-convert."
        case let .writeFailed(path, reason):
            return "cannot write weights file \(path): \(reason). Check free disk space and "
                + "permissions, then run the conversion again."
        }
    }
}
