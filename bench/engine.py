#!/usr/bin/env python3
"""Engine benchmark: mlcycle against a bare shell loop and DVC.

Run it through bench/engine.sh, which builds mlcycle (or takes $MLCYCLE) and
prepares the DVC virtual environment. Standard library only.

Workloads (generated afresh into bench/work/ on every run):
  chain-N  s1 reads data/input.txt, s{i} reads out/s{i-1}.txt
  wide-N   src reads data/input.txt, w00001..wN each read out/src.txt,
           gather reads all of them
In both, the middle stage (index N//2) also reads data/mid.txt; appending a
line to it is the "touch-mid" case.

Every stage runs the same shell text in every tool. Besides its declared
output it appends its name to `.runlog` (an undeclared side file), so the
stages that actually ran are counted without parsing any tool's output.

Measures: cold full run, no-op status, no-op run, touch-mid; a bare loop
(run_all.sh, one `sh -c` per stage, as mlcycle spawns them) is the baseline
for chain-N. Hashing: b3sum and mlcycle on one large random file.

Timing: subprocess + os.wait4. Wall is a monotonic clock from start to reap,
CPU is user+sys of the process and the children it reaped, peak is ru_maxrss
(the largest single process of the tree: the orchestrator). Every figure is
the median of --reps runs, with min-max.

Outputs: bench/results/engine.json (raw runs), bench/results/engine-summary.md
(the Markdown summary, also printed on stdout).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(HERE, "work")
RESULTS = os.path.join(HERE, "results")
VENV_BIN = os.path.join(HERE, ".venv", "bin")
MLCYCLE = os.path.abspath(os.environ.get("MLCYCLE")
                          or os.path.join(ROOT, "target", "release", "mlcycle"))

ENV = dict(os.environ)
ENV["PATH"] = VENV_BIN + os.pathsep + ENV.get("PATH", "")
ENV["DVC_NO_ANALYTICS"] = "1"   # offline machine: analytics could only fail
for _key in ("GIT_AUTHOR", "GIT_COMMITTER"):
    ENV.setdefault(_key + "_NAME", "bench")
    ENV.setdefault(_key + "_EMAIL", "bench@example.invalid")

MEASURES = ["cold", "noop-status", "noop-run", "touch-mid"]
DVC_MAX_N = 1000          # DVC is only run up to this many stages
MB = 1_000_000            # the memory target is in MB (10^6 bytes)

# Each tool: the command of each measure. `seed` (optional) brings a workspace
# up to date after the bare commands ran, when the tool's cold run exceeded
# the bound, so that its no-op and touch figures can still be taken.
TOOLS = {
    "bare": {"cmds": {"cold": ["bash", "run_all.sh"]}},
    "mlcycle": {"cmds": {"cold": [MLCYCLE, "run", "-q"],
                         "noop-status": [MLCYCLE, "status", "-q"],
                         "noop-run": [MLCYCLE, "run", "-q"],
                         "touch-mid": [MLCYCLE, "run", "-q"]}},
    "dvc": {"cmds": {"cold": ["dvc", "repro"],
                     "noop-status": ["dvc", "status"],
                     "noop-run": ["dvc", "repro"],
                     "touch-mid": ["dvc", "repro"]},
            "seed": [["dvc", "commit", "-f", "-q"]]},
}

RUNS: list[dict] = []
META: dict = {}


# --------------------------------------------------------------------------
# Workloads and their rendering
# --------------------------------------------------------------------------
@dataclass
class Stage:
    """One stage: the files it reads and writes, and its shell command."""
    name: str
    deps: list[str]
    out: str
    cmd: str


@dataclass
class Workload:
    """A generated pipeline, in a valid sequential (topological) order."""
    case: str
    stages: list[Stage]
    expect_mid_reruns: int


def stage(name: str, deps: list[str], cat_args: str | None = None) -> Stage:
    """A stage writing out/<name>.txt; `cat_args` replaces the dependency
    list in the command (a glob keeps gather's command short)."""
    out = f"out/{name}.txt"
    cat = cat_args or " ".join(deps)
    return Stage(name, deps, out, f"{{ cat {cat}; echo {name}; }} > {out} && echo {name} >> .runlog")


def case_size(case: str) -> int:
    """N of a chain-N or wide-N case name; exits on any other name."""
    shape, _, n = case.partition("-")
    if shape not in ("chain", "wide") or not n.isdigit() or int(n) < 1:
        raise SystemExit(f"unknown case {case!r} (expected chain-N or wide-N)")
    return int(n)


def make_workload(case: str) -> Workload:
    """chain-N or wide-N, see the module docstring."""
    n = case_size(case)
    mid = max(1, n // 2)
    if case.startswith("chain-"):
        stages, prev = [], "data/input.txt"
        for i in range(1, n + 1):
            stages.append(stage(f"s{i}", [prev] + (["data/mid.txt"] if i == mid else [])))
            prev = stages[-1].out
        return Workload(case, stages, n - mid + 1)
    stages = [stage("src", ["data/input.txt"])]
    for i in range(1, n + 1):
        stages.append(stage(f"w{i:05d}", ["out/src.txt"] + (["data/mid.txt"] if i == mid else [])))
    stages.append(stage("gather", [s.out for s in stages[1:]], cat_args="out/w*.txt"))
    return Workload(case, stages, 2)


def yaml_single(s: str) -> str:
    """A YAML single-quoted scalar."""
    return "'" + s.replace("'", "''") + "'"


def render_bare(ws: str, wl: Workload) -> None:
    """run_all.sh: the same commands in order, one `sh -c` each (how mlcycle runs a `run:` string)."""
    lines = ["#!/bin/bash", "# bare loop: the same stage commands, no orchestrator", "set -e"]
    lines += ["sh -c " + "'" + s.cmd.replace("'", "'\\''") + "'" for s in wl.stages]
    write(os.path.join(ws, "run_all.sh"), "\n".join(lines) + "\n")


def render_mlcycle(ws: str, wl: Workload) -> None:
    """mlcycle.yaml: one stage per Stage; a dep that is another stage's out makes the edge."""
    lines = [f"name: {wl.case}", "stages:"]
    for s in wl.stages:
        lines += [f"  {s.name}:",
                  f"    run: {yaml_single(s.cmd)}",
                  f"    deps: [{', '.join(s.deps)}]",
                  f"    outs: [{s.out}]"]
    write(os.path.join(ws, "mlcycle.yaml"), "\n".join(lines) + "\n")


def render_dvc(ws: str, wl: Workload) -> None:
    """dvc.yaml with one explicit stage per Stage (what `dvc stage add` writes)."""
    lines = ["stages:"]
    for s in wl.stages:
        lines += [f"  {s.name}:", f"    cmd: {json.dumps(s.cmd)}", "    deps:"]
        lines += [f"    - {d}" for d in s.deps]
        lines += ["    outs:", f"    - {s.out}"]
    write(os.path.join(ws, "dvc.yaml"), "\n".join(lines) + "\n")


DVC_INIT = [
    ["git", "init", "-q"],
    ["dvc", "init", "-q"],
    ["dvc", "config", "core.analytics", "false"],
    ["dvc", "config", "core.check_update", "false"],
    ["dvc", "config", "core.site_cache_dir", ".dvc/tmp/site_cache"],   # default: /var/tmp/dvc
    ["git", "add", "-A"],
    ["git", "commit", "-q", "-m", "pipeline"],
]


def write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def fresh_workspace(tool: str, wl: Workload, ws: str, logpath: str) -> None:
    """(Re)create workspace `ws` for `tool` from scratch."""
    shutil.rmtree(ws, ignore_errors=True)
    os.makedirs(os.path.join(ws, "data"))
    os.makedirs(os.path.join(ws, "out"))
    write(os.path.join(ws, "data", "input.txt"), "input\n")
    write(os.path.join(ws, "data", "mid.txt"), "mid\n")
    render_bare(ws, wl)
    if tool == "mlcycle":
        render_mlcycle(ws, wl)
    elif tool == "dvc":
        write(os.path.join(ws, ".gitignore"), "/.runlog\n/run_all.sh\n")
        render_dvc(ws, wl)
        for cmd in DVC_INIT:
            sh(cmd, ws, logpath)


# --------------------------------------------------------------------------
# Running and timing
# --------------------------------------------------------------------------
def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def count_lines(path: str | None) -> int:
    if path is None:
        return 0
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def sh(cmd: list[str], cwd: str, logpath: str) -> None:
    """An untimed helper command, which must succeed."""
    os.makedirs(os.path.dirname(logpath), exist_ok=True)
    with open(logpath, "ab") as lf:
        lf.write(("\n$ " + " ".join(cmd) + "\n").encode())
        lf.flush()
        subprocess.run(cmd, cwd=cwd, stdout=lf, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, env=ENV, check=True)


def timed(cmd: list[str], cwd: str, logpath: str, bound: float,
          runlog: str | None = None, expect: int | None = None) -> dict:
    """Run `cmd` once and return wall/cpu/peak/rc and the stages it ran.

    A watchdog kills the process group at `bound` seconds. When `expect`
    stages should run, it also stops the run early (after 60 s) once the
    rate at which stages finish proves it cannot end within 1.2x the bound,
    and records a linear projection of the total: a lower bound whenever the
    per-stage cost does not fall as the run goes on."""
    base = count_lines(runlog)
    os.makedirs(os.path.dirname(logpath), exist_ok=True)
    with open(logpath, "ab") as lf:
        lf.write(("\n$ " + " ".join(cmd) + "\n").encode())
        lf.flush()
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=lf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=ENV, start_new_session=True)
        state: dict = {}
        stop = threading.Event()

        def kill(reason: str, done: int, projected: float | None = None) -> None:
            state.update(exceeded=reason, done_at_kill=done, projected=projected)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    return
                if stop.wait(5):
                    return

        def watchdog() -> None:
            first_done_at = None
            while not stop.wait(1.0):
                elapsed = time.monotonic() - t0
                done = count_lines(runlog) - base
                if done >= 1 and first_done_at is None:
                    first_done_at = elapsed
                if elapsed > bound:
                    return kill("bound", done)
                if expect and first_done_at is not None and elapsed >= 60 and done >= 5:
                    per_stage = (elapsed - first_done_at) / max(done - 1, 1)
                    projected = elapsed + per_stage * (expect - done)
                    if projected > bound * 1.2:
                        return kill("projected", done, projected)

        thread = threading.Thread(target=watchdog, daemon=True)
        thread.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        thread.join()
    r = {"wall_s": round(wall, 4), "cpu_s": round(ru.ru_utime + ru.ru_stime, 4),
         "peak_mib": round(ru.ru_maxrss / 1024, 1), "rc": proc.returncode,
         "stages_run": count_lines(runlog) - base if runlog else None}
    if state:
        r["exceeded"] = state["exceeded"]
        if state["projected"]:
            r["projected_s"] = round(state["projected"], 1)
    return r


def record(tool: str, case: str, measure: str, rep: int, cmd: list[str], r: dict,
           expect: int | None = None) -> dict:
    """Keep one timed run (and save the raw results at once)."""
    shown = " ".join("mlcycle" if c == MLCYCLE else c for c in cmd)
    row = {"tool": tool, "case": case, "measure": measure, "rep": rep, "cmd": shown,
           **r, "expect": expect}
    RUNS.append(row)
    check = ""
    if expect is not None and r["stages_run"] is not None and not r.get("exceeded"):
        check = " ok" if r["stages_run"] == expect else f" MISMATCH (expected {expect})"
    ex = f" EXCEEDED ({r['exceeded']})" if r.get("exceeded") else ""
    log(f"  {tool:8s} {case:12s} {measure:22s} #{rep} wall={r['wall_s']:.3f}s cpu={r['cpu_s']:.2f}s "
        f"peak={r['peak_mib']}MiB rc={r['rc']} ran={r['stages_run']}{check}{ex}")
    save_json()
    return row


def save_json() -> None:
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "engine.json"), "w") as f:
        json.dump({"meta": META, "runs": RUNS}, f, indent=1)


# --------------------------------------------------------------------------
# Benchmarks
# --------------------------------------------------------------------------
def bench_case(tool: str, case: str, reps: int, bound: float) -> None:
    """Cold runs (fresh workspace each), then no-op status/run and touch-mid."""
    cmds = TOOLS[tool]["cmds"]
    wl = make_workload(case)
    nst = len(wl.stages)
    ws = os.path.join(WORK, f"{tool}-{case}")
    logdir = os.path.join(WORK, "logs", f"{tool}-{case}")
    shutil.rmtree(logdir, ignore_errors=True)
    setup_log = os.path.join(logdir, "setup.log")
    runlog = os.path.join(ws, ".runlog")
    log(f"== {tool} {case} ({nst} stages)")

    complete = False
    for rep in range(1, reps + 1):
        fresh_workspace(tool, wl, ws, setup_log)
        r = timed(cmds["cold"], ws, os.path.join(logdir, f"cold{rep}.log"), bound, runlog, nst)
        record(tool, case, "cold", rep, cmds["cold"], r, nst)
        complete = r["rc"] == 0 and not r.get("exceeded") and r["stages_run"] == nst
        if not complete:
            break
    if tool == "bare":
        return
    if not complete:
        if "seed" not in TOOLS[tool] or not r.get("exceeded"):
            log(f"  {tool} {case}: the cold run failed; other measures skipped")
            return
        log(f"  {tool} {case}: cold run exceeded the bound; seeding the workspace")
        fresh_workspace(tool, wl, ws, setup_log)
        seed_log = os.path.join(logdir, "seed.log")
        record(tool, case, "seed: bare loop", 1, ["bash", "run_all.sh"],
               timed(["bash", "run_all.sh"], ws, seed_log, 3600))
        for cmd in TOOLS[tool]["seed"]:
            record(tool, case, "seed: " + " ".join(cmd[1:]), 1, cmd, timed(cmd, ws, seed_log, 3600))
        os.truncate(runlog, 0)

    for measure in ("noop-status", "noop-run"):
        for rep in range(1, reps + 1):
            r = timed(cmds[measure], ws, os.path.join(logdir, f"{measure}.log"), bound, runlog)
            record(tool, case, measure, rep, cmds[measure], r, 0)

    mid = os.path.join(ws, "data", "mid.txt")
    for rep in range(1, reps + 1):
        with open(mid, "a") as f:
            f.write(f"edit {rep} {time.time()}\n")
        r = timed(cmds["touch-mid"], ws, os.path.join(logdir, f"touch-mid{rep}.log"), bound,
                  runlog, wl.expect_mid_reruns)
        record(tool, case, "touch-mid", rep, cmds["touch-mid"], r, wl.expect_mid_reruns)
        if r.get("exceeded") or r["rc"] != 0:
            break


def write_big_file(path: str, mib: int) -> None:
    """Random data, so that no filesystem or hasher can take a shortcut."""
    chunk = 4 << 20
    with open(path, "wb") as f:
        for _ in range(mib * (1 << 20) // chunk):
            f.write(os.urandom(chunk))


def bench_hash(reps: int, big_mib: int) -> None:
    """b3sum and mlcycle on one big file, page cache warm.

    mlcycle: a one-stage pipeline whose deps include the file; after one run
    the hash memo (.mlcycle/mlcycle.db) is deleted before each timed
    `mlcycle status -q`, so that status must hash the file again. A no-op
    run then rewrites the memo, for the "memo kept" rows."""
    big = os.path.join(WORK, "big.bin")
    size = big_mib << 20
    if not os.path.exists(big) or os.path.getsize(big) != size:
        log(f"== hashing: writing a {big_mib} MiB random file")
        write_big_file(big, big_mib)
    with open(big, "rb") as f:   # warm the page cache: all figures are hot-cache
        while f.read(8 << 20):
            pass
    case = f"big-{big_mib}MiB"
    logdir = os.path.join(WORK, "logs", "hash")
    shutil.rmtree(logdir, ignore_errors=True)
    lg = os.path.join(logdir, "hash.log")
    log(f"== hashing {case}")

    if shutil.which("b3sum"):
        for rep in range(1, reps + 1):
            cmd = ["b3sum", big]
            record("b3sum", case, "hash", rep, ["b3sum", "work/big.bin"], timed(cmd, WORK, lg, 600))
    else:
        log("  b3sum not found: its row is skipped")

    ws = os.path.join(WORK, "mlcycle-hash")
    shutil.rmtree(ws, ignore_errors=True)
    os.makedirs(os.path.join(ws, "data"))
    os.makedirs(os.path.join(ws, "out"))
    os.link(big, os.path.join(ws, "data", "big.bin"))
    write(os.path.join(ws, "mlcycle.yaml"),
          f"name: {case}\nstages:\n  size:\n"
          "    run: 'wc -c < data/big.bin > out/size.txt && echo size >> .runlog'\n"
          "    deps: [data/big.bin]\n    outs: [out/size.txt]\n")
    sh([MLCYCLE, "run", "-q"], ws, lg)
    status = [MLCYCLE, "status", "-q"]
    memo = os.path.join(ws, ".mlcycle", "mlcycle.db")
    for rep in range(1, reps + 1):
        if os.path.exists(memo):
            os.remove(memo)
        record("mlcycle", case, "hash", rep, status, timed(status, ws, lg, 600))
    sh([MLCYCLE, "run", "-q"], ws, lg)   # status only reads the memo; a run writes it
    for rep in range(1, reps + 1):
        record("mlcycle", case, "status, memo kept", rep, status, timed(status, ws, lg, 600))
    shutil.rmtree(ws, ignore_errors=True)


# --------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------
def rows(tool: str, case: str, measure: str) -> list[dict]:
    return [r for r in RUNS if (r["tool"], r["case"], r["measure"]) == (tool, case, measure)]


def ok_walls(rs: list[dict]) -> list[float]:
    return [r["wall_s"] for r in rs if r["rc"] == 0 and not r.get("exceeded")]


def median_wall(tool: str, case: str, measure: str) -> float | None:
    """Median wall of the successful runs, or None (none, or any exceeded)."""
    rs = rows(tool, case, measure)
    if not rs or any(r.get("exceeded") for r in rs) or not ok_walls(rs):
        return None
    return statistics.median(ok_walls(rs))


def exceeded_text(r: dict) -> str:
    text = f"EXCEEDED ({r['stages_run']}/{r['expect']} stages in {r['wall_s']:.0f} s"
    if r.get("projected_s"):
        text += f"; ≥ {r['projected_s']:.0f} s by linear projection"
    return text + ")"


def lower_bound(tool: str, case: str, measure: str) -> float | None:
    """For an exceeded measure: the time it is known (or projected) to need at least."""
    for r in rows(tool, case, measure):
        if r.get("exceeded"):
            return r.get("projected_s") or r["wall_s"]
    return None


def fmt_s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def keys_in_order() -> list[tuple[str, str, str]]:
    keys: list[tuple[str, str, str]] = []
    for r in RUNS:
        k = (r["tool"], r["case"], r["measure"])
        if k not in keys:
            keys.append(k)
    return keys


def medians_table() -> list[str]:
    out = ["| case | tool | measure | command | runs | wall s (median) | min–max | CPU s | "
           "peak MiB | stages run (expected) | note |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for tool, case, measure in keys_in_order():
        if case.startswith("big-"):
            continue
        rs = rows(tool, case, measure)
        walls = [r["wall_s"] for r in rs]
        med = median_wall(tool, case, measure)
        notes = [exceeded_text(r) for r in rs if r.get("exceeded")]
        notes += [f"rc={r['rc']}" for r in rs if r["rc"] != 0 and not r.get("exceeded")]
        exp = rs[0]["expect"]
        ran = sorted({r["stages_run"] for r in rs if r["stages_run"] is not None})
        ran_text = ",".join(map(str, ran)) + (f" ({exp})" if exp is not None else "")
        if exp is not None and not any(r.get("exceeded") for r in rs):
            ran_text += " ✓" if ran == [exp] else " ✗"
        out.append(f"| {case} | {tool} | {measure} | `{rs[0]['cmd']}` | {len(rs)} | "
                   f"{fmt_s(med) if med is not None else '–'} | {min(walls):.3f}–{max(walls):.3f} | "
                   f"{statistics.median(r['cpu_s'] for r in rs):.2f} | "
                   f"{max(r['peak_mib'] for r in rs):.1f} | {ran_text} | {'; '.join(notes)} |")
    return out


def overhead(case: str) -> tuple[float, float] | None:
    """(wall, cpu) ms per stage: (mlcycle cold − bare cold) / N."""
    ml, bare = median_wall("mlcycle", case, "cold"), median_wall("bare", case, "cold")
    if ml is None or bare is None:
        return None
    n = case_size(case)
    cpu = [statistics.median(r["cpu_s"] for r in rows(t, case, "cold")) for t in ("mlcycle", "bare")]
    return (ml - bare) / n * 1000, (cpu[0] - cpu[1]) / n * 1000


def overhead_table(cases: list[str]) -> list[str]:
    out = ["| case | bare loop cold s | mlcycle cold s | overhead ms/stage (wall) | (CPU) |",
           "|---|---|---|---|---|"]
    for case in cases:
        ov = overhead(case)
        if ov:
            out.append(f"| {case} | {fmt_s(median_wall('bare', case, 'cold'))} | "
                       f"{fmt_s(median_wall('mlcycle', case, 'cold'))} | {ov[0]:.2f} | {ov[1]:.2f} |")
    return out


def ratio_table(cases: list[str]) -> list[str]:
    out = ["| case | measure | DVC s | mlcycle s | DVC / mlcycle |", "|---|---|---|---|---|"]
    for case in cases:
        if not rows("dvc", case, "cold"):
            continue
        for measure in MEASURES:
            ml = median_wall("mlcycle", case, measure)
            dvc = median_wall("dvc", case, measure)
            low = lower_bound("dvc", case, measure)
            if ml is None or (dvc is None and low is None):
                continue
            if dvc is not None:
                out.append(f"| {case} | {measure} | {fmt_s(dvc)} | {fmt_s(ml)} | {dvc / ml:,.0f}× |")
            else:
                out.append(f"| {case} | {measure} | EXCEEDED (≥ {low:.0f}) | {fmt_s(ml)} | "
                           f"≥ {low / ml:,.0f}× |")
    return out


def hash_table() -> tuple[list[str], float | None]:
    """The hashing rows, and mlcycle's time over b3sum's (None if not both)."""
    out = ["| hasher | command | runs | wall s (median) | min–max | MiB/s | peak MiB |",
           "|---|---|---|---|---|---|---|"]
    med = {}
    for tool, case, measure in keys_in_order():
        if not case.startswith("big-"):
            continue
        rs = rows(tool, case, measure)
        mib = int(case.split("-")[1].removesuffix("MiB"))
        m = median_wall(tool, case, measure)
        walls = [r["wall_s"] for r in rs]
        med[(tool, measure)] = m
        rate = f"{mib / m:,.0f}" if m and measure == "hash" else "–"
        label = f"{tool} ({measure})" if measure != "hash" else tool
        out.append(f"| {label} | `{rs[0]['cmd']}` | {len(rs)} | {fmt_s(m) if m else '–'} | "
                   f"{min(walls):.3f}–{max(walls):.3f} | {rate} | {max(r['peak_mib'] for r in rs):.0f} |")
    b3, ml = med.get(("b3sum", "hash")), med.get(("mlcycle", "hash"))
    return out, (ml / b3 if b3 and ml else None)


def targets(cases: list[str], hash_ratio: float | None) -> list[str]:
    """One PASS/FAIL line per target and workload; targets not measured are said so."""
    out = ["| target | workload | figure | result |", "|---|---|---|---|"]

    def line(target: str, case: str, figure: str, ok: bool | None) -> None:
        verdict = "not measured" if ok is None else ("PASS" if ok else "FAIL")
        out.append(f"| {target} | {case} | {figure} | {verdict} |")

    big = [c for c in cases if c.endswith("-10000")] or ["chain-10000"]
    for case in big:
        m = median_wall("mlcycle", case, "noop-status")
        fresh = all(r["rc"] == 0 for r in rows("mlcycle", case, "noop-status"))
        line("no-op `mlcycle status` of 10 000 stages < 100 ms", case,
             f"{m * 1000:.1f} ms" + ("" if fresh else " (exit 1: not all fresh)") if m else "–",
             None if m is None else (m < 0.1 and fresh))
    for case in [c for c in cases if c.endswith("-1000")] or ["chain-1000"]:
        ml, dvc = median_wall("mlcycle", case, "noop-status"), median_wall("dvc", case, "noop-status")
        line("≥ 100× faster than `dvc status` (no-op) at 1 000 stages", case,
             f"{dvc:.2f} s / {ml * 1000:.1f} ms = {dvc / ml:,.0f}×" if ml and dvc else "–",
             None if not (ml and dvc) else dvc / ml >= 100)
    for case in [c for c in cases if c.startswith("chain-")]:
        ov = overhead(case)
        line("per-stage orchestration overhead < 2 ms (`run:` stages)", case,
             f"{ov[0]:.2f} ms/stage" if ov else "–", None if ov is None else ov[0] < 2)
    line("hashing within 1.5× of b3sum", "big file",
         f"{hash_ratio:.2f}× b3sum's time" if hash_ratio else "–",
         None if hash_ratio is None else hash_ratio <= 1.5)
    for case in big:
        rs = [r for m in ("cold", "noop-status", "noop-run") for r in rows("mlcycle", case, m)]
        peak = max((r["peak_mib"] for r in rs), default=None)
        line("orchestrator peak memory < 100 MB at 10 000 stages (cold, no-op status, no-op run)",
             case, f"{peak * 1024 * 1024 / MB:.1f} MB ({peak:.1f} MiB)" if peak else "–",
             None if peak is None else peak * 1024 * 1024 < 100 * MB)
    return out


def summarize(cases: list[str]) -> str:
    m, v = META["machine"], META["versions"]
    hashes, hash_ratio = hash_table()
    parts = [
        "# mlcycle engine benchmark",
        "",
        f"Run {META['date_utc']} with `{' '.join(META['argv'])}`; total {META.get('total_s', '?')} s.",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB RAM, {m['platform']}; "
        f"load average {m['loadavg_start'][0]:.2f} at start, {META.get('loadavg_end', [0])[0]:.2f} at end.",
        "Versions: " + ", ".join(v.values()) + ".",
        f"Each figure is the median of {META['args']['reps']} run(s); wall in seconds, "
        "CPU = user+sys including children, peak = the orchestrator's ru_maxrss.",
        "",
        "## Targets",
        "", *targets(cases, hash_ratio), "",
        "## Medians",
        "", *medians_table(), "",
        "## Per-stage orchestration overhead (chain-N, against the bare loop)",
        "", *overhead_table([c for c in cases if c.startswith("chain-")]), "",
        "## DVC / mlcycle (wall, medians)",
        "", *ratio_table(cases), "",
        "## Hashing (page cache warm)",
        "", *hashes, "",
    ]
    return "\n".join(parts)


# --------------------------------------------------------------------------
def version_of(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120, cwd=ROOT)
        return (out.stdout.strip() or out.stderr.strip()).splitlines()[0] if out.returncode == 0 else "unavailable"
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unavailable"


def mlcycle_version() -> str:
    """`mlcycle --version` and where the binary comes from: this checkout's
    release build, or a binary given by $MLCYCLE (whose commit is not known)."""
    head = version_of(["git", "rev-parse", "--short", "HEAD"])
    if MLCYCLE != os.path.join(ROOT, "target", "release", "mlcycle"):
        return f"{version_of([MLCYCLE, '--version'])} (binary given by $MLCYCLE; checkout at {head})"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return f"{version_of([MLCYCLE, '--version'])} (built from {head}{' + local changes' if dirty else ''})"


def machine() -> dict:
    m = {"cores": os.cpu_count(), "platform": platform.platform(), "loadavg_start": os.getloadavg()}
    with open("/proc/cpuinfo") as f:
        m["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        m["mem_gib"] = round(int(f.readline().split()[1]) / (1 << 20), 1)
    return m


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="mlcycle engine benchmark (see the module docstring)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: N=100 and 1000 only, 1 rep, 256 MiB file, DVC only at N=100")
    ap.add_argument("--no-dvc", action="store_true", help="leave DVC out")
    ap.add_argument("--reps", type=int, default=3, help="runs per measure (default 3)")
    ap.add_argument("--cases", help="comma list, e.g. chain-1000,wide-100 "
                                    "(default: chain and wide at N=100, 1000, 10000)")
    ap.add_argument("--bound", type=float, default=300, help="seconds a run may take (default 300)")
    ap.add_argument("--big-mib", type=int, default=1024, help="size of the hashed file (default 1024)")
    ap.add_argument("--skip-hash", action="store_true", help="leave the hashing rows out")
    a = ap.parse_args()
    sizes = [100, 1000] if a.quick else [100, 1000, 10000]
    a.cases = [c for c in (a.cases.split(",") if a.cases else
                           [f"{s}-{n}" for n in sizes for s in ("chain", "wide")]) if c]
    for case in a.cases:   # refuse a bad name before anything runs
        case_size(case)
    a.dvc_max_n = 100 if a.quick else DVC_MAX_N
    if a.quick:
        a.reps, a.big_mib = 1, 256
    return a


def main() -> None:
    a = parse_args()
    if not os.access(MLCYCLE, os.X_OK):
        raise SystemExit(f"mlcycle binary not found: {MLCYCLE} (run through bench/engine.sh)")
    if not a.no_dvc and not shutil.which("dvc", path=ENV["PATH"]):
        raise SystemExit("dvc not found: run through bench/engine.sh, or pass --no-dvc")
    os.makedirs(WORK, exist_ok=True)
    t0 = time.monotonic()
    versions = {"mlcycle": mlcycle_version(),
                "dvc": "dvc not run" if a.no_dvc else "dvc " + version_of(["dvc", "--version"]),
                "b3sum": version_of(["b3sum", "--version"]),
                "python": "Python " + platform.python_version(),
                "git": version_of(["git", "--version"])}
    META.update({"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "argv": ["bench/engine.sh", *sys.argv[1:]], "args": vars(a),
                 "machine": machine(), "versions": versions})
    log(json.dumps(META))
    for case in a.cases:
        tools = (["bare"] if case.startswith("chain-") else []) + ["mlcycle"]
        if not a.no_dvc and case_size(case) <= a.dvc_max_n:
            tools.append("dvc")
        for tool in tools:
            bench_case(tool, case, a.reps, a.bound)
    if not a.skip_hash:
        bench_hash(a.reps, a.big_mib)
    META["loadavg_end"] = os.getloadavg()
    META["total_s"] = round(time.monotonic() - t0, 1)
    save_json()
    summary = summarize(a.cases)
    write(os.path.join(RESULTS, "engine-summary.md"), summary)
    print(summary)
    log(f"total {META['total_s']} s -> bench/results/engine-summary.md, bench/results/engine.json")


if __name__ == "__main__":
    main()
