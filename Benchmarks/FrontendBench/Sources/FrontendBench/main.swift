// Times LogMelFrontend.features on one thread: median and best of N runs over S seconds of
// deterministic noise-plus-tones at 16 kHz, and the real-time factor.

import Foundation
import Frontend

let arguments = CommandLine.arguments.dropFirst().compactMap(Double.init)
let seconds = arguments.first ?? 10
let runs = arguments.count > 1 ? Int(arguments[1]) : 200

var state: UInt64 = 0x9E37_79B9_7F4A_7C15
var samples = [Float](repeating: 0, count: Int(seconds * 16000))
for n in samples.indices {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    let noise = Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
    let t = Double(n) / 16000
    samples[n] = 0.3 * Float(sin(2 * .pi * 220 * t) + 0.5 * sin(2 * .pi * 1750 * t)) + 0.01 * noise
}

let frontend = LogMelFrontend()
var sink: Float = 0
for _ in 0..<5 { sink += frontend.features(samples).values[7] }  // warm up: caches, OpenBLAS

var times: [Double] = []
for _ in 0..<runs {
    let start = DispatchTime.now().uptimeNanoseconds
    let f = frontend.features(samples)
    times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    sink += f.values[f.values.count / 2]
}
times.sort()
let median = times[times.count / 2]
let frames = LogMelFrontend.frameCount(samples: samples.count, hop: 160)
print(String(format: "frontend: %.0f s of audio (%d frames): median %.3f ms, best %.3f ms over %d runs; "
             + "%.4f %% of real time; %.2f µs/frame", seconds, frames, median, times[0], runs,
             median / (seconds * 1000) * 100, median * 1000 / Double(frames)))
if sink.isNaN { print("unexpected NaN") }
