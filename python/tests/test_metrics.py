import json
import warnings

import pytest

import mlcycle


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def steps(stage_env, tmp_path):
    stage_env(stage="train")
    return tmp_path / ".mlcycle" / "steps" / "train.jsonl"


def test_log_metric_lines(steps):
    mlcycle.log_metric("loss", 0.41, step=3)
    mlcycle.log_metric("loss", 0.25, step=4)
    mlcycle.log_metric("final", 7)
    assert lines(steps) == [{"step": 3, "loss": 0.41}, {"step": 4, "loss": 0.25}, {"final": 7}]
    text = steps.read_text()
    assert text.endswith("\n") and text.splitlines()[0] == '{"step": 3, "loss": 0.41}'


def test_log_metrics_one_line(steps):
    mlcycle.log_metrics({"loss": 0.5, "acc": 0.75}, step=0)
    mlcycle.log_metrics({"loss": 0.4})
    assert lines(steps) == [{"step": 0, "loss": 0.5, "acc": 0.75}, {"loss": 0.4}]


def test_each_line_is_flushed(steps):
    mlcycle.log_metric("loss", 1.0, step=0)
    # visible to another reader before anything else happens
    assert steps.read_text() == '{"step": 0, "loss": 1.0}\n'


def test_appends_to_existing_lines(steps):
    steps.write_text('{"step": 0, "loss": 2.0}\n')
    mlcycle.log_metric("loss", 1.0, step=1)
    assert lines(steps) == [{"step": 0, "loss": 2.0}, {"step": 1, "loss": 1.0}]


def test_numpy_scalars(steps):
    np = pytest.importorskip("numpy")
    mlcycle.log_metrics({"a": np.float32(0.5), "b": np.int64(3), "c": np.array(2.0)}, step=np.int64(1))
    assert lines(steps) == [{"step": 1, "a": 0.5, "b": 3, "c": 2.0}]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_is_refused(steps, value):
    with pytest.raises(ValueError, match="finite"):
        mlcycle.log_metric("loss", value, step=1)
    assert not steps.exists() or steps.read_text() == ""


@pytest.mark.parametrize("value", ["0.5", None, True, [1.0], {"a": 1}])
def test_non_numbers_are_refused(steps, value):
    with pytest.raises(TypeError, match="must be a number"):
        mlcycle.log_metric("loss", value)


def test_bad_names_and_steps(steps):
    with pytest.raises(ValueError, match="step=N"):
        mlcycle.log_metric("step", 1.0)
    with pytest.raises(ValueError, match="empty"):
        mlcycle.log_metric("", 1.0)
    with pytest.raises(TypeError, match="names must be strings"):
        mlcycle.log_metrics({1: 1.0})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="step must be an int"):
        mlcycle.log_metric("loss", 1.0, step=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        mlcycle.log_metrics({})
    # nothing half-written: a bad value anywhere refuses the whole line
    with pytest.raises(ValueError):
        mlcycle.log_metrics({"ok": 1.0, "bad": float("nan")}, step=1)
    assert not steps.exists() or steps.read_text() == ""


def test_outside_mlcycle_warns_once_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mlcycle.log_metric("loss", 0.5, step=0)
        mlcycle.log_metric("loss", 0.4, step=1)
        mlcycle.log_metrics({"loss": 0.3}, step=2)
    assert len(caught) == 1
    w = caught[0]
    assert issubclass(w.category, RuntimeWarning)
    assert "MLCYCLE_STEP_METRICS" in str(w.message)
    assert w.filename == __file__  # points at the caller
    assert list(tmp_path.iterdir()) == []
    # values are still checked, so mistakes show before the pipeline runs
    with pytest.raises(ValueError):
        mlcycle.log_metric("loss", float("nan"))
