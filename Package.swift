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
        .executable(name: "vani-gpu-check", targets: ["vani-gpu-check"]),
        .library(name: "ASR", targets: ["ASR"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.0"),
        // The service's connection handling (HTTPFramingHandler), metrics and model digests,
        // and the hub download (Tools/HubDownload): NIO, HTTP types, the HTTP client, SHA-256,
        // swift-metrics with its Prometheus backend.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"4.0.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
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
        // FFmpeg's demuxers and decoders: the fallback after libsndfile (WebM, MP4/M4A/AAC, AMR,
        // 3GP, CAF, WMA, ...) and the MPEG audio decoder.
        .systemLibrary(name: "CFFmpeg", path: "Sources/CFFmpeg", pkgConfig: "libavformat",
                       providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev"])]),

        // MARK: - The road
        .target(name: "CKernels", path: "Sources/CKernels"),
        // The NVIDIA driver, NVRTC and cuBLAS(Lt) through dlopen: own prototypes, no toolkit at
        // build time, so it is always built (docs/GPU.md).
        .target(name: "CCUDA", path: "Sources/CCUDA",
                linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        .target(name: "TensorModule", dependencies: ["CBLAS", "CKernels"], swiftSettings: swift6),
        .target(name: "WeightFormat", swiftSettings: swift6),
        .target(name: "Audio", dependencies: ["CSndfile", "CSoxr", "CFFmpeg",
                                             .product(name: "Logging", package: "swift-log")],
                swiftSettings: swift6),
        .target(name: "Frontend", dependencies: ["CFFTW", "CBLAS", "TensorModule"], swiftSettings: swift6),
        .target(name: "ConformerModel", dependencies: ["TensorModule", "WeightFormat", "Frontend"],
                swiftSettings: swift6),
        .target(name: "Decoding", dependencies: ["ConformerModel", "TensorModule"],
                swiftSettings: swift6),
        // The device seam: the model's forward work behind `InferenceBackend` (CPU; CUDA probe,
        // loader and kernels).
        .target(name: "Backend", dependencies: ["CCUDA", "ConformerModel", "Decoding", "Frontend", "TensorModule"],
                swiftSettings: swift6),
        // Silero VAD on the tensor code: speech probabilities for cutting long audio at pauses
        // and for turn detection in live transcription.
        .target(name: "VoiceActivity", dependencies: ["TensorModule", "WeightFormat"], swiftSettings: swift6),
        .target(name: "ASR",
                dependencies: ["Audio", "Backend", "VoiceActivity", "Frontend", "ConformerModel", "Decoding", "WeightFormat",
                               "TensorModule"],
                swiftSettings: swift6),
        .target(name: "ASRServer",
                dependencies: ["ASR",
                               .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "MultipartKit", package: "multipart-kit"),
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio"),
                               .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                               .product(name: "HTTPTypes", package: "swift-http-types"),
                               .product(name: "CoreMetrics", package: "swift-metrics"),
                               .product(name: "Prometheus", package: "swift-prometheus"),
                               .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "HummingbirdCore", package: "hummingbird"),
                               .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                               .product(name: "NIOWebSocket", package: "swift-nio"),
                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
                swiftSettings: swift6),
        .executableTarget(name: "vani",
                          dependencies: ["ASR", "ASRServer", "Audio", "Backend", "ConformerModel", "Frontend", "TensorModule",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log"),
                                         .product(name: "CoreMetrics", package: "swift-metrics")],
                          swiftSettings: swift6),

        // The GPU check (Tools/gpu/check.sh): the encoder on CPU and CUDA, without the server and
        // FFmpeg, so that its portable bundle fits beside the checkout (docs/GPU.md).
        .executableTarget(name: "vani-gpu-check",
                          dependencies: ["Backend", "ConformerModel", "Decoding", "Frontend", "TensorModule",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: swift6),

        // MARK: - The converter (Tools/)
        .target(name: "ONNXImport", dependencies: ["WeightFormat", "ConformerModel"],
                path: "Tools/ONNXImport", swiftSettings: swift6),
        // Hugging Face hub client: repository listing, resumable downloads into the standard
        // cache layout. Knows nothing of the model; only vani-convert uses it.
        .target(name: "HubDownload",
                dependencies: [.product(name: "AsyncHTTPClient", package: "async-http-client"),
                               .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio")],
                path: "Tools/HubDownload", swiftSettings: swift6),
        .executableTarget(name: "vani-convert",
                          dependencies: ["ONNXImport", "WeightFormat", "HubDownload", "ConformerModel",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Tools/vani-convert", swiftSettings: swift6),

        // MARK: - Tests
        .target(name: "VaniTestSupport", dependencies: ["TensorModule", .product(name: "Logging", package: "swift-log")],
                path: "Tests/VaniTestSupport", swiftSettings: swift6),
        .testTarget(name: "TensorModuleTests", dependencies: ["TensorModule", "CKernels", "VaniTestSupport"],
                    swiftSettings: swift6),
        .testTarget(name: "WeightFormatTests", dependencies: ["WeightFormat", "VaniTestSupport"],
                    swiftSettings: swift6),
        .testTarget(name: "AudioTests", dependencies: ["Audio", "VaniTestSupport", .product(name: "Logging", package: "swift-log")],
                    swiftSettings: swift6),
        .testTarget(name: "FrontendTests", dependencies: ["Frontend", "Audio", "VaniTestSupport"],
                    swiftSettings: swift6),
        .testTarget(name: "VoiceActivityTests", dependencies: ["VoiceActivity", "Audio", "VaniTestSupport"],
                    swiftSettings: swift6),
        .testTarget(name: "ConverterTests",
                    dependencies: ["ONNXImport", "WeightFormat", "ConformerModel", "VaniTestSupport"],
                    exclude: ["Inputs"],
                    swiftSettings: swift6),
        .testTarget(name: "HubDownloadTests",
                    dependencies: ["HubDownload", "ONNXImport", "WeightFormat", "VaniTestSupport",
                                   .product(name: "Hummingbird", package: "hummingbird"),
                                   .product(name: "HTTPTypes", package: "swift-http-types"),
                                   .product(name: "Crypto", package: "swift-crypto"),
                                   .product(name: "Logging", package: "swift-log"),
                                   .product(name: "NIOCore", package: "swift-nio")],
                    swiftSettings: swift6),
        .testTarget(name: "EngineTests",
                    dependencies: ["ASR", "Backend", "ConformerModel", "Decoding", "Frontend", "Audio", "TensorModule", "VoiceActivity",
                                   "ONNXImport", "WeightFormat", "VaniTestSupport"],
                    swiftSettings: swift6),
        .testTarget(name: "CUDATests", dependencies: ["Backend", "CCUDA"],
                    exclude: ["Stub"], swiftSettings: swift6),
        .testTarget(name: "ASRServerTests",
                    dependencies: ["ASRServer", "ASR", "Audio", "VaniTestSupport",
                                   .product(name: "Hummingbird", package: "hummingbird"),
                                   .product(name: "HummingbirdTesting", package: "hummingbird"),
                                   .product(name: "WSClient", package: "swift-websocket"),
                                   .product(name: "NIOWebSocket", package: "swift-nio"),
                                   .product(name: "Logging", package: "swift-log")],
                    swiftSettings: swift6),
    ]
)
