#!/usr/bin/env python3
"""End-to-end check of `vani serve`'s operations features with real clients (docs/SERVICE.md).

Starts `vani serve` on loopback with the bundled model under two names, then talks to it with the
official `openai` client and with `curl`, and parses /metrics with Prometheus's own parser
(`prometheus_client.parser`). Run by `make service-check` (part of `make test`), which installs
`openai` and `prometheus-client` in a virtual environment first. Any failure exits non-zero.
"""

import argparse
import base64
import io
import json
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import wave

import openai
from prometheus_client.parser import text_string_to_metric_families

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(ROOT, "Samples", "hi-sample.wav")
EXPECTED = "आज मौसम बहुत अच्छा है और हम बाजार जा रहे हैं"
KEY = "check-key"
checks = 0


def ok(condition, what):
    global checks
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    checks += 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(vani, args, port):
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([vani, "serve", "--port", str(port), *args], stdout=log, stderr=log)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1):
                return process, log
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    log.seek(0)
    raise SystemExit(f"FAILED: vani serve did not start:\n{log.read().decode(errors='replace')}")


def curl(*args, json_body=None):
    """curl -s -i: (status, headers dict with lower-case names, body text); a JSON body goes
    through a file (base64 audio is longer than a command line may be)."""
    if json_body is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(json_body, f)
        args = (*args, "--data-binary", f"@{f.name}")
    out = subprocess.run(["curl", "-s", "-i", "-H", "Expect:", *args], capture_output=True, check=True).stdout.decode()
    if json_body is not None:
        os.unlink(f.name)
    head, _, body = out.partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def tone_wav(seconds):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        frames = int(seconds * 16000)
        w.writeframes(b"".join(struct.pack("<h", int(6000 * math.sin(2 * math.pi * 440 * i / 16000))) for i in range(frames)))
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vani", default=os.path.join(ROOT, ".build", "debug", "vani"))
    vani = parser.parse_args().vani
    work = tempfile.mkdtemp(prefix="vani-check-")
    second = os.path.join(work, "second.safetensors")
    shutil.copy(os.path.join(ROOT, "Weights", "default.safetensors"), second)
    keys = os.path.join(work, "keys.txt")
    with open(keys, "w") as f:
        f.write("# keys for the check\nteam-b other-key\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server, log = start(vani, ["--model", f"demo={os.path.join(ROOT, 'Weights', 'default.safetensors')}",
                               "--model", f"second={second}", "--preload", "--api-key", KEY, "--api-keys-file", keys,
                               "--default-language", "hi", "--max-seconds", "8", "--cors-origin", "https://app.example",
                               "--concurrency", "1", "--threads", "2"], port)
    try:
        for _ in range(600):
            status, _, body = curl(f"{base}/health")
            if json.loads(body)["status"] == "ok" and all(m["state"] == "ready" for m in json.loads(body)["models"]):
                break
            time.sleep(0.1)
        health = json.loads(body)
        ok(status == 200, f"/health 200: {body}")
        ok(health["max_audio_seconds"] == 8, "max_audio_seconds in /health")
        ok([m["id"] for m in health["models"]] == ["demo", "second"], f"models in /health: {health['models']}")
        ok(all(m["digest"].startswith("sha256:") and len(m["digest"]) == 71 for m in health["models"]), "digests in /health")
        digest = health["models"][0]["digest"]

        # The official openai client: default language, unknown names mean the default, headers.
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=KEY)
        with open(SAMPLE, "rb") as f:
            raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=f)
        ok(raw.parse().text == EXPECTED, f"openai transcript: {raw.parse().text!r}")
        ok(raw.headers.get("x-model-digest") == digest, "X-Model-Digest on the OpenAI answer")
        ok(raw.headers.get("x-cache") == "MISS", f"first answer is a MISS: {raw.headers.get('x-cache')}")
        with open(SAMPLE, "rb") as f:
            raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=f, language="hi")
        ok(raw.headers.get("x-cache") == "HIT", "the identical second request is a HIT")
        with open(SAMPLE, "rb") as f:
            verbose = client.audio.transcriptions.create(model="second", file=f, response_format="verbose_json",
                                                         timestamp_granularities=["word"])
        ok(verbose.text == EXPECTED and verbose.words[0].start >= 0, "verbose_json from the second model")
        ok([m.id for m in client.models.list().data] == ["demo", "second"], "openai models.list")
        other = openai.OpenAI(base_url=f"{base}/v1", api_key="other-key")
        with open(SAMPLE, "rb") as f:
            raw = other.audio.transcriptions.with_raw_response.create(model="whisper-1", file=f)
        ok(raw.headers.get("x-cache") == "MISS", "the cache is not shared across API keys")
        try:
            openai.OpenAI(base_url=f"{base}/v1", api_key="wrong").models.list()
            ok(False, "a wrong key is refused")
        except openai.AuthenticationError:
            ok(True, "")

        # curl: /asr with an unknown model, the default language, too-long audio, CORS.
        audio = base64.b64encode(open(SAMPLE, "rb").read()).decode()
        auth = ["-H", f"Authorization: Bearer {KEY}", "-H", "Content-Type: application/json"]
        status, headers, body = curl(f"{base}/asr", *auth, json_body={"audio": audio})
        ok(status == 200 and json.loads(body)["text"] == EXPECTED, f"/asr with --default-language: {body}")
        ok(headers.get("x-cache") == "HIT" and headers.get("x-model-digest") == digest, f"/asr headers: {headers}")
        status, _, body = curl(f"{base}/asr", *auth, json_body={"audio": audio, "model": "nope"})
        ok(status == 404 and json.loads(body)["error_code"] == "RESOURCE_DOES_NOT_EXIST" and "demo, second" in body,
           f"unknown model on /asr: {body}")
        long = base64.b64encode(tone_wav(9)).decode()
        status, _, body = curl(f"{base}/asr", *auth, json_body={"audio": long})
        ok(status == 422, f"audio over --max-seconds is 422: {status} {body}")
        status, headers, _ = curl("-X", "OPTIONS", f"{base}/asr", "-H", "Origin: https://app.example",
                                  "-H", "Access-Control-Request-Method: POST")
        ok(status == 204 and headers.get("access-control-allow-origin") == "https://app.example", f"CORS preflight: {headers}")

        # Reload: a broken file keeps the old weights; SIGHUP and the endpoint reload good ones.
        # Files are replaced as operators do it: written beside, then renamed over.
        def replace_second(data):
            with open(second + ".new", "wb") as f:
                f.write(data)
            os.replace(second + ".new", second)

        good = open(os.path.join(ROOT, "Weights", "default.safetensors"), "rb").read()
        replace_second(b"broken" + good[6:])
        status, _, body = curl("-X", "POST", f"{base}/v1/models/second/reload", "-H", f"Authorization: Bearer {KEY}")
        ok(status == 500 and "still serving the previous weights" in body, f"failed reload: {body}")
        with open(SAMPLE, "rb") as f:
            ok(client.audio.transcriptions.create(model="second", file=f).text == EXPECTED, "old weights still serve")
        replace_second(good)
        status, _, body = curl("-X", "POST", f"{base}/v1/models/second/reload", "-H", f"Authorization: Bearer {KEY}")
        ok(status == 200 and json.loads(body)["digest"] == digest, f"reload: {body}")
        server.send_signal(signal.SIGHUP)
        for _ in range(300):
            status, _, body = curl(f"{base}/health")
            generations = [m["generation"] for m in json.loads(body)["models"]]
            if generations == [2, 3]:
                break
            time.sleep(0.1)
        ok(server.poll() is None, "SIGHUP does not stop the server")
        ok(status == 200 and generations == [2, 3], f"SIGHUP reloaded every model: {body}")

        # /metrics, behind the key, parsed by Prometheus's own parser.
        status, _, body = curl(f"{base}/metrics")
        ok(status == 401, "/metrics needs the key")
        status, headers, page = curl(f"{base}/metrics", "-H", f"Authorization: Bearer {KEY}")
        ok(status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4"), "/metrics answers")
        families = {family.name: family for family in text_string_to_metric_families(page)}
        expected = {"vani_requests": "counter", "vani_request_duration_seconds": "histogram",
                    "vani_queue_wait_seconds": "histogram", "vani_inflight_requests": "gauge",
                    "vani_queued_requests": "gauge", "vani_audio_seconds": "counter",
                    "vani_inference_seconds": "histogram", "vani_real_time_factor_ratio": "histogram",
                    "vani_model_load_seconds": "gauge", "vani_model_loads": "counter", "vani_cache_hits": "counter",
                    "vani_cache_misses": "counter", "vani_rejected_requests": None}
        for name, kind in expected.items():
            if kind is None:
                continue
            ok(name in families and families[name].type == kind, f"{name} ({kind}) in /metrics: {sorted(families)}")
        requests = [s for s in families["vani_requests"].samples if s.name == "vani_requests_total"]
        ok(any(s.labels == {"endpoint": "/v1/audio/transcriptions", "code": "200"} and s.value >= 3 for s in requests),
           f"requests by endpoint and code: {requests}")
        buckets = [s for s in families["vani_request_duration_seconds"].samples if s.name.endswith("_bucket")]
        ok(any(s.labels.get("le") == "600.0" for s in buckets), "duration buckets reach minutes")
        audio_total = sum(s.value for s in families["vani_audio_seconds"].samples)
        ok(audio_total > 10, f"audio seconds counted: {audio_total}")
    finally:
        server.terminate()
        server.wait(timeout=30)

    # Rate limits: a second server without keys, one request per second per address.
    port = free_port()
    server, _ = start(vani, ["--model", os.path.join(ROOT, "Weights", "default.safetensors"), "--rate-limit", "1"], port)
    try:
        first = curl(f"http://127.0.0.1:{port}/v1/models")
        second_status, headers, body = curl(f"http://127.0.0.1:{port}/v1/models")
        ok(first[0] == 200 and first[1].get("ratelimit-limit") == "1", f"rate-limited answer headers: {first[1]}")
        ok(second_status == 429 and json.loads(body)["error_code"] == "RESOURCE_EXHAUSTED", f"429: {body}")
        ok(int(headers["retry-after"]) >= 1 and headers["ratelimit-remaining"] == "0" and "ratelimit-reset" in headers,
           f"429 headers: {headers}")
        ok(curl(f"http://127.0.0.1:{port}/health")[0] == 200, "probes are not limited")
    finally:
        server.terminate()
        server.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)
    print(f"service check: {checks} checks passed (openai {openai.__version__}, prometheus_client parser)")


if __name__ == "__main__":
    main()
