"""Held-out evaluation of an exported model with both implementations of the release's inference
logic (docs/MODEL.md §2): ONNX Runtime (the wrapper's logic, Tools/reference/make_reference.py
OrtModel) on features from the patched NeMo preprocessor, and the Swift engine (`vani transcribe
--format json`) on the same WAV files. Reports CER/WER per language and decoder and whether the two
agree transcript for transcript.

    python evaluate.py --model-dir Tools/training/out/model --weights Tools/training/out/vani-hi.safetensors \
        --langs hi [--n 300] [--vani .build/debug/vani] [--json Tools/training/out/eval_hi.json]
"""
import argparse
import json
import os
import subprocess
import time

import numpy as np
import soundfile as sf

import common as C
from common import B
import make_reference as R  # Tools/reference (on sys.path via common)


def ort_transcribe(m, pre, wav, lang):
    x, sr = sf.read(wav, dtype="float32")
    assert sr == 16000
    f, T = B.compute_features(pre, x)
    enc, _ = m.encode(f[None], np.array([T]))
    ctc_ids, _ = R.ctc_greedy(m.ctc_logprobs(enc, lang))
    rnnt_ids, _, _ = m.rnnt_greedy(enc, lang)
    v = m.vocab[lang]
    pieces = lambda ids: [v[i].replace("▁", " ") for i in ids]  # noqa: E731
    return (R.text_of(ctc_ids, v), R.text_of(rnnt_ids, v)), (pieces(ctc_ids), pieces(rnnt_ids))


def vani_transcribe(vani, weights, wavs, lang, decoder, threads):
    cmd = [vani, "transcribe", *wavs, "--model", weights, "--language", lang, "--decoder", decoder,
           "--format", "json", "--threads", str(threads)]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    assert len(rows) == len(wavs), (len(rows), len(wavs), p.stderr[-2000:])
    return [r["text"] for r in rows], [[t["text"] for t in r["tokens"]] for r in rows]


def score(refs, hyps):
    ce = cn = we = wn = 0
    for r, h in zip(refs, hyps):
        a, b, c, d = C.error_counts(r, h)
        ce, cn, we, wn = ce + a, cn + b, we + c, wn + d
    return {"cer": ce / cn, "wer": we / wn, "chars": cn, "words": wn}


def markdown(report):
    lines = ["| language | decoder | clips | CER ORT | CER vani | WER ORT | WER vani | ORT = vani (texts) | ORT = vani (token sequences) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for lang, r in report.items():
        for dec in ("ctc", "rnnt"):
            o, v = r[f"ort_{dec}"], r.get(f"vani_{dec}")
            same = (f"{r['n'] - r[f'{dec}_ort_vs_vani_mismatches']}/{r['n']} | "
                    f"{r['n'] - r[f'{dec}_ort_vs_vani_token_mismatches']}/{r['n']}") if v else "not run | not run"
            lines.append(f"| {lang} | {dec.upper()} | {r['n']} | {100 * o['cer']:.2f} % | "
                         f"{100 * v['cer']:.2f} % | {100 * o['wer']:.2f} % | {100 * v['wer']:.2f} % | {same} |"
                         if v else f"| {lang} | {dec.upper()} | {r['n']} | {100 * o['cer']:.2f} % | – | "
                         f"{100 * o['wer']:.2f} % | – | {same} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--langs", nargs="+", default=["hi"])
    ap.add_argument("--data", default=os.path.join(C.HERE, "data"))
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--vani", default=os.path.join(C.REPO, ".build", "debug", "vani"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-vani", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None, help="write the results table (markdown) here")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    m = R.OrtModel(args.model_dir)
    pre = B.make_preprocessor()
    report = {}
    for lang in args.langs:
        rows = [json.loads(x) for x in open(os.path.join(args.data, lang, "test.jsonl"), encoding="utf-8")][: args.n]
        wavs = [os.path.join(args.data, lang, r["wav"]) for r in rows]
        refs = [r["text"] for r in rows]
        t0 = time.time()
        ort = [ort_transcribe(m, pre, w, lang) for w in wavs]
        t_ort = time.time() - t0
        res = {"n": len(rows), "audio_seconds": round(sum(r["seconds"] for r in rows), 1), "ort_seconds": round(t_ort, 1)}
        for di, dec in enumerate(("ctc", "rnnt")):
            hyp_ort = [o[0][di] for o in ort]
            tok_ort = [o[1][di] for o in ort]
            res[f"ort_{dec}"] = score(refs, hyp_ort)
            if not args.skip_vani:
                t0 = time.time()
                hyp_vani, tok_vani = vani_transcribe(args.vani, args.weights, wavs, lang, dec, args.threads)
                res[f"vani_{dec}_seconds"] = round(time.time() - t0, 1)
                res[f"vani_{dec}"] = score(refs, hyp_vani)
                diff = [i for i, (a, b) in enumerate(zip(hyp_ort, hyp_vani)) if a != b]
                res[f"{dec}_ort_vs_vani_mismatches"] = len(diff)
                res[f"{dec}_ort_vs_vani_token_mismatches"] = sum(a != b for a, b in zip(tok_ort, tok_vani))
                res[f"{dec}_mismatch_examples"] = [{"id": rows[i]["id"], "ort": hyp_ort[i], "vani": hyp_vani[i]} for i in diff[:5]]
            res[f"{dec}_examples"] = [{"id": rows[i]["id"], "ref": refs[i], "hyp": hyp_ort[i]} for i in range(min(5, len(rows)))]
        report[lang] = res
        print(json.dumps({lang: res}, ensure_ascii=False, indent=1), flush=True)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(markdown(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
