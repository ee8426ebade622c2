#!/usr/bin/env bash
# MLflow's own scoring-server client against `mlcycle serve` (JSON and CSV).
# Usage: bash .ci/mlflow-client.sh path/to/mlcycle
# Installs mlflow-skinny, pandas and scipy (MLflow's client imports it) in
# a venv under target/ (reused when there); says clearly that the check is
# skipped where they cannot be installed (no network, no python3-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
VENV="target/mlflow-venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import mlflow, pandas, scipy" 2>/dev/null; then
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1 \
     || ! "$VENV/bin/pip" install -q "mlflow-skinny==3.*" pandas scipy >/tmp/mlflow-pip.log 2>&1; then
    echo "SKIPPED: the MLflow client check: cannot install mlflow-skinny, pandas and scipy (see /tmp/mlflow-pip.log)"
    exit 0
  fi
fi
WS="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WS"' EXIT
cat > "$WS/mlcycle.yaml" <<'YAML'
stages:
  houses:
    uses: dataset.synthetic
    with: {kind: house_prices, rows: 200}
  split:
    uses: preprocess.split
    inputs: {data: houses.data}
  ols:
    uses: train.linear_regression
    inputs: {train: split.train}
  bundle:
    uses: deploy.bundle
    inputs: {model: ols.model}
  promote:
    uses: deploy.promote
    inputs: {bundle: bundle.bundle, test: split.test}
YAML
"$BIN" run -q "$WS"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$WS" && exec "$BIN" serve --port "$PORT" 2>"$WS/serve.log") &
PID=$!
"$VENV/bin/python" .ci/mlflow_client.py "$PORT"
