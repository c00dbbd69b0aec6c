#!/usr/bin/env bash
# `make dist`: dist/vani-linux-x86_64.tar.xz, a vani that runs where Swift is not installed
# (`make dist-gpu`: PRODUCT=vani-gpu-check, dist/vani-gpu-check-linux-x86_64.tar.xz, the GPU
# check without the server and FFmpeg, small enough to travel beside the checkout)
# (docs/GPU.md, "Swift on Linux"): the Swift runtime linked statically, the project's C libraries
# (OpenBLAS, FFTW, libsndfile and its codecs, soxr, FFmpeg's) copied into lib/ beside bin/ and
# found through an $ORIGIN run path. glibc, libstdc++ and libgcc_s come from the host (a newer
# libstdc++ there is what cuBLAS wants; carrying an older one would shadow it).
# Build on the oldest glibc targeted (this machine: Debian 12, glibc 2.36).
set -euo pipefail
cd "$(dirname "$0")/../.."
limit_mib=${DIST_LIMIT_MIB:-24}
product=${PRODUCT:-vani}
# DT_RPATH (not RUNPATH): it also serves the copied libraries' own dependencies
# (libopenblas → libgfortran), which a RUNPATH on the executable would not.
swift build -c release --product "$product" --static-swift-stdlib \
    -Xlinker --disable-new-dtags -Xlinker -rpath -Xlinker '$ORIGIN/../lib'
binary=.build/release/$product
stage=$(mktemp -d)
root="$stage/$product"
mkdir -p "$root/bin" "$root/lib"
cp "$binary" "$root/bin/$product"
strip "$root/bin/$product"
host_libs='^(libc|libm|libdl|libpthread|librt|libresolv|libutil|ld-linux-x86-64|libstdc\+\+|libgcc_s)\.so'
ldd "$binary" | awk '/=> \// { print $3 }' | while read -r lib; do
    name=$(basename "$lib")
    if [[ "$name" =~ $host_libs ]]; then continue; fi
    cp -L "$lib" "$root/lib/$name"
    strip --strip-unneeded "$root/lib/$name" 2>/dev/null || true
done
cat > "$root/README" <<'TXT'
Vani speech recognition, portable bundle: bin/* finds its libraries in lib/ (run path
$ORIGIN/../lib). Needs glibc >= 2.34, libstdc++ and libgcc_s from the host. Weights are not
included: pass --model FILE or run from a checkout (Weights/default.safetensors).
TXT
mkdir -p dist
bundle=dist/$product-linux-x86_64.tar.xz
tar -C "$stage" -cf - "$product" | xz -9e -T0 > "$bundle"
rm -rf "$stage"
size=$(stat -c %s "$bundle")
echo "$bundle: $((size / 1024)) KiB"
if [ "$size" -gt $((limit_mib * 1048576)) ]; then
    echo "the bundle is over ${limit_mib} MiB (docs/GPU.md: it must travel beside the checkout in 64 MiB)" >&2
    exit 1
fi
