#!/usr/bin/env python3
"""Reference speech probabilities for Tests/Fixtures/vad, from Silero's own ONNX model.

The reference implementation is the silero-vad wheel's `silero_vad.onnx` run by ONNX Runtime
the way the wheel's `OnnxWrapper` runs it: 512-sample chunks at 16 kHz, each preceded by the
previous chunk's last 64 samples (zeros before the first), the LSTM state carried from chunk to
chunk, and a last partial chunk padded with zeros. One probability per chunk.

Clips: the three Samples/*.wav, and `mixed.wav`, made here (seeded): 0.7 s of silence, the Hindi
sample at half level, 1.2 s of low white noise, the Tamil sample, 0.5 s of silence.

Writes Tests/Fixtures/vad/{clip}.probs.npy (float32, [chunks]) and mixed.wav.
"""
import pathlib, sys, wave

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "Fixtures" / "vad"


def read_wav(path):
    with wave.open(str(path)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def write_wav(path, samples):
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
        w.writeframes(pcm.tobytes())


def probabilities(session, samples):
    state = np.zeros((2, 1, 128), dtype=np.float32)
    context = np.zeros((1, 64), dtype=np.float32)
    padded = np.concatenate([samples, np.zeros(-len(samples) % 512, dtype=np.float32)])
    out = []
    for start in range(0, len(padded), 512):
        x = np.concatenate([context, padded[None, start:start + 512]], axis=1)
        prob, state = session.run(None, {"input": x, "state": state, "sr": np.array(16000, dtype=np.int64)})
        out.append(float(prob[0, 0]))
        context = x[:, -64:]
    return np.array(out, dtype=np.float32)


def main():
    wheel = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if wheel is None:
        sys.exit("usage: make_vad_reference.py UNPACKED_WHEEL_DIR (Tools/vad/fetch_silero.sh)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1; options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(wheel / "silero_vad" / "data" / "silero_vad.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    OUT.mkdir(parents=True, exist_ok=True)
    clips = {name: read_wav(ROOT / "Samples" / f"{name}.wav") for name in ("hi-sample", "ta-sample", "bn-sample")}
    rng = np.random.default_rng(17)
    mixed = np.concatenate([np.zeros(11200, np.float32), 0.5 * clips["hi-sample"],
                            (0.003 * rng.standard_normal(19200)).astype(np.float32),
                            clips["ta-sample"], np.zeros(8000, np.float32)])
    write_wav(OUT / "mixed.wav", mixed)
    clips["mixed"] = read_wav(OUT / "mixed.wav")        # what the test reads: after 16-bit rounding
    for name, samples in clips.items():
        probs = probabilities(session, samples)
        np.save(OUT / f"{name}.probs.npy", probs)
        print(f"{name}: {len(samples)} samples, {len(probs)} chunks, speech chunks (p>0.5) {int((probs > 0.5).sum())}")


if __name__ == "__main__":
    main()
