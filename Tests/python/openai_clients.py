#!/usr/bin/env python3
"""The official `openai` client against `vani serve`: SSE transcription (`stream=True`) and the
realtime transcription WebSocket, with live latencies measured (docs/VAD.md, docs/SERVICE.md).

    python Tests/python/openai_clients.py --vani .build/debug/vani [--json out.json]

Starts the server on a free port with the bundled demo model, sends Samples/hi-sample.wav
(surrounded by silence) and checks:
  SSE       deltas arrive, concatenate to the done event's text, which equals `vani transcribe`;
  realtime  session.created/updated, speech_started/stopped, completed transcript equal to
            `vani transcribe` of the sample; audio sent at real-time pace in 40 ms appends of
            PCM16 at 24 kHz, timing the first delta after speech onset and the completed
            transcript after the end of speech.
Exits non-zero with a message on any failure.
"""
import argparse, array, base64, json, os, socket, subprocess, sys, time, wave

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, seconds=60):
    import urllib.request
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            fail(f"vani serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if json.load(r).get("status") == "ok":
                    return
        except Exception:
            time.sleep(0.2)
    fail("vani serve did not become ready")


def pcm16(path):
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.readframes(w.getnframes())


def to_24k(pcm):
    """16 kHz PCM16 -> 24 kHz PCM16 by linear interpolation (the test needs 24 kHz input, not
    a high-quality resampler)."""
    x = array.array("h"); x.frombytes(pcm)
    out = array.array("h")
    for n in range(len(x) * 3 // 2):
        pos = n * 2 / 3
        i = int(pos); frac = pos - i
        b = x[i + 1] if i + 1 < len(x) else x[i]
        out.append(int(round(x[i] * (1 - frac) + b * frac)))
    return out.tobytes()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vani", default=os.path.join(ROOT, ".build", "debug", "vani"))
    ap.add_argument("--json")
    args = ap.parse_args()
    import openai
    print(f"openai {openai.__version__}")
    sample = os.path.join(ROOT, "Samples", "hi-sample.wav")
    expected = subprocess.run([args.vani, "transcribe", sample, "--language", "hi", "--threads", "2"],
                              capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    port = free_port()
    proc = subprocess.Popen([args.vani, "serve", "--port", str(port), "--preload", "--concurrency", "1",
                             "--threads", "2", "--log-level", "warning", "--realtime"], cwd=ROOT)
    results = {"expected": expected}
    try:
        wait_ready(port, proc)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")

        # SSE: stream=True
        silence = b"\x00\x00" * 16000
        long_pcm = silence + (pcm16(sample) + silence) * 8          # ~41 s: over 30 s, so cut by VAD
        path = os.path.join(ROOT, ".build", "openai-clients-long.wav")
        with wave.open(path, "wb") as w:
            w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(long_pcm)
        with open(path, "rb") as f:
            stream = client.audio.transcriptions.create(model="indicconformer", file=f, language="hi", stream=True)
            deltas, done = [], None
            for event in stream:
                if event.type == "transcript.text.delta":
                    deltas.append(event.delta)
                elif event.type == "transcript.text.done":
                    done = event.text
        want = " ".join([expected] * 8)
        if done != want:
            fail(f"SSE done text {done!r} != {want!r}")
        if "".join(deltas) != done or len(deltas) < 2:
            fail(f"SSE deltas {deltas!r} do not make the done text")
        results["sse"] = {"deltas": len(deltas), "text": done}
        print(f"SSE ok: {len(deltas)} deltas")

        # Realtime over WebSocket, PCM16 at 24 kHz, real-time pace.
        speech = to_24k(pcm16(sample))
        lead, tail = b"\x00\x00" * 24000, b"\x00\x00" * 36000
        audio = lead + speech + tail
        onset, end_of_speech = 1.0, 1.0 + len(speech) / 2 / 24000
        with client.realtime.connect(model="indicconformer", extra_query={"intent": "transcription"}) as conn:
            conn.session.update(session={"type": "transcription", "audio": {"input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "indicconformer", "language": "hi"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}})
            import threading
            events, t0 = [], time.monotonic()

            def reader():
                for event in conn:
                    events.append((time.monotonic() - t0, event.type, event))
                    if event.type == "conversation.item.input_audio_transcription.completed":
                        return

            thread = threading.Thread(target=reader, daemon=True)
            thread.start()
            step = 24000 * 2 // 25                  # 40 ms
            for i in range(0, len(audio), step):
                due = t0 + i / 2 / 24000
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
                conn.input_audio_buffer.append(audio=base64.b64encode(audio[i:i + step]).decode())
            thread.join(timeout=30)
        types = [t for _, t, _ in events]
        for needed in ("session.created", "session.updated", "input_audio_buffer.speech_started",
                       "input_audio_buffer.speech_stopped", "conversation.item.input_audio_transcription.completed"):
            if needed not in types:
                fail(f"realtime: no {needed} in {types}")
        completed = next(e for _, t, e in events if t == "conversation.item.input_audio_transcription.completed")
        if completed.transcript != expected:
            fail(f"realtime transcript {completed.transcript!r} != {expected!r}")
        delta_times = [s for s, t, _ in events if t == "conversation.item.input_audio_transcription.delta"]
        deltas = "".join(e.delta for _, t, e in events if t == "conversation.item.input_audio_transcription.delta")
        if not expected.startswith(deltas):
            fail(f"realtime deltas {deltas!r} contradict the transcript {expected!r}")
        completed_at = next(s for s, t, _ in events if t == "conversation.item.input_audio_transcription.completed")
        results["realtime"] = {
            "transcript": completed.transcript, "deltas": len(delta_times),
            "first_delta_after_onset_s": round(delta_times[0] - onset, 3) if delta_times else None,
            "completed_after_end_of_speech_s": round(completed_at - end_of_speech, 3),
        }
        print(f"realtime ok: {json.dumps(results['realtime'], ensure_ascii=False)}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
