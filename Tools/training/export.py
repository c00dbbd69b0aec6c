"""Exports a training checkpoint in the release layout (docs/MODEL_CONTRACT.md §1) with
Tools/reference/build_model.py's exporters (NeMo module.export() for the encoder, CTC head and
prediction net; torch.onnx.export for the joint pieces), then converts it with vani-convert.

    python export.py --ckpt Tools/training/out/ckpt_hi.pt --out Tools/training/out/model \
        [--weights Tools/training/out/vani-hi.safetensors] [--converter .build/release/vani-convert]

Untrained languages keep placeholder pieces; their CTC rows (weight 0, bias -100) and joint post
nets (weight 0, bias -100 except the blank) make both decoders return an empty transcript for them.
The trained languages are written into the converted file's `vani.config` as `trainedLanguages`
(set_trained_languages below), since vani-convert has no input for it.
"""
import argparse
import json
import os
import struct
import subprocess

import torch

import common as C
from common import B

UNTRAINED_BIAS = -100.0


def build(ckpt):
    cfg = ckpt["cfg"]
    model = B.Model(cfg)   # NeMo modules as in build_model; random values are replaced below
    for k in ("encoder", "ctc", "rnnt", "joint"):
        getattr(model, k).load_state_dict(ckpt["state"][k])
        getattr(model, k).eval()
    trained = ckpt["langs"]
    with torch.no_grad():
        conv = model.ctc.decoder_layers[0]
        for lang in B.LANGS:
            if lang in trained:
                continue
            s = B.block_start(lang)
            conv.weight[s: s + B.BLOCK].zero_()
            conv.bias[s: s + B.BLOCK].fill_(UNTRAINED_BIAS)
            post = model.joint.post_net[lang]
            post.weight.zero_()
            post.bias.fill_(UNTRAINED_BIAS)
            post.bias[B.BLANK_LOCAL] = 0.0
    vocab = {lang: ckpt["vocab"][lang] if lang in trained else C.placeholder_vocab(lang) for lang in B.LANGS}
    return model, vocab, trained


def set_trained_languages(path, langs):
    """Adds trainedLanguages to the safetensors header's vani.config (tensor data untouched)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    cfg = json.loads(header["__metadata__"]["vani.config"])
    cfg["trainedLanguages"] = sorted(langs)
    header["__metadata__"]["vani.config"] = json.dumps(cfg, ensure_ascii=False, separators=(",", ":"))
    raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        f.write(data)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True, help="release-layout folder (config.json + assets/)")
    ap.add_argument("--weights", help="also convert to this safetensors file")
    ap.add_argument("--converter", default=os.path.join(C.REPO, ".build", "release", "vani-convert"))
    ap.add_argument("--name", default="vani-synthetic-hi")
    ap.add_argument("--no-trained-languages", action="store_true",
                    help="leave trainedLanguages unset (every language offered; untrained ones transcribe to '')")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ckpt = torch.load(args.ckpt, weights_only=False)
    model, vocab, trained = build(ckpt)
    n_ext = B.export_encoder(model, args.out)
    B.export_heads(model, args.out, vocab=vocab)
    nparams = sum(p.numel() for m in (model.encoder, model.ctc, model.rnnt, model.joint) for p in m.parameters())
    print(f"exported {args.out}: {nparams} parameters, {n_ext} external-data files, trained {trained}")
    if args.weights:
        subprocess.run([args.converter, args.out, "-o", args.weights, "--name", args.name, "--verify"], check=True)
        if not args.no_trained_languages:
            set_trained_languages(args.weights, trained)
        print(f"{args.weights}: {os.path.getsize(args.weights) / 2**20:.1f} MiB, "
              f"trainedLanguages {'unset' if args.no_trained_languages else sorted(trained)}")


if __name__ == "__main__":
    main()
