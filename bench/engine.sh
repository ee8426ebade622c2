#!/usr/bin/env bash
# Engine benchmark: mlcycle against a bare bash loop and DVC, plus hashing
# against b3sum. See docs/performance.md for what is measured.
#
# Usage: bash bench/engine.sh [engine.py options]   (--quick: a smoke run of a few minutes)
#   MLCYCLE=path/to/mlcycle   use this binary instead of `cargo build --release`
#   DVC_SPEC=dvc==X.Y.Z       DVC version for the venv (default dvc==3.67.1)
# Results: bench/results/engine-summary.md (medians) and bench/results/engine.json (raw runs).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
VENV="$HERE/.venv"

no_dvc=0
for arg in "$@"; do
  [ "$arg" = "--no-dvc" ] && no_dvc=1
done

if [ -z "${MLCYCLE:-}" ]; then
  (cd "$ROOT" && cargo build --release)
  MLCYCLE="$ROOT/target/release/mlcycle"
fi
[ -x "$MLCYCLE" ] || { echo "error: mlcycle binary not found at $MLCYCLE" >&2; exit 1; }
export MLCYCLE

PYTHON=python3
if [ "$no_dvc" = 0 ]; then
  if [ ! -x "$VENV/bin/dvc" ]; then
    echo "creating $VENV with ${DVC_SPEC:-dvc==3.67.1} (first use only)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q "${DVC_SPEC:-dvc==3.67.1}"
  fi
  PYTHON="$VENV/bin/python"
fi

command -v b3sum >/dev/null || echo "note: b3sum not found (e.g. apt-get install b3sum, or cargo install b3sum); its row is skipped" >&2

mkdir -p "$HERE/results"
exec "$PYTHON" "$HERE/engine.py" "$@"
