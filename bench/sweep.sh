#!/usr/bin/env bash
# Sweep benchmark: the same 24-configuration sweep with `mlcycle exp run` and
# with DVC (`dvc exp run --queue` + `--run-all -j 2`), identical metrics
# checked; then `mlcycle exp show` over 10 000 recorded experiments.
#
# Usage: bash bench/sweep.sh [--reps N] [--no-dvc] [--show-n N]
#   MLCYCLE=path/to/mlcycle   use this binary instead of `cargo build --release`
#   DVC_SPEC=dvc==X.Y.Z       DVC version for the venv (default dvc==3.67.1)
# Results: bench/results/sweep-summary.md (medians) and bench/results/sweep.json.
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

if [ "$no_dvc" = 0 ] && [ ! -x "$VENV/bin/dvc" ]; then
  echo "creating $VENV with ${DVC_SPEC:-dvc==3.67.1} (first use only)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "${DVC_SPEC:-dvc==3.67.1}"
fi

mkdir -p "$HERE/results"
exec python3 "$HERE/sweep.py" "$@"
