#!/usr/bin/env python3
"""Served throughput of `vani serve` with dynamic batching on and off (issue 16), in one run.

    python3 Benchmarks/run_throughput.py [--model FILE | --scaled] [--threads 2] [--clients 1 4 8]
                                         [--seconds 5] [--requests 6] [--rounds 3] [--batch-wait-ms 5]

For each round, and for each configuration (batching off: --batch-wait-ms 0; on: --batch-wait-ms W;
the order alternates between rounds so drifting machine load falls on both alike), the script
starts `vani serve --concurrency 1 --threads T --cache-mb 0 --preload` (release build), sends a
warm-up, then for each concurrency C runs C client threads that each send --requests POST /asr
requests one after the other (JSON, base64 WAV of --seconds s of speech, a different slice per
request). It measures audio seconds transcribed per wall second, the latency of each request
(p50, p95), and the server's CPU use (utime + stime from /proc over wall time, in cores). It
checks that every slice gets the same text from both configurations, and prints a Markdown
table with the min and median over rounds.

--scaled builds (once, under Benchmarks/.cache/, which git ignores) a random model with the
demo model's structure scaled to d_model 1024, ff 4096, 8 heads, --scaled-layers layers: the
release's layer width, where the weight products dominate as they do in the 600M model.
OPENBLAS_CORETYPE is removed from the server's environment (OpenBLAS picks its kernel itself).
"""
import argparse
import base64
import json
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import wave

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CACHE = os.path.join(ROOT, "Benchmarks", ".cache")
VANI = os.path.join(ROOT, ".build", "release", "vani")


# MARK: - A scaled random model

def scaled_model(layers, d=1024, ff=4096, heads=8):
    """The demo model's tensors with d_model, ff and heads scaled, random weights (seeded)."""
    out = os.path.join(CACHE, f"scaled-d{d}-l{layers}.safetensors")
    if os.path.exists(out):
        return out
    src = os.path.join(ROOT, "Weights", "default.safetensors")
    with open(src, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        blob = f.read()
    meta = header.pop("__metadata__")
    config = json.loads(meta["vani.config"])
    enc = config["encoder"]
    old_d, old_ff, old_heads, old_layers = enc["dModel"], enc["ffDim"], enc["heads"], enc["layers"]
    enc.update(dModel=d, ffDim=ff, heads=heads, layers=layers, posEmbRows=0)  # the table is computed
    config["name"] = f"scaled-random-d{d}-l{layers}"
    dims = {old_d: d, 2 * old_d: 2 * d, old_ff: ff, old_d // old_heads: d // heads, old_heads: heads}
    rng = np.random.default_rng(16)
    tensors = {}
    for name, info in sorted(header.items()):
        if name == "encoder.pos_enc.pe":
            continue  # optional: the engine computes the table for the new width
        if name.startswith("encoder.layers."):
            index = int(name.split(".")[2])
            if index >= old_layers:
                continue
        shape = list(info["shape"])
        if name.startswith("encoder.pre_encode.conv"):
            new = shape                                   # the subsampling keeps its channels
        elif name.startswith("encoder.pre_encode.out"):
            new = [d] + shape[1:]
        elif name.endswith("pos_bias_u") or name.endswith("pos_bias_v"):
            new = [heads, d // heads]
        elif name.startswith("encoder.") or name.startswith("ctc") or name == "joint.enc.weight":
            new = [dims.get(s, s) for s in shape]
        else:
            new = shape
        if "norm" in name and name.endswith(".weight"):
            value = np.ones(new, np.float32)
        elif name.endswith(".bias") or "pos_bias" in name:
            value = (rng.standard_normal(new) * 0.02).astype(np.float32)
        elif name.startswith("encoder.") or name.startswith("ctc") or name == "joint.enc.weight":
            fan_in = int(np.prod(new[1:])) if len(new) > 1 else 1
            value = (rng.standard_normal(new) / np.sqrt(fan_in)).astype(np.float32)
        else:
            start, end = info["data_offsets"]
            value = np.frombuffer(blob[start:end], np.float32).reshape(shape).copy()
        tensors[name] = value
    # Layers beyond the demo's: copies of its layer pattern with fresh random weights.
    for i in range(old_layers, layers):
        for name in [k for k in tensors if k.startswith("encoder.layers.0.")]:
            v = tensors[name]
            fresh = name.replace("encoder.layers.0.", f"encoder.layers.{i}.")
            if "norm" in name and name.endswith(".weight"):
                tensors[fresh] = v.copy()
            else:
                tensors[fresh] = (rng.standard_normal(v.shape) * (v.std() or 0.02)).astype(np.float32)
    if layers < old_layers:
        tensors = {k: v for k, v in tensors.items()
                   if not (k.startswith("encoder.layers.") and int(k.split(".")[2]) >= layers)}
    meta = dict(meta)
    meta["vani.config"] = json.dumps(config)
    meta["converter"] = "Benchmarks/run_throughput.py --scaled (random weights)"
    offset, head = 0, {"__metadata__": meta}
    for name in sorted(tensors):
        nbytes = tensors[name].nbytes
        head[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    encoded = json.dumps(head).encode()
    encoded += b" " * (-len(encoded) % 8)
    os.makedirs(CACHE, exist_ok=True)
    with open(out + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for name in sorted(tensors):
            f.write(tensors[name].tobytes())
    os.replace(out + ".tmp", out)
    return out


# MARK: - Audio

def speech_slices(seconds, count):
    """`count` different `seconds`-long WAVs cut from the fixture clips tiled end to end."""
    clips = sorted(f for f in os.listdir(os.path.join(ROOT, "Tests", "Fixtures", "clips")) if f.endswith(".wav"))
    pcm = b""
    for c in clips:
        with wave.open(os.path.join(ROOT, "Tests", "Fixtures", "clips", c)) as w:
            pcm += w.readframes(w.getnframes())
    need = int(seconds * 16000) * 2
    pcm = pcm * ((need * count) // len(pcm) + 2)
    slices = []
    for i in range(count):
        start = (i * 7919 * 2 * 16) % (len(pcm) - need)
        start -= start % 2
        header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + need, b"WAVE", b"fmt ", 16, 1, 1, 16000, 32000, 2, 16,
                             b"data", need)
        slices.append(header + pcm[start:start + need])
    return slices


# MARK: - The server

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post(port, body, timeout=600):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/asr", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return json.loads(r.read())


def serve(model, threads, wait_ms, max_frames):
    port = free_port()
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    cmd = [VANI, "serve", "--model", model, "--port", str(port), "--concurrency", "1", "--threads", str(threads),
           "--cache-mb", "0", "--preload", "--queue", "64", "--batch-wait-ms", str(wait_ms),
           "--max-batch-frames", str(max_frames), "--log-level", "warning", "--no-ui"]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if json.loads(r.read()).get("status") == "ok":
                    return process, port
        except Exception:
            pass
        if process.poll() is not None:
            sys.exit(f"vani serve exited: {process.stderr.read().decode()}")
        time.sleep(0.2)
    process.kill()
    sys.exit("vani serve did not become healthy")


def load(port, pid, bodies, clients, requests, seconds):
    """C clients × R requests; returns audio s per s, latencies, CPU cores used, texts by slice."""
    latencies, texts, errors = [], {}, []
    lock = threading.Lock()

    def client(c):
        for r in range(requests):
            index = (c * requests + r) % len(bodies)
            t0 = time.perf_counter()
            try:
                answer = post(port, bodies[index])
            except Exception as e:  # counted, reported, and the run refused
                with lock:
                    errors.append(str(e))
                continue
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                texts[index] = answer.get("text")

    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    workers = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    if errors:
        sys.exit(f"{len(errors)} requests failed, e.g. {errors[0]}")
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    return {"throughput": len(latencies) * seconds / wall, "p50": p(0.5), "p95": p(0.95), "cpu": cpu / wall,
            "texts": texts}


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
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "Weights", "default.safetensors"))
    ap.add_argument("--scaled", action="store_true", help="use (and build once) the d_model 1024 random model")
    ap.add_argument("--scaled-layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--requests", type=int, default=6, help="requests per client per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-wait-ms", type=float, default=5)
    ap.add_argument("--max-batch-frames", type=int, default=1024)
    ap.add_argument("--build", action="store_true", help="swift build -c release --product vani first")
    args = ap.parse_args()
    if args.build:
        subprocess.run(["swift", "build", "-c", "release", "--product", "vani"], check=True, cwd=ROOT)
    model = scaled_model(args.scaled_layers) if args.scaled else args.model
    bodies = [json.dumps({"audio": base64.b64encode(w).decode(), "language": "hi"}).encode()
              for w in speech_slices(args.seconds, 32)]
    configs = [("off", 0.0), ("on", args.batch_wait_ms)]
    results = {(name, c): [] for name, _ in configs for c in args.clients}
    texts = {}
    for round_ in range(args.rounds):
        order = configs if round_ % 2 == 0 else configs[::-1]
        for name, wait in order:
            process, port = serve(model, args.threads, wait, args.max_batch_frames)
            try:
                # Warm-up: as many requests at once as the most clients, so every worker
                # thread has run a forward pass (its packed-panel scratch allocated) before timing.
                warm = [threading.Thread(target=post, args=(port, bodies[i % len(bodies)]))
                        for i in range(max(args.clients))]
                for w in warm:
                    w.start()
                for w in warm:
                    w.join()
                for c in args.clients:
                    r = load(port, process.pid, bodies, c, args.requests, args.seconds)
                    results[(name, c)].append(r)
                    for index, text in r["texts"].items():
                        if texts.setdefault(index, text) != text:
                            sys.exit(f"slice {index}: '{text}' with batching {name}, '{texts[index]}' before")
                    print(f"round {round_ + 1} batching {name:3} clients {c:2}: {r['throughput']:.1f} audio s/s, "
                          f"p50 {r['p50'] * 1000:.0f} ms, p95 {r['p95'] * 1000:.0f} ms, CPU {r['cpu']:.2f} cores",
                          flush=True)
            finally:
                process.terminate()
                process.wait()
    print()
    print(f"model {os.path.basename(model)}; {machine()}; {args.threads} threads per forward pass, "
          f"--concurrency 1; {args.seconds:g} s clips; {args.requests} requests per client; {args.rounds} rounds, "
          f"configurations alternated; every slice got the same text with batching on and off ({len(texts)} slices)")
    print()
    print("| clients | batching | audio s per s (min / median) | p50 ms | p95 ms | CPU cores | vs off (medians) |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for c in args.clients:
        off = statistics.median(r["throughput"] for r in results[("off", c)])
        for name, wait in configs:
            rs = results[(name, c)]
            tp = [r["throughput"] for r in rs]
            label = "off" if wait == 0 else f"on, {wait:g} ms"
            print(f"| {c} | {label} | {min(tp):.1f} / {statistics.median(tp):.1f} | "
                  f"{statistics.median(r['p50'] for r in rs) * 1000:.0f} | {statistics.median(r['p95'] for r in rs) * 1000:.0f} | "
                  f"{statistics.median(r['cpu'] for r in rs):.2f} | {statistics.median(tp) / off:.2f}× |")


if __name__ == "__main__":
    main()
