"""Builds random IndicConformer-shaped models from real NeMo modules and exports them in the
release layout (docs/MODEL.md §1).

    python build_model.py --variant tiny-release --out DIR      # (normally run via make_reference.py)
    python build_model.py --full-size [--out Benchmarks/.cache/full-size]

DIR gets config.json and assets/ (encoder.onnx + external data, ctc_decoder.onnx, rnnt_decoder.onnx,
joint_enc.onnx, joint_pred.onnx, joint_pre_net.onnx, joint_post_net_<lang>.onnx x 22, vocab.json,
language_masks.json).
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import unicodedata

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nemo_patches  # noqa: E402

nemo_patches.apply()

from nemo.collections.asr.modules import ConformerEncoder, ConvASRDecoder, RNNTDecoder  # noqa: E402
from nemo.collections.asr.modules import AudioToMelSpectrogramPreprocessor  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# The release's block order (docs/MODEL.md §1).
LANGS = ["as", "bn", "brx", "doi", "kok", "gu", "hi", "kn", "ks", "mai", "ml", "mr", "mni", "ne", "or",
         "pa", "sa", "sat", "sd", "ta", "te", "ur"]
BLOCK = 256
NUM_TOKENS = BLOCK * len(LANGS)  # 5632; the shared blank is global id 5632
NUM_CLASSES = NUM_TOKENS + 1  # 5633
BLANK_GLOBAL = NUM_TOKENS
BLANK_LOCAL = BLOCK

# Unicode ranges of each language's script (vocab.json pieces are drawn from these).
SCRIPTS = {
    "as": (0x0980, 0x09FF), "bn": (0x0980, 0x09FF), "brx": (0x0900, 0x097F), "doi": (0x0900, 0x097F),
    "kok": (0x0900, 0x097F), "gu": (0x0A80, 0x0AFF), "hi": (0x0900, 0x097F), "kn": (0x0C80, 0x0CFF),
    "ks": (0x0600, 0x06FF), "mai": (0x0900, 0x097F), "ml": (0x0D00, 0x0D7F), "mr": (0x0900, 0x097F),
    "mni": (0xABC0, 0xABFF), "ne": (0x0900, 0x097F), "or": (0x0B00, 0x0B7F), "pa": (0x0A00, 0x0A7F),
    "sa": (0x0900, 0x097F), "sat": (0x1C50, 0x1C7F), "sd": (0x0600, 0x06FF), "ta": (0x0B80, 0x0BFF),
    "te": (0x0C00, 0x0C7F), "ur": (0x0600, 0x06FF),
}
BLANK_PIECE = "<blank>"

VARIANTS = {
    "tiny-release": dict(
        feat_in=80, subsampling="dw_striding", subsampling_factor=8, subsampling_conv_channels=32,
        d_model=64, n_heads=4, ff_expansion_factor=4, n_layers=2, conv_kernel_size=9, xscaling=True,
        untie_biases=True, pos_emb_max_len=512, pred_hidden=32, joint_hidden=32, opset=17, seed=1234,
    ),
    "tiny-variant": dict(
        feat_in=80, subsampling="striding", subsampling_factor=4, subsampling_conv_channels=32,
        d_model=48, n_heads=2, ff_expansion_factor=4, n_layers=3, conv_kernel_size=15, xscaling=False,
        untie_biases=False, pos_emb_max_len=1024, pred_hidden=24, joint_hidden=24, opset=16, seed=5678,
    ),
    "full-size": dict(
        feat_in=80, subsampling="dw_striding", subsampling_factor=8, subsampling_conv_channels=256,
        d_model=1024, n_heads=8, ff_expansion_factor=4, n_layers=24, conv_kernel_size=9, xscaling=True,
        untie_biases=True, pos_emb_max_len=5000, pred_hidden=640, joint_hidden=640, opset=17, seed=4242,
    ),
}

# Scales of the random heads (logit std before the blank bias); large so that argmax margins are big.
CTC_LOGIT_STD = 8.0
JOINT_LOGIT_STD = 8.0


# ----------------------------------------------------------------------------------------------
# Frontend (the release's AudioToMelSpectrogramPreprocessor configuration; docs/MODEL.md §3)

def make_preprocessor():
    pre = AudioToMelSpectrogramPreprocessor(
        sample_rate=16000, normalize="per_feature", window_size=0.025, window_stride=0.01, window="hann",
        features=80, n_fft=512, log=True, frame_splicing=1, dither=0.0, pad_to=0, pad_value=0.0,
        preemph=0.97, log_zero_guard_type="add", log_zero_guard_value=2 ** -24, mag_power=2.0,
    )
    pre.eval()
    return pre


def compute_features(pre, samples):
    with torch.no_grad():
        f, n = pre(input_signal=torch.from_numpy(samples.astype(np.float32))[None],
                   length=torch.tensor([len(samples)], dtype=torch.int64))
    return f[0].numpy().astype(np.float32), int(n[0])


# ----------------------------------------------------------------------------------------------
# Vocabulary and masks

def _script_chars(lang):
    lo, hi = SCRIPTS[lang]
    out = []
    for cp in range(lo, hi + 1):
        ch = chr(cp)
        try:
            name = unicodedata.name(ch)
        except ValueError:
            continue
        if "DIGIT" in name or unicodedata.category(ch) in ("Nd", "Po", "Sc", "So", "Cf", "Sm"):
            continue
        out.append(ch)
    return out


def make_vocab():
    """{lang: 257 pieces}: <unk> first, blank placeholder last, '▁' word starts on many pieces."""
    vocab = {}
    for li, lang in enumerate(LANGS):
        rng = np.random.default_rng(1000 + li)
        chars = _script_chars(lang)
        letters = [c for c in chars if unicodedata.category(c) == "Lo"]
        pieces = ["<unk>", "▁"]
        seen = set(pieces)
        while len(pieces) < BLOCK:
            n = int(rng.choice([1, 2, 2, 3, 3, 4]))
            first = letters[int(rng.integers(len(letters)))]
            rest = [chars[int(rng.integers(len(chars)))] for _ in range(n - 1)]
            p = first + "".join(rest)
            if rng.random() < 0.45:
                p = "▁" + p
            if p in seen:
                continue
            seen.add(p)
            pieces.append(p)
        pieces.append(BLANK_PIECE)
        assert len(pieces) == BLOCK + 1
        vocab[lang] = pieces
    return vocab


def make_masks():
    masks = {}
    for li, lang in enumerate(LANGS):
        m = [False] * NUM_CLASSES
        for i in range(li * BLOCK, (li + 1) * BLOCK):
            m[i] = True
        m[BLANK_GLOBAL] = True
        masks[lang] = m
    return masks


def block_start(lang):
    return LANGS.index(lang) * BLOCK


# ----------------------------------------------------------------------------------------------
# Model

class JointPieces(torch.nn.Module):
    """The release's split joint: enc (d->J), pred (H->J), pre_net (ReLU), post_net[lang] (J->257)."""

    def __init__(self, d_model, pred_hidden, joint_hidden):
        super().__init__()
        self.enc = torch.nn.Linear(d_model, joint_hidden)
        self.pred = torch.nn.Linear(pred_hidden, joint_hidden)
        self.pre_net = torch.nn.ReLU()
        self.post_net = torch.nn.ModuleDict({lang: torch.nn.Linear(joint_hidden, BLOCK + 1) for lang in LANGS})


class Model:
    def __init__(self, cfg):
        self.cfg = cfg
        torch.manual_seed(cfg["seed"])
        self.encoder = ConformerEncoder(
            feat_in=cfg["feat_in"], n_layers=cfg["n_layers"], d_model=cfg["d_model"], feat_out=-1,
            subsampling=cfg["subsampling"], subsampling_factor=cfg["subsampling_factor"],
            subsampling_conv_channels=cfg["subsampling_conv_channels"], ff_expansion_factor=cfg["ff_expansion_factor"],
            self_attention_model="rel_pos", n_heads=cfg["n_heads"], att_context_size=[-1, -1],
            xscaling=cfg["xscaling"], untie_biases=cfg["untie_biases"], pos_emb_max_len=cfg["pos_emb_max_len"],
            conv_kernel_size=cfg["conv_kernel_size"], conv_norm_type="batch_norm", dropout=0.0,
            dropout_pre_encoder=0.0, dropout_emb=0.0, dropout_att=0.0, use_pytorch_sdpa=False,
            sync_max_audio_length=False,
        )
        d = cfg["d_model"]
        self.ctc = ConvASRDecoder(feat_in=d, num_classes=NUM_TOKENS)
        self.rnnt = RNNTDecoder(
            prednet={"pred_hidden": cfg["pred_hidden"], "pred_rnn_layers": 2, "dropout": 0.0},
            vocab_size=NUM_TOKENS, blank_as_pad=True,
        )
        self.joint = JointPieces(d, cfg["pred_hidden"], cfg["joint_hidden"])
        for m in (self.encoder, self.ctc, self.rnnt, self.joint):
            m.eval()
        self._randomize()

    @torch.no_grad()
    def _randomize(self):
        cfg = self.cfg
        g = torch.Generator().manual_seed(cfg["seed"] + 1)

        def rn(*shape):
            return torch.randn(*shape, generator=g)

        def ru(lo, hi, *shape):
            return lo + (hi - lo) * torch.rand(*shape, generator=g)

        for name, m in self.encoder.named_modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(1.0 + 0.1 * rn(*m.weight.shape))
                m.bias.copy_(0.1 * rn(*m.bias.shape))
            elif isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(0.3 * rn(*m.running_mean.shape))
                m.running_var.copy_(ru(0.5, 2.0, *m.running_var.shape))
                m.weight.copy_(ru(0.5, 1.5, *m.weight.shape))
                m.bias.copy_(0.1 * rn(*m.bias.shape))
        for name, p in self.encoder.named_parameters():
            if name.endswith("pos_bias_u") or name.endswith("pos_bias_v"):
                p.copy_(0.2 * rn(*p.shape))
            elif name.endswith(".bias") and "norm" not in name and "batch_norm" not in name:
                p.copy_(0.05 * rn(*p.shape))
        d = cfg["d_model"]
        # CTC head: logits with std ~CTC_LOGIT_STD (encoder output is LayerNorm'ed, ~unit variance)
        w = self.ctc.decoder_layers[0].weight
        w.copy_(rn(*w.shape) * (CTC_LOGIT_STD / np.sqrt(d)))
        self.ctc.decoder_layers[0].bias.copy_(0.5 * rn(NUM_CLASSES))
        # prediction network
        emb = self.rnnt.prediction["embed"].weight
        emb.copy_(rn(*emb.shape))
        emb[BLANK_GLOBAL].zero_()  # padding row (SOS) stays zero
        lstm = self.rnnt.prediction["dec_rnn"].lstm
        H = cfg["pred_hidden"]
        for name, p in lstm.named_parameters():
            if name.startswith("weight_ih"):
                p.copy_(rn(*p.shape) * (1.5 / np.sqrt(H)))
            elif name.startswith("weight_hh"):
                p.copy_(rn(*p.shape) * (1.0 / np.sqrt(H)))
            else:
                p.copy_(0.3 * rn(*p.shape))
        # joint
        J = cfg["joint_hidden"]
        self.joint.enc.weight.copy_(rn(J, d) * (1.0 / np.sqrt(d)))
        self.joint.enc.bias.copy_(0.1 * rn(J))
        self.joint.pred.weight.copy_(rn(J, H) * (3.0 / np.sqrt(H)))
        self.joint.pred.bias.copy_(0.1 * rn(J))
        for lang in LANGS:
            lin = self.joint.post_net[lang]
            lin.weight.copy_(rn(BLOCK + 1, J) * (JOINT_LOGIT_STD * 1.4 / np.sqrt(J)))
            lin.bias.copy_(0.5 * rn(BLOCK + 1))

    # -- torch forward helpers (reference, calibration)
    @torch.no_grad()
    def encode(self, feats, lengths):
        out, enc_len = self.encoder(audio_signal=feats, length=lengths)
        return out, enc_len

    @torch.no_grad()
    def ctc_raw_logits(self, enc):  # [B, d, T'] -> [B, T', 5633] before log_softmax
        return self.ctc.decoder_layers(enc).transpose(1, 2)

    def set_ctc_blank_bias(self, value):
        with torch.no_grad():
            self.ctc.decoder_layers[0].bias[BLANK_GLOBAL] = value

    def set_joint_blank_bias(self, lang, value):
        with torch.no_grad():
            self.joint.post_net[lang].bias[BLANK_LOCAL] = value


# ----------------------------------------------------------------------------------------------
# Export

def _sanitize(name):
    # torch's TorchScript exporter names external files after the tensor with \ / : ? " < > | -> _
    return re.sub(r'[\\/:?"<>|]', "_", name)


def externalize(model_proto, out_dir, threshold=1024):
    """One external-data file per tensor with more than `threshold` elements, named after the
    sanitized tensor name, like torch's large-model export that made the release (initializers
    and Constant-node tensor attributes alike)."""
    import onnx
    from onnx import numpy_helper

    used = set()
    count = 0

    def handle(tensor, fallback_name):
        nonlocal count
        numel = int(np.prod(tensor.dims)) if len(tensor.dims) else 1
        if numel <= threshold:
            return
        arr = numpy_helper.to_array(tensor)
        name = tensor.name or fallback_name
        loc = _sanitize(name)
        base, k = loc, 1
        while loc in used:
            loc = f"{base}_{k}"
            k += 1
        used.add(loc)
        with open(os.path.join(out_dir, loc), "wb") as f:
            f.write(np.ascontiguousarray(arr).tobytes())
        tensor.ClearField("raw_data")
        for fld in ("float_data", "int32_data", "int64_data", "double_data"):
            tensor.ClearField(fld)
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.EXTERNAL
        e = tensor.external_data.add()
        e.key, e.value = "location", loc
        e = tensor.external_data.add()
        e.key, e.value = "length", str(arr.nbytes)
        count += 1

    for t in model_proto.graph.initializer:
        handle(t, t.name)
    for node in model_proto.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    handle(a.t, f"{node.name.strip('/').replace('/', '_') or 'Constant'}_attr__value")
    return count


def _export_plain(module, example, path, opset, in_axes, out_axes):
    torch.onnx.export(module, (example,), path, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": in_axes, "output": out_axes}, opset_version=opset,
                      do_constant_folding=True, dynamo=False)


def export_encoder(model, out_dir):
    """Writes out_dir/assets/encoder.onnx + external data. Run before any long torch forward
    (NeMo grows the positional table on inputs longer than pos_emb_max_len feature frames)."""
    import onnx

    cfg = model.cfg
    assets = os.path.join(out_dir, "assets")
    if os.path.isdir(assets):
        shutil.rmtree(assets)
    os.makedirs(assets)
    assert model.encoder.pos_enc.pe.size(1) == 2 * cfg["pos_emb_max_len"] - 1, "positional table grew"
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        enc_tmp = os.path.join(tmp, "encoder.onnx")
        T_ex = 256
        example = (torch.randn(1, cfg["feat_in"], T_ex), torch.tensor([T_ex], dtype=torch.int64))
        model.encoder.export(enc_tmp, input_example=example, onnx_opset_version=cfg["opset"])
        proto = onnx.load(enc_tmp, load_external_data=True)
    n_ext = externalize(proto, assets)
    onnx.save(proto, os.path.join(assets, "encoder.onnx"))
    return n_ext


def export_heads(model, out_dir, vocab=None, shared_text_assets=None):
    """Writes the decoders, joint pieces, vocab.json, language_masks.json and config.json.
    shared_text_assets: a directory whose vocab.json / language_masks.json are symlinked instead
    of written (keeps the committed fixtures small; release copies from the HF cache are symlinks too)."""
    cfg = model.cfg
    opset = cfg["opset"]
    assets = os.path.join(out_dir, "assets")
    d, H, J = cfg["d_model"], cfg["pred_hidden"], cfg["joint_hidden"]
    model.ctc.export(os.path.join(assets, "ctc_decoder.onnx"), input_example=(torch.randn(1, d, 32),),
                     onnx_opset_version=opset)
    model.rnnt.export(os.path.join(assets, "rnnt_decoder.onnx"), onnx_opset_version=opset)
    model.rnnt._rnnt_export = False
    ex3 = lambda n: torch.randn(1, 5, n)  # noqa: E731
    axes = {0: "B", 1: "T"}
    with torch.no_grad():
        _export_plain(model.joint.enc, ex3(d), os.path.join(assets, "joint_enc.onnx"), opset, axes, axes)
        _export_plain(model.joint.pred, ex3(H), os.path.join(assets, "joint_pred.onnx"), opset,
                      {0: "B", 1: "U"}, {0: "B", 1: "U"})
        _export_plain(model.joint.pre_net, ex3(J), os.path.join(assets, "joint_pre_net.onnx"), opset,
                      {0: "B", 1: "T", 2: "U"}, {0: "B", 1: "T", 2: "U"})
        for lang in LANGS:
            _export_plain(model.joint.post_net[lang], ex3(J), os.path.join(assets, f"joint_post_net_{lang}.onnx"),
                          opset, axes, axes)
    for name in ("vocab.json", "language_masks.json"):
        path = os.path.join(assets, name)
        if os.path.lexists(path):
            os.remove(path)
        if shared_text_assets:
            os.symlink(os.path.relpath(os.path.join(shared_text_assets, name), assets), path)
        elif name == "vocab.json":
            with open(path, "w", encoding="utf-8") as f:
                json.dump(vocab or make_vocab(), f, ensure_ascii=False)
        else:
            with open(path, "w") as f:
                json.dump(make_masks(), f, separators=(",", ":"))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump({"BLANK_ID": BLANK_LOCAL, "RNNT_MAX_SYMBOLS": 10, "PRED_RNN_LAYERS": 2,
                   "PRED_RNN_HIDDEN_DIM": H, "SOS": BLANK_GLOBAL}, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=sorted(VARIANTS))
    ap.add_argument("--full-size", action="store_true", help="release dimensions, random (benchmarks only)")
    ap.add_argument("--out")
    ap.add_argument("--layers", type=int, help="Conformer layers instead of the variant's (benchmarks of a shorter stack)")
    args = ap.parse_args()
    if args.full_size:
        args.variant = "full-size"
        args.out = args.out or os.path.join(REPO, "Benchmarks", ".cache", "full-size")
    if not args.variant or not args.out:
        ap.error("--variant and --out (or --full-size)")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    cfg = VARIANTS[args.variant]
    if args.layers:
        cfg = dict(cfg, n_layers=args.layers)
    model = Model(cfg)
    # blank biases: fixed for full-size (no calibration); tiny variants are calibrated by make_reference.py
    model.set_ctc_blank_bias(2.0 * CTC_LOGIT_STD)
    for lang in LANGS:
        model.set_joint_blank_bias(lang, 2.0 * JOINT_LOGIT_STD)
    n_ext = export_encoder(model, args.out)
    export_heads(model, args.out)
    nparams = sum(p.numel() for m in (model.encoder, model.ctc, model.rnnt, model.joint) for p in m.parameters())
    print(f"{args.variant}: {nparams} parameters, {n_ext} external-data files -> {args.out}")


if __name__ == "__main__":
    main()
