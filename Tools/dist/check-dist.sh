#!/usr/bin/env bash
# Checks the `make dist` bundle: unpacked in a temporary folder and run with an empty
# environment (no PATH, no LD_LIBRARY_PATH, nothing of Swift), it must resolve every library
# from its own lib/ or the host's glibc/libstdc++/libgcc_s, report its devices, and transcribe
# the bundled Hindi sample to the text in Samples/samples.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
bundle=dist/vani-linux-x86_64.tar.xz
[ -f "$bundle" ] || { echo "no $bundle: run make dist" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
tar -xJf "$bundle" -C "$dir"
vani="$dir/vani/bin/vani"
echo "ldd of the bundled binary: $(ldd "$vani" | wc -l) libraries"
if ldd "$vani" | grep -q "not found"; then echo "FAIL: a library is missing" >&2; exit 1; fi
stray=$(ldd "$vani" | awk '/=> \// { print $3 }' | xargs -r readlink -f | grep -v "^$(readlink -f "$dir")/vani/lib/" \
    | grep -Ev '/(libc|libm|libdl|libpthread|librt|libresolv|libutil|libstdc\+\+|libgcc_s)\.so' || true)
if [ -n "$stray" ]; then echo "FAIL: libraries from outside the bundle: $stray" >&2; exit 1; fi
if ldd "$vani" | grep -qi swift; then echo "FAIL: the binary still needs a Swift library" >&2; exit 1; fi
env -i "$vani" devices
expected=$(python3 -c 'import json; print(json.load(open("Samples/samples.json"))["hi-sample.wav"]["text"])')
got=$(env -i "$vani" transcribe "$PWD/Samples/hi-sample.wav" --model "$PWD/Weights/default.safetensors" --language hi --device cpu)
echo "transcript: $got"
[ "$got" = "$expected" ] || { echo "FAIL: expected '$expected'" >&2; exit 1; }
echo "dist check passed: $(stat -c %s "$bundle") bytes"
