#!/usr/bin/env python3
"""A bounded burst of POST /asr requests against one address (the load balancer).

Usage: lb_burst.py URL AUDIO LANGUAGE EXPECTED_TEXT REQUESTS CLIENTS OUT.json [PROGRESS_FILE]

Sends REQUESTS requests from CLIENTS threads, each with its own keep-alive connection, and
writes {"statuses": {code: count}, "wrong_text": n, "errors": [...], "seconds": s} to OUT.json.
With PROGRESS_FILE, writes the number of answered requests there as they come (the caller reads
it to send SIGTERM mid-burst). No retries: every answer the load balancer gives is counted.
"""

import base64
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor


def main():
    url, audio, language, expected, total, clients, out = sys.argv[1:8]
    progress_file = sys.argv[8] if len(sys.argv) > 8 else None
    total, clients = int(total), int(clients)
    target = urllib.parse.urlsplit(url)
    body = json.dumps({"audio": base64.b64encode(open(audio, "rb").read()).decode(),
                       "language": language}).encode()
    lock = threading.Lock()
    statuses, errors = {}, []
    state = {"answered": 0, "wrong": 0, "next": 0}

    def take():
        with lock:
            if state["next"] >= total:
                return None
            state["next"] += 1
            return state["next"]

    def client(_):
        conn = None
        while (n := take()) is not None:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                conn.request("POST", target.path, body=body,
                             headers={"Content-Type": "application/json", "X-Request-Id": f"burst-{n}"})
                resp = conn.getresponse()
                data = resp.read()
                code = str(resp.status)
                wrong = resp.status == 200 and json.loads(data).get("text") != expected
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as error:  # a failed request is a result, not a crash
                code, wrong = "error", False
                with lock:
                    errors.append(f"request {n}: {error!r}")
                if conn is not None:
                    conn.close()
                conn = None
            with lock:
                statuses[code] = statuses.get(code, 0) + 1
                state["answered"] += 1
                state["wrong"] += int(wrong)
                if progress_file:
                    with open(progress_file + ".tmp", "w") as f:
                        f.write(str(state["answered"]))
                    os.replace(progress_file + ".tmp", progress_file)

    start = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    result = {"statuses": statuses, "wrong_text": state["wrong"], "errors": errors[:20],
              "seconds": round(time.monotonic() - start, 2)}
    with open(out, "w") as f:
        json.dump(result, f)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
