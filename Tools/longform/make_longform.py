#!/usr/bin/env python3
"""The long-form test set: held-out sentences of the demo model rendered with pauses into one
multi-minute file per language, with the ground truth kept (docs/VAD.md, Tests/LongFormTests).

    make_longform.py sentences --lang hi [--count 40]   # once: needs wordfreq 3.1.1; writes
                                                       # Tests/Fixtures/longform/<lang>.jsonl
    make_longform.py render [--lang hi ...]             # in CI: needs only espeak-ng and sox;
                                                       # writes <lang>.wav and <lang>.spans.json

`sentences` repeats Tools/training/gen_data.py's draw exactly (same word list, seed and order of
random draws, the training counts of Tools/training/README.md), so the sentences are the first
`count` of the 300 held-out sentences, with the voice, speed, pitch and word gap gen_data gave
them, never seen in training. Each gets a pause after it (0.4-2.5 s, seeded), committed with it.

`render` speaks each sentence with espeak-ng and sox as gen_data.synth does (with sox's -R, so
that its dither is the same on every run and every machine renders the same bytes), trims
silence to 0.1 s as gen_data.trim does, and joins them with the pauses (digital silence). The
spans file lists each sentence's samples in the long file. Standard library only.
"""
import argparse, array, hashlib, json, pathlib, subprocess, sys, unicodedata, wave

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "Fixtures" / "longform"
TRAIN_COUNTS = {"hi": 16000, "ta": 16000, "bn": 12000}      # Tools/training/README.md, step 1
SCRIPTS = {"hi": (0x0900, 0x097F), "ta": (0x0B80, 0x0BFF), "bn": (0x0980, 0x09FF)}
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", ""]


def sentences(lang, count, words_n=1500, seed=7, tests=300):
    import numpy as np
    import wordfreq
    lo, hi = SCRIPTS[lang]
    ok = lambda w: len(w) > 0 and all(lo <= ord(c) <= hi and unicodedata.category(c)[0] in "LM" for c in w)
    words, seen_w = [], set()
    for w in wordfreq.top_n_list(lang, 20 * words_n):
        w = unicodedata.normalize("NFC", w)
        if ok(w) and w not in seen_w:
            seen_w.add(w); words.append(w)
        if len(words) == words_n:
            break
    rng = np.random.default_rng(seed + sum(map(ord, lang)))
    sentence = lambda: " ".join(words[int(i)] for i in rng.integers(0, len(words), int(rng.integers(3, 8))))
    test_s, seen = [], set()
    while len(test_s) < tests:
        s = sentence()
        if s not in seen:
            seen.add(s); test_s.append(s)
    train_n = 0
    while train_n < TRAIN_COUNTS[lang]:      # the draws gen_data makes before the voices
        if sentence() not in seen:
            train_n += 1
    rows = []
    for s in test_s[:count]:
        v = VARIANTS[int(rng.integers(len(VARIANTS)))]
        rows.append({"text": s, "voice": lang + ("+" + v if v else ""), "speed": int(rng.integers(130, 201)),
                     "pitch": int(rng.integers(25, 76)), "gap": int(rng.integers(0, 4))})
    pauses = np.random.default_rng(17 + sum(map(ord, lang)))
    for row in rows:
        row["pause_after"] = round(float(pauses.uniform(0.4, 2.5)), 2)
    return rows


def synth(row):
    es = subprocess.run(["espeak-ng", "-v", row["voice"], "-s", str(row["speed"]), "-p", str(row["pitch"]),
                         "-g", str(row["gap"]), "--stdout", row["text"]], capture_output=True, check=True)
    # -R: sox's dither draws the same numbers on every run, so every machine renders the same file.
    sx = subprocess.run(["sox", "-R", "-t", "wav", "-", "-t", "raw", "-r", "16000", "-b", "16", "-c", "1",
                         "-e", "signed-integer", "-"], input=es.stdout, capture_output=True, check=True)
    x = array.array("h"); x.frombytes(sx.stdout)
    if sys.byteorder != "little":
        x.byteswap()
    loud = [i for i, v in enumerate(x) if abs(v) > 64]
    if not loud:
        return x
    return x[max(0, loud[0] - 1600): loud[-1] + 1600]


def render(lang):
    rows = [json.loads(line) for line in (OUT / f"{lang}.jsonl").read_text(encoding="utf-8").splitlines() if line]
    audio, spans = array.array("h", [0] * 8000), []
    for row in rows:
        x = synth(row)
        spans.append({"text": row["text"], "start": len(audio), "end": len(audio) + len(x)})
        audio.extend(x)
        audio.extend([0] * int(round(row["pause_after"] * 16000)))
    with wave.open(str(OUT / f"{lang}.wav"), "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
        w.writeframes(audio.tobytes())
    (OUT / f"{lang}.spans.json").write_text(json.dumps(spans, ensure_ascii=False, indent=0), encoding="utf-8")
    digest = hashlib.sha256((OUT / f"{lang}.wav").read_bytes()).hexdigest()[:16]
    print(f"{lang}: {len(rows)} sentences, {len(audio) / 16000:.1f} s -> {OUT / (lang + '.wav')} (sha256 {digest}…)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["sentences", "render"])
    ap.add_argument("--lang", action="append")
    ap.add_argument("--count", type=int, default=40)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for lang in args.lang or ["hi", "ta", "bn"]:
        if args.command == "sentences":
            rows = sentences(lang, args.count)
            (OUT / f"{lang}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                               encoding="utf-8")
            print(f"{lang}: {len(rows)} held-out sentences -> {OUT / (lang + '.jsonl')}")
        else:
            render(lang)


if __name__ == "__main__":
    main()
