// Errors of the converter: each names the file, node or tensor and ends with what to do.

import WeightFormat

/// Why a model folder could not be converted.
public enum ONNXImportError: Error, Sendable, CustomStringConvertible {
    /// The folder given is not a model folder (no `assets/` with `encoder.onnx`).
    case wrongDirectory(path: String, reason: String)
    /// A file the conversion needs is absent (`purpose` says what it holds).
    case missingFile(path: String, purpose: String)
    /// A file exists but could not be read.
    case unreadable(path: String, reason: String)
    /// An external-data file is shorter than the tensor that points into it.
    case shortExternalData(tensor: String, path: String, needed: Int, size: Int)
    /// An `.onnx` file is not a well-formed ONNX protobuf.
    case malformedONNX(path: String, reason: String)
    /// A well-formed graph that is not the part of an IndicConformer it should be.
    case unexpectedGraph(path: String, reason: String)
    /// A node or tensor the converter does not understand (`node` names it).
    case unknownPattern(path: String, node: String, reason: String)
    /// A tensor whose element type or storage cannot be read as float32.
    case unsupportedTensor(path: String, tensor: String, reason: String)
    /// Two sources disagree (vocab vs masks, config.json vs the graph, …).
    case inconsistent(reason: String)
    /// Writing or verifying the output failed.
    case output(WeightFormatError)
    /// `--verify` found a tensor that differs from its source.
    case verifyFailed(tensor: String, reason: String)

    public var description: String {
        switch self {
        case let .wrongDirectory(path, reason):
            return "\(path) is not an IndicConformer model folder: \(reason). Pass the downloaded "
                + "repository folder (with config.json and assets/) or its assets/ folder."
        case let .missingFile(path, purpose):
            return "missing file \(path) (\(purpose)). Download the complete model again; "
                + "with the Hugging Face cache, check that the symlink's blob exists."
        case let .unreadable(path, reason):
            return "cannot read \(path): \(reason). Check the file and its permissions."
        case let .shortExternalData(tensor, path, needed, size):
            return "external data file \(path) of tensor '\(tensor)' has \(size) bytes but the "
                + "graph needs \(needed). The download is incomplete; download the model again."
        case let .malformedONNX(path, reason):
            return "\(path) is not a valid ONNX file: \(reason). Download it again."
        case let .unexpectedGraph(path, reason):
            return "\(path) does not look like the IndicConformer graph expected there: \(reason). "
                + "Check that the folder holds ai4bharat/indic-conformer-600m-multilingual (or a "
                + "model exported the same way)."
        case let .unknownPattern(path, node, reason):
            return "\(path), node '\(node)': \(reason). vani-convert does not understand this "
                + "export; please report it with the model's origin."
        case let .unsupportedTensor(path, tensor, reason):
            return "\(path), tensor '\(tensor)': \(reason). Re-export the model with float32 or "
                + "float16 weights."
        case let .inconsistent(reason):
            return "the model files disagree: \(reason). Check that all files come from the same "
                + "release, or download it again."
        case let .output(error):
            return error.description
        case let .verifyFailed(tensor, reason):
            return "verification failed for tensor '\(tensor)': \(reason). This is a converter "
                + "bug; please report it."
        }
    }
}
