"""Builds the tiny fixture models and every reference output under Tests/Fixtures.

    python make_reference.py [--fixtures Tests/Fixtures] [--variants tiny-release tiny-variant]

Steps: features (patched NeMo preprocessor, checked against frontend_np) -> per variant: build the
seeded random model, export the encoder, run the NeMo torch forward on every clip, calibrate the
blank biases, export the heads, run the release pipeline through ONNX Runtime (CTC and RNN-T greedy
exactly as docs/MODEL.md §2), compare ORT with torch, write references, stages, batch and manifest.
"""
import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_model as B  # noqa: E402  (applies the NeMo patches)
import frontend_np  # noqa: E402

import onnxruntime as ort  # noqa: E402

DECODE_LANGS = ["hi", "ta", "bn"]
STAGE_CLIP = "hi_4s"
BATCH_CLIPS = ["hi_1s", "ta_3s"]
CTC_BLANK_FRACTION = 0.72   # share of (frame, language) pairs where the CTC blank wins
RNNT_TOKENS_PER_SEC = 4.0   # target emission rate of the RNN-T greedy decoder
N_CTC_SEEDS = 12           # candidate CTC heads (the largest minimal top-2 gap wins)
JOINT_ENC_STD = 1.0         # std of joint_enc outputs
POST_NOISE = 0.3            # random part of the post-net rows (relative)
N_JOINT_SEEDS = 6           # candidate joints (fewest empty transcripts, then fewest caps, then margin)


def clip_lang(name):
    return name.split("_")[0]


def log_softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def top2_gap(z):
    """z: [..., C] -> minimal (top1 - top2) over leading dims."""
    s = np.sort(np.asarray(z, dtype=np.float64), axis=-1)
    return float((s[..., -1] - s[..., -2]).min())


def ctc_greedy(lp):
    """lp: [T', 257] -> (local ids, first frame of each token's run)."""
    am = lp.argmax(axis=1)
    ids, frames, prev = [], [], None
    for t, k in enumerate(am):
        k = int(k)
        if k != prev and k != B.BLANK_LOCAL:
            ids.append(k)
            frames.append(t)
        prev = k
    return ids, frames


def text_of(ids, vocab):
    return "".join(vocab[i] for i in ids).replace("▁", " ").strip()


# ----------------------------------------------------------------------------------------------
# ONNX Runtime pipeline (the wrapper's logic, docs/MODEL.md §2)

class OrtModel:
    def __init__(self, model_dir):
        a = os.path.join(model_dir, "assets")
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        mk = lambda n: ort.InferenceSession(os.path.join(a, n), so, providers=["CPUExecutionProvider"])  # noqa
        self.encoder = mk("encoder.onnx")
        self.ctc = mk("ctc_decoder.onnx")
        self.rnnt = mk("rnnt_decoder.onnx")
        self.joint_enc = mk("joint_enc.onnx")
        self.joint_pred = mk("joint_pred.onnx")
        self.joint_pre = mk("joint_pre_net.onnx")
        self.post = {lang: mk(f"joint_post_net_{lang}.onnx") for lang in B.LANGS}
        with open(os.path.join(a, "vocab.json"), encoding="utf-8") as f:
            self.vocab = json.load(f)
        with open(os.path.join(a, "language_masks.json")) as f:
            self.masks = {k: np.array(v, dtype=bool) for k, v in json.load(f).items()}
        with open(os.path.join(model_dir, "config.json")) as f:
            self.config = json.load(f)
        self.rnnt_in = [i.name for i in self.rnnt.get_inputs()]
        self.H = self.rnnt.get_inputs()[2].shape[2]

    def encode(self, feats, lengths):
        out, enc_len = self.encoder.run(None, {"audio_signal": feats.astype(np.float32),
                                               "length": lengths.astype(np.int64)})
        return out, enc_len

    def ctc_logprobs(self, enc, lang):  # enc [1, d, T'] -> [T', 257]
        (lp,) = self.ctc.run(None, {"encoder_output": enc})
        return log_softmax(lp[0][:, self.masks[lang]]).astype(np.float32)

    def rnnt_greedy(self, enc, lang, margins=None):
        cfg = self.config
        blank, max_sym, sos = cfg["BLANK_ID"], cfg["RNNT_MAX_SYMBOLS"], cfg["SOS"]
        (F,) = self.joint_enc.run(None, {"input": np.ascontiguousarray(enc.transpose(0, 2, 1))})
        F = F[0]
        post = self.post[lang]
        last = sos
        L = cfg["PRED_RNN_LAYERS"]
        h = np.zeros((L, 1, self.H), np.float32)
        c = np.zeros((L, 1, self.H), np.float32)
        ids, frames, caps = [], [], 0
        for t in range(F.shape[0]):
            emitted = 0
            for _ in range(max_sym):
                g, _, h2, c2 = self.rnnt.run(None, {
                    self.rnnt_in[0]: np.array([[last]], np.int32), self.rnnt_in[1]: np.array([1], np.int32),
                    self.rnnt_in[2]: h, self.rnnt_in[3]: c})
                (gp,) = self.joint_pred.run(None, {"input": np.ascontiguousarray(g.transpose(0, 2, 1))})
                (a,) = self.joint_pre.run(None, {"input": (F[t][None, None, :] + gp).astype(np.float32)})
                (z,) = post.run(None, {"input": a})
                z = z[0, 0]
                if margins is not None:
                    margins.append(top2_gap(z))
                k = int(np.argmax(z))
                if k == blank:
                    break
                ids.append(k)
                frames.append(t)
                last, h, c = k, h2, c2
                emitted += 1
            if emitted == max_sym:
                caps += 1
        return ids, frames, caps


# ----------------------------------------------------------------------------------------------
# torch helpers

@torch.no_grad()
def torch_rnnt_greedy(model, F, lang, max_sym=10, margins=None, ids=None):
    """Same algorithm with the torch modules (calibration only). F: [T', J]. Returns (tokens, caps)."""
    post = model.joint.post_net[lang]
    last = B.BLANK_GLOBAL
    state = None
    n, caps, cache = 0, 0, {}
    for t in range(F.shape[0]):
        e = 0
        for _ in range(max_sym):
            key = (last, n)
            if key not in cache:
                g, st = model.rnnt.predict(torch.tensor([[last]]), state=state, add_sos=False)
                cache = {key: (model.joint.pred(g[0, 0]), st)}
            gp, st = cache[key]
            z = post(model.joint.pre_net(F[t] + gp))
            if margins is not None:
                margins.append(top2_gap(z.numpy()))
            k = int(torch.argmax(z))
            if k == B.BLANK_LOCAL:
                break
            last, state, n, e = k, st, n + 1, e + 1
            if ids is not None:
                ids.append(k)
        caps += (e == max_sym)
    return n, caps


@torch.no_grad()
def calibrate(model, enc_by_clip, seconds):
    """Shapes the random heads on the clips' encoder outputs (seeded, deterministic):
    * the encoder output of a random Conformer is dominated by one constant vector, so the CTC
      head and joint_enc act on the standardised output ((x - mu) / sigma over all clip frames,
      folded into weight and bias) and their outputs vary from frame to frame;
    * CTC: each language block gets a bias offset so that the shared blank wins on
      CTC_BLANK_FRACTION of that language's frames; among N_CTC_SEEDS candidate heads the one with
      the largest minimal top-2 gap (over every clip decoded in its language and hi/ta/bn) is kept;
    * RNN-T: token k's post-net row is -JOINT_LOGIT_STD * normalised(joint_pred(g(k)) - mean) plus
      POST_NOISE random, so that emitting k suppresses k at the same frame (fewer 10-symbol runs);
      each post net's blank bias is bisected to RNNT_TOKENS_PER_SEC over all clips; among
      N_JOINT_SEEDS candidates (joint_enc + post nets) the one with the fewest empty transcripts,
      then margin >= 1e-3, then fewest capped frames, then the largest margin is kept."""
    cfg = model.cfg
    X = torch.cat([e[0].transpose(0, 1) for e in enc_by_clip.values()])  # [N, d]
    mu, sigma = X.mean(0), X.std(0)
    d = X.shape[1]
    best = None
    for s in range(N_CTC_SEEDS):
        g = torch.Generator().manual_seed(cfg["seed"] + 100 + s)
        W = torch.randn(B.NUM_CLASSES, d, generator=g) * (B.CTC_LOGIT_STD / np.sqrt(d)) / sigma
        b = 0.5 * torch.randn(B.NUM_CLASSES, generator=g) - W @ mu
        b[B.BLANK_GLOBAL] = 0.0
        L = X @ W.T + b
        for lang in B.LANGS:
            s0 = B.block_start(lang)
            gap = L[:, B.BLANK_GLOBAL] - L[:, s0:s0 + B.BLOCK].max(dim=1).values
            delta = float(torch.quantile(gap, 1.0 - CTC_BLANK_FRACTION))
            b[s0:s0 + B.BLOCK] += delta
        L = X @ W.T + b
        margin, off = float("inf"), 0
        for name, e in enc_by_clip.items():
            n = e.shape[2]
            for lang in set([clip_lang(name)] + DECODE_LANGS):
                s0 = B.block_start(lang)
                z = torch.cat([L[off:off + n, s0:s0 + B.BLOCK], L[off:off + n, B.BLANK_GLOBAL:]], dim=1)
                margin = min(margin, top2_gap(z.numpy()))
            off += n
        if best is None or margin > best[0]:
            best = (margin, s, W, b)
    ctc_margin, ctc_seed, W, b = best
    model.ctc.decoder_layers[0].weight.copy_(W[:, :, None])
    model.ctc.decoder_layers[0].bias.copy_(b)

    J = cfg["joint_hidden"]
    total = sum(seconds.values())
    names = list(enc_by_clip)
    key_langs = sorted(set(DECODE_LANGS + [clip_lang(n) for n in names]))

    def bisect(lang, Fs):
        lo, hi = -40.0, 80.0
        for _ in range(13):
            mid = 0.5 * (lo + hi)
            model.set_joint_blank_bias(lang, mid)
            n = sum(torch_rnnt_greedy(model, F, lang)[0] for F in Fs)
            if n / total > RNNT_TOKENS_PER_SEC:
                lo = mid
            else:
                hi = mid
        model.set_joint_blank_bias(lang, hi)
        return hi

    # joint_pred output after feeding local id k from the zero state, centred and normalised
    gk, _ = model.rnnt.predict(torch.arange(B.BLOCK)[:, None], state=None, add_sos=False)
    Gk = model.joint.pred(gk[:, 0])
    Gc = Gk - Gk.mean(0)
    Gn = Gc / Gc.norm(dim=1, keepdim=True)
    best = None
    for s in range(N_JOINT_SEEDS):
        g = torch.Generator().manual_seed(cfg["seed"] + 200 + s)
        A = torch.randn(J, d, generator=g) * (JOINT_ENC_STD / np.sqrt(d)) / sigma
        a = 0.1 * torch.randn(J, generator=g) - A @ mu
        post = {}
        for lang in B.LANGS:
            w = torch.randn(B.BLOCK + 1, J, generator=g) * (POST_NOISE * B.JOINT_LOGIT_STD / np.sqrt(J))
            w[:B.BLOCK] -= B.JOINT_LOGIT_STD * Gn  # token k's row opposes joint_pred(g(k)): self-suppression
            post[lang] = (w, 0.5 * torch.randn(B.BLOCK + 1, generator=g))
        model.joint.enc.weight.copy_(A)
        model.joint.enc.bias.copy_(a)
        for lang, (w, bb) in post.items():
            model.joint.post_net[lang].weight.copy_(w)
            model.joint.post_net[lang].bias.copy_(bb)
        Fs = [model.joint.enc(enc_by_clip[n][0].transpose(0, 1)) for n in names]
        biases = {lang: bisect(lang, Fs) for lang in key_langs}
        empties, caps, margin = 0, 0, float("inf")
        for n, F in zip(names, Fs):
            for lang in set([clip_lang(n)] + DECODE_LANGS):
                m = []
                k, c = torch_rnnt_greedy(model, F, lang, margins=m)
                empties += (k == 0)
                caps += c
                margin = min(margin, min(m))
        score = (empties, margin < 1e-3, caps, -margin)
        print(f"  joint seed {cfg['seed'] + 200 + s}: empty {empties} caps {caps} margin {margin:.2e}")
        if best is None or score < best[0]:
            best = (score, s, A, a, post, biases, dict(empties=empties, caps=caps, margin=margin))
    _, s, A, a, post, biases, stats = best
    model.joint.enc.weight.copy_(A)
    model.joint.enc.bias.copy_(a)
    for lang, (w, bb) in post.items():
        model.joint.post_net[lang].weight.copy_(w)
        model.joint.post_net[lang].bias.copy_(bb)
    Fs = [model.joint.enc(enc_by_clip[n][0].transpose(0, 1)) for n in names]
    rnnt_bias = {}
    for lang in B.LANGS:
        if lang in biases:
            model.set_joint_blank_bias(lang, biases[lang])
            rnnt_bias[lang] = biases[lang]
        else:
            rnnt_bias[lang] = bisect(lang, Fs)
    return {"ctc_head_seed": cfg["seed"] + 100 + ctc_seed, "ctc_min_top2_gap_torch": ctc_margin,
            "joint_seed": cfg["seed"] + 200 + s, "joint_selection_torch": stats,
            "rnnt_post_net_blank_bias": rnnt_bias}


# ----------------------------------------------------------------------------------------------

def compact_json(obj):
    """Indented JSON with number lists kept on one line."""
    import re
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    text = re.sub(r"\[\s*([-0-9.,\s]*?)\s*\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",") if x.strip()) + "]", text)
    return text + "\n"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=os.path.join(B.REPO, "Tests", "Fixtures"))
    ap.add_argument("--variants", nargs="+", default=["tiny-release", "tiny-variant"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    fx = args.fixtures
    clips_dir = os.path.join(fx, "clips")
    clips = sorted(f[:-4] for f in os.listdir(clips_dir) if f.endswith(".wav"))
    manifest = {
        "generated_by": "Tools/reference/make_fixtures.sh",
        "commands": [
            "python3.11 -m venv /work/venv-ref && . /work/venv-ref/bin/activate",
            "pip install 'torch==2.13.0+cpu'  # local CPU wheel",
            "pip install -r Tools/reference/requirements.txt -c Tools/reference/constraints.txt",
            "Tools/reference/make_fixtures.sh",
        ],
        "versions": {
            "python": platform.python_version(), "torch": torch.__version__,
            "nemo": __import__("nemo").__version__, "onnx": __import__("onnx").__version__,
            "onnxruntime": ort.__version__, "numpy": np.__version__,
            "espeak-ng": subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip(),
        },
        "nemo_patches": ["FilterbankFeatures.stft pad_mode='reflect' (fork), NeMo 3.x uses 'constant'",
                         "FilterbankFeatures.get_seq_len returns N//160 + 1 (fork), NeMo 3.x N//160",
                         "ConvSubsampling.forward: plain sequential convs + calc_length (fork), NeMo 3.x MaskedConvSequential"],
        "tolerances": {
            "features": {"atol": 1e-3, "why": "patched NeMo (fp32) and the independent float64 numpy recipe agree within "
                         "5e-5; features are O(1) (max ~3.2) after per-band normalisation; 1e-3 leaves room for another "
                         "FFT/mel summation order while still catching any recipe error (periodic window, HTK mel, "
                         "zero padding, missing frame all give >= 1e-2)"},
            "encoder_out": {"atol": 2e-3, "why": "ORT vs NeMo torch differ by <= 2e-6 here (per variant below); values "
                            "are O(1) (max ~2.7); a BLAS/fused-op port reorders sums and errors grow through LayerNorm "
                            "and softmax; structural mistakes give >= 1e-1"},
            "stages_pre_encode": {"atol": 2e-4, "why": "values are small (max 0.17 / 0.66), only convs and one Linear "
                                  "precede it"},
            "stages_pos_emb": {"atol": 1e-4, "why": "NeMo computes the sinusoid arguments in float32 (ulp of 1023 is 6e-5); "
                               "a double-precision table differs by up to that"},
            "stages_layers": {"atol": 2e-3, "why": "same as encoder_out (layer outputs are LayerNorm outputs, max ~2.9)"},
            "ctc_logprobs": {"atol": 2e-3, "why": "ORT vs torch differ by <= 2.5e-4 because the calibrated bias cancels a "
                             "large constant (logit terms ~+-100); the minimal top-2 gap (>= 0.009, below) exceeds "
                             "2 x atol, so a port within atol reproduces every CTC token"},
            "rnnt_joint_logits": {"atol": 4e-4, "why": "no file: the RNN-T tokens are exact only if the port's joint "
                                  "logits stay within half the minimal top-2 gap (>= 1.17e-3, below)"},
            "tokens": {"exact": True, "why": "ids, frames and text must be identical: margins above protect them"},
        },
        "clips": {},
        "variants": {},
    }

    # 1. features
    pre = B.make_preprocessor()
    feats, samples, fe_diff = {}, {}, {}
    for name in clips:
        x, sr = sf.read(os.path.join(clips_dir, name + ".wav"), dtype="float32")
        assert sr == 16000 and x.ndim == 1, (name, sr, x.shape)
        f, n = B.compute_features(pre, x)
        assert f.shape == (80, len(x) // 160 + 1) and n == f.shape[1], (name, f.shape, n)
        ref = frontend_np.features(x.astype(np.float64))
        fe_diff[name] = float(np.abs(f - ref).max())
        np.save(os.path.join(clips_dir, name + ".features.npy"), f)
        feats[name], samples[name] = f, len(x)
        manifest["clips"][name] = {"language": clip_lang(name), "samples": len(x), "seconds": len(x) / 16000,
                                   "frames": int(f.shape[1]), "wav_sha256": sha256(os.path.join(clips_dir, name + ".wav")),
                                   "features_vs_numpy_recipe_max_abs": fe_diff[name]}
        print(f"features {name}: N={len(x)} T={f.shape[1]} (N//160+1={len(x)//160+1}) numpy diff {fe_diff[name]:.2e}")
    manifest["features_vs_numpy_recipe_max_abs"] = max(fe_diff.values())
    # what the patches change: unpatched NeMo 3.x features on the same clips (common frames)
    with B.nemo_patches.unpatched():
        pre3 = B.make_preprocessor()
        d3, d3_inner = 0.0, 0.0
        for name in clips:
            x, _ = sf.read(os.path.join(clips_dir, name + ".wav"), dtype="float32")
            f3, n3 = B.compute_features(pre3, x)
            d3 = max(d3, float(np.abs(f3[:, :n3] - feats[name][:, :n3]).max()))
            d3_inner = max(d3_inner, float(np.abs(f3[:, 2:n3 - 2] - feats[name][:, 2:n3 - 2]).max()))
    manifest["unpatched_nemo3_features_vs_fixture_max_abs"] = d3
    manifest["unpatched_nemo3_features_vs_fixture_max_abs_inside"] = d3_inner
    manifest["unpatched_nemo3_frames"] = "N//160 (fixture and release: N//160 + 1)"
    print(f"unpatched NeMo 3.x features differ by up to {d3:.3f} ({d3_inner:.3f} away from the edges)")
    seconds = {k: v / 16000 for k, v in samples.items()}

    vocab = B.make_vocab()
    first_dir = None
    for variant in args.variants:
        cfg = B.VARIANTS[variant]
        t0 = time.time()
        mdir = os.path.join(fx, "models", variant)
        model = B.Model(cfg)
        n_ext = B.export_encoder(model, mdir)  # before any long forward
        # torch forward on every clip
        enc_t = {}
        for name in clips:
            out, _ = model.encode(torch.from_numpy(feats[name])[None], torch.tensor([feats[name].shape[1]]))
            enc_t[name] = out
        calib = calibrate(model, enc_t, seconds)
        B.export_heads(model, mdir, vocab=vocab,
                       shared_text_assets=os.path.join(first_dir, "assets") if first_dir else None)
        if first_dir is None:
            first_dir = mdir
        om = OrtModel(mdir)
        vref = os.path.join(fx, "reference", variant)
        vm = {"config": {k: v for k, v in cfg.items()}, "external_data_files": n_ext,
              "calibration": calib,
              "ort_vs_torch_max_abs": {"encoder_out": 0.0, "ctc_logprobs": 0.0, "ctc_logprobs_full_5633": 0.0},
              "min_top2_margin": {"ctc": float("inf"), "rnnt": float("inf")},
              "rnnt_greedy_ort_equals_torch": True, "ctc_argmax_ort_equals_torch": True, "clips": {}}
        for name in clips:
            lang = clip_lang(name)
            f = feats[name][None]
            enc, enc_len = om.encode(f, np.array([f.shape[2]]))
            Tp = int(enc_len[0])
            assert enc.shape[2] == Tp
            et = enc_t[name].numpy()
            vm["ort_vs_torch_max_abs"]["encoder_out"] = max(vm["ort_vs_torch_max_abs"]["encoder_out"],
                                                            float(np.abs(enc - et).max()))
            with torch.no_grad():
                lp_t_full = model.ctc(encoder_output=enc_t[name])[0].numpy()
            (lp_full,) = om.ctc.run(None, {"encoder_output": enc})
            vm["ort_vs_torch_max_abs"]["ctc_logprobs_full_5633"] = max(
                vm["ort_vs_torch_max_abs"]["ctc_logprobs_full_5633"], float(np.abs(lp_full[0] - lp_t_full).max()))
            cdir = os.path.join(vref, name)
            os.makedirs(cdir, exist_ok=True)
            np.save(os.path.join(cdir, "encoder_out.npy"), enc[0].astype(np.float32))
            expected = {"language": lang, "samples": samples[name], "frames": int(f.shape[2]),
                        "encoded_frames": Tp, "ctc": {}, "rnnt": {}}
            caps_total = 0
            for dl in sorted(set([lang] + DECODE_LANGS), key=lambda l: (l != lang, l)):
                lp = om.ctc_logprobs(enc, dl)
                lp_t = log_softmax(lp_t_full[:, om.masks[dl]]).astype(np.float32)
                vm["ort_vs_torch_max_abs"]["ctc_logprobs"] = max(vm["ort_vs_torch_max_abs"]["ctc_logprobs"],
                                                                 float(np.abs(lp - lp_t).max()))
                assert (lp.argmax(1) == lp_t.argmax(1)).all(), (variant, name, dl, "ORT/torch CTC argmax differ")
                vm["min_top2_margin"]["ctc"] = min(vm["min_top2_margin"]["ctc"], top2_gap(lp))
                if dl == lang:
                    np.save(os.path.join(cdir, "ctc_logprobs.npy"), lp)
                ids, frames = ctc_greedy(lp)
                expected["ctc"][dl] = {"ids": ids, "frames": frames, "text": text_of(ids, om.vocab[dl])}
                margins = []
                rids, rframes, caps = om.rnnt_greedy(enc, dl, margins)
                caps_total += caps
                vm["min_top2_margin"]["rnnt"] = min(vm["min_top2_margin"]["rnnt"], min(margins))
                expected["rnnt"][dl] = {"ids": rids, "frames": rframes, "text": text_of(rids, om.vocab[dl])}
                tids = []
                with torch.no_grad():
                    torch_rnnt_greedy(model, model.joint.enc(enc_t[name][0].transpose(0, 1)), dl, ids=tids)
                assert tids == rids, (variant, name, dl, "ORT/torch RNN-T greedy differ")
            with open(os.path.join(cdir, "expected.json"), "w", encoding="utf-8") as fo:
                fo.write(compact_json(expected))
            vm["clips"][name] = {"encoded_frames": Tp,
                                 "ctc_tokens": {k: len(v["ids"]) for k, v in expected["ctc"].items()},
                                 "rnnt_tokens": {k: len(v["ids"]) for k, v in expected["rnnt"].items()},
                                 "rnnt_frames_hitting_10_symbol_cap": caps_total}
            print(f"{variant} {name}: T'={Tp} ctc {vm['clips'][name]['ctc_tokens']} rnnt {vm['clips'][name]['rnnt_tokens']} caps {caps_total}")

        # 2. stages (NeMo torch forward with hooks) for one clip
        sdir = os.path.join(vref, "stages", STAGE_CLIP)
        os.makedirs(sdir, exist_ok=True)
        got = {}
        hooks = [model.encoder.pre_encode.register_forward_hook(lambda m, i, o: got.__setitem__("pre_encode", o[0])),
                 model.encoder.pos_enc.register_forward_hook(lambda m, i, o: got.__setitem__("pos_emb", o[1]))]
        for li, layer in enumerate(model.encoder.layers):
            hooks.append(layer.register_forward_hook(lambda m, i, o, li=li: got.__setitem__(f"layer_{li}", o)))
        f = torch.from_numpy(feats[STAGE_CLIP])[None]
        model.encode(f, torch.tensor([f.shape[2]]))
        for h in hooks:
            h.remove()
        for k, v in got.items():
            np.save(os.path.join(sdir, k + ".npy"), v[0].numpy().astype(np.float32))
        vm["stages"] = {"clip": STAGE_CLIP, "files": {k: list(v[0].shape) for k, v in got.items()}}

        # 3. batch reference (ORT, padded with zero feature frames)
        bdir = os.path.join(vref, "batch")
        os.makedirs(bdir, exist_ok=True)
        Ts = [feats[c].shape[1] for c in BATCH_CLIPS]
        batch = np.zeros((len(BATCH_CLIPS), 80, max(Ts)), np.float32)
        for i, c in enumerate(BATCH_CLIPS):
            batch[i, :, :Ts[i]] = feats[c]
        enc_b, len_b = om.encode(batch, np.array(Ts))
        bdiff, bdiff_inner = 0.0, 0.0
        for i, c in enumerate(BATCH_CLIPS):
            item = enc_b[i, :, :int(len_b[i])].astype(np.float32)
            np.save(os.path.join(bdir, c + ".npy"), item)
            single = np.load(os.path.join(vref, c, "encoder_out.npy"))
            assert item.shape == single.shape
            bdiff = max(bdiff, float(np.abs(item - single).max()))
            bdiff_inner = max(bdiff_inner, float(np.abs(item[:, :-1] - single[:, :-1]).max()))
        vm["batch"] = {"clips": BATCH_CLIPS, "feature_frames": Ts, "encoded_lengths": [int(x) for x in len_b],
                       "padding": "zero feature frames after each item's length",
                       "max_abs_vs_single": bdiff, "max_abs_vs_single_without_last_frame": bdiff_inner,
                       "note": "the release-style graph runs the subsampling convs unmasked (fork behaviour): the "
                               "padding of the shorter item leaks into its last encoded frame, and through attention "
                               "slightly into all its frames. A batch-invariant engine (masking between subsampling "
                               "convs like NeMo 3.x) reproduces <clip>/encoder_out.npy instead; the longest item is "
                               "unaffected."}
        vm["seconds"] = round(time.time() - t0, 1)
        manifest["variants"][variant] = vm
        print(f"{variant}: ORT vs torch {vm['ort_vs_torch_max_abs']} margins {vm['min_top2_margin']} batch diff {bdiff:.2e} "
              f"({vm['seconds']} s)")

    with open(os.path.join(fx, "manifest.json"), "w", encoding="utf-8") as fo:
        json.dump(manifest, fo, ensure_ascii=False, indent=1)
        fo.write("\n")


if __name__ == "__main__":
    main()
