import json

import pytest

import mlcycle
from mlcycle._model import _metadata_bytes


def minimal_onnx() -> bytes:
    # ModelProto {ir_version: 8} as protobuf, without the onnx package.
    return b"\x08\x08"


def test_metadata_is_appended_and_read_back(tmp_path):
    path = mlcycle.save_model(
        minimal_onnx(), tmp_path / "m.onnx", features=["a", "b"], task="regression", target="y", rows=12
    )
    data = path.read_bytes()
    assert data.startswith(minimal_onnx())
    meta = mlcycle.onnx_metadata(data)
    assert json.loads(meta["mlcycle.features"]) == ["a", "b"]
    assert meta["mlcycle.task"] == "regression"
    assert meta["mlcycle.target"] == "y"
    assert meta["mlcycle.rows"] == "12"
    # Outside a stage no stage name is written.
    assert "mlcycle.stage" not in meta


def test_later_entries_win(tmp_path):
    first = mlcycle.save_model(minimal_onnx(), tmp_path / "m.onnx", task="regression")
    again = mlcycle.save_model(first, tmp_path / "m.onnx", task="classification", classes=[0, 1])
    meta = mlcycle.onnx_metadata(again.read_bytes())
    assert meta["mlcycle.task"] == "classification"
    assert json.loads(meta["mlcycle.classes"]) == ["0", "1"]


def test_default_path_is_the_stage_output_and_the_stage_is_named(stage_env, tmp_path):
    stage_env(stage="fit", outputs={"MODEL": str(tmp_path / "out" / "model.onnx")})
    path = mlcycle.save_model(minimal_onnx(), features=["x"])
    assert path == tmp_path / "out" / "model.onnx"
    assert mlcycle.onnx_metadata(path.read_bytes())["mlcycle.stage"] == "fit"


def test_no_default_path_says_how_to_give_one(stage_env, tmp_path):
    stage_env(outputs={"A": str(tmp_path / "a.onnx"), "B": str(tmp_path / "b.onnx")})
    with pytest.raises(mlcycle.ModelSaveError, match="path="):
        mlcycle.save_model(minimal_onnx())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"task": "clustering"}, "task must be one of regression, classification"),
        ({"scores": "odds"}, "scores must be one of probabilities, logits"),
        ({"features": ["a", "a"]}, "names a column twice"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    with pytest.raises(mlcycle.ModelSaveError, match=message):
        mlcycle.save_model(minimal_onnx(), tmp_path / "m.onnx", **kwargs)
    assert not (tmp_path / "m.onnx").exists()


def test_not_a_model(tmp_path):
    with pytest.raises(mlcycle.ModelSaveError, match="not an ONNX model"):
        mlcycle.save_model(b"\x0f\xff", tmp_path / "m.onnx")
    with pytest.raises(mlcycle.ModelSaveError, match="not list"):
        mlcycle.save_model([1, 2], tmp_path / "m.onnx")


def test_metadata_bytes_are_protobuf_fields():
    # field 14, length-delimited; key field 1, value field 2.
    assert _metadata_bytes({"k": "v"}) == b"\x72\x06\x0a\x01k\x12\x01v"


def test_a_scikit_learn_estimator_is_converted(tmp_path):
    pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(60, 2)), columns=["u", "v"])
    y = np.where(df.u > 0, "hi", "lo")
    est = HistGradientBoostingClassifier(max_iter=5).fit(df, y)
    path = mlcycle.save_model(est, tmp_path / "m.onnx")
    meta = mlcycle.onnx_metadata(path.read_bytes())
    assert json.loads(meta["mlcycle.features"]) == ["u", "v"]
    assert json.loads(meta["mlcycle.classes"]) == ["hi", "lo"]
    assert meta["mlcycle.task"] == "classification"
    assert meta["mlcycle.kind"] == "sklearn.HistGradientBoostingClassifier"
    assert json.loads(meta["mlcycle.params"])["max_iter"] == 5
    # onnxruntime still reads the file, and it agrees with scikit-learn.
    s = ort.InferenceSession(str(path))
    # skl2onnx's default ZipMap output: one {class: probability} per row.
    rows = s.run(None, {"X": df.to_numpy(np.float32)})[1]
    proba = np.array([[row[c] for c in est.classes_] for row in rows])
    assert np.abs(proba - est.predict_proba(df)).max() < 1e-5


def test_class_names_are_written_as_tables_write_them():
    np = pytest.importorskip("numpy")
    assert [mlcycle.class_name(c) for c in np.array([0.0, 1.0, 2.5])] == ["0", "1", "2.5"]
    assert [mlcycle.class_name(c) for c in np.array([False, True])] == ["false", "true"]
    assert [mlcycle.class_name(c) for c in ["cat", 3]] == ["cat", "3"]


def test_features_must_follow_the_fitted_order(tmp_path):
    pytest.importorskip("skl2onnx")
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import LinearRegression

    df = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 2)), columns=["u", "v"])
    est = LinearRegression().fit(df, df.u)
    with pytest.raises(mlcycle.ModelSaveError, match="in the order the estimator was fitted on: u, v"):
        mlcycle.save_model(est, tmp_path / "m.onnx", features=["v", "u"])
    with pytest.raises(mlcycle.ModelSaveError, match="not the columns"):
        mlcycle.save_model(est, tmp_path / "m.onnx", features=["u", "w"])


def test_classifiers_without_probabilities_and_column_transformers_convert(tmp_path):
    pytest.importorskip("skl2onnx")
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(60, 2)), columns=["u", "v"])
    y = (df.u > 0).astype(float)  # a numeric target, as tables hold it
    svc = LinearSVC().fit(df, y)
    meta = mlcycle.onnx_metadata(mlcycle.save_model(svc, tmp_path / "svc.onnx").read_bytes())
    assert meta["mlcycle.scores"] == "decision"
    assert json.loads(meta["mlcycle.classes"]) == ["0", "1"]
    from sklearn.linear_model import LogisticRegression

    ct = make_pipeline(ColumnTransformer([("s", StandardScaler(), ["u", "v"])]), LogisticRegression()).fit(df, y)
    path = mlcycle.save_model(ct, tmp_path / "ct.onnx")
    assert json.loads(mlcycle.onnx_metadata(path.read_bytes())["mlcycle.features"]) == ["u", "v"]


def test_the_file_gets_the_usual_mode(tmp_path):
    import os
    import stat

    path = mlcycle.save_model(minimal_onnx(), tmp_path / "m.onnx")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_outside_a_stage_the_path_must_be_given():
    with pytest.raises(mlcycle.ModelSaveError, match=r"say where to write \(path=\.\.\.\): outside"):
        mlcycle.save_model(minimal_onnx())
