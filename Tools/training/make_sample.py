"""Writes Samples/<lang>-sample.wav: a new sentence of the language's training vocabulary (in
neither the training nor the held-out set), spoken by espeak-ng's default voice for the language,
16 kHz mono 16-bit.

    python make_sample.py [--lang hi|ta|bn] [--out Samples/<lang>-sample.wav]
"""
import argparse
import json
import os

import numpy as np
import soundfile as sf
import torch

import common as C
import gen_data

SENTENCE = {
    "hi": "आज मौसम बहुत अच्छा है और हम बाजार जा रहे हैं",   # today the weather is very good and we are going to the market
    "ta": "இன்று மிகவும் நல்ல நாள் நான் வீட்டில் இருந்தேன்",   # today is a very good day, I was at home
    "bn": "আমি আজ বাড়ি যাচ্ছি এটা একটা ভালো দিন",         # I am going home today, it is a good day
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lang", default="hi")
    ap.add_argument("--data", default=os.path.join(C.HERE, "data"))
    ap.add_argument("--out", default=None, help="default: Samples/<lang>-sample.wav")
    args = ap.parse_args()
    args.out = args.out or os.path.join(C.REPO, "Samples", f"{args.lang}-sample.wav")
    d = os.path.join(args.data, args.lang)
    words = set(open(os.path.join(d, "words.txt"), encoding="utf-8").read().split())
    text = SENTENCE[args.lang]
    missing = [w for w in text.split() if w not in words]
    assert not missing, f"not in the training vocabulary: {missing}"
    train = set(torch.load(os.path.join(d, "train.pt"))["texts"])
    test = {json.loads(x)["text"] for x in open(os.path.join(d, "test.jsonl"), encoding="utf-8")}
    assert text not in train and text not in test
    x = gen_data.trim(gen_data.synth((text, args.lang, 150, 50, 2)))
    sf.write(args.out, x, 16000, subtype="PCM_16")
    print(f"{args.out}: {len(x) / 16000:.2f} s: {text}")


if __name__ == "__main__":
    main()
