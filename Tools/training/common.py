"""Shared pieces of the training tools: model configuration, per-language character vocabularies,
tokenisation, text metrics. Model construction and export reuse Tools/reference/build_model.py."""
import os
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "Tools", "reference"))
import build_model as B  # noqa: E402  (applies the NeMo 3.x -> fork patches)

# The bundled model: the release's structure (docs/MODEL.md §1, §4), scaled down.
CONFIG = dict(
    feat_in=80, subsampling="dw_striding", subsampling_factor=4, subsampling_conv_channels=96,
    d_model=144, n_heads=4, ff_expansion_factor=4, n_layers=4, conv_kernel_size=15, xscaling=True,
    untie_biases=True, pos_emb_max_len=5000, pred_hidden=128, joint_hidden=128, opset=17, seed=2026,
)

WORD = "▁"


def placeholder_vocab(lang):
    """257 pieces for an untrained language: <unk>, unused placeholders, the blank slot."""
    return ["<unk>"] + [f"<unused{i}>" for i in range(1, B.BLOCK)] + [B.BLANK_PIECE]


def char_vocab(lang, texts):
    """<unk>, ▁ (word start), every character seen in the training texts (sorted), placeholders, blank."""
    chars = sorted({c for t in texts for c in t if not c.isspace()})
    pieces = ["<unk>", WORD] + chars
    assert len(pieces) <= B.BLOCK, f"{lang}: {len(pieces)} pieces"
    pieces += [f"<unused{i}>" for i in range(len(pieces), B.BLOCK)]
    return pieces + [B.BLANK_PIECE]


def normalize(text):
    return " ".join(unicodedata.normalize("NFC", text).split())


def encode(text, pieces):
    idx = {p: i for i, p in enumerate(pieces)}
    ids = []
    for w in normalize(text).split():
        ids.append(idx[WORD])
        ids.extend(idx.get(c, 0) for c in w)
    return ids


def decode(ids, pieces):
    return "".join(pieces[i] for i in ids).replace(WORD, " ").strip()


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def error_counts(ref, hyp):
    """(char edits, ref chars, word edits, ref words); characters include the spaces between words."""
    r, h = normalize(ref), normalize(hyp)
    return edit_distance(r, h), len(r), edit_distance(r.split(), h.split()), len(r.split())
