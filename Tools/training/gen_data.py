"""Synthetic training/evaluation data: random sentences of real words spoken by espeak-ng.

    python gen_data.py --lang hi --train 14000 --test 300 [--words 1500] [--out Tools/training/data]

Words: the `--words` most frequent words of the language in `wordfreq` whose characters are all
letters/marks of the language's script (NFC). Sentences: 3-7 words drawn uniformly; the held-out
sentences never occur in the training set. Audio: espeak-ng (voice `<lang>+<variant>`, random
speed -s, pitch -p, word gap -g) -> sox -> 16 kHz mono 16-bit. Features: the release's NeMo
preprocessor patched to the fork (Tools/reference/build_model.make_preprocessor), [80, T] stored
as float16 for training. Held-out clips are also written as WAV files for the Swift engine.

Output, DATA/<lang>/: train.pt ({texts, feats}), test/NNNN.wav, test.jsonl ({id, wav, text, seconds}),
words.txt, meta.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import unicodedata
from multiprocessing import Pool

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))

VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", ""]


def script_ok(word, lo, hi):
    return len(word) > 0 and all(lo <= ord(c) <= hi and unicodedata.category(c)[0] in "LM" for c in word)


def word_list(lang, n, lo, hi):
    import wordfreq
    out, seen = [], set()
    for w in wordfreq.top_n_list(lang, 20 * n):
        w = unicodedata.normalize("NFC", w)
        if script_ok(w, lo, hi) and w not in seen:
            seen.add(w)
            out.append(w)
        if len(out) == n:
            break
    return out


def synth(job):
    """job: (text, voice, speed, pitch, gap) -> int16 samples at 16 kHz."""
    text, voice, speed, pitch, gap = job
    es = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-g", str(gap),
                         "--stdout", text], capture_output=True, check=True)
    sx = subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-r", "16000", "-b", "16", "-c", "1",
                         "-e", "signed-integer", "-"], input=es.stdout, capture_output=True, check=True)
    return np.frombuffer(sx.stdout, dtype=np.int16).copy()


def trim(x, thr=64, keep=1600):
    """Cut leading/trailing silence, keeping 0.1 s of it."""
    idx = np.nonzero(np.abs(x) > thr)[0]
    if len(idx) == 0:
        return x
    return x[max(0, idx[0] - keep): idx[-1] + keep]


def main():
    import build_model as B
    ap = argparse.ArgumentParser()
    ap.add_argument("--lang", required=True)
    ap.add_argument("--train", type=int, default=14000)
    ap.add_argument("--test", type=int, default=300)
    ap.add_argument("--words", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(HERE, "data"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--test-only", action="store_true",
                    help="synthesize the held-out clips only (the same clips and voices as a full run with the "
                         "same --train/--test/--seed: every random draw is still made); no train.pt")
    args = ap.parse_args()
    torch.set_num_threads(1)
    lang = args.lang
    lo, hi = B.SCRIPTS[lang]
    out = os.path.join(args.out, lang)
    os.makedirs(os.path.join(out, "test"), exist_ok=True)
    words = word_list(lang, args.words, lo, hi)
    with open(os.path.join(out, "words.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(words) + "\n")
    rng = np.random.default_rng(args.seed + sum(map(ord, lang)))

    def sentence():
        return " ".join(words[int(i)] for i in rng.integers(0, len(words), int(rng.integers(3, 8))))

    test_s, seen = [], set()
    while len(test_s) < args.test:
        s = sentence()
        if s not in seen:
            seen.add(s)
            test_s.append(s)
    train_s = []
    while len(train_s) < args.train:
        s = sentence()
        if s not in seen:
            train_s.append(s)

    def job(s):
        v = VARIANTS[int(rng.integers(len(VARIANTS)))]
        return (s, lang + ("+" + v if v else ""), int(rng.integers(130, 201)), int(rng.integers(25, 76)),
                int(rng.integers(0, 4)))

    jobs = [job(s) for s in test_s + train_s]
    if args.test_only:
        jobs = jobs[:len(test_s)]
    pre = B.make_preprocessor()
    t0 = time.time()
    feats, texts, test_rows = [], [], []
    import soundfile as sf
    with Pool(args.jobs) as pool:
        for i, x in enumerate(pool.imap(synth, jobs, chunksize=16)):
            x = trim(x)
            text = jobs[i][0]
            if i < len(test_s):
                wav = os.path.join(out, "test", f"{i:04d}.wav")
                sf.write(wav, x, 16000, subtype="PCM_16")
                test_rows.append({"id": f"{lang}_{i:04d}", "wav": os.path.relpath(wav, out), "text": text,
                                  "voice": jobs[i][1], "speed": jobs[i][2], "pitch": jobs[i][3],
                                  "seconds": round(len(x) / 16000, 3)})
            else:
                f, _ = B.compute_features(pre, x.astype(np.float32) / 32768.0)
                feats.append(torch.from_numpy(f).to(torch.float16))
                texts.append(text)
            if i % 2000 == 0:
                print(f"{lang}: {i}/{len(jobs)} {time.time() - t0:.0f}s", flush=True)
    if not args.test_only:
        torch.save({"texts": texts, "feats": feats}, os.path.join(out, "train.pt"))
    with open(os.path.join(out, "test.jsonl"), "w", encoding="utf-8") as f:
        for r in test_rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    secs = sum(f.shape[1] for f in feats) / 100
    meta = {"lang": lang, "words": len(words), "train": len(texts), "test": len(test_rows),
            "train_hours": round(secs / 3600, 2), "seconds": round(time.time() - t0, 1)}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(meta)


if __name__ == "__main__":
    main()
