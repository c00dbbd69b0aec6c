#!/usr/bin/env bash
# Checks the `make dist-gpu` bundle without a GPU: unpacked in a temporary folder, run with an
# empty environment, it must resolve every library from its own lib/ or the host's glibc,
# libstdc++ and libgcc_s, report its devices, exit 2 with the reason when CUDA is unusable, and
# run the whole check against the host-memory mock driver (Tests/CUDATests/Stub/mock_cuda.c) and
# NVRTC from .build/cuda-venv (`make cuda-nvrtc`): fp32 parity must pass there.
set -euo pipefail
cd "$(dirname "$0")/../.."
bundle=dist/vani-gpu-check-linux-x86_64.tar.xz
[ -f "$bundle" ] || { echo "no $bundle: run make dist-gpu" >&2; exit 1; }
. Tools/dist/unpack-bundle.sh
unpack_bundle "$bundle" vani-gpu-check
env -i "$bin" devices
set +e
env -i "$bin" check --out "$dir/none" --model "$PWD/Weights/default.safetensors" --samples "$PWD/Samples"
status=$?
set -e
[ "$status" = 2 ] || { echo "FAIL: without CUDA the check must exit 2, got $status" >&2; exit 1; }
nvrtc=$(ls -d "$PWD"/.build/cuda-venv/lib/python3*/site-packages/nvidia/cu13/lib 2>/dev/null | head -n 1)
[ -n "$nvrtc" ] || { echo "FAIL: no NVRTC wheel in .build/cuda-venv (make cuda-nvrtc)" >&2; exit 1; }
mock="$dir/mock"
mkdir -p "$mock"
cc -shared -fPIC -O2 -DMOCK_DRIVER -o "$mock/libcuda.so.1" Tests/CUDATests/Stub/mock_cuda.c -lm
cc -shared -fPIC -O2 -DMOCK_CUBLAS -o "$mock/libcublas.so.13" Tests/CUDATests/Stub/mock_cuda.c -lm
cc -shared -fPIC -O2 -DMOCK_CUBLASLT -o "$mock/libcublasLt.so.13" Tests/CUDATests/Stub/mock_cuda.c -lm
env -i VANI_CUDA_LIBRARY_PATH="$mock:$nvrtc" VANI_CUDA_CACHE="$dir/cache" "$bin" check --out "$dir/mock-out" \
    --model "$PWD/Weights/default.safetensors" --samples "$PWD/Samples" --precisions fp32 --seconds 5 --runs 1
echo "dist-gpu check passed: $(stat -c %s "$bundle") bytes"
