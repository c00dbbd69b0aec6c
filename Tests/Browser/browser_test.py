#!/usr/bin/env python3
"""The browser page of `vani serve`, driven in headless Chromium.

Starts `vani serve` (bundled model, an API key) on a free loopback port and chromedriver on
another, then speaks W3C WebDriver to it over plain HTTP JSON (standard library only):

  1. the page loads with no third-party requests and no CSP violation; the language and decoder
     lists come from /health;
  2. uploading Samples/hi-sample.wav asks for the API key (401), then shows the bundled model's
     transcript as word buttons with processing time and real-time factor;
  3. clicking a word seeks the player there and marks it; the arrow keys move between words;
  4. SRT, WebVTT and JSON downloads hold the words;
  5. a file that is not audio shows the service's error message and code;
  6. the microphone (Chromium's fake device, fed from the same WAV) records through the
     AudioWorklet and transcribes;
  7. the Tamil and Bengali samples (CTC and RNN-T) give their texts;
  8. at 360 px the page does not scroll sideways and transcribes again.

Screenshots go to the folder printed at the end (default .build/browser-test). Exits non-zero,
with the server's and the browser's logs, when a check fails.

  python3 Tests/Browser/browser_test.py --vani .build/debug/vani
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
API_KEY = os.environ.get("VANI_BROWSER_TEST_KEY", "browser-test-key")


class CheckFailed(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class WebDriver:
    """The few W3C WebDriver commands the test needs."""

    def __init__(self, base):
        self.base = base
        self.session = None

    def call(self, method, path, body=None, timeout=60):
        url = self.base + (f"/session/{self.session}" if self.session else "") + path
        status, raw = http(method, url, body if body is not None else ({} if method == "POST" else None), timeout)
        value = json.loads(raw or b"{}").get("value")
        if status != 200:
            message = value.get("message", "") if isinstance(value, dict) else value
            raise CheckFailed(f"WebDriver {method} {path}: HTTP {status}: {str(message)[:500]}")
        return value

    def start(self, capabilities):
        value = self.call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}}, timeout=60)
        self.session = value["sessionId"]
        return value

    def quit(self):
        if self.session:
            try:
                self.call("DELETE", "", timeout=10)
            except Exception:
                pass
            self.session = None

    def get(self, url):
        self.call("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css):
        return self.call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def click(self, css):
        self.call("POST", f"/element/{self.find(css)}/click")

    def send_keys(self, css, text):
        self.call("POST", f"/element/{self.find(css)}/value", {"text": text})

    def window(self, width, height):
        self.call("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self, path, full_page=True):
        """The whole page: the window is grown to the page's height for the shot, then restored."""
        rect = self.call("GET", "/window/rect")
        if full_page:
            height = self.js("return Math.ceil(document.documentElement.scrollHeight"
                             " + (window.outerHeight - window.innerHeight));")
            self.window(rect["width"], max(rect["height"], min(int(height), 4000)))
        import base64
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.call("GET", "/screenshot")))
        if full_page:
            self.window(rect["width"], rect["height"])

    def browser_log(self):
        try:
            return self.call("POST", "/se/log", {"type": "browser"}) or []
        except CheckFailed:
            return []


class BrowserTest:
    def __init__(self, args):
        self.args = args
        self.checks = 0
        self.out = os.path.abspath(args.out)
        self.downloads = os.path.join(self.out, "downloads")
        self.server = None
        self.driver_process = None
        self.driver = None
        self.log_files = []
        with open(os.path.join(ROOT, "Samples", "samples.json"), encoding="utf-8") as f:
            self.expected = json.load(f)["hi-sample.wav"]["text"]
        self.sample = os.path.join(ROOT, "Samples", "hi-sample.wav")
        with wave.open(self.sample) as w:
            self.sample_seconds = w.getnframes() / w.getframerate()

    # MARK: - Helpers

    def check(self, condition, what):
        if not condition:
            raise CheckFailed(what)
        self.checks += 1
        print(f"  ok  {what}", flush=True)

    def wait(self, script, what, timeout=30.0, *args):
        """Polls a script until it returns something truthy; returns that."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.driver.js(script, *args)
            if last:
                return last
            time.sleep(0.1)
        raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")

    def shot(self, name):
        path = os.path.join(self.out, name)
        self.driver.screenshot(path)
        print(f"  screenshot {path}", flush=True)

    def transcript(self):
        return self.driver.js("return [...document.querySelectorAll('#transcript .word')].map(b => b.textContent).join(' ');")

    def wait_for_result(self, name, timeout=60.0):
        """Waits until the transcription of the file called `name` (a prefix will do) ends, with a
        transcript or an error; returns the transcript. Keyed on the name so that the previous
        result is never mistaken for this one."""
        self.wait("const status = document.getElementById('status').textContent;"
                  " const busy = document.getElementById('result').getAttribute('aria-busy') === 'true';"
                  " return !busy && (status.startsWith('Transcribed ' + arguments[0])"
                  "  || status.startsWith('Transcription of ' + arguments[0]));",
                  f"the result for {name}", timeout, name)
        return self.transcript()

    def select_language(self, code):
        self.driver.js("const s = document.getElementById('language'); s.value = arguments[0];"
                       " s.dispatchEvent(new Event('change'));", code)

    # MARK: - Processes

    def start_server(self):
        if self.args.url:  # a server that is already running, with --api-key API_KEY
            self.base = self.args.url.rstrip("/")
            return json.loads(http("GET", self.base + "/health")[1])
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        log = open(os.path.join(self.out, "server.log"), "wb")
        self.log_files.append(log)
        command = [self.args.vani, "serve", "--model", os.path.join(ROOT, "Weights", "default.safetensors"),
                   "--port", str(port), "--preload", "--api-key", API_KEY, "--concurrency", "1"]
        print("  $ " + " ".join(command), flush=True)
        self.server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise CheckFailed(f"vani serve exited with {self.server.returncode}")
            try:
                status, body = http("GET", self.base + "/health", timeout=2)
                if status == 200 and json.loads(body).get("model", {}).get("state") == "ready":
                    return json.loads(body)
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise CheckFailed("vani serve did not become healthy within 60 s")

    def start_browser(self):
        chromedriver = shutil.which("chromedriver")
        if not chromedriver:
            raise CheckFailed("chromedriver not found: install chromium and chromium-driver (make browser-deps)")
        binary = "/usr/lib/chromium/chromium" if os.path.exists("/usr/lib/chromium/chromium") else shutil.which("chromium")
        port = free_port()
        log = open(os.path.join(self.out, "chromedriver.log"), "wb")
        self.log_files.append(log)
        self.driver_process = subprocess.Popen([chromedriver, f"--port={port}", "--allowed-ips=127.0.0.1"],
                                               stdout=log, stderr=subprocess.STDOUT)
        driver = WebDriver(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if driver.call("GET", "/status", timeout=2).get("ready"):
                    break
            except (OSError, CheckFailed, ValueError):
                time.sleep(0.2)
        else:
            raise CheckFailed("chromedriver did not start within 30 s")
        arguments = [
            "--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-extensions", "--disable-sync", "--disable-background-networking",
            "--disable-component-update", "--disable-default-apps", "--lang=en-US",
            "--window-size=1100,900", "--autoplay-policy=no-user-gesture-required",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={self.sample}%noloop",
            # Root and most containers cannot start Chromium's sandbox; the browser only ever loads
            # this test's own loopback page.
            "--no-sandbox",
        ]
        options = {"args": arguments, "prefs": {
            "download.default_directory": self.downloads, "download.prompt_for_download": False}}
        if binary:
            options["binary"] = binary
        driver.start({"browserName": "chrome", "goog:chromeOptions": options,
                      "goog:loggingPrefs": {"browser": "ALL"}})
        self.driver = driver

    def stop(self):
        if self.driver:
            self.driver.quit()
        for process in (self.driver_process, self.server):
            if process and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for log in self.log_files:
            log.close()

    # MARK: - The checks

    def run(self):
        os.makedirs(self.downloads, exist_ok=True)
        for name in os.listdir(self.downloads):
            os.remove(os.path.join(self.downloads, name))
        health = self.start_server()
        languages = health["model"]["languages"]
        self.start_browser()
        d = self.driver

        print("page", flush=True)
        d.get(self.base + "/")
        self.wait("return document.getElementById('language').options.length > 0"
                  " && document.getElementById('server').textContent.includes('ready');", "the settings from /health")
        options = d.js("return [...document.getElementById('language').options].map(o => o.value);")
        self.check(options == languages, f"language list is the model's own: {options}")
        decoders = d.js("return [...document.getElementById('decoder').options].map(o => o.value);")
        self.check(decoders == health["model"]["decoders"], f"decoder list from /health: {decoders}")
        self.check(d.js("return document.getElementById('live').hidden;"), "live mode hidden (not advertised)")
        self.check(d.js("return document.getElementById('record').tagName === 'BUTTON'"
                        " && document.querySelector('label[for=language]') !== null"
                        " && document.querySelector('label[for=decoder]') !== null;"),
                   "controls are buttons with labelled selects")
        self.select_language("hi")
        self.shot("01-page.png")

        print("upload with the API key", flush=True)
        d.send_keys("#file", self.sample)
        self.wait("return document.getElementById('key-dialog').open;", "the API key dialog after a 401")
        self.shot("02-api-key.png")
        d.send_keys("#key-input", API_KEY)
        d.click("#key-submit")
        text = self.wait_for_result("hi-sample.wav")
        self.check(text == self.expected, f"upload transcript: {text}")
        stored = d.js("return [sessionStorage.getItem('vani.apiKey'), localStorage.length];")
        self.check(stored == [API_KEY, 0], "API key kept in sessionStorage only")
        stats = d.js("return document.getElementById('stats').innerText;")
        self.check(not d.js("return document.getElementById('stats').hidden;") and "Real-time factor" in stats
                   and " ms" in stats, "processing time and real-time factor shown: " + " | ".join(stats.split("\n")))
        self.check(d.js("return document.getElementById('error').hidden;"), "no error shown")
        self.check(d.js("return document.getElementById('player').src.startsWith('blob:');"), "the player holds the upload")

        print("words and playback", flush=True)
        words = d.js("return [...document.querySelectorAll('#transcript .word')]"
                     ".map(b => [b.tagName, b.textContent, b.title]);")
        self.check(len(words) == len(self.expected.split()) and all(w[0] == "BUTTON" for w in words),
                   f"{len(words)} words, each a button with its times (first: {words[0][2]})")
        rows = d.js("return [...document.querySelectorAll('#timings-body tr')].map(r => [...r.cells].map(c => c.textContent));")
        self.check(len(rows) == len(words) and rows[0][1] == words[0][1] and rows[0][2] + "–" + rows[0][3] + " s" == words[0][2],
                   f"a table of word timings: {rows[0]} … {rows[-1]}")
        d.click("#timings summary")
        d.click("#transcript .word:nth-of-type(4)")
        seek = self.wait("const p = document.getElementById('player'); const w = document.querySelector('.word.current');"
                         " return p.currentTime > 0 && w ? [p.currentTime, w.dataset.index, p.paused] : null;",
                         "the clicked word to play")
        self.check(seek[1] in ("3", "4"), f"clicking word 4 plays from {seek[0]:.2f} s and marks word {int(seek[1]) + 1}")
        self.wait("return document.getElementById('player').ended ||"
                  " Number(document.querySelector('.word.current')?.dataset.index) > 4;", "the mark to follow playback", 15)
        self.check(True, "the mark follows playback")
        d.js("document.getElementById('player').pause();")
        self.shot("03-transcript.png")
        d.js("document.querySelector('#transcript .word').focus();")
        d.send_keys("#transcript .word", "\ue014")  # ArrowRight
        focused = d.js("return document.activeElement.dataset.index;")
        self.check(focused == "1", "ArrowRight moves focus to the next word")

        print("downloads", flush=True)
        for fmt in ("srt", "vtt", "json"):
            d.click(f"#downloads button[data-format={fmt}]")
        files = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(files) < 3:
            files = {n.rsplit(".", 1)[-1]: os.path.join(self.downloads, n) for n in os.listdir(self.downloads)
                     if n.startswith("hi-sample.") and not n.endswith(".crdownload")}
            time.sleep(0.2)
        self.check(sorted(files) == ["json", "srt", "vtt"], f"three downloads: {sorted(os.listdir(self.downloads))}")
        srt = open(files["srt"], encoding="utf-8").read()
        vtt = open(files["vtt"], encoding="utf-8").read()
        data = json.load(open(files["json"], encoding="utf-8"))
        self.check(srt.startswith("1\n00:00:") and " --> " in srt and self.expected.split()[0] in srt, "SRT cues")
        self.check(vtt.startswith("WEBVTT\n\n00:00:") and self.expected.split()[-1] in vtt, "WebVTT cues")
        self.check(data["text"] == self.expected and len(data["words"]) == len(words), "JSON result with words")

        print("an error from the service", flush=True)
        junk = os.path.join(self.out, "not-audio.wav")
        with open(junk, "w") as f:
            f.write("This is a text file, not audio.\n" * 20)
        d.send_keys("#file", junk)
        self.wait_for_result("not-audio.wav")
        error = d.js("return document.getElementById('error').hidden ? '' : document.getElementById('error').innerText;")
        self.check("INVALID_PARAMETER_VALUE" in error and "HTTP 422" in error, f"the service's error is shown: {error!r}")
        self.check(self.transcript() == "", "no stale transcript beside the error")
        self.shot("04-error.png")

        print("microphone through the AudioWorklet", flush=True)
        d.click("#record")
        started = time.monotonic()
        self.wait("return document.getElementById('record').getAttribute('aria-pressed') === 'true';", "recording to start")
        level = self.wait("const v = document.getElementById('level').value; return v > 0.01 ? v : 0;",
                          "the level meter to move", self.sample_seconds)
        self.check(True, f"the level meter shows the microphone's signal ({level:.2f})")
        self.shot("05-recording.png")
        # The fake microphone plays the file once from when it opens, then silence.
        time.sleep(max(0.0, self.sample_seconds + 1.0 - (time.monotonic() - started)))
        d.click("#record")
        text = self.wait_for_result("recording-")
        error = d.js("return document.getElementById('error').hidden ? '' : document.getElementById('error').innerText;")
        self.check(text != "" and not error, f"recording transcript: {text}{error}")
        if text == self.expected:
            self.check(True, "recording transcript equals the sample's text")
        else:
            print(f"  note: recording transcript differs from the sample text {self.expected!r}", flush=True)
        recorded = d.js("return document.getElementById('stat-duration').textContent;")
        self.check(float(recorded.split()[0]) >= self.sample_seconds, f"recorded {recorded} (16-bit PCM WAV)")
        self.shot("06-recorded.png")

        print("Tamil and Bengali, both decoders", flush=True)
        with open(os.path.join(ROOT, "Samples", "samples.json"), encoding="utf-8") as f:
            samples = json.load(f)
        for name, decoder in (("ta-sample.wav", "ctc"), ("bn-sample.wav", "rnnt")):
            sample = samples[name]
            if sample["language"] not in languages:
                continue
            self.select_language(sample["language"])
            d.js("document.getElementById('decoder').value = arguments[0];", decoder)
            d.send_keys("#file", os.path.join(ROOT, "Samples", name))
            text = self.wait_for_result(name)
            self.check(text == sample["text"], f"{name} ({decoder}): {text}")
            self.check(d.js("return document.getElementById('transcript').lang;") == sample["language"],
                       f"the transcript is marked lang={sample['language']}")
        self.shot("07-bengali.png")
        d.js("document.getElementById('decoder').value = 'ctc';")

        print("phone width", flush=True)
        d.window(360, 800)
        d.get(self.base + "/ui")
        self.wait("return document.getElementById('language').options.length > 0;", "the settings at 360 px")
        width = d.js("return [document.documentElement.clientWidth, document.documentElement.scrollWidth];")
        self.check(width[0] <= 360 and width[1] <= width[0], f"no sideways scrolling at {width[0]} px: {width}")
        self.select_language("hi")
        d.send_keys("#file", self.sample)
        text = self.wait_for_result("hi-sample.wav")
        self.check(text == self.expected, "transcribes at 360 px with the key from sessionStorage (no dialog)")
        width = d.js("return [document.documentElement.clientWidth, document.documentElement.scrollWidth];")
        self.check(width[1] <= width[0], f"still no sideways scrolling with a transcript: {width}")
        self.shot("08-phone.png")

        print("requests and policy", flush=True)
        origins = d.js("return [...new Set(performance.getEntriesByType('resource').map(e => new URL(e.name).origin))];")
        self.check(all(o == self.base for o in origins), f"no third-party requests: {origins}")
        log = d.browser_log()
        bad = [e["message"] for e in log if "Content Security Policy" in e.get("message", "")
               or "Uncaught" in e.get("message", "")]
        self.check(not bad, f"no CSP violation or script error in the console ({len(log)} entries)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vani", default=os.path.join(ROOT, ".build", "debug", "vani"), help="the vani binary")
    parser.add_argument("--url", help="test a server already running (with --api-key $VANI_BROWSER_TEST_KEY)"
                        " instead of starting one")
    parser.add_argument("--out", default=os.path.join(ROOT, ".build", "browser-test"), help="screenshots and logs")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    test = BrowserTest(args)
    print(f"Browser test: {args.vani} serve + headless Chromium; screenshots in {os.path.abspath(args.out)}", flush=True)
    try:
        test.run()
    except Exception as error:
        print(f"\nBROWSER TEST FAILED: {error}", file=sys.stderr, flush=True)
        if test.driver and test.driver.session:
            try:
                test.shot("failure.png")
                for entry in test.driver.browser_log()[-20:]:
                    print("  browser:", entry.get("message", ""), file=sys.stderr)
            except Exception:
                pass
        test.stop()
        for name in ("server.log", "chromedriver.log"):
            path = os.path.join(test.out, name)
            if os.path.exists(path):
                lines = open(path, errors="replace").read().splitlines()[-15:]
                print(f"--- last lines of {path}", *lines, sep="\n", file=sys.stderr)
        return 1
    test.stop()
    print(f"Browser test: {test.checks} checks passed in {time.monotonic() - started:.1f} s;"
          f" screenshots in {test.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
