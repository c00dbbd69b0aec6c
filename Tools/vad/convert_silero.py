#!/usr/bin/env python3
"""Silero VAD (16 kHz branch) -> Weights/silero_vad.safetensors in Vani's weights format.

Reads the weights of the model the wheel's `load_silero_vad()` runs (v6: `silero_vad.jit`, and
the same weights in `silero_vad.onnx` and `silero_vad_16k_op15.onnx`) from the 16 kHz-only ONNX
file of the unpacked silero-vad wheel (fetch_silero.sh). The wheel's `silero_vad_16k.safetensors`
is NOT used: it holds other, older weights (its convolutions differ from the ONNX and JIT models
by up to 18 in absolute value; only the STFT basis is the same).

Checks every tensor's shape and writes them (F32, PyTorch layouts, under the short names of the
wheel's tinygrad port) with Vani's `__metadata__` (Weights/FORMAT.md): format, format_version,
`vani.voice_activity` (the network's hyper-parameters), source_digest and converter. Also
copies the wheel's licence to Weights/SILERO_VAD_LICENSE. Needs numpy and onnx.
"""
import argparse, hashlib, json, pathlib, shutil, struct, sys

import numpy as np

VERSION = "6.2.3"
# name -> shape, in the order the engine reads them (Sources/VoiceActivity/SileroVAD.swift).
EXPECTED = {
    "stft_conv.weight": [258, 1, 256],      # STFT as a conv: 129 real rows, then 129 imaginary
    "conv1.weight": [128, 129, 3], "conv1.bias": [128],
    "conv2.weight": [64, 128, 3], "conv2.bias": [64],
    "conv3.weight": [64, 64, 3], "conv3.bias": [64],
    "conv4.weight": [128, 64, 3], "conv4.bias": [128],
    "lstm_cell.weight_ih": [512, 128], "lstm_cell.weight_hh": [512, 128],
    "lstm_cell.bias_ih": [512], "lstm_cell.bias_hh": [512],
    "final_conv.weight": [1, 128, 1], "final_conv.bias": [1],
}
CONFIG = {"sample_rate": 16000, "chunk": 512, "context": 64, "n_fft": 256, "hop": 128,
          "reflect_pad": 64, "hidden": 128, "source": f"silero-vad {VERSION} silero_vad_16k_op15.onnx"}


# ONNX initializer -> Vani name (the module paths of the JIT model -> the tinygrad port's names).
ONNX_NAMES = {
    "model.stft.forward_basis_buffer": "stft_conv.weight",
    **{f"model.encoder.{i}.reparam_conv.{p}": f"conv{i + 1}.{p}" for i in range(4) for p in ("weight", "bias")},
    **{f"model.decoder.rnn.{p}": f"lstm_cell.{p}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
    "model.decoder.decoder.2.weight": "final_conv.weight", "model.decoder.decoder.2.bias": "final_conv.bias",
}


def read_onnx(path):
    import onnx
    from onnx import numpy_helper
    raw = path.read_bytes()
    model = onnx.load_from_string(raw)
    out = {}
    for init in model.graph.initializer:
        if init.name not in ONNX_NAMES:
            sys.exit(f"unexpected initializer {init.name}")
        out[ONNX_NAMES[init.name]] = numpy_helper.to_array(init).astype(np.float32)
    return out, raw


def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel_dir", type=pathlib.Path, help="the unpacked wheel (fetch_silero.sh)")
    parser.add_argument("-o", "--output", type=pathlib.Path, default=pathlib.Path("Weights/silero_vad.safetensors"))
    args = parser.parse_args()
    source = args.wheel_dir / "silero_vad" / "data" / "silero_vad_16k_op15.onnx"
    tensors, raw = read_onnx(source)
    if set(tensors) != set(EXPECTED):
        sys.exit(f"unexpected tensors: missing {sorted(set(EXPECTED) - set(tensors))}, "
                 f"extra {sorted(set(tensors) - set(EXPECTED))}")
    for name, shape in EXPECTED.items():
        if list(tensors[name].shape) != shape:
            sys.exit(f"{name}: shape {list(tensors[name].shape)}, expected {shape}")
    metadata = {
        "format": "vani", "format_version": "1",
        "vani.voice_activity": json.dumps(CONFIG, sort_keys=True),
        "source_digest": "sha256:" + hashlib.sha256(raw).hexdigest(),
        "converter": "Tools/vad/convert_silero.py 1",
    }
    write_safetensors(args.output, {name: tensors[name] for name in EXPECTED}, metadata)
    licence = next((args.wheel_dir / f"silero_vad-{VERSION}.dist-info").glob("licenses/LICENSE"))
    shutil.copyfile(licence, args.output.parent / "SILERO_VAD_LICENSE")
    print(f"wrote {args.output} ({sum(t.size for t in tensors.values())} parameters) and "
          f"{args.output.parent / 'SILERO_VAD_LICENSE'}")


if __name__ == "__main__":
    main()
