"""Exports a training checkpoint in the release layout (docs/MODEL.md §1) with
Tools/reference/build_model.py's exporters (NeMo module.export() for the encoder, CTC head and
prediction net; torch.onnx.export for the joint pieces), then converts it with vani-convert.

    python export.py --ckpt Tools/training/out/ckpt_hi.pt --out Tools/training/out/model \
        [--weights Tools/training/out/vani-hi.safetensors] [--converter .build/release/vani-convert]

Untrained languages keep placeholder pieces; their CTC rows (weight 0, bias -100) and joint post
nets (weight 0, bias -100 except the blank) make both decoders return an empty transcript for them.
The trained languages are recorded in the converted file's `vani.config` as `trainedLanguages`
through `vani-convert --trained-languages`.
"""
import argparse
import os
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
        cmd = [args.converter, args.out, "-o", args.weights, "--name", args.name, "--verify"]
        if not args.no_trained_languages:
            cmd += ["--trained-languages", ",".join(sorted(trained))]
        subprocess.run(cmd, check=True)
        print(f"{args.weights}: {os.path.getsize(args.weights) / 2**20:.1f} MiB, "
              f"trainedLanguages {'unset' if args.no_trained_languages else sorted(trained)}")


if __name__ == "__main__":
    main()
