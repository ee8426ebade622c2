import json
import pickle

import pytest

import mlcycle
from mlcycle import Params


def test_nested_params(stage_env):
    stage_env(params={"seed": 7, "train": {"lr": 0.01, "epochs": 5}})
    p = mlcycle.params()
    assert p["seed"] == 7
    assert p["train.lr"] == 0.01
    assert p["train"]["lr"] == 0.01
    assert p.train.lr == 0.01
    assert p.train.epochs == 5
    assert isinstance(p.train, Params)
    assert p.train["epochs"] == 5
    assert sorted(p) == ["seed", "train"]
    assert len(p) == 2
    assert p.to_dict() == {"seed": 7, "train": {"lr": 0.01, "epochs": 5}}
    assert p.flat() == {"seed": 7, "train.lr": 0.01, "train.epochs": 5}
    assert p.train.flat() == {"lr": 0.01, "epochs": 5}


def test_flat_dotted_params(stage_env):
    stage_env(params={"seed": 7, "train.lr": 0.01, "train.opt.name": "adam"})
    p = mlcycle.params()
    assert p["train.lr"] == 0.01
    assert p["train"]["lr"] == 0.01
    assert p.train.lr == 0.01
    assert p.train.opt.name == "adam"
    assert p["train.opt"]["name"] == "adam"
    assert "train.lr" in p and "train" in p and "train.x" not in p
    assert p == {"seed": 7, "train": {"lr": 0.01, "opt": {"name": "adam"}}}


def test_flat_and_nested_merge(stage_env):
    # `params: [train, train.lr]` gives both a subtree and a dotted key.
    stage_env(params={"train": {"lr": 0.1, "epochs": 3}, "train.lr": 0.1, "data.rows": 10})
    p = mlcycle.params()
    assert p.to_dict() == {"train": {"lr": 0.1, "epochs": 3}, "data": {"rows": 10}}


def test_get_with_default(stage_env):
    stage_env(params={"train": {"lr": 0.01}})
    p = mlcycle.params()
    assert p.get("train.lr") == 0.01
    assert p.get("train.momentum", 0.9) == 0.9
    assert p.get("nope") is None
    assert p.train.get("lr") == 0.01
    assert getattr(p, "nope", "d") == "d"
    assert not hasattr(p, "nope")


def test_values_keep_their_json_types(stage_env):
    stage_env(params={"flag": True, "none": None, "name": "it's", "layers": [64, 32], "big": 10**15})
    p = mlcycle.params()
    assert p.flag is True and p["none"] is None and p.name == "it's" and p.big == 10**15
    layers = p.layers
    assert layers == [64, 32]
    layers.append(1)  # a copy: the params are read-only
    assert p.layers == [64, 32]


def test_read_only(stage_env):
    stage_env(params={"seed": 7})
    p = mlcycle.params()
    with pytest.raises(TypeError):
        p["seed"] = 3  # type: ignore[index]
    with pytest.raises(AttributeError):
        p.seed = 3


def test_missing_key_message(stage_env):
    stage_env(stage="fit", params={"seed": 7, "train": {"lr": 0.01, "epochs": 5}})
    p = mlcycle.params()
    with pytest.raises(KeyError) as e:
        p["train.lrr"]
    err = e.value
    assert isinstance(err, mlcycle.ParamNotFoundError)
    msg = str(err)
    assert msg.startswith("param `train.lrr` is not in the params of stage `fit`")
    assert "Did you mean `train.lr`?" in msg
    assert "`seed`, `train.lr`, `train.epochs`" in msg
    assert "params:" in msg and "${params.train.lrr}" in msg
    assert "receives only the params it declares" in msg
    assert err.key == "train.lrr"


def test_missing_key_through_nested_access_names_full_key(stage_env):
    stage_env(params={"train": {"lr": 0.01}})
    p = mlcycle.params()
    with pytest.raises(AttributeError) as e:
        p.train.epochs
    assert isinstance(e.value, KeyError)
    assert "param `train.epochs`" in str(e.value)
    with pytest.raises(KeyError, match="param `train.epochs`"):
        p["train"]["epochs"]


def test_missing_key_no_suggestion_and_no_params(stage_env):
    stage_env(params={})
    with pytest.raises(KeyError) as e:
        mlcycle.params()["seed"]
    msg = str(e.value)
    assert "Did you mean" not in msg
    assert "received no params" in msg


def test_leaf_is_not_a_subtree(stage_env):
    stage_env(params={"seed": 7})
    with pytest.raises(KeyError, match="param `seed.x`"):
        mlcycle.params()["seed.x"]


def test_params_without_stage_variable(monkeypatch):
    # MLCYCLE_PARAMS alone (set by hand to try a script) is enough.
    monkeypatch.setenv("MLCYCLE_PARAMS", json.dumps({"a.b": 1}))
    p = mlcycle.params()
    assert p.a.b == 1
    with pytest.raises(KeyError, match="params of this stage"):
        p.c


def test_bad_params_json(stage_env, monkeypatch):
    stage_env()
    monkeypatch.setenv("MLCYCLE_PARAMS", "[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        mlcycle.params()
    monkeypatch.setenv("MLCYCLE_PARAMS", "{nope")
    with pytest.raises(ValueError, match="not valid JSON"):
        mlcycle.params()


def test_pickle_and_repr(stage_env):
    stage_env(params={"train": {"lr": 0.01}})
    p = mlcycle.params()
    q = pickle.loads(pickle.dumps(p))
    assert q == p and q.train.lr == 0.01
    assert repr(p) == "Params({'train': {'lr': 0.01}})"
    assert "train" in dir(p)
