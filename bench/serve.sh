#!/usr/bin/env bash
# Serving benchmark: `mlcycle serve` against `mlflow models serve` on the
# same models (a linear model, and gradient boosting that mlcycle serves as
# ONNX), load-tested with wrk on loopback in the same run. See
# docs/performance.md.
#
# Usage: bash bench/serve.sh [--duration S] [--connections N] [--quick] [--model all|linear|onnx]
#   MLCYCLE=path/to/mlcycle   use this binary instead of `cargo build --release`
# Needs wrk (apt-get install wrk). Creates bench/.venv-serve (mlflow,
# scikit-learn) and bench/.venv-onnx (skl2onnx, the helper) on first use. Results: bench/results/serve-summary.md and
# bench/results/serve.json.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
VENV="$HERE/.venv-serve"
if [ -z "${MLCYCLE:-}" ]; then
  (cd "$ROOT" && cargo build --release)
  MLCYCLE="$ROOT/target/release/mlcycle"
fi
export MLCYCLE
command -v wrk >/dev/null || { echo "error: wrk not found (apt-get install wrk)" >&2; exit 1; }
if [ ! -x "$VENV/bin/mlflow" ]; then
  echo "creating $VENV with mlflow and scikit-learn (first use only)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "mlflow==3.*" "scikit-learn==1.9.1" pandas
fi
if [ ! -x "$HERE/.venv-onnx/bin/python" ]; then
  echo "creating $HERE/.venv-onnx with skl2onnx and the mlcycle helper (first use only)" >&2
  python3 -m venv "$HERE/.venv-onnx"
  "$HERE/.venv-onnx/bin/pip" install -q --upgrade pip
  # The same scikit-learn as MLflow's venv (the model is pickled across);
  # skl2onnx's tree converters need protobuf<5.
  "$HERE/.venv-onnx/bin/pip" install -q "scikit-learn==1.9.1" skl2onnx "protobuf<5" "$ROOT/python"
fi
mkdir -p "$HERE/results"
exec "$VENV/bin/python" "$HERE/serve.py" "$@"
