// Where a bundled weights file is found when none is named (the model, the VAD).

import Foundation

/// Finds files the project ships under `Weights/`.
public enum BundledWeights {
    /// The file `$environmentKey` names, else `relative` (e.g. `Weights/default.safetensors`) in
    /// the working directory or in one of the six folders above the executable; else the
    /// working-directory path (whose absence the loader then reports).
    public static func url(_ relative: String, environmentKey: String,
                           environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let path = environment[environmentKey], !path.isEmpty { return URL(fileURLWithPath: path) }
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(relative)
        if FileManager.default.fileExists(atPath: cwd.path) { return cwd }
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
            .deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent(relative)
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return cwd
    }
}
