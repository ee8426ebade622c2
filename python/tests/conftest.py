import json
import os

import pytest

import mlcycle._metrics


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No MLCYCLE_* variable leaks in from the environment the tests run in."""
    for key in list(os.environ):
        if key.startswith("MLCYCLE_") and key != "MLCYCLE_BIN":
            monkeypatch.delenv(key)
    monkeypatch.setattr(mlcycle._metrics, "_warned", False)


@pytest.fixture
def stage_env(monkeypatch, tmp_path):
    """Set up the variables mlcycle gives a `run:` command; returns a setter."""

    def setup(stage="fit", params=None, inputs=None, outputs=None, steps=True):
        monkeypatch.setenv("MLCYCLE_STAGE", stage)
        monkeypatch.setenv("MLCYCLE_WORKSPACE", str(tmp_path))
        monkeypatch.setenv("MLCYCLE_PARAMS", json.dumps(params or {}))
        for name, path in (inputs or {}).items():
            monkeypatch.setenv(f"MLCYCLE_IN_{name}", path)
        for name, path in (outputs or {}).items():
            monkeypatch.setenv(f"MLCYCLE_OUT_{name}", path)
        if steps:
            path = tmp_path / ".mlcycle" / "steps" / f"{stage}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            monkeypatch.setenv("MLCYCLE_STEP_METRICS", str(path))
        return tmp_path

    return setup
