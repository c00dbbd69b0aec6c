#!/usr/bin/env python3
"""Vani vs ONNX Runtime on the full-size (600M-shaped, random) IndicConformer, side by side.

    . /work/venv-ref/bin/activate        # the fixture tooling's venv (Tools/reference/README.md)
    python3 Benchmarks/run_benchmarks.py [--threads 2] [--rounds 3] [--runs 3]

Steps (each cached under Benchmarks/.cache/, which git ignores):
 1. build the full-size random model with Tools/reference/build_model.py --full-size (≈2.5 GB),
 2. convert it with vani-convert (release build),
 3. make 5 s, 20 s and 60 s of 16 kHz speech by tiling the fixture clips,
 4. alternate Vani (`vani bench --json`) and ONNX Runtime (this script, --ort mode, CPU provider,
    same thread count) for --rounds rounds, each taking medians of --runs timed runs after a
    warm-up, and report the median over rounds,
 5. print a Markdown table and rewrite the results section of Benchmarks/README.md.

OPENBLAS_CORETYPE is removed from the environment of the processes this script starts (only),
so OpenBLAS picks its kernel for this CPU as ONNX Runtime does; the table names the core used.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import wave

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CACHE = os.path.join(ROOT, "Benchmarks", ".cache")
MODEL_DIR = os.path.join(CACHE, "full-size")
WEIGHTS = os.path.join(CACHE, "full-size.safetensors")
LENGTHS = (5, 20, 60)


def sh(cmd, env=None, capture=True):
    r = subprocess.run(cmd, env=env, capture_output=capture, text=True)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def bench_env(threads):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    return env


def prepare(args):
    os.makedirs(CACHE, exist_ok=True)
    if not os.path.exists(os.path.join(MODEL_DIR, "assets", "encoder.onnx")):
        print("building the full-size random model (NeMo export, several minutes)...", flush=True)
        sh([sys.executable, os.path.join(ROOT, "Tools", "reference", "build_model.py"), "--full-size",
            "--out", MODEL_DIR], capture=False)
    sh(["swift", "build", "-c", "release", "--product", "vani"], capture=False)
    sh(["swift", "build", "-c", "release", "--product", "vani-convert"], capture=False)
    if not os.path.exists(WEIGHTS):
        print("converting...", flush=True)
        t = time.time()
        sh([os.path.join(ROOT, ".build", "release", "vani-convert"), MODEL_DIR, "-o", WEIGHTS], capture=False)
        print(f"converted in {time.time() - t:.1f} s", flush=True)
    # Speech for each length: the fixture clips tiled end to end.
    clips = sorted(f for f in os.listdir(os.path.join(ROOT, "Tests", "Fixtures", "clips")) if f.endswith(".wav"))
    pcm = b""
    for c in clips:
        with wave.open(os.path.join(ROOT, "Tests", "Fixtures", "clips", c)) as w:
            pcm += w.readframes(w.getnframes())
    audio = {}
    for s in LENGTHS:
        path = os.path.join(CACHE, f"speech_{s}s.wav")
        need = s * 16000 * 2
        data = (pcm * (need // len(pcm) + 1))[:need]
        with wave.open(path, "wb") as w:
            w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(data)
        audio[s] = path
    return audio


def run_vani(args, audio):
    cmd = [os.path.join(ROOT, ".build", "release", "vani"), "bench", "--model", WEIGHTS, "--json",
           "--runs", str(args.runs), "--threads", str(args.threads), "--language", "hi", "--sgemm"]
    for s in LENGTHS:
        cmd += ["--audio", audio[s]]
    out = sh(cmd, env=bench_env(args.threads))
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    per = {round(r["seconds"]): r for r in rows if "seconds" in r}
    sgemm = next(r["sgemm_mix_gflops"] for r in rows if "sgemm_mix_gflops" in r)
    return per, sgemm


def run_ort(args, audio):
    cmd = [sys.executable, os.path.abspath(__file__), "--ort", "--threads", str(args.threads), "--runs", str(args.runs)]
    for s in LENGTHS:
        cmd += ["--audio", audio[s]]
    out = sh(cmd, env=bench_env(args.threads))
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return {round(r["seconds"]): r for r in rows}


def ort_main(args):
    """Runs inside its own process: ONNX Runtime's encoder + CTC head, and NeMo's preprocessor."""
    import onnxruntime as ort
    import torch
    sys.path.insert(0, os.path.join(ROOT, "Tools", "reference"))
    import build_model  # noqa: applies the fork patches, makes the release's preprocessor
    torch.set_num_threads(args.threads)
    pre = build_model.make_preprocessor()
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    t = time.time()
    enc = ort.InferenceSession(os.path.join(MODEL_DIR, "assets", "encoder.onnx"), so, providers=["CPUExecutionProvider"])
    ctc = ort.InferenceSession(os.path.join(MODEL_DIR, "assets", "ctc_decoder.onnx"), so, providers=["CPUExecutionProvider"])
    load_ms = (time.time() - t) * 1000
    masks = json.load(open(os.path.join(MODEL_DIR, "assets", "language_masks.json")))
    mask = np.array(masks["hi"], dtype=bool)
    for path in args.audio:
        with wave.open(path) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
        times = {"frontend": [], "encoder": [], "ctc": []}
        for run in range(args.runs + 1):
            t0 = time.perf_counter()
            with torch.no_grad():
                feats, flen = pre(input_signal=torch.from_numpy(x)[None], length=torch.tensor([len(x)]))
            t1 = time.perf_counter()
            out, olen = enc.run(None, {"audio_signal": feats.numpy(), "length": flen.numpy()})
            t2 = time.perf_counter()
            lp = ctc.run(None, {"encoder_output": out})[0][0][:, mask]
            lp = lp - np.log(np.exp(lp - lp.max(-1, keepdims=True)).sum(-1, keepdims=True)) - lp.max(-1, keepdims=True)
            ids = lp.argmax(-1)
            t3 = time.perf_counter()
            if run > 0:
                times["frontend"].append((t1 - t0) * 1000)
                times["encoder"].append((t2 - t1) * 1000)
                times["ctc"].append((t3 - t2) * 1000)
        med = {k: statistics.median(v) for k, v in times.items()}
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": len(x) / 16000, "frontend_ms": med["frontend"], "encoder_ms": med["encoder"],
                          "ctc_ms": med["ctc"], "end_to_end_ctc_ms": sum(med.values()), "load_ms": load_ms,
                          "peak_rss_mb": rss, "frames": int(olen[0]), "tokens": int((ids != 256).sum())}), flush=True)


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ort", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--audio", action="append", default=[], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ort:
        return ort_main(args)
    audio = prepare(args)
    core = sh([os.path.join(ROOT, ".build", "release", "vani"), "bench", "--model", WEIGHTS, "--runs", "1",
               "--seconds", "1", "--threads", str(args.threads)], env=bench_env(args.threads))
    core_line = next(l for l in core.splitlines() if l.startswith("OpenBLAS core"))
    vani_rounds, ort_rounds, sgemm_rounds = [], [], []
    for r in range(args.rounds):
        v, g = run_vani(args, audio)
        vani_rounds.append(v); sgemm_rounds.append(g)
        ort_rounds.append(run_ort(args, audio))
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    def med(rounds, s, key):
        return statistics.median(x[s][key] for x in rounds)

    sgemm = statistics.median(sgemm_rounds)
    weights_mb = os.path.getsize(WEIGHTS) / 2**20
    lines = [f"Machine: {machine()}; {args.threads} threads; {core_line.split(';')[0]}; "
             f"ONNX Runtime CPU provider; medians of {args.rounds} alternating rounds × {args.runs} runs after warm-up.",
             f"Model: full-size random IndicConformer (d_model 1024, 24 layers, 8 heads, FFN 4096), weights file "
             f"{weights_mb:.0f} MiB. sgemm at the model's shapes (60 s): {sgemm:.0f} GFLOP/s.", "",
             "| audio | Vani encoder ms | ORT encoder ms | Vani/ORT (encoder) | Vani e2e ms | ORT e2e ms | Vani RTF | "
             "Vani GFLOP/s | encoder vs FLOPs÷sgemm | Vani load ms | ORT load ms | Vani peak RSS MB | ORT peak RSS MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in LENGTHS:
        ve, oe = med(vani_rounds, s, "encoder_ms"), med(ort_rounds, s, "encoder_ms")
        v2e, o2e = med(vani_rounds, s, "end_to_end_ctc_ms"), med(ort_rounds, s, "end_to_end_ctc_ms")
        gflop = vani_rounds[0][s]["encoder_gflop"]
        ideal_ms = gflop / sgemm * 1000
        lines.append(f"| {s} s | {ve:.0f} | {oe:.0f} | {ve / oe:.2f}× | {v2e:.0f} | {o2e:.0f} | {v2e / 1000 / s:.4f} | "
                     f"{gflop / (ve / 1000):.0f} | {ve / ideal_ms:.2f}× | {med(vani_rounds, s, 'load_ms'):.0f} | "
                     f"{med(ort_rounds, s, 'load_ms'):.0f} | {med(vani_rounds, s, 'peak_rss_mb'):.0f} | "
                     f"{med(ort_rounds, s, 'peak_rss_mb'):.0f} |")
    table = "\n".join(lines)
    print(table)
    readme = os.path.join(ROOT, "Benchmarks", "README.md")
    text = open(readme).read() if os.path.exists(readme) else ""
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    if begin in text and end in text:
        text = text.split(begin)[0] + begin + "\n" + table + "\n" + end + text.split(end)[1]
        open(readme, "w").write(text)
        print(f"updated {readme}")


if __name__ == "__main__":
    main()
