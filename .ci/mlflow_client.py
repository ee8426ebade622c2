"""MLflow's own scoring-server client against `mlcycle serve`.

Run by .ci/mlflow-client.sh with MLflow installed: waits with MLflow's
readiness check (`/ping`), scores a DataFrame through
`ScoringServerClient.invoke` (JSON, `dataframe_split`), scores the same
rows as `text/csv`, and checks both against `/predict`.
"""

import json
import sys
import urllib.request

import pandas as pd
from mlflow.deployments import PredictionsResponse
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

port = int(sys.argv[1])
client = ScoringServerClient("127.0.0.1", port)
client.wait_server_ready(timeout=30)
print("ready; /version:", client.get_version())

rows = pd.DataFrame({"area": [60.0, 120.0], "id": [1, 2]})
got = client.invoke(rows).get_predictions()
values = [float(v) for v in got.iloc[:, 0]]

req = urllib.request.Request(
    f"http://127.0.0.1:{port}/invocations",
    data=b"area,id\n60,1\n120,2\n",
    headers={"Content-Type": "text/csv; charset=utf-8"},
)
with urllib.request.urlopen(req) as resp:
    csv_values = [
        float(v) for v in PredictionsResponse.from_json(resp.read().decode()).get_predictions().iloc[:, 0]
    ]

req = urllib.request.Request(
    f"http://127.0.0.1:{port}/predict",
    data=json.dumps({"instances": [{"area": 60}, {"area": 120}]}).encode(),
    headers={"Content-Type": "application/json"},
)
with urllib.request.urlopen(req) as resp:
    want = [p["prediction"] for p in json.load(resp)["predictions"]]

print("MLflow client (JSON):", values)
print("MLflow client (CSV): ", csv_values)
print("/predict:            ", want)
ok = all(abs(a - b) < 1e-6 for a, b in zip(values, want)) and all(
    abs(a - b) < 1e-6 for a, b in zip(csv_values, want)
)
if not ok or len(values) != 2 or len(csv_values) != 2:
    sys.exit("MLflow's client got other predictions than /predict")
print("MLflow's scoring-server client works against mlcycle serve")
