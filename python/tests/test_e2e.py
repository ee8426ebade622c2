"""End to end: a real mlcycle binary runs `run:` stages that use this package.

Set MLCYCLE_BIN to the binary (e.g. target/release/mlcycle); without it the
test is skipped.
"""

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("pandas")
pytest.importorskip("polars")

import mlcycle  # noqa: E402


def mlcycle_bin() -> str:
    path = os.environ.get("MLCYCLE_BIN")
    if not path:
        pytest.skip("MLCYCLE_BIN is not set: point it at an mlcycle binary to run the end-to-end test")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip(f"MLCYCLE_BIN={path} is not an executable file")
    return path


MAKE = """
    import random
    import pandas as pd
    import mlcycle

    p = mlcycle.params()
    assert mlcycle.stage() == "make"
    rng = random.Random(p.seed)
    n = 60
    x1 = [rng.uniform(0, 10) for _ in range(n)]
    x2 = [rng.randint(0, 5) for _ in range(n)]            # ints -> Float64
    flag = [rng.random() < 0.5 for _ in range(n)]         # bools -> 0/1
    y = [3 * a - 2 * b + 4 * f + 1 + rng.gauss(0, 0.01) for a, b, f in zip(x1, x2, flag)]
    df = pd.DataFrame({"x1": x1, "x2": x2, "flag": flag, "y": y})
    mlcycle.write_table(df, mlcycle.output("data"), target="y")

    extra = pd.DataFrame({
        "city": pd.Categorical(["oslo", "rome", None, "oslo"]),
        "size": [1, None, 3, 4],
        "price": [10.0, 20.0, 30.0, 40.0],
    })
    mlcycle.write_table(extra, mlcycle.output("extra-table"), target="price")
    print(f"wrote {len(df)} rows to {mlcycle.output('data')}")
"""

PASSTHROUGH = """
    import json
    import mlcycle

    path = mlcycle.input("train-data")
    df = mlcycle.read_table(path)
    assert df.attrs["target"] == "y", df.attrs
    steps = json.loads(df.attrs["mlcycle.transforms"])
    assert steps and steps[0]["op"] == "scale", steps
    df["x1"] = df["x1"] * 1.0                     # touch the rows
    mlcycle.write_table(df, mlcycle.output("scaled"))  # target and chain kept

    pl_df = mlcycle.read_table(path, library="polars")
    assert pl_df.height == len(df)
    print(f"passed {len(df)} rows through with {len(steps)} step(s)")
"""

STEPS = """
    import json
    import os
    from pathlib import Path
    import mlcycle

    p = mlcycle.params()
    assert Path.cwd() == mlcycle.workspace(), (Path.cwd(), mlcycle.workspace())
    loss = 1.0
    for epoch in range(p.train.epochs):
        loss *= 1 - p["train.lr"]
        mlcycle.log_metric("loss", loss, step=epoch)
    mlcycle.log_metrics({"loss": loss, "acc": 0.5}, step=p.train.epochs)
    with open(mlcycle.output("gb_metrics"), "w") as f:
        json.dump({"loss": loss}, f)
    print("logged", p.train.epochs + 1, "lines to", os.environ["MLCYCLE_STEP_METRICS"])
"""


def write_workspace(ws: Path) -> None:
    py = sys.executable
    for name, body in [("make_table.py", MAKE), ("passthrough.py", PASSTHROUGH), ("steps.py", STEPS)]:
        (ws / name).write_text(textwrap.dedent(body))
    q = json.dumps  # a JSON string is a YAML string: any interpreter path is safe
    yaml = f"""\
name: helper-e2e
params:
  seed: 7
  train:
    lr: 0.1
    epochs: 4

stages:
  make:                               # a shell `run:` string
    run: {q(shlex.quote(py) + " make_table.py")}
    deps: [make_table.py]
    params: [seed]
    outs: [out/data.arrow, {{extra-table: out/extra.arrow}}]

  split:
    uses: preprocess.split
    inputs: {{data: make.data}}
    with: {{test: 0.25, seed: "${{params.seed}}"}}

  scale:
    uses: preprocess.scale
    inputs: {{data: split.train}}

  passthrough:                        # an argv `run:` list
    run: [{q(py)}, passthrough.py]
    deps: [passthrough.py, {{train-data: scale.data}}]
    outs: [{{scaled: out/scaled.arrow}}]

  ols:
    uses: train.linear_regression
    inputs: {{train: passthrough.scaled}}

  evaluate:
    uses: evaluate.regression
    inputs: {{model: ols.model, test: split.test}}

  steps:
    run: [{q(py)}, steps.py]
    deps: [steps.py]
    params: [train]
    outs: [{{gb_metrics: out/gb_metrics.json}}]
"""
    (ws / "mlcycle.yaml").write_text(yaml)


def run(binary, ws, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCYCLE_")}
    # The stages import the same mlcycle package as this test.
    src = str(Path(mlcycle.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([src] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [binary, *args], cwd=ws, env=env, capture_output=True, text=True, timeout=300
    )


def test_pipeline_with_helper_stages(tmp_path):
    binary = mlcycle_bin()
    ws = tmp_path / "ws"
    ws.mkdir()
    write_workspace(ws)

    res = run(binary, ws, "run", str(ws))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "make | wrote 60 rows" in out
    assert "passthrough | passed" in out

    # the table the helper wrote, as mlcycle reads it
    show = run(binary, ws, "show", str(ws), "make.extra-table")
    assert show.returncode == 0, show.stdout + show.stderr
    assert "4 rows × 3 columns, target `price`" in show.stdout
    assert "city" in show.stdout and "categorical" in show.stdout and "rome" in show.stdout

    # the built-in split read it: its training rows keep the target
    show = run(binary, ws, "show", str(ws), "split.train")
    assert show.returncode == 0, show.stdout + show.stderr
    assert "45 rows × 4 columns, target `y`" in show.stdout
    for column in ("x1", "x2", "flag", "y"):
        assert column in show.stdout
    assert "numeric" in show.stdout

    # the re-written table kept the scaling step: the model takes raw rows
    # and scores the raw test split almost perfectly
    model = json.loads((ws / "artifacts" / "ols" / "model.json").read_text())
    assert [s["op"] for s in model["transforms"]] == ["scale"]
    assert model["target"] == "y"
    metrics_files = list((ws / "artifacts" / "evaluate").rglob("metrics.json"))
    assert metrics_files, list((ws / "artifacts").rglob("*"))
    assert json.loads(metrics_files[0].read_text())["r2"] > 0.99

    # step-wise metrics
    lines = [json.loads(line) for line in (ws / ".mlcycle" / "steps" / "steps.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [0, 1, 2, 3, 4]
    assert lines[0]["loss"] == pytest.approx(0.9)
    assert lines[-1] == {"step": 4, "loss": pytest.approx(0.9 ** 4), "acc": 0.5}

    # a second run has nothing to do
    again = run(binary, ws, "run", str(ws))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "fresh" in again.stdout + again.stderr


def test_undeclared_param_fails_the_stage_with_advice(tmp_path):
    binary = mlcycle_bin()
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "fit.py").write_text("import mlcycle\nprint(mlcycle.params().train.lr)\n")
    (ws / "mlcycle.yaml").write_text(
        "name: undeclared\n"
        "params:\n  seed: 1\n  train: {lr: 0.1}\n"
        "stages:\n"
        "  fit:\n"
        f"    run: [{json.dumps(sys.executable)}, fit.py]\n"
        "    deps: [fit.py]\n"
        "    params: [seed]\n"
        "    outs: [out/x.txt]\n"
    )
    res = run(binary, ws, "run", str(ws))
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "param `train` is not in the params of stage `fit`" in out
    assert "The params there are: `seed`" in out
    assert "receives only the params it declares" in out
