# Sourced by check-dist.sh and check-dist-gpu.sh: `unpack_bundle TARBALL NAME` unpacks a bundle
# into a temporary folder `$dir` (removed on exit), sets `$bin` to `$dir/NAME/bin/NAME`, and fails
# unless every library of that binary resolves from the bundle's own lib/ or the host's
# glibc/libstdc++/libgcc_s, and none is a Swift library.
unpack_bundle() {
    local bundle=$1 name=$2
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    tar -xJf "$bundle" -C "$dir"
    bin="$dir/$name/bin/$name"
    echo "ldd of the bundled binary: $(ldd "$bin" | wc -l) libraries"
    if ldd "$bin" | grep -q "not found"; then echo "FAIL: a library is missing" >&2; exit 1; fi
    local stray
    stray=$(ldd "$bin" | awk '/=> \// { print $3 }' | xargs -r readlink -f | grep -v "^$(readlink -f "$dir")/$name/lib/" \
        | grep -Ev '/(libc|libm|libdl|libpthread|librt|libresolv|libutil|libstdc\+\+|libgcc_s)\.so' || true)
    if [ -n "$stray" ]; then echo "FAIL: libraries from outside the bundle: $stray" >&2; exit 1; fi
    if ldd "$bin" | grep -qi swift; then echo "FAIL: the binary still needs a Swift library" >&2; exit 1; fi
}
