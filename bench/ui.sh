#!/usr/bin/env bash
# UI benchmark: `mlcycle ui` in headless Chromium (Debian's, driven by
# playwright-core from npm). Times the experiments page with 10 000 recorded
# experiments x 50 metrics (until the table is interactive, and sorting a
# metric column), and the pipeline page of a 1 000-stage DAG (until drawn).
#
# Usage: bash bench/ui.sh [--reps N]
#   MLCYCLE=path/to/mlcycle   use this binary instead of `cargo build --release`
#   CHROMIUM=path             the browser (default /usr/bin/chromium)
# Needs: apt-get install chromium nodejs npm.
# Results: bench/results/ui-summary.md (medians) and bench/results/ui.json.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
if [ -z "${MLCYCLE:-}" ]; then
  (cd "$ROOT" && cargo build --release)
  MLCYCLE="$ROOT/target/release/mlcycle"
fi
export MLCYCLE
[ -d "$ROOT/tests/ui/node_modules/playwright-core" ] || npm ci --prefix "$ROOT/tests/ui" --no-audit --no-fund
# 10 000 experiments x 50 metrics, written as `mlcycle exp` records them.
SHOW_WS=$(cd "$HERE" && python3 -c 'import sweep; print(sweep.history_workspace(10000, 50))')
export SHOW_WS
node "$HERE/ui.mjs" "$@"
