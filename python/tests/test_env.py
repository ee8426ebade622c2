import os
import subprocess
import sys
from pathlib import Path

import pytest

import mlcycle


def test_stage_and_workspace(stage_env):
    root = stage_env(stage="train")
    assert mlcycle.stage() == "train"
    assert mlcycle.workspace() == root
    assert mlcycle.in_stage()


@pytest.mark.parametrize(
    "call",
    [mlcycle.stage, mlcycle.workspace, mlcycle.inputs, mlcycle.outputs, mlcycle.params,
     lambda: mlcycle.input("data"), lambda: mlcycle.output("model")],
)
def test_outside_mlcycle_is_a_clear_error(call):
    assert not mlcycle.in_stage()
    with pytest.raises(mlcycle.NotInStageError) as e:
        call()
    msg = str(e.value)
    assert "must run as an mlcycle `run:` stage" in msg
    assert "mlcycle run" in msg


def test_workspace_needs_its_variable(monkeypatch):
    monkeypatch.setenv("MLCYCLE_STAGE", "s")
    with pytest.raises(mlcycle.NotInStageError, match="MLCYCLE_WORKSPACE"):
        mlcycle.workspace()


def test_inputs_and_outputs(stage_env):
    root = stage_env(
        inputs={"TRAIN_DATA": "out/train.arrow", "LABELS": "/abs/labels.csv"},
        outputs={"GB_METRICS": "out/gb.json", "MODEL": "out/model.json"},
    )
    assert mlcycle.inputs() == {
        "labels": Path("/abs/labels.csv"),
        "train_data": root / "out/train.arrow",
    }
    assert mlcycle.outputs() == {"gb_metrics": root / "out/gb.json", "model": root / "out/model.json"}
    assert all(isinstance(p, Path) for p in mlcycle.inputs().values())


@pytest.mark.parametrize("name", ["train-data", "train_data", "TRAIN_DATA", "train.data", "Train Data"])
def test_input_names_are_normalised_as_mlcycle_does(stage_env, name):
    root = stage_env(inputs={"TRAIN_DATA": "out/train.arrow"})
    assert mlcycle.input(name) == root / "out/train.arrow"


def test_output_name_as_written(stage_env):
    root = stage_env(outputs={"GB_METRICS": "out/gb.json"})
    assert mlcycle.output("gb_metrics") == root / "out/gb.json"
    assert mlcycle.output("gb-metrics") == root / "out/gb.json"


def test_env_name():
    assert mlcycle.env_name("train-data") == "TRAIN_DATA"
    assert mlcycle.env_name("gb_metrics") == "GB_METRICS"
    assert mlcycle.env_name("x.y@1") == "X_Y_1"
    # mlcycle keeps ASCII letters and digits only (Rust is_ascii_alphanumeric)
    assert mlcycle.env_name("café2") == "CAF_2"


def test_unknown_input_lists_names_and_suggests(stage_env):
    stage_env(stage="fit", inputs={"TRAIN_DATA": "a", "LABELS": "b"})
    with pytest.raises(KeyError) as e:
        mlcycle.input("trian-data")
    assert isinstance(e.value, mlcycle.UnknownNameError)
    msg = str(e.value)
    assert "stage `fit` has no input `trian-data`" in msg
    assert "MLCYCLE_IN_TRIAN_DATA" in msg
    assert "Did you mean `train_data`?" in msg
    assert "`labels`, `train_data`" in msg
    assert "deps:" in msg
    assert e.value.name == "trian-data"


def test_unknown_output_without_any(stage_env):
    stage_env()
    with pytest.raises(KeyError) as e:
        mlcycle.output("model")
    msg = str(e.value)
    assert "has no output `model`" in msg and "It has no outputs." in msg
    assert "Did you mean" not in msg
    assert "outs:" in msg


def test_paths_stay_valid_after_chdir(stage_env, tmp_path, monkeypatch):
    root = stage_env(inputs={"DATA": "data/x.csv"})
    (root / "data").mkdir()
    (root / "data/x.csv").write_text("a\n1\n")
    monkeypatch.chdir(tmp_path.parent)
    assert mlcycle.input("data").read_text() == "a\n1\n"


def test_import_needs_no_pyarrow():
    # Block pyarrow: `import mlcycle` and the stdlib-only helpers still work,
    # and reading a table says what to install.
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "import mlcycle\n"
        "assert 'pyarrow' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "try:\n"
        "    mlcycle.read_table('x.arrow')\n"
        "except ImportError as e:\n"
        "    print('ImportError', e)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCYCLE_")}
    env["PYTHONPATH"] = str(Path(mlcycle.__file__).parent.parent)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "ImportError" in out.stdout and "pip install pyarrow" in out.stdout
