#!/usr/bin/env bash
# Checks the `make dist` bundle: unpacked in a temporary folder and run with an empty
# environment (no PATH, no LD_LIBRARY_PATH, nothing of Swift), it must resolve every library
# from its own lib/ or the host's glibc/libstdc++/libgcc_s, report its devices, and transcribe
# the bundled Hindi sample to the text in Samples/samples.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
bundle=dist/vani-linux-x86_64.tar.xz
[ -f "$bundle" ] || { echo "no $bundle: run make dist" >&2; exit 1; }
. Tools/dist/unpack-bundle.sh
unpack_bundle "$bundle" vani
vani=$bin
env -i "$vani" devices
expected=$(python3 -c 'import json; print(json.load(open("Samples/samples.json"))["hi-sample.wav"]["text"])')
got=$(env -i "$vani" transcribe "$PWD/Samples/hi-sample.wav" --model "$PWD/Weights/default.safetensors" --language hi --device cpu)
echo "transcript: $got"
[ "$got" = "$expected" ] || { echo "FAIL: expected '$expected'" >&2; exit 1; }
echo "dist check passed: $(stat -c %s "$bundle") bytes"
