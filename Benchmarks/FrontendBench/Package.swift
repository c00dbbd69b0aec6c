// swift-tools-version: 6.1
// Frontend benchmark, kept apart from the tests (a test never asserts a time). It builds the
// engine's own Frontend sources (symlinked from ../../Sources) so the main package needs no
// benchmark target. Run from this folder:
//
//     swift run -c release FrontendBench            # 10 s of audio, 1 thread, 200 runs
//     swift run -c release FrontendBench 30 500     # seconds of audio, runs

import PackageDescription

let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "FrontendBench",
    platforms: [.macOS(.v14)],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas"),
        .systemLibrary(name: "CFFTW", path: "Sources/CFFTW", pkgConfig: "fftw3f"),
        // NPY.swift is the only file that needs TensorModule (its .npy writer); the benchmark
        // leaves it out rather than mirror TensorModule's own dependencies here.
        .target(name: "Frontend", dependencies: ["CFFTW", "CBLAS"], path: "Sources/Frontend",
                exclude: ["NPY.swift"], swiftSettings: swift6),
        .executableTarget(name: "FrontendBench", dependencies: ["Frontend"], swiftSettings: swift6),
    ]
)
