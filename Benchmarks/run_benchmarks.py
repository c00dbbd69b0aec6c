#!/usr/bin/env python3
"""Vani (fp32, bf16, int8) vs ONNX Runtime (fp32, dynamic int8) on the full-size (600M-shaped, random)
IndicConformer, side by side.

    . /work/venv-ref/bin/activate        # the fixture tooling's venv (Tools/reference/README.md)
    python3 Benchmarks/run_benchmarks.py [--threads 2] [--rounds 3] [--runs 3]

Steps (each cached under Benchmarks/.cache/, which git ignores):
 1. build the full-size random model with Tools/reference/build_model.py --full-size (≈2.5 GB),
 2. convert it with vani-convert (release build),
 3. make 5 s, 20 s and 60 s of 16 kHz speech by tiling the fixture clips,
 4. quantize ONNX Runtime's encoder with its own `quantize_dynamic` (int8 per-channel weights on the
    MatMuls, uint8 activations quantized per tensor at run time),
 5. alternate Vani (`vani bench --json --precision P` for each P of --precisions) and ONNX Runtime
    (this script, --ort mode, CPU provider, same thread count; fp32 and int8 encoders) for --rounds
    rounds, each taking medians of --runs timed runs after a warm-up, and report the median over rounds,
 6. print a Markdown table and rewrite the results section of Benchmarks/README.md.

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
ORT_INT8_DIR = os.path.join(CACHE, "full-size-int8")
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
            "--out", MODEL_DIR, "--layers", str(args.layers)], capture=False)
    sh(["swift", "build", "-c", "release", "--product", "vani"], capture=False)
    sh(["swift", "build", "-c", "release", "--product", "vani-convert"], capture=False)
    if not os.path.exists(WEIGHTS):
        print("converting...", flush=True)
        t = time.time()
        sh([os.path.join(ROOT, ".build", "release", "vani-convert"), MODEL_DIR, "-o", WEIGHTS], capture=False)
        print(f"converted in {time.time() - t:.1f} s", flush=True)
    int8 = os.path.join(ORT_INT8_DIR, "encoder.onnx")
    if not os.path.exists(int8):
        print("quantizing ONNX Runtime's encoder (quantize_dynamic, per-channel int8)...", flush=True)
        from onnxruntime.quantization import QuantType, quantize_dynamic
        os.makedirs(ORT_INT8_DIR, exist_ok=True)
        t = time.time()
        quantize_dynamic(os.path.join(MODEL_DIR, "assets", "encoder.onnx"), int8, per_channel=True,
                         weight_type=QuantType.QInt8, use_external_data_format=True)
        print(f"quantized in {time.time() - t:.1f} s", flush=True)
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


def run_vani(args, audio, precision="fp32"):
    cmd = [os.path.join(ROOT, ".build", "release", "vani"), "bench", "--model", WEIGHTS, "--json",
           "--runs", str(args.runs), "--threads", str(args.threads), "--language", "hi", "--sgemm",
           "--precision", precision, "--skip-rnnt"]
    for s in LENGTHS:
        cmd += ["--audio", audio[s]]
    out = sh(cmd, env=bench_env(args.threads))
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    per = {round(r["seconds"]): r for r in rows if "seconds" in r}
    sgemm = next(r["sgemm_mix_gflops"] for r in rows if "sgemm_mix_gflops" in r)
    return per, sgemm


def run_ort(args, audio, encoder=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--ort", "--threads", str(args.threads), "--runs", str(args.runs),
           "--layers", str(args.layers)]
    if encoder:
        cmd += ["--ort-encoder", encoder]
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
    enc = ort.InferenceSession(args.ort_encoder or os.path.join(MODEL_DIR, "assets", "encoder.onnx"), so,
                               providers=["CPUExecutionProvider"])
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
        rss = peak_rss_mb()
        print(json.dumps({"seconds": len(x) / 16000, "frontend_ms": med["frontend"], "encoder_ms": med["encoder"],
                          "ctc_ms": med["ctc"], "end_to_end_ctc_ms": sum(med.values()), "load_ms": load_ms,
                          "peak_rss_mb": rss, "frames": int(olen[0]), "tokens": int((ids != 256).sum())}), flush=True)


def peak_rss_mb():
    """This process's peak RSS: VmHWM starts afresh at exec, ru_maxrss keeps the parent's across fork + exec."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    ap.add_argument("--ort-encoder", help=argparse.SUPPRESS)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "int8"], help="Vani precisions to time")
    ap.add_argument("--layers", type=int, default=24, help="Conformer layers of the random model (24: the release)")
    args = ap.parse_args()
    if args.layers != 24:   # a shorter stack of the release's layers, cached apart
        global MODEL_DIR, WEIGHTS, ORT_INT8_DIR
        MODEL_DIR = os.path.join(CACHE, f"full-size-{args.layers}l")
        WEIGHTS = os.path.join(CACHE, f"full-size-{args.layers}l.safetensors")
        ORT_INT8_DIR = os.path.join(CACHE, f"full-size-{args.layers}l-int8")
    if args.ort:
        return ort_main(args)
    audio = prepare(args)
    core = sh([os.path.join(ROOT, ".build", "release", "vani"), "bench", "--model", WEIGHTS, "--runs", "1",
               "--seconds", "1", "--threads", str(args.threads)], env=bench_env(args.threads))
    core_line = next(l for l in core.splitlines() if l.startswith("OpenBLAS core"))
    engines = {}   # name -> list of per-round {seconds: row}
    sgemm_rounds = []
    ort_int8 = os.path.join(ORT_INT8_DIR, "encoder.onnx")
    for r in range(args.rounds):
        # Alternating, the order rotated each round so no engine always runs first.
        steps = [("Vani fp32", lambda: run_vani(args, audio, "fp32")), ("ORT fp32", lambda: run_ort(args, audio)),
                 *[(f"Vani {p}", (lambda p=p: run_vani(args, audio, p))) for p in args.precisions if p != "fp32"],
                 ("ORT int8", lambda: run_ort(args, audio, ort_int8))]
        steps = steps[r % len(steps):] + steps[:r % len(steps)]
        for name, step in steps:
            out = step()
            if name.startswith("Vani"):
                out, g = out
                if name == "Vani fp32":
                    sgemm_rounds.append(g)
            engines.setdefault(name, []).append(out)
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    def med(name, s, key):
        return statistics.median(x[s][key] for x in engines[name])

    sgemm = statistics.median(sgemm_rounds)
    weights_mb = os.path.getsize(WEIGHTS) / 2**20
    names = ["ORT fp32", "ORT int8"] + [f"Vani {p}" for p in ["fp32"] + [p for p in args.precisions if p != "fp32"]]
    best = min((n for n in names if n.startswith("Vani") and n != "Vani fp32"),
               key=lambda n: med(n, 20, "encoder_ms"), default=None)
    lines = [f"Machine: {machine()}; {args.threads} threads; {core_line.split(';')[0]}; "
             f"ONNX Runtime CPU provider (int8: `quantize_dynamic`, per-channel QInt8 weights); medians of "
             f"{args.rounds} alternating rounds × {args.runs} runs after warm-up, all engines in the same run.",
             f"Model: full-size random IndicConformer (d_model 1024, {args.layers} layers, 8 heads, FFN 4096), weights file "
             f"{weights_mb:.0f} MiB (fp32). sgemm at the model's shapes (60 s): {sgemm:.0f} GFLOP/s.", "",
             "Encoder ms (lower is better) and speed-ups (ORT time ÷ Vani time):", "",
             "| audio | " + " | ".join(names) + " | fp32: ORT ÷ Vani | int8: ORT ÷ Vani int8 |"
             + (f" ORT int8 ÷ {best} |" if best and best != "Vani int8" else ""),
             "|---:|" + "---:|" * (len(names) + 2 + (1 if best and best != "Vani int8" else 0))]
    for s in LENGTHS:
        row = [f"{med(n, s, 'encoder_ms'):.0f}" for n in names]
        fp = med("ORT fp32", s, "encoder_ms") / med("Vani fp32", s, "encoder_ms")
        q = (med("ORT int8", s, "encoder_ms") / med("Vani int8", s, "encoder_ms")) if "Vani int8" in names else float("nan")
        extra = (f" {med('ORT int8', s, 'encoder_ms') / med(best, s, 'encoder_ms'):.2f}× |"
                 if best and best != "Vani int8" else "")
        lines.append(f"| {s} s | " + " | ".join(row) + f" | {fp:.2f}× | {q:.2f}× |" + extra)
    lines += ["", "End to end (frontend + encoder + CTC) ms, load ms and peak RSS MB:", "",
              "| audio | " + " | ".join(f"{n} e2e" for n in names) + " | " + " | ".join(f"{n} RSS" for n in names) + " |",
              "|---:|" + "---:|" * (2 * len(names))]
    for s in LENGTHS:
        lines.append(f"| {s} s | " + " | ".join(f"{med(n, s, 'end_to_end_ctc_ms'):.0f}" for n in names) + " | "
                     + " | ".join(f"{med(n, s, 'peak_rss_mb'):.0f}" for n in names) + " |")
    lines.append("")
    lines.append("Load ms: " + ", ".join(f"{n} {med(n, 20, 'load_ms'):.0f}" for n in names) + ".")
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
