"""Independent check (manual, needs NeMo + torch; never run by the tests): rebuild the NeMo model of
a variant exactly as Tools/reference/build_model.py does (same seeds and blank biases), and compare
its state dict (BatchNorm folded in Python) with a weights file converted from that build's export.

    python Tools/reference/build_model.py --variant tiny-release --out /tmp/tr
    swift run vani-convert /tmp/tr -o /tmp/tr.safetensors
    python Tests/ConverterTests/Inputs/check_against_torch.py tiny-release /tmp/tr.safetensors

(The committed fixtures are calibrated by make_reference.py after export, so compare against a
fresh build_model.py export, not against Tests/Fixtures.)"""
import sys, os, json
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "Tools", "reference"))
import build_model as bm
import torch
from safetensors.numpy import load_file
from safetensors import safe_open

variant, path = sys.argv[1], sys.argv[2]
m = bm.Model(bm.VARIANTS[variant])
m.set_ctc_blank_bias(2.0 * bm.CTC_LOGIT_STD)
for lang in bm.LANGS: m.set_joint_blank_bias(lang, 2.0 * bm.JOINT_LOGIT_STD)
st = load_file(path)
with safe_open(path, "numpy") as f: meta = f.metadata()
cfg = json.loads(meta["vani.config"])
exp = {}
for k, v in m.encoder.state_dict().items():
    if "batch_norm" in k or k.endswith("num_batches_tracked"): continue
    if k == "pos_enc.pe": exp["encoder.pos_enc.pe"] = v[0].numpy(); continue
    exp["encoder." + k] = v.numpy()
# fold BN
for i, layer in enumerate(m.encoder.layers):
    bn = layer.conv.batch_norm; dw = layer.conv.depthwise_conv
    f = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    exp[f"encoder.layers.{i}.conv.depthwise_conv.weight"] = (dw.weight * f[:, None, None]).detach().numpy()
    exp[f"encoder.layers.{i}.conv.depthwise_conv.bias"] = ((dw.bias - bn.running_mean) * f + bn.bias).detach().numpy()
if not bm.VARIANTS[variant]["untie_biases"]:
    for i in range(len(m.encoder.layers)):
        for u in ("pos_bias_u", "pos_bias_v"):
            exp[f"encoder.layers.{i}.self_attn.{u}"] = getattr(m.encoder.layers[i].self_attn, u).detach().numpy()
    exp.pop("encoder.pos_bias_u", None); exp.pop("encoder.pos_bias_v", None)
for k, v in m.ctc.state_dict().items(): exp["ctc_decoder." + k] = v.numpy()
for k, v in m.rnnt.state_dict().items(): exp["rnnt_decoder." + k] = v.numpy()
for k, v in m.joint.state_dict().items():
    exp["joint." + k] = v.numpy()
exp["encoder.pos_enc.pe"] = m.encoder.pos_enc.pe[0].numpy()
missing = sorted(set(exp) - set(st)); extra = sorted(set(st) - set(exp))
print("missing", missing[:10], "extra", extra[:10])
worst = 0; bad = 0
for k in sorted(set(exp) & set(st)):
    a, b = exp[k].astype(np.float32), st[k]
    if a.shape != b.shape: print("SHAPE", k, a.shape, b.shape); bad += 1; continue
    d = float(np.max(np.abs(a - b))) if a.size else 0.0
    exact = np.array_equal(a.view(np.uint32), b.view(np.uint32))
    if not exact:
        print("DIFF", k, d); worst = max(worst, d)
print(f"{len(st)} tensors; not bitwise: see above; worst {worst}; shape errors {bad}")
print("config encoder", cfg["encoder"])
