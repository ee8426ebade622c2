#!/usr/bin/env python3
"""Sweep benchmark: the same 24-configuration sweep with mlcycle and DVC.

Run it through bench/sweep.sh, which builds mlcycle (or takes $MLCYCLE) and
prepares the DVC virtual environment. Standard library only.

The pipeline (bench/sweep/): `prep` sleeps 2 s and writes 500 seeded rows;
`train` fits y = w x + b by gradient descent with `train.lr` and
`train.epochs` from params.yaml and writes metrics.json. The sweep is
lr in {0.001, 0.003, 0.01, 0.03, 0.1, 0.3} x epochs in {25, 50, 100, 200}:
  mlcycle  mlcycle exp run -j 2 -S train.lr=... -S train.epochs=...
  dvc      dvc exp run --queue -S 'train.lr=choice(...)' -S ... ;
           dvc exp run --run-all -j 2
Each repetition starts from a fresh copy (and, for DVC, a fresh git repo).
Wall time is from the first command's start to the last one's end. The
metrics of every configuration must be identical between the tools; prep.py
counts its executions in a side file.

Then `mlcycle exp show` is timed over 10 000 recorded experiments with 50
metrics each (written into .mlcycle/experiments.db with sqlite3): the text
table, --json, and --only-changed --sort-by. Peak memory is ru_maxrss.

Outputs: bench/results/sweep.json (raw runs), bench/results/sweep-summary.md
(also printed).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SRC = os.path.join(HERE, "sweep")
WORK = os.path.join(HERE, "work", "sweep")
RESULTS = os.path.join(HERE, "results")
VENV_BIN = os.path.join(HERE, ".venv", "bin")
MLCYCLE = os.path.abspath(os.environ.get("MLCYCLE")
                          or os.path.join(ROOT, "target", "release", "mlcycle"))

ENV = dict(os.environ)
ENV["PATH"] = VENV_BIN + os.pathsep + ENV.get("PATH", "")
ENV["DVC_NO_ANALYTICS"] = "1"
for _key in ("GIT_AUTHOR", "GIT_COMMITTER"):
    ENV.setdefault(_key + "_NAME", "bench")
    ENV.setdefault(_key + "_EMAIL", "bench@example.invalid")

LRS = ["0.001", "0.003", "0.01", "0.03", "0.1", "0.3"]
EPOCHS = ["25", "50", "100", "200"]


class TimedOut(Exception):
    pass


def run(cmd: list[str], cwd: str, env: dict | None = None,
        timeout: float | None = None) -> tuple[float, str]:
    """Runs `cmd` to its end; returns (wall seconds, stdout). Exits on
    failure; raises TimedOut (after killing its process group, workers
    included) when it runs past `timeout` seconds."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, env=env or ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise TimedOut(f"`{' '.join(cmd)}` ran past {timeout:.0f} s")
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"`{' '.join(cmd)}` failed ({p.returncode}):\n{err.decode()[-3000:]}")
    return wall, out.decode()


def fresh(name: str, count: str) -> str:
    ws = os.path.join(WORK, name)
    shutil.rmtree(ws, ignore_errors=True)
    os.makedirs(ws)
    for f in ("prep.py", "train.py", "params.yaml",
              "mlcycle.yaml" if name.startswith("mlcycle") else "dvc.yaml"):
        shutil.copy(os.path.join(SRC, f), ws)
    if os.path.exists(count):
        os.remove(count)
    return ws


def mlcycle_sweep(rep: int) -> dict:
    count = os.path.join(WORK, f"count-mlcycle-{rep}.txt")
    ws = fresh(f"mlcycle-{rep}", count)
    env = dict(ENV, SWEEP_COUNT=count)
    wall, _ = run([MLCYCLE, "exp", "run", "-q", "-j", "2",
                      "-S", "train.lr=" + ",".join(LRS),
                      "-S", "train.epochs=" + ",".join(EPOCHS)], ws, env)
    _, out = run([MLCYCLE, "exp", "show", "--json"], ws)
    metrics = {}
    for row in json.loads(out):
        key = (repr(float(row["params"]["train.lr"])), repr(float(row["params"]["train.epochs"])))
        metrics[key] = {k.split(".", 1)[1]: v for k, v in row["metrics"].items()}
    return {"tool": "mlcycle", "rep": rep, "wall": wall, "metrics": metrics,
            "prep_runs": sum(1 for _ in open(count))}


def dvc_sweep(rep: int) -> dict:
    count = os.path.join(WORK, f"count-dvc-{rep}.txt")
    ws = fresh(f"dvc-{rep}", count)
    env = dict(ENV, SWEEP_COUNT=count)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "commit", "-q", "-m", "sweep"]):
        run(cmd, ws, env)
    t0 = time.monotonic()
    try:
        run(["dvc", "exp", "run", "--queue",
             "-S", f"train.lr=choice({','.join(LRS)})",
             "-S", f"train.epochs=choice({','.join(EPOCHS)})"], ws, env, timeout=300)
        run(["dvc", "exp", "run", "--run-all", "-j", "2"], ws, env, timeout=300)
    except TimedOut as e:
        # DVC's queue workers sometimes hang; the run is reported, not timed.
        print(f"dvc rep {rep}: {e}", file=sys.stderr)
        subprocess.run(["pkill", "-9", "-f", "dvc exp queue-worker"], check=False)
        return {"tool": "dvc", "rep": rep, "wall": None, "error": str(e), "metrics": None,
                "prep_runs": None}
    wall = time.monotonic() - t0
    _, out = run(["dvc", "exp", "show", "--csv"], ws, env)
    metrics = {}
    for row in csv.DictReader(io.StringIO(out)):
        if row["typ"] not in ("branch_commit", "branch_base") or row["State"] != "Success":
            continue
        key = (repr(float(row["train.lr"])), repr(float(row["train.epochs"])))
        metrics[key] = {k: float(row[k]) for k in ("mse", "w", "b")}
    return {"tool": "dvc", "rep": rep, "wall": wall, "metrics": metrics,
            "prep_runs": sum(1 for _ in open(count)) if os.path.exists(count) else None}


SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL, pid INTEGER,
    commit_id TEXT, set_params TEXT NOT NULL, params TEXT NOT NULL DEFAULT '{}',
    metrics TEXT NOT NULL DEFAULT '{}', stages TEXT NOT NULL DEFAULT '[]', lock TEXT,
    duration_ms INTEGER, error TEXT);
"""


def history_workspace(n: int, n_metrics: int) -> str:
    """A workspace whose experiments database holds `n` finished experiments."""
    ws = os.path.join(WORK, f"show-{n}")
    shutil.rmtree(ws, ignore_errors=True)
    os.makedirs(os.path.join(ws, ".mlcycle"))
    shutil.copy(os.path.join(SRC, "mlcycle.yaml"), ws)
    shutil.copy(os.path.join(SRC, "params.yaml"), ws)
    db = sqlite3.connect(os.path.join(ws, ".mlcycle", "experiments.db"))
    db.executescript(SCHEMA)
    rng = random.Random(1)
    rows = []
    for i in range(n):
        s = {"train.lr": rng.choice([0.001, 0.01, 0.1]), "train.epochs": rng.randrange(10, 1000)}
        params = dict(s, **{"seed": 7, "data.rows": 2000, "model.kind": "sgd"})
        metrics = {f"eval.m{j}": rng.random() for j in range(n_metrics)}
        stages = [{"stage": "prep", "outcome": "restored", "ms": 3},
                  {"stage": "train", "outcome": "ran", "ms": rng.randrange(100, 900)}]
        rows.append((f"exp-{i:05d}", "2026-11-30T00:00:00Z", "done", json.dumps(s),
                     json.dumps(params), json.dumps(metrics), json.dumps(stages), 500))
    db.executemany("INSERT INTO experiments (name, created_at, status, set_params, params, "
                   "metrics, stages, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    return ws


def timed_show(ws: str, args: list[str]) -> tuple[float, int]:
    t0 = time.monotonic()
    p = subprocess.Popen([MLCYCLE, "exp", "show", *args], cwd=ws, env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if status != 0:
        sys.exit(f"exp show {args} failed: {p.stderr.read().decode()}")
    return wall, ru.ru_maxrss


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each sweep")
    ap.add_argument("--no-dvc", action="store_true", help="skip DVC")
    ap.add_argument("--show-n", type=int, default=10_000, help="experiments for exp show")
    args = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    runs = []
    for rep in range(args.reps):
        runs.append(mlcycle_sweep(rep))
        print(f"mlcycle rep {rep}: {runs[-1]['wall']:.2f} s", file=sys.stderr)
        if not args.no_dvc:
            runs.append(dvc_sweep(rep))
            if runs[-1]["wall"] is not None:
                print(f"dvc rep {rep}: {runs[-1]['wall']:.2f} s", file=sys.stderr)
    # Same metrics for every configuration, in every run of both tools.
    want = runs[0]["metrics"]
    assert len(want) == len(LRS) * len(EPOCHS), f"{len(want)} configurations recorded"
    for r in runs:
        if r["metrics"] is not None:
            assert r["metrics"] == want, f"{r['tool']} rep {r['rep']}: metrics differ"
    ws = history_workspace(args.show_n, 50)
    shows = {}
    for label, a in (("table", []), ("--json", ["--json"]),
                     ("--only-changed --sort-by", ["--only-changed", "--sort-by", "eval.m7"])):
        timed_show(ws, a)  # warm the page cache
        samples = [timed_show(ws, a) for _ in range(5)]
        shows[label] = {"wall": med([s[0] for s in samples]),
                        "peak_mb": max(s[1] for s in samples) / 1024}
    by = {t: [r for r in runs if r["tool"] == t and r["wall"] is not None]
          for t in ("mlcycle", "dvc")}
    failed = [r for r in runs if r["wall"] is None]
    lines = [
        "# Sweep benchmark",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{args.reps} repetition(s); 24 configurations, identical metrics checked.",
        "",
        "| tool | wall (median) | min-max | prep.py runs |",
        "|---|---:|---:|---:|",
    ]
    for tool, rs in by.items():
        if not rs:
            continue
        walls = [r["wall"] for r in rs]
        lines.append(f"| {tool} | {med(walls):.2f} s | {min(walls):.2f}-{max(walls):.2f} s | "
                     f"{rs[0]['prep_runs']} |")
    for r in failed:
        lines.append(f"| {r['tool']} rep {r['rep']} | not timed: {r['error']} | | |")
    if by["dvc"]:
        ratio = med([r["wall"] for r in by["dvc"]]) / med([r["wall"] for r in by["mlcycle"]])
        lines += ["", f"mlcycle is {ratio:.1f}x faster than DVC (median wall)."]
    lines += ["", f"`mlcycle exp show` over {args.show_n} experiments x 50 metrics "
              "(median of 5, stdout to /dev/null):", "",
              "| command | wall | peak memory |", "|---|---:|---:|"]
    for label, s in shows.items():
        lines.append(f"| `exp show {label}` | {s['wall'] * 1000:.0f} ms | {s['peak_mb']:.0f} MB |")
    summary = "\n".join(lines) + "\n"
    with open(os.path.join(RESULTS, "sweep-summary.md"), "w") as f:
        f.write(summary)
    with open(os.path.join(RESULTS, "sweep.json"), "w") as f:
        json.dump({"runs": [{k: v for k, v in r.items() if k != "metrics"} for r in runs],
                   "show": shows}, f, indent=2)
    print(summary)


if __name__ == "__main__":
    main()
