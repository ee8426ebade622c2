#!/usr/bin/env bash
# The serve -> feedback -> retrain loop, end to end, on a copy of this
# example: train and promote a model, serve it, send predictions for houses
# whose prices have grown 20 %, post their true prices as feedback, retrain
# (only the stages downstream of the feedback rerun), see the new model
# promoted and served, read the drift of the served houses from the
# training ones, and print the iteration history.
#
# Usage: bash examples/feedback-loop/run.sh [path/to/mlcycle]
# Needs curl and python3 (standard library).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
MLCYCLE="${1:-mlcycle}"
MLCYCLE="$(command -v "$MLCYCLE" || echo "$MLCYCLE")"
case "$MLCYCLE" in /*) ;; *) MLCYCLE="$PWD/$MLCYCLE" ;; esac
WS="$(mktemp -d)"
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  rm -rf "$WS"
}
trap cleanup EXIT
cp -r "$HERE/mlcycle.yaml" "$HERE/data" "$HERE/feedback" "$WS/"
cd "$WS"
: > feedback/labels.jsonl
: > feedback/served.jsonl

step() { printf '\n== %s\n' "$*"; }

step "1. Train on the original data; the first model becomes the champion"
"$MLCYCLE" run

step "2. Serve the champion"
"$MLCYCLE" serve --port 0 2> serve.log &
SERVER=$!
for _ in $(seq 1 100); do
  grep -q "listening on" serve.log 2>/dev/null && break
  sleep 0.1
done
URL="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' serve.log | head -1)"
[ -n "$URL" ] || { cat serve.log; exit 1; }
echo "server at $URL, model version $(curl -sf "$URL/ready" | python3 -c 'import json,sys; print(json.load(sys.stdin)["model_version"])')"

step "3. Production: 60 houses whose prices grew 20 %; predict, then post the true prices"
python3 - "$URL" <<'PY'
import json, random, sys, urllib.request
url = sys.argv[1]
rng = random.Random(7)
def post(path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
errors = []
for _ in range(60):
    area = round(rng.uniform(40, 250), 1)
    truth = round(1.2 * (50_000 + 3_000 * area) + rng.gauss(0, 20_000))
    p = post("/predict", {"instances": [{"area": area}]})["predictions"][0]
    errors.append(abs(p["prediction"] - truth))
    post("/feedback", {"prediction_id": p["prediction_id"], "label": truth})
print(f"60 predictions, 60 labels; mean absolute error of the served model: {sum(errors)/len(errors):,.0f}")
PY

step "3b. The server's drift gauges over the last served rows (against the training rows)"
curl -sf "$URL/metrics" | grep -E '^mlcycle_(feature_psi|feature_ks|drift_window)'

step "4. Retrain: only the stages downstream of the feedback (and the served rows) rerun"
"$MLCYCLE" run | tee run2.txt
cat artifacts/drift/drift.md
grep -q "^data " run2.txt && { echo "the data stage should have stayed fresh"; exit 1; }
grep -q "^feedback .*ran" run2.txt || { echo "the feedback stage should have rerun"; exit 1; }

step "5. The server switches to the new champion"
for _ in $(seq 1 50); do
  v="$(curl -sf "$URL/ready" | python3 -c 'import json,sys; print(json.load(sys.stdin)["model_version"])')"
  [ "$v" != "1" ] && break
  sleep 0.2
done
echo "server now answers with model version $v"
[ "$v" = "2" ] || { echo "expected version 2 to be served"; "$MLCYCLE" models; exit 1; }
curl -sf -X POST "$URL/predict" -H 'Content-Type: application/json' -d '{"instances": [{"area": 120}]}'
echo

step "6. A run with no new feedback: only the served-rows stages rerun (step 5 scored a row)"
"$MLCYCLE" run

step "7. The iteration history"
"$MLCYCLE" models
"$MLCYCLE" history
