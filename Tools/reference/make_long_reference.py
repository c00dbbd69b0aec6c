"""The one-pass reference for `--segmentation off` beyond 30 s (docs/VAD.md, SegmentationTests).

    /work/venv-ref/bin/python Tools/reference/make_long_reference.py

A long clip is built from committed clips (`LONG_CLIP` below: clips and digital-silence gaps,
the Swift test builds the same samples), its features computed by the patched NeMo preprocessor
as make_reference.py does, and the release pipeline run on it in ONE pass through ONNX Runtime
(the released wrapper's logic, docs/MODEL.md §2): encoder, CTC greedy and RNN-T greedy for each
fixture model. Writes Tests/Fixtures/reference/<variant>/long_off/expected.json (tokens and
frames only: small). Needs the reference venv (NeMo, torch, onnxruntime), not CI.
"""
import json
import os
import sys

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference as R  # noqa: E402  (imports build_model, which applies the NeMo patches)
B = R.B

# (clip name or None for silence, samples of silence): ≈ 37.6 s, under the tiny models' one-pass
# limit (1,023 positional rows: ±511 frames of 80 ms ≈ 40.9 s) and over the 30 s whole-audio limit.
LONG_CLIP = [("hi_22s", 0), (None, 8000), ("hi_4s", 0), (None, 8000), ("bn_6s", 0), (None, 8000), ("hi_4s", 0)]
LANG = "hi"


def long_samples(clips_dir):
    parts = []
    for name, zeros in LONG_CLIP:
        if name is None:
            parts.append(np.zeros(zeros, np.float32))
        else:
            x, sr = sf.read(os.path.join(clips_dir, name + ".wav"), dtype="float32")
            assert sr == 16000 and x.ndim == 1
            parts.append(x)
    return np.concatenate(parts)


def main():
    fx = os.path.join(B.REPO, "Tests", "Fixtures")
    x = long_samples(os.path.join(fx, "clips"))
    pre = B.make_preprocessor()
    f, n = B.compute_features(pre, x)
    for variant in ["tiny-release", "tiny-variant"]:
        om = R.OrtModel(os.path.join(fx, "models", variant))
        enc, enc_len = om.encode(f[None], np.array([n]))
        tp = int(enc_len[0])
        ids, frames = R.ctc_greedy(om.ctc_logprobs(enc, LANG))
        rids, rframes, caps = om.rnnt_greedy(enc, LANG)
        out = {"recipe": [[name, zeros] for name, zeros in LONG_CLIP], "language": LANG, "samples": int(len(x)),
               "frames": int(f.shape[1]), "encoded_frames": tp,
               "ctc": {"ids": ids, "frames": frames}, "rnnt": {"ids": rids, "frames": rframes, "caps": caps}}
        d = os.path.join(fx, "reference", variant, "long_off")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "expected.json"), "w", encoding="utf-8") as fo:
            json.dump(out, fo)
        print(f"{variant}: {len(x) / 16000:.2f} s, {tp} encoder frames, {len(ids)} CTC and {len(rids)} RNN-T tokens")


if __name__ == "__main__":
    main()
