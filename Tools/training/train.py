"""Trains the bundled model: NeMo ConformerEncoder + CTC head + RNN-T prediction net and joint, in
the release's layout (Tools/reference/build_model.Model), with the hybrid loss
w * CTC + (1 - w) * RNN-T (rnnt_loss.py: plain-torch RNN-T loss, checked against NeMo's numba
loss, which was ~100x slower here). Languages train in their own 256-token
blocks of the 5633-way CTC head and through their own joint post net; the prediction net is fed
local ids (0..255) after a zero SOS row, as the release's decoding loop does.

    nice -n 19 python train.py --langs hi --minutes 45 --out Tools/training/out/ckpt.pt

The learning-rate schedule is by wall-clock time (warm-up, then cosine to 5 % at --minutes), so a run
ends on time on a shared machine. Every --eval-every minutes: greedy CTC CER on 100 held-out clips,
and a checkpoint.
"""
import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F

import common as C
from common import B


class TrainModel(B.Model):
    def _randomize(self):  # keep NeMo / torch initialisation
        pass


def set_dropout(model, p):
    for m in (model.encoder, model.rnnt):
        for mod in m.modules():
            if isinstance(mod, torch.nn.Dropout):
                mod.p = p


def load_lang(data, lang):
    d = torch.load(os.path.join(data, lang, "train.pt"))
    test = [json.loads(x) for x in open(os.path.join(data, lang, "test.jsonl"), encoding="utf-8")]
    return d["texts"], d["feats"], test


def batches(lengths, max_frames, rng):
    order = sorted(range(len(lengths)), key=lambda i: lengths[i] + rng.random() * 30)
    out, cur, cur_max = [], [], 0
    for i in order:
        m = max(cur_max, lengths[i])
        if cur and m * (len(cur) + 1) > max_frames:
            out.append(cur)
            cur, m = [], lengths[i]
        cur.append(i)
        cur_max = m
    if cur:
        out.append(cur)
    rng.shuffle(out)
    return out


def collate(idx, feats, targets):
    T = max(feats[i].shape[1] for i in idx)
    U = max(len(targets[i]) for i in idx)
    x = torch.zeros(len(idx), 80, T)
    y = torch.zeros(len(idx), U, dtype=torch.long)
    xl = torch.tensor([feats[i].shape[1] for i in idx])
    yl = torch.tensor([len(targets[i]) for i in idx])
    for b, i in enumerate(idx):
        x[b, :, : feats[i].shape[1]] = feats[i].float()
        y[b, : len(targets[i])] = torch.tensor(targets[i])
    return x, xl, y, yl


def ctc_block_logits(model, enc, lang):
    """[B, d, T'] -> [B, T', 257]: the language's block and the shared blank (the wrapper's mask)."""
    s = B.block_start(lang)
    rows = torch.cat([torch.arange(s, s + B.BLOCK), torch.tensor([B.BLANK_GLOBAL])])
    conv = model.ctc.decoder_layers[0]
    return F.conv1d(enc, conv.weight[rows], conv.bias[rows]).transpose(1, 2)


def joint_logits(model, enc, y, lang):
    f = model.joint.enc(enc.transpose(1, 2))                       # [B, T', J]
    g, _ = model.rnnt.predict(y, state=None, add_sos=True)          # [B, U+1, H]
    g = model.joint.pred(g)                                         # [B, U+1, J]
    return model.joint.post_net[lang](model.joint.pre_net(f[:, :, None, :] + g[:, None, :, :]))


@torch.no_grad()
def eval_ctc(model, feats_pieces, lang, test, pre, n=100):
    import soundfile as sf
    model.encoder.eval()
    model.ctc.eval()
    pieces = feats_pieces
    ce = cn = we = wn = 0
    for r in test[:n]:
        x, _ = sf.read(os.path.join(DATA, lang, r["wav"]), dtype="float32")
        f, T = B.compute_features(pre, x)
        enc, el = model.encoder(audio_signal=torch.from_numpy(f)[None], length=torch.tensor([T]))
        am = ctc_block_logits(model, enc, lang)[0].argmax(-1).tolist()
        ids, prev = [], None
        for k in am:
            if k != prev and k != B.BLANK_LOCAL:
                ids.append(k)
            prev = k
        a, b, c, d = C.error_counts(r["text"], C.decode(ids, pieces))
        ce, cn, we, wn = ce + a, cn + b, we + c, wn + d
    model.encoder.train()
    model.ctc.train()
    return ce / cn, we / wn


DATA = os.path.join(C.HERE, "data")


def main():
    global DATA
    ap = argparse.ArgumentParser()
    ap.add_argument("--langs", nargs="+", default=["hi"])
    ap.add_argument("--lang-weights", nargs="+", type=float, default=None,
                    help="sampling weight of each language's batches (default: equal)")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--minutes", type=float, default=45)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--max-frames", type=int, default=14000, help="feature frames per batch (padded)")
    ap.add_argument("--ctc-weight", type=float, default=0.5)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--eval-every", type=float, default=6, help="minutes")
    ap.add_argument("--final-n", type=int, default=300, help="held-out clips for the final CTC check")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training utterances per language")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="what --minutes counts: wall-clock time, or this process's CPU time divided by "
                         "--threads (a run paused with SIGSTOP, e.g. during a benchmark, loses nothing)")
    ap.add_argument("--init", default=None, help="start from this checkpoint (its languages keep their vocabularies)")
    ap.add_argument("--out", default=os.path.join(C.HERE, "out", "ckpt.pt"))
    args = ap.parse_args()
    DATA = args.data
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = random.Random(0)
    from rnnt_loss import rnnt_loss

    cfg = dict(C.CONFIG)
    model = TrainModel(cfg)
    set_dropout(model, args.dropout)
    mods = [model.encoder, model.ctc, model.rnnt, model.joint]
    for m in mods:
        m.train()
    init = torch.load(args.init, weights_only=False) if args.init else None
    if init:
        for k in ("encoder", "ctc", "rnnt", "joint"):
            getattr(model, k).load_state_dict(init["state"][k])
        print(f"initialised from {args.init} ({init['langs']}, step {init['step']})", flush=True)
    params = [p for m in mods for p in m.parameters()]
    n_params = sum(p.numel() for p in params)
    print(f"parameters (all blocks): {n_params}", flush=True)

    data, vocab, tests = {}, {}, {}
    for lang in args.langs:
        texts, feats, test = load_lang(DATA, lang)
        if args.limit:
            texts, feats = texts[: args.limit], feats[: args.limit]
        pieces = init["vocab"][lang] if init and lang in init["vocab"] else C.char_vocab(lang, texts)
        vocab[lang] = pieces
        targets = [C.encode(t, pieces) for t in texts]
        short = sum(1 for f, t in zip(feats, targets) if (f.shape[1] - 1) // 4 + 1 < len(t))
        print(f"{lang}: {len(texts)} utts, {sum(f.shape[1] for f in feats) / 360000:.2f} h, "
              f"{len(set(''.join(texts)) - {' '})} chars, {short} with fewer frames than tokens", flush=True)
        data[lang] = (feats, targets)
        tests[lang] = test

    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.98), weight_decay=1e-3)
    pre = B.make_preprocessor()
    budget = args.minutes * 60
    if args.clock == "cpu":
        def now():
            return time.process_time() / args.threads
    else:
        now = time.time
    t0 = now()
    last_eval = t0
    step = 0
    epoch = {lang: 0 for lang in args.langs}
    queues = {lang: [] for lang in args.langs}
    hist = []
    os.makedirs(os.path.dirname(args.out), exist_ok=True)

    def save(tag=""):
        torch.save({"cfg": cfg, "langs": args.langs, "vocab": vocab,
                    "state": {k: getattr(model, k).state_dict() for k in ("encoder", "ctc", "rnnt", "joint")},
                    "step": step, "minutes": (now() - t0) / 60, "hist": hist, "args": vars(args)},
                   args.out)

    while True:
        el = now() - t0
        if el > budget:
            break
        frac = el / budget
        warm = 0.06
        lr = args.lr * (frac / warm if frac < warm else 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (frac - warm) / (1 - warm))))
        for g in opt.param_groups:
            g["lr"] = lr
        lang = rng.choices(args.langs, weights=args.lang_weights)[0] if args.lang_weights else args.langs[step % len(args.langs)]
        feats, targets = data[lang]
        if not queues[lang]:
            queues[lang] = batches([f.shape[1] for f in feats], args.max_frames, rng)
            epoch[lang] += 1
        idx = queues[lang].pop()
        x, xl, y, yl = collate(idx, feats, targets)
        enc, encl = model.encoder(audio_signal=x, length=xl)
        lp = ctc_block_logits(model, enc, lang).log_softmax(-1)
        l_ctc = F.ctc_loss(lp.transpose(0, 1), y, encl, yl, blank=B.BLANK_LOCAL, reduction="mean",
                           zero_infinity=True)
        z = joint_logits(model, enc, y, lang).log_softmax(-1)
        l_rnnt = rnnt_loss(z, y, encl, yl, B.BLANK_LOCAL, per_token=True)
        loss = args.ctc_weight * l_ctc + (1 - args.ctc_weight) * l_rnnt
        opt.zero_grad()
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        step += 1
        if step % 20 == 0:
            print(f"step {step} ep {epoch} {el / 60:.1f}min {lang} lr {lr:.2e} ctc {l_ctc.item():.3f} "
                  f"rnnt {l_rnnt.item():.3f} gn {gn:.1f} B {len(idx)}", flush=True)
        if time.time() - last_eval > args.eval_every * 60:
            last_eval = time.time()
            for lg in args.langs:
                cer, wer = eval_ctc(model, vocab[lg], lg, tests[lg], pre)
                hist.append({"step": step, "minutes": round(el / 60, 1), "lang": lg, "ctc_cer": cer, "ctc_wer": wer})
                print(f"EVAL {lg} step {step} {el / 60:.1f}min CTC CER {cer:.4f} WER {wer:.4f}", flush=True)
            save()
            last_eval = time.time()
    for lg in args.langs:
        cer, wer = eval_ctc(model, vocab[lg], lg, tests[lg], pre, n=args.final_n)
        hist.append({"step": step, "minutes": round((now() - t0) / 60, 1), "lang": lg, "ctc_cer": cer, "ctc_wer": wer})
        print(f"FINAL {lg} step {step} CTC CER {cer:.4f} WER {wer:.4f}", flush=True)
    save()
    print(f"done: {step} steps, {(now() - t0) / 60:.1f} min, epochs {epoch}", flush=True)


if __name__ == "__main__":
    main()
