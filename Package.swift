// swift-tools-version: 6.1
// Vani: IndicConformer speech recognition without ONNX Runtime or Python at run time.
//
// The road: bytes → Audio → Frontend (log-mel) → ConformerModel (encoder) → Decoding → ASR.
// The CLI (`vani`) and the HTTP service (`ASRServer`) are two thin doors onto `ASR.Recognizer`.
// The converter (`vani-convert`, sources under Tools/) turns the released ONNX files into one
// safetensors file that `WeightFormat` maps at run time.

import PackageDescription

let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Vani",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "vani", targets: ["vani"]),
        .executable(name: "vani-convert", targets: ["vani-convert"]),
        .library(name: "ASR", targets: ["ASR"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.0"),
    ],
    targets: [
        // MARK: - System libraries (found through pkg-config)
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CFFTW", path: "Sources/CFFTW", pkgConfig: "fftw3f",
                       providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CSndfile", path: "Sources/CSndfile", pkgConfig: "sndfile",
                       providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CSoxr", path: "Sources/CSoxr", pkgConfig: "soxr",
                       providers: [.apt(["libsoxr-dev"])]),

        // MARK: - The road
        .target(name: "CKernels", path: "Sources/CKernels"),
        .target(name: "TensorModule", dependencies: ["CBLAS", "CKernels"], swiftSettings: swift6),
        .target(name: "WeightFormat", swiftSettings: swift6),
        .target(name: "Audio", dependencies: ["CSndfile", "CSoxr"], swiftSettings: swift6),
        .target(name: "Frontend", dependencies: ["CFFTW", "CBLAS", "TensorModule"], swiftSettings: swift6),
        .target(name: "ConformerModel", dependencies: ["TensorModule", "WeightFormat", "Frontend"],
                swiftSettings: swift6),
        .target(name: "Decoding", dependencies: ["ConformerModel", "TensorModule"],
                swiftSettings: swift6),
        // The device seam: the model's forward work behind `InferenceBackend` (CPU today).
        .target(name: "Backend", dependencies: ["ConformerModel", "Decoding", "Frontend", "TensorModule"],
                swiftSettings: swift6),
        .target(name: "ASR",
                dependencies: ["Audio", "Backend", "Frontend", "ConformerModel", "Decoding", "WeightFormat",
                               "TensorModule"],
                swiftSettings: swift6),
        .target(name: "ASRServer",
                dependencies: ["ASR",
                               .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "MultipartKit", package: "multipart-kit"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: swift6),
        .executableTarget(name: "vani",
                          dependencies: ["ASR", "ASRServer", "Audio", "ConformerModel", "Frontend", "TensorModule",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          swiftSettings: swift6),

        // MARK: - The converter (Tools/)
        .target(name: "ONNXImport", dependencies: ["WeightFormat", "ConformerModel"],
                path: "Tools/ONNXImport", swiftSettings: swift6),
        .executableTarget(name: "vani-convert",
                          dependencies: ["ONNXImport", "WeightFormat", "ConformerModel",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Tools/vani-convert", swiftSettings: swift6),

        // MARK: - Tests
        .target(name: "VaniTestSupport", dependencies: ["TensorModule"],
                path: "Tests/VaniTestSupport", swiftSettings: swift6),
        .testTarget(name: "TensorModuleTests", dependencies: ["TensorModule", "CKernels", "VaniTestSupport"],
                    swiftSettings: swift6),
        .testTarget(name: "WeightFormatTests", dependencies: ["WeightFormat", "VaniTestSupport"],
                    swiftSettings: swift6),
        .testTarget(name: "AudioTests", dependencies: ["Audio", "VaniTestSupport"],
                    swiftSettings: swift6),
        .testTarget(name: "FrontendTests", dependencies: ["Frontend", "Audio", "VaniTestSupport"],
                    swiftSettings: swift6),
        .testTarget(name: "ConverterTests",
                    dependencies: ["ONNXImport", "WeightFormat", "ConformerModel", "VaniTestSupport"],
                    exclude: ["Inputs"],
                    swiftSettings: swift6),
        .testTarget(name: "EngineTests",
                    dependencies: ["ASR", "Backend", "ConformerModel", "Decoding", "Frontend", "Audio", "TensorModule",
                                   "ONNXImport", "WeightFormat", "VaniTestSupport"],
                    swiftSettings: swift6),
        .testTarget(name: "ASRServerTests",
                    dependencies: ["ASRServer", "ASR", "VaniTestSupport",
                                   .product(name: "Hummingbird", package: "hummingbird"),
                                   .product(name: "HummingbirdTesting", package: "hummingbird"),
                                   .product(name: "Logging", package: "swift-log")],
                    swiftSettings: swift6),
    ]
)
