#!/usr/bin/env bash
# Downloads the pinned silero-vad wheel (MIT licence) with pip, without its dependencies
# (torch is not needed: the weights are read as plain safetensors), and unpacks it into $1.
set -euo pipefail
DEST=${1:?usage: fetch_silero.sh DEST_DIR}
VERSION=6.2.3
mkdir -p "$DEST"
python3 -m pip download --quiet --no-deps --dest "$DEST" "silero-vad==$VERSION"
python3 - "$DEST" "$VERSION" <<'PY'
import sys, zipfile, pathlib
dest, version = pathlib.Path(sys.argv[1]), sys.argv[2]
wheel = dest / f"silero_vad-{version}-py3-none-any.whl"
zipfile.ZipFile(wheel).extractall(dest)
print(f"unpacked {wheel.name}")
PY
