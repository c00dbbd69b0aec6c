"""Accuracy gate of the reduced precisions (issue 14): CER/WER of `vani transcribe --precision P` on the
held-out clips, per language and decoder, and the share of transcripts identical to fp32's.

    python eval_precision.py --weights ../../Weights/default.safetensors --langs hi ta bn \
        --vani ../../.build/release/vani [--precisions fp32 bf16 int8] [--json out/eval_precision.json] \
        [--markdown out/eval_precision.md]

The held-out clips are `data/<lang>/test/*.wav` with `test.jsonl` (gen_data.py; `--test-only` makes just
them). A precision passes when its CER is within 0.3 points of fp32's for every language and decoder.
"""
import argparse
import json
import os
import subprocess

import common as C
from evaluate import score


def transcribe(vani, weights, wavs, lang, decoder, precision, threads):
    cmd = [vani, "transcribe", *wavs, "--model", weights, "--language", lang, "--decoder", decoder,
           "--format", "json", "--threads", str(threads), "--precision", precision]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    assert len(rows) == len(wavs), (len(rows), len(wavs), p.stderr[-2000:])
    return [r["text"] for r in rows]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--langs", nargs="+", default=["hi", "ta", "bn"])
    ap.add_argument("--data", default=os.path.join(C.HERE, "data"))
    ap.add_argument("--vani", default=os.path.join(C.REPO, ".build", "release", "vani"))
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "int8"])
    ap.add_argument("--decoders", nargs="+", default=["ctc", "rnnt"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gate", type=float, default=0.3, help="largest CER increase over fp32, in points")
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    args = ap.parse_args()
    results = []
    for lang in args.langs:
        rows = [json.loads(l) for l in open(os.path.join(args.data, lang, "test.jsonl"), encoding="utf-8")]
        wavs = [os.path.join(args.data, lang, r["wav"]) for r in rows]
        refs = [r["text"] for r in rows]
        for dec in args.decoders:
            hyps = {p: transcribe(args.vani, args.weights, wavs, lang, dec, p, args.threads) for p in args.precisions}
            base = score(refs, hyps["fp32"])
            for p in args.precisions:
                s = score(refs, hyps[p])
                same = sum(a == b for a, b in zip(hyps[p], hyps["fp32"])) / len(refs)
                delta = 100 * (s["cer"] - base["cer"])
                results.append({"lang": lang, "decoder": dec, "precision": p, "clips": len(refs),
                                "cer": s["cer"], "wer": s["wer"], "cer_delta_points": delta,
                                "identical_to_fp32": same, "passes": delta <= args.gate})
                print(f"{lang} {dec} {p}: CER {100 * s['cer']:.2f} % (Δ {delta:+.2f} pt), WER {100 * s['wer']:.2f} %, "
                      f"identical to fp32 {100 * same:.1f} %", flush=True)
    lines = ["| language | decoder | precision | clips | CER % | Δ CER vs fp32 (points) | WER % | identical to fp32 | gate (≤ "
             f"{args.gate} pt) |", "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(f"| {r['lang']} | {r['decoder']} | {r['precision']} | {r['clips']} | {100 * r['cer']:.2f} | "
                     f"{r['cer_delta_points']:+.2f} | {100 * r['wer']:.2f} | {100 * r['identical_to_fp32']:.1f} % | "
                     f"{'pass' if r['passes'] else 'FAIL'} |")
    table = "\n".join(lines)
    print(table)
    verdict = {p: all(r["passes"] for r in results if r["precision"] == p) for p in args.precisions}
    print("gate:", ", ".join(f"{p} {'passes' if ok else 'fails'}" for p, ok in verdict.items()))
    if args.json:
        json.dump({"results": results, "gate_points": args.gate, "verdict": verdict}, open(args.json, "w"), indent=1)
    if args.markdown:
        open(args.markdown, "w").write(table + "\n")


if __name__ == "__main__":
    main()
