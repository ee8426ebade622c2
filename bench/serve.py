#!/usr/bin/env python3
"""Serving benchmark: mlcycle serve vs mlflow models serve, with wrk.

Two models, each served by both:

- the house-price linear model (examples/house-prices: standard scaler + OLS
  on the same cleaned rows). mlcycle's bundle comes from running the example;
  MLflow's model is the same pipeline fitted by scikit-learn and saved with
  mlflow.sklearn.
- a scikit-learn HistGradientBoostingRegressor (100 trees, 8 features),
  saved with mlflow.sklearn for MLflow and exported to ONNX with the mlcycle
  helper (skl2onnx) for mlcycle, which serves the ONNX file. Before the load
  test the two servers' answers on the same rows are compared.
 Each server is load-tested on loopback with
wrk (2 threads, N connections, D seconds, single-row requests, latency
percentiles), one after the other, on the same machine. mlcycle is measured
on /predict (its own shape) and on /invocations with MLflow's request body.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MLCYCLE = os.environ["MLCYCLE"]
# skl2onnx needs protobuf<5, which MLflow's venv does not pin; it lives in
# its own venv (serve.sh makes it) with the same scikit-learn.
ONNX_PY = os.path.join(HERE, ".venv-onnx", "bin", "python")

EXPORT = """
import json, pickle, sys
import mlcycle
model = pickle.load(open(sys.argv[1], "rb"))
mlcycle.save_model(model, sys.argv[2], features=json.loads(sys.argv[3]), target="y")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120) -> None:
    t = time.time()
    while time.time() - t < timeout:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up in {timeout} s")


def wrk(url: str, body: str, duration: int, conns: int) -> dict:
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
              f"wrk.body = {json.dumps(body)}\n")
    lua.close()
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{duration}s", "--latency", "-s", lua.name, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(lua.name)

    def ms(v: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s)", v)
        x = float(m.group(1))
        return {"us": x / 1000, "ms": x, "s": x * 1000}[m.group(2)]

    lat = {p: ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {"rps": rps, "p50_ms": lat.get("50"), "p99_ms": lat.get("99"), "requests": total,
            "errors": errors, "raw": out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="5 s per case")
    ap.add_argument("--model", choices=["all", "linear", "onnx"], default="all",
                    help="which model to serve (default: both)")
    a = ap.parse_args()
    if a.quick:
        a.duration = 5
    work = os.path.join(HERE, "work", "serve")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    ws = os.path.join(work, "house-prices")
    shutil.copytree(os.path.join(ROOT, "examples", "house-prices"), ws,
                    ignore=shutil.ignore_patterns("artifacts", ".mlcycle", "mlcycle.lock"))
    subprocess.run([MLCYCLE, "run", "-q"], cwd=ws, check=True)
    bundle = os.path.join(ws, "artifacts", "bundle", "bundle")

    # The same model in scikit-learn, on the rows mlcycle trained on.
    import pandas as pd
    import mlflow.sklearn
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    train = pd.read_feather(os.path.join(ws, "artifacts", "split", "train.arrow")) \
        if _has_pyarrow() else None
    if train is None:
        raw = pd.read_csv(os.path.join(ws, "data", "houses.csv")).dropna().drop_duplicates()
        z = (raw.price - raw.price.mean()).abs() / raw.price.std(ddof=0)
        train = raw[z <= 3]
    model = make_pipeline(StandardScaler(), LinearRegression()).fit(train[["area"]], train["price"])
    mdir = os.path.join(work, "mlflow-model")
    mlflow.sklearn.save_model(model, mdir, input_example=train[["area"]].head(2))

    one = json.dumps({"instances": [{"area": 120.0}]})
    split = json.dumps({"dataframe_split": {"columns": ["area"], "data": [[120.0]]}})
    results = []
    if a.model in ("all", "linear"):
        serve_pair(a, "linear", ws, bundle, mdir, one, split, results)
    if a.model in ("all", "onnx"):
        onnx_case(a, work, results)
    report(a, results)


def onnx_case(a, work: str, results: list) -> None:
    """HistGradientBoosting: MLflow serves the pickle, mlcycle the ONNX export."""
    import pickle

    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    cols = [f"x{i}" for i in range(8)]
    X = pd.DataFrame(rng.normal(size=(5000, 8)), columns=cols)
    y = 2 * X.x0 + np.sin(3 * X.x1) + X.x2 * X.x3 + 0.1 * rng.normal(size=len(X))
    model = HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(X, y)
    mdir = os.path.join(work, "mlflow-hgb")
    # MLflow 3 saves with skops, which asks that the tree type be named.
    mlflow.sklearn.save_model(model, mdir, input_example=X.head(2), skops_trusted_types=[
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"])
    ws = os.path.join(work, "onnx")
    os.makedirs(ws)
    with open(os.path.join(ws, "model.pkl"), "wb") as f:
        pickle.dump(model, f)
    subprocess.run([ONNX_PY, "-c", EXPORT, os.path.join(ws, "model.pkl"), os.path.join(ws, "model.onnx"),
                    json.dumps(cols)], check=True)
    with open(os.path.join(ws, "mlcycle.yaml"), "w") as f:
        f.write("name: onnx\nstages:\n  bundle:\n    uses: deploy.bundle\n"
                "    inputs: {model: model.onnx}\n    with: {name: hgb}\n")
    subprocess.run([MLCYCLE, "run", "-q"], cwd=ws, check=True)
    bundle = os.path.join(ws, "artifacts", "bundle", "bundle")
    row = X.iloc[0].tolist()
    one = json.dumps({"instances": [dict(zip(cols, row))]})
    split = json.dumps({"dataframe_split": {"columns": cols, "data": [row]}})
    check = json.dumps({"dataframe_split": {"columns": cols, "data": X.head(200).values.tolist()}})
    serve_pair(a, "onnx", ws, bundle, mdir, one, split, results, check)


def serve_pair(a, model: str, ws: str, bundle: str, mdir: str, one: str, split: str, results: list,
               check: str | None = None) -> None:
    """Load-tests mlcycle (both endpoints) then MLflow on one model."""
    answers = {}
    port = free_port()
    srv = subprocess.Popen([MLCYCLE, "serve", "--bundle", bundle, "--port", str(port)], cwd=ws,
                           stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        if check:
            answers["mlcycle"] = invocations(port, check)
        for name, path, body in [("mlcycle /predict", "/predict", one),
                                 ("mlcycle /invocations", "/invocations", split)]:
            r = wrk(f"http://127.0.0.1:{port}{path}", body, a.duration, a.connections)
            r["case"] = name
            r["model"] = model
            results.append(r)
            print(f"{name}: {r['rps']:.0f} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, errors {r['errors']}", flush=True)
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(timeout=60)

    port = free_port()
    env = dict(os.environ, PATH=os.path.join(HERE, ".venv-serve", "bin") + os.pathsep + os.environ["PATH"])
    srv = subprocess.Popen([os.path.join(HERE, ".venv-serve", "bin", "mlflow"), "models", "serve", "-m", mdir,
                            "-p", str(port), "-h", "127.0.0.1", "--env-manager", "local"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/ping")
        if check:
            answers["mlflow"] = invocations(port, check)
        r = wrk(f"http://127.0.0.1:{port}/invocations", split, a.duration, a.connections)
        r["case"] = "mlflow /invocations"
        r["model"] = model
        results.append(r)
        print(f"mlflow: {r['rps']:.0f} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, errors {r['errors']}", flush=True)
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
        srv.wait(timeout=60)
    if check:
        diff = max(abs(x - y) for x, y in zip(answers["mlcycle"], answers["mlflow"]))
        print(f"{model}: max |mlcycle - mlflow| over 200 rows = {diff:.3g}", flush=True)
        for r in results:
            if r["model"] == model:
                r["max_abs_diff"] = diff


def invocations(port: int, body: str) -> list:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body.encode(),
                                 headers={"Content-Type": "application/json"})
    return [float(v) for v in json.loads(urllib.request.urlopen(req, timeout=30).read())["predictions"]]


def report(a, results: list) -> None:
    lines = [
        "# mlcycle serve against mlflow models serve",
        "",
        f"wrk 2 threads, {a.connections} connections, {a.duration} s per case, single-row requests, loopback; "
        f"{os.cpu_count()} cores shared by the server and wrk.",
        "",
        "| model | server, endpoint | requests/s | p50 ms | p99 ms | errors | × MLflow throughput |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {"linear": "house prices, scaler + OLS", "onnx": "HistGradientBoosting, 100 trees (mlcycle: ONNX)"}
    for r in results:
        ml = next(m for m in results if m["case"] == "mlflow /invocations" and m["model"] == r["model"])
        lines.append(f"| {names[r['model']]} | {r['case']} | {r['rps']:.0f} | {r['p50_ms']} | {r['p99_ms']} | "
                     f"{r['errors']} | {r['rps'] / ml['rps']:.1f}× |")
    diffs = [r["max_abs_diff"] for r in results if "max_abs_diff" in r]
    if diffs:
        lines += ["", f"ONNX answers against MLflow's on the same 200 rows: max absolute difference {max(diffs):.3g} "
                      "(float32 inference against scikit-learn's float64)."]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(HERE, "results", "serve-summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(HERE, "results", "serve.json"), "w") as f:
        json.dump(results, f, indent=2)


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    main()
