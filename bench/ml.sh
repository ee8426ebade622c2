#!/usr/bin/env bash
# ML benchmark: mlcycle's built-in ML stages against the same pipeline in
# scikit-learn (the neural network against PyTorch on CPU), on the same CSV
# files, in the same invocation. Reports time,
# peak memory and the quality metric side by side (see bench/ml.py).
#
# Usage: bash bench/ml.sh [ml.py options]
#   --rows N          rows generated for the large cases (default 1000000; 80 % train, 20 % test)
#   --slow-rows N     rows for the slow algorithm (decision tree; default 100000)
#   --repeat K        cold runs per case and tool; the median is reported (default 3)
#   --quick           smoke run: --rows 20000 --slow-rows 5000 --repeat 1
#   (bash bench/ml.sh --help lists the rest)
#   MLCYCLE=path/to/mlcycle   use this binary instead of `cargo build --release`
# The first run creates bench/.venv-ml with the pinned packages below, and
# bench/.venv-torch with PyTorch from PyPI (a large download, once) unless
# --cases leaves out both mlp cases.
# Results: bench/results/ml-summary.md (medians) and bench/results/ml.json (raw runs).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
VENV="$HERE/.venv-ml"
# Pinned so that runs are comparable over time; change them together with a note in the results.
PACKAGES=(scikit-learn==1.9.1 numpy==2.4.6 pandas==3.1.1)
TORCH_VENV="$HERE/.venv-torch"
TORCH_PACKAGES=(torch==2.15.0 "${PACKAGES[@]}")

for arg in "$@"; do
  case "$arg" in -h|--help) exec python3 "$HERE/ml.py" --help ;; esac
done

if [ -z "${MLCYCLE:-}" ]; then
  (cd "$ROOT" && cargo build --release)
  MLCYCLE="$ROOT/target/release/mlcycle"
fi
[ -x "$MLCYCLE" ] || { echo "error: mlcycle binary not found at $MLCYCLE" >&2; exit 1; }
export MLCYCLE

stamp="$VENV/.packages"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${PACKAGES[*]}" ]; then
  echo "creating $VENV with ${PACKAGES[*]} (first use only)" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "${PACKAGES[@]}"
  echo "${PACKAGES[*]}" > "$stamp"
fi

# The mlp cases need PyTorch: all cases by default, or a --cases list
# that names one.
need_torch=1
prev=""
for arg in "$@"; do
  case "$prev" in --cases) [[ "$arg" == *mlp* ]] || need_torch=0 ;; esac
  case "$arg" in --cases=*) [[ "$arg" == *mlp* ]] || need_torch=0 ;; esac
  prev="$arg"
done
if [ "$need_torch" = 1 ]; then
  stamp="$TORCH_VENV/.packages"
  if [ ! -x "$TORCH_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${TORCH_PACKAGES[*]}" ]; then
    echo "creating $TORCH_VENV with ${TORCH_PACKAGES[*]} (first use only; PyTorch is a large download)" >&2
    rm -rf "$TORCH_VENV"
    python3 -m venv "$TORCH_VENV"
    "$TORCH_VENV/bin/pip" install -q --upgrade pip
    "$TORCH_VENV/bin/pip" install -q "${TORCH_PACKAGES[@]}"
    echo "${TORCH_PACKAGES[*]}" > "$stamp"
  fi
  export TORCH_PYTHON="$TORCH_VENV/bin/python"
fi

[ -x /usr/bin/time ] || echo "note: /usr/bin/time not found (apt-get install time); peak memory is taken from wait4() instead" >&2

mkdir -p "$HERE/results"
exec "$VENV/bin/python" "$HERE/ml.py" "$@"
