#!/usr/bin/env bash
# Builds the Dockerfile's runtime image for real, without a registry or a Docker engine, and
# transcribes the bundled sample through the service inside it:
#   1. the release binaries, Swift runtime linked statically (swift build --static-swift-stdlib);
#   2. a Debian 12 root made with debootstrap (minbase, as debian:12-slim), committed with buildah
#      as a local base image (cached in VANI_DEPLOY_CACHE's image storage between runs);
#   3. `buildah bud` of the Dockerfile with RUNTIME_IMAGE = that base and BINARIES=prebuilt (the
#      binaries of step 1 in the build context), chroot isolation, vfs storage;
#   4. the runtime stage's library list (RUNTIME_LIBRARIES) equals the Debian packages that hold
#      what `ldd` of the release binaries needs, less those the base image already has; inside
#      the image `ldd` finds every library, no compiler is present, the user is not root, the
#      HEALTHCHECK is kept;
#   5. the image's own ENTRYPOINT + CMD started with `buildah run` (on a loopback port), its
#      HEALTHCHECK command run, and the Hindi sample transcribed over HTTP and with the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/tools.sh

start=$SECONDS
BASE_IMAGE=localhost/vani-debian12-minbase:latest
IMAGE=localhost/vani:check
PORT=${VANI_IMAGE_CHECK_PORT:-18650}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

deploy_apt buildah buildah
deploy_apt curl curl
deploy_apt debootstrap debootstrap
mkdir -p "$VANI_DEPLOY_CACHE"
# Chroot isolation for bud and run alike: no OCI runtime, cgroups or namespaces needed.
export BUILDAH_ISOLATION=chroot
bh() { buildah --root "$VANI_DEPLOY_CACHE/storage" --runroot "$VANI_DEPLOY_CACHE/run" --storage-driver vfs "$@"; }

work=$(mktemp -d)
containers=()
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    for c in "${containers[@]}"; do bh umount "$c" >/dev/null 2>&1 || true; done
    # This storage is the check's own (under VANI_DEPLOY_CACHE): every working container in it,
    # bud's leftovers of the intermediate stages included, and every untagged image go.
    bh rm --all >/dev/null 2>&1 || true
    bh rmi --prune >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# --- 1. release binaries ---------------------------------------------------------------------
t=$SECONDS
deploy_log "building release binaries with the Swift runtime linked statically"
swift build -c release --static-swift-stdlib --product vani
swift build -c release --static-swift-stdlib --product vani-convert
bin=$(swift build -c release --show-bin-path)
for b in vani vani-convert; do
    if ldd "$bin/$b" | grep -Eq 'libswiftCore|libFoundation|libdispatch'; then
        ldd "$bin/$b" >&2
        deploy_fail "$b loads the Swift runtime dynamically"
    fi
done
deploy_log "binaries built in $((SECONDS - t)) s"

# --- 2. the Debian 12 base image ---------------------------------------------------------------
t=$SECONDS
if ! bh inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    root=$VANI_DEPLOY_CACHE/rootfs-bookworm
    if [ ! -f "$root/.complete" ]; then
        rm -rf "$root"
        deploy_log "debootstrap --variant=minbase bookworm ($MIRROR)"
        debootstrap --variant=minbase bookworm "$root" "$MIRROR" > "$work/debootstrap.log" 2>&1 \
            || { tail -n 20 "$work/debootstrap.log" >&2; deploy_fail "debootstrap failed"; }
        # As debian:12-slim: updates and security updates too; no package lists kept.
        printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
            "$MIRROR" "$MIRROR" > "$root/etc/apt/sources.list"
        rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
        touch "$root/.complete"
    fi
    deploy_log "committing the Debian root as $BASE_IMAGE"
    c=$(bh from scratch); containers+=("$c")
    tar -C "$root" --exclude=./.complete -cf "$work/rootfs.tar" .
    bh add "$c" "$work/rootfs.tar" / >/dev/null
    bh config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
    bh commit --quiet --rm "$c" "$BASE_IMAGE" >/dev/null
    containers=()
    rm -f "$work/rootfs.tar"
fi
deploy_log "base image ready in $((SECONDS - t)) s"

# --- 3. the image --------------------------------------------------------------------------------
t=$SECONDS
context=$work/context
mkdir -p "$context/prebuilt" "$context/Weights"
install -s -m 0755 "$bin/vani" "$bin/vani-convert" "$context/prebuilt/"  # stripped, as the build stage does
cp Dockerfile .dockerignore "$context/"
cp Weights/default.safetensors "$context/Weights/"
cp -r Samples "$context/"
deploy_log "buildah bud (chroot isolation, vfs storage)"
bh bud --isolation chroot --format docker --layers=false \
    --build-arg RUNTIME_IMAGE="$BASE_IMAGE" --build-arg BINARIES=prebuilt \
    -f "$context/Dockerfile" -t "$IMAGE" "$context" > "$work/bud.log" 2>&1 \
    || { tail -n 40 "$work/bud.log" >&2; deploy_fail "the image did not build"; }
deploy_log "image built in $((SECONDS - t)) s: $(bh images --format '{{.Size}}' "$IMAGE" | head -n 1)"

# --- 4. the libraries and the image's configuration ----------------------------------------------
declared=$(sed -n 's/^ARG RUNTIME_LIBRARIES="\(.*\)"$/\1/p' Dockerfile | head -n 1 | tr ' ' '\n' | sort -u)
[ -n "$declared" ] || deploy_fail "no ARG RUNTIME_LIBRARIES=\"...\" line in the Dockerfile"
c=$(bh from "$IMAGE"); containers+=("$c")
mnt=$(bh mount "$c")
# package_of LIBRARY_PATH: the Debian package that holds it (through alternatives' symlinks).
package_of() {
    local pkg
    pkg=$(dpkg -S "$(readlink -f "$1")" 2>/dev/null | head -n 1 | cut -d: -f1) || true
    [ -n "$pkg" ] || pkg=$(dpkg -S "$1" 2>/dev/null | head -n 1 | cut -d: -f1) || true
    [ -n "$pkg" ] || { echo "no Debian package holds $1" >&2; return 1; }
    echo "$pkg"
}
# The libraries the binaries name themselves (DT_NEEDED), found where ldd finds them: those are
# what the Dockerfile must install. The rest of ldd's list comes with them as their dependencies.
direct=$(for b in vani vani-convert; do
    ldd "$bin/$b" > "$work/ldd-$b.txt"
    readelf -d "$bin/$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r soname; do
        # "soname => /path (address)", or the loader's own "/path (address)"
        path=$(awk -v s="$soname" '$1 == s && $3 ~ /^\// {print $3} $1 ~ "/" s "$" {print $1}' "$work/ldd-$b.txt" | head -n 1)
        [ -n "$path" ] || { echo "ldd does not find $soname for $b" >&2; exit 1; }
        package_of "$path"
    done
done | sort -u)
all=$(awk '/=> \// {print $3}' "$work"/ldd-*.txt | sort -u | while read -r lib; do package_of "$lib"; done | sort -u)
base_packages=$(dpkg-query --admindir="$VANI_DEPLOY_CACHE/rootfs-bookworm/var/lib/dpkg" -W -f '${Package}\n' | sort -u)
image_packages=$(dpkg-query --admindir="$mnt/var/lib/dpkg" -W -f '${db:Status-Status} ${Package}\n' | awk '$1 == "installed" {print $2}' | sort -u)
needed_new=$(comm -23 <(echo "$direct") <(echo "$base_packages"))
deploy_log "the binaries load libraries of: $(echo $all)"
deploy_log "named by the binaries and not in the base image: $(echo $needed_new)"
if [ "$needed_new" != "$declared" ]; then
    echo "missing from RUNTIME_LIBRARIES: $(comm -23 <(echo "$needed_new") <(echo "$declared") | xargs)" >&2
    echo "in RUNTIME_LIBRARIES but not needed: $(comm -13 <(echo "$needed_new") <(echo "$declared") | xargs)" >&2
    deploy_fail "the Dockerfile's RUNTIME_LIBRARIES does not match what ldd of the release binaries needs"
fi
absent=$(comm -23 <(echo "$all") <(echo "$image_packages"))
[ -z "$absent" ] || deploy_fail "packages ldd needs are not installed in the image: $(echo $absent)"
for b in vani vani-convert; do
    report=$(bh run "$c" -- ldd "/usr/local/bin/$b")
    if echo "$report" | grep -q 'not found'; then
        echo "$report" >&2; deploy_fail "$b is missing libraries inside the image"
    fi
done
for compiler in cc gcc clang swiftc swift; do
    [ ! -e "$mnt/usr/bin/$compiler" ] || deploy_fail "the runtime image holds a compiler ($compiler)"
done
user=$(bh inspect --format '{{.Docker.Config.User}}' "$IMAGE")
[ -n "$user" ] && [ "${user%%:*}" != 0 ] && [ "${user%%:*}" != root ] || deploy_fail "the image runs as root ('$user')"
healthcheck=$(bh inspect --format '{{.Docker.Config.Healthcheck}}' "$IMAGE")
echo "$healthcheck" | grep -q '/health' || deploy_fail "the image has no HEALTHCHECK on /health ($healthcheck)"
[ -f "$mnt/opt/vani/Weights/default.safetensors" ] || deploy_fail "the demo model is not in the image"
deploy_log "libraries match; no compiler; user $user; HEALTHCHECK kept"

# --- 5. the service inside the image -------------------------------------------------------------
# The image's own ENTRYPOINT and CMD, as `docker run` would start them; only the address is moved
# to a loopback port (the last --host/--port given wins), since chroot isolation shares the
# machine's network.
entrypoint=$(bh inspect --format '{{range .Docker.Config.Entrypoint}}{{.}} {{end}}' "$IMAGE")
cmd=$(bh inspect --format '{{range .Docker.Config.Cmd}}{{.}} {{end}}' "$IMAGE")
deploy_log "starting: $entrypoint$cmd--host 127.0.0.1 --port $PORT"
# shellcheck disable=SC2086
bh run "$c" -- $entrypoint$cmd--host 127.0.0.1 --port "$PORT" > "$work/serve.log" 2>&1 &
server_pid=$!
ready=
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$PORT/health" > "$work/health.json" 2>/dev/null; then ready=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
done
[ -n "$ready" ] || { cat "$work/serve.log" >&2; deploy_fail "the service in the image did not become ready"; }
grep -q '"state":"ready"\|"state": "ready"' "$work/health.json" || deploy_fail "/health: $(cat "$work/health.json")"

# The HEALTHCHECK's own command, run inside the image with its port (5000) changed to the test's.
probe=$(bh inspect --format '{{range .Docker.Config.Healthcheck.Test}}{{.}}{{"\n"}}{{end}}' "$IMAGE" | sed -n '4p')
[ -n "$probe" ] || deploy_fail "cannot read the HEALTHCHECK command"
bh run "$c" -- bash -c "${probe//5000/$PORT}" || deploy_fail "the HEALTHCHECK command failed against a ready service"

expected=$(python3 -c 'import json; print(json.load(open("Samples/samples.json"))["hi-sample.wav"]["text"])')
python3 - "$PORT" Samples/hi-sample.wav > "$work/asr.json" <<'PY'
import base64, json, sys, urllib.request
port, path = sys.argv[1], sys.argv[2]
body = json.dumps({"audio": base64.b64encode(open(path, "rb").read()).decode(), "language": "hi"}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/asr", data=body, headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=60).read().decode())
PY
got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["text"])' "$work/asr.json")
[ "$got" = "$expected" ] || deploy_fail "POST /asr in the image answered '$got', expected '$expected'"
deploy_log "POST /asr through the image: $got"

cli=$(bh run "$c" -- vani transcribe /opt/vani/Samples/hi-sample.wav --language hi)
[ "$cli" = "$expected" ] || deploy_fail "vani transcribe in the image printed '$cli'"

# SIGTERM to the service itself (buildah run's child, found by its parent chain), as `docker stop`
# sends it: it must drain and exit 0.
descendants() { local p; for p in $(pgrep -P "$1"); do echo "$p"; descendants "$p"; done; }
vani_pid=$(for p in $(descendants "$server_pid"); do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = vani ] && echo "$p"; done | head -n 1)
[ -n "$vani_pid" ] || deploy_fail "cannot find the vani process under buildah run ($server_pid)"
kill -TERM "$vani_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
[ "$status" = 0 ] || { tail -n 5 "$work/serve.log" >&2; deploy_fail "the service in the image exited with status $status after SIGTERM"; }
bh umount "$c" >/dev/null
deploy_log "passed in $((SECONDS - start)) s"
