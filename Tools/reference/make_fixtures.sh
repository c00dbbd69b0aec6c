#!/usr/bin/env bash
# Regenerates everything under Tests/Fixtures (deterministic: seeded weights, committed clips).
#   Tools/reference/make_fixtures.sh              # features, tiny models, references, manifest
#   Tools/reference/make_fixtures.sh --clips      # also re-synthesise the clips with espeak-ng + sox first
#   Tools/reference/make_fixtures.sh --full-size  # only the random release-size model -> Benchmarks/.cache/full-size
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-/work/venv-ref/bin/python}"
export PYTHONHASHSEED=0
if [[ "${1:-}" == "--full-size" ]]; then
  exec "$PY" "$HERE/build_model.py" --full-size
fi
if [[ "${1:-}" == "--clips" ]]; then
  "$HERE/make_clips.sh" "$REPO/Tests/Fixtures/clips"
fi
rm -rf "$REPO/Tests/Fixtures/models" "$REPO/Tests/Fixtures/reference"
"$PY" "$HERE/make_reference.py" --fixtures "$REPO/Tests/Fixtures"
"$PY" "$HERE/inspect_graphs.py" "$REPO/Tests/Fixtures/models" > "$REPO/Tests/Fixtures/GRAPHS.md"
du -sh "$REPO/Tests/Fixtures"
