#!/usr/bin/env bash
# The one prepared call on a GPU machine (issue 15, docs/GPU.md): prints the driver, libraries,
# OS and glibc it sees, unpacks the `make dist-gpu` bundle, runs `vani-gpu-check devices` and
# `vani-gpu-check check` (fp32 parity with the CPU on the bundled samples, tf32/bf16 agreement,
# encoder latency at 5/20/60 s, load and upload times), and leaves gpu.json, gpu.md,
# devices.json and environment.txt in OUT. Budget: under 6 minutes.
#
#   Tools/gpu/check.sh [OUT]        (OUT defaults to $OUT, else ./gpu-check-out)
#   VANI_BIN=path/to/vani-gpu-check Tools/gpu/check.sh OUT   (that binary instead of the bundle)
#   CHECK_ARGS="--precisions fp32 --seconds 5" ...              (extra arguments to the check)
#
# Exit status: 0 parity passed; 1 parity failed; 2 CUDA unusable (reason in gpu.json);
# 3 no runnable vani binary.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-${OUT:-gpu-check-out}}
mkdir -p "$out"
started=$(date +%s)
step() { echo; echo "== $* (t+$(( $(date +%s) - started ))s)"; }

{
step "machine"
date -u; uname -srm
cat /etc/os-release 2>/dev/null | grep -E '^(PRETTY_NAME|VERSION_ID)='
ldd --version 2>&1 | head -n 1
step "nvidia-smi"
timeout 20 nvidia-smi --query-gpu=name,driver_version,clocks.sm,memory.used,memory.total --format=csv 2>&1 || echo "nvidia-smi: not available"
step "driver library"
ldconfig -p 2>/dev/null | grep -E 'libcuda\.so' || echo "libcuda not in ld.so.cache"
step "Python's NVIDIA libraries"
python=$(command -v python3 || true)
if [ -n "$python" ]; then
    prefix=$("$python" -c 'import sys; print(sys.prefix)')
    echo "python: $python ($("$python" --version 2>&1)), prefix $prefix"
    # The standard search of `vani` looks under $VIRTUAL_ENV/lib/python3*/site-packages/nvidia/*/lib.
    export VIRTUAL_ENV=${VIRTUAL_ENV:-$prefix}
    find "$VIRTUAL_ENV" -path '*site-packages/nvidia/*' \( -name 'libnvrtc.so*' -o -name 'libcublas*.so*' -o -name 'libcudart.so*' \) 2>/dev/null | head -n 20
    "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())' 2>&1 | tail -n 1
else
    echo "no python3"
fi
} 2>&1 | tee "$out/environment.txt"

step "vani-gpu-check binary" | tee -a "$out/environment.txt"
vani=${VANI_BIN:-}
if [ -z "$vani" ]; then
    bundle=dist/vani-gpu-check-linux-x86_64.tar.xz
    if [ -f "$bundle" ]; then
        unpack=$(mktemp -d)
        if command -v xz >/dev/null 2>&1; then tar -xJf "$bundle" -C "$unpack"
        else python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$bundle" "$unpack"; fi
        vani="$unpack/vani-gpu-check/bin/vani-gpu-check"
    elif [ -x .build/release/vani-gpu-check ]; then vani=.build/release/vani-gpu-check
    elif [ -x .build/debug/vani-gpu-check ]; then vani=.build/debug/vani-gpu-check
    fi
fi
if [ -z "$vani" ] || [ ! -x "$vani" ]; then
    echo "no vani-gpu-check binary: build the bundle with 'make dist-gpu' and carry dist/ along" | tee -a "$out/environment.txt"
    exit 3
fi
{ echo "binary: $vani"; ldd "$vani" 2>&1; } | tee -a "$out/environment.txt"
if ldd "$vani" 2>&1 | grep -q "not found"; then echo "missing libraries (above)" | tee -a "$out/environment.txt"; exit 3; fi

step "vani-gpu-check devices"
"$vani" devices --json > "$out/devices.json" 2>>"$out/environment.txt"
timeout 60 "$vani" devices 2>&1 | tee -a "$out/environment.txt"

step "vani-gpu-check check"
# shellcheck disable=SC2086
timeout 300 "$vani" check --out "$out" --model Weights/default.safetensors --samples Samples ${CHECK_ARGS:-} 2>&1 | tee "$out/gpu-check.log"
status=${PIPESTATUS[0]}
[ "$status" = 124 ] && echo "the check ran past its 300 s budget" | tee -a "$out/gpu-check.log"
step "done, status $status"
exit "$status"
