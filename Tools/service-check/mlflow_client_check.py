#!/usr/bin/env python3
"""The MLflow drop-in, checked with MLflow's own scoring client (issue 18, item 10).

`mlflow.pyfunc.scoring_server.client.ScoringServerClient.invoke` sends a pandas DataFrame as
`dataframe_split` JSON written by Python's `json`, so rows that lack a field carry `NaN` in that
column. MLflow's own scoring server accepts that; so must `vani serve`. This starts `vani serve`
on loopback with the bundled model, invokes it with the real client on a DataFrame whose rows
have different fields, and checks every prediction against the bundled samples' sentences.
Run by `make service-check` (part of `make test`); any failure exits non-zero.
"""

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pandas as pd
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vani", required=True)
    args = parser.parse_args()
    with open(os.path.join(ROOT, "Samples", "samples.json"), encoding="utf-8") as f:
        samples = json.load(f)   # {"hi-sample.wav": {"language", "text"}, ...}
    by_language = {entry["language"]: {"file": os.path.join("Samples", name), "text": entry["text"]}
                   for name, entry in samples.items()}
    port = free_port()
    log = tempfile.TemporaryFile()
    model = os.path.join(ROOT, "Weights", "default.safetensors")
    server = subprocess.Popen([args.vani, "serve", "--model", model, "--port", str(port), "--preload"],
                              stdout=log, stderr=log)
    try:
        client = ScoringServerClient("127.0.0.1", port)
        client.wait_server_ready(timeout=60, scoring_server_proc=server)

        def audio(language):
            with open(os.path.join(ROOT, by_language[language]["file"]), "rb") as f:
                return base64.b64encode(f.read()).decode("ascii")

        # Rows with different fields: pandas fills the gaps with NaN, which Python's json
        # writes as a bare NaN token.
        frame = pd.DataFrame([
            {"audio": audio("hi"), "language": "hi"},
            {"audio": audio("ta"), "language": "ta", "decoding": "rnnt"},
            {"audio": audio("bn"), "language": "bn", "timestamps": True},
        ])
        response = client.invoke(frame)
        predictions = response.get_predictions(predictions_format="dataframe")
        texts = list(predictions["text"])
        expected = [by_language[code]["text"] for code in ("hi", "ta", "bn")]
        if texts != expected:
            raise SystemExit(f"FAILED: predictions {texts} != {expected}")
        if list(predictions["decoding"]) != ["ctc", "rnnt", "ctc"]:
            raise SystemExit(f"FAILED: decoders {list(predictions['decoding'])}")
        print(f"mlflow client check: 3 rows with NaN gaps answered exactly (mlflow {__import__('mlflow').__version__})")
    except BaseException:
        log.seek(0)
        sys.stderr.write(log.read().decode("utf-8", "replace")[-4000:])
        raise
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
