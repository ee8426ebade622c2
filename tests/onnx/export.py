"""Trains scikit-learn models and exports them to ONNX the way users do,
then writes onnxruntime's predictions on rows.csv for tests/onnx.rs.

Each model is exported with the exporter's defaults (skl2onnx's ZipMap
dictionary output, its default operator sets) and labelled with
mlcycle.save_model; a few go through save_model(estimator) instead. LightGBM
models are exported by onnxmltools when both are installed. A
small network is exported by torch.onnx.export when PyTorch is installed,
and built with onnx.helper (MatMul/Add/Relu/Softmax, as PyTorch emits)
otherwise, so the standard operators are covered either way.

Writes models/<name>.onnx and expect/<name>.json, and prints the names.
"""
import json
import os
import sys
import warnings

import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor
from skl2onnx import to_onnx

import mlcycle

warnings.filterwarnings("ignore")
os.makedirs("models", exist_ok=True)
os.makedirs("expect", exist_ok=True)
FEATURES = ["a", "b", "c"]

rng = np.random.default_rng(0)
n = 300
X = rng.normal(size=(n, 3))
df = pd.DataFrame(X, columns=FEATURES)
df["y"] = 3 * df.a + np.sin(2 * df.b) + 0.1 * rng.normal(size=n)
df["k"] = np.digitize(df.a + 0.5 * df.c, [-0.5, 0.5])
df["yes"] = np.where(df.a + df.c > 0, "yes", "no")
df[FEATURES + ["y"]].to_csv("reg.csv", index=False)
df[FEATURES + ["k"]].to_csv("multi.csv", index=False)
df[FEATURES + ["yes"]].to_csv("binary.csv", index=False)
rows = pd.DataFrame(rng.normal(size=(40, 3)), columns=FEATURES)
rows.to_csv("rows.csv", index=False)
Xf = X.astype(np.float32)


def expect(name, path, task, classes=None):
    s = ort.InferenceSession(path)
    feed = {s.get_inputs()[0].name: rows.to_numpy(np.float32)}
    out = s.run(None, feed)
    if task == "regression":
        values = np.asarray(out[0], dtype=np.float64).reshape(-1).tolist()
        json.dump({"task": task, "values": values}, open(f"expect/{name}.json", "w"))
    else:
        proba = out[1]
        if isinstance(proba, list):  # ZipMap: a list of {class: p}
            proba = [[row[c] for c in classes] for row in proba]
        proba = np.asarray(proba, dtype=np.float64)
        if proba.shape[1] == 1:
            proba = np.hstack([1 - proba, proba])
        json.dump({"task": task, "classes": [str(c) for c in classes], "proba": proba.tolist()},
                  open(f"expect/{name}.json", "w"))
    print(name)


# Exported with skl2onnx's defaults, then labelled.
for name, est, y in [
    ("hgb_reg", HistGradientBoostingRegressor(max_iter=40, random_state=0), df.y),
    ("forest_reg", RandomForestRegressor(n_estimators=15, max_depth=6, random_state=0), df.y),
    ("tree_reg", DecisionTreeRegressor(max_depth=5, random_state=0), df.y),
    ("scaled_ols", make_pipeline(StandardScaler(), LinearRegression()), df.y),
    ("ridge", Ridge(alpha=0.5), df.y),
    ("mlp_reg", MLPRegressor(hidden_layer_sizes=(8,), max_iter=300, random_state=0), df.y),
    ("hgb_multi", HistGradientBoostingClassifier(max_iter=30, random_state=0), df.k),
    ("forest_multi", RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0), df.k),
    ("logistic_multi", LogisticRegression(max_iter=500), df.k),
    ("mlp_multi", MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0), df.k),
    ("hgb_binary", HistGradientBoostingClassifier(max_iter=30, random_state=0), df.yes),
    ("gb_binary", GradientBoostingClassifier(n_estimators=20, random_state=0), df.yes),
    ("logistic_binary", LogisticRegression(), df.yes),
]:
    est.fit(Xf, y)
    onx = to_onnx(est, Xf[:1])
    path = f"models/{name}.onnx"
    open(path, "wb").write(onx.SerializeToString())
    task = "classification" if hasattr(est, "classes_") else "regression"
    mlcycle.save_model(path, path, features=FEATURES, task=task, rows=n)
    expect(name, path, task, getattr(est, "classes_", None))

# Classifiers without probabilities give decision values: labels only.
from sklearn.svm import LinearSVC

for name, est, y in [
    ("linear_svc_binary", LinearSVC(), df.yes),
    ("linear_svc_multi", LinearSVC(), df.k),
]:
    est.fit(Xf, y)
    path = f"models/{name}.onnx"
    mlcycle.save_model(est, path, features=FEATURES, rows=n)
    s = ort.InferenceSession(path)
    labels = s.run(None, {s.get_inputs()[0].name: rows.to_numpy(np.float32)})[0]
    json.dump({"task": "classification", "classes": [mlcycle.class_name(c) for c in est.classes_],
               "labels": [mlcycle.class_name(c) for c in labels]}, open(f"expect/{name}.json", "w"))
    print(name)

# Class names as another tool writes them: 0.0, 1.0, 2.0 for a 0/1/2
# target; and names the table does not have.
raw = open("models/hgb_multi.onnx", "rb").read()
open("models/float_classes.onnx", "wb").write(
    raw + mlcycle._model._metadata_bytes({"mlcycle.classes": '["0.0", "1.0", "2.0"]'}))
open("models/wrong_classes.onnx", "wb").write(
    raw + mlcycle._model._metadata_bytes({"mlcycle.classes": '["a", "b", "c"]'}))

# Missing values: gradient boosting routes NaN down a learned branch.
nan_rows = rows.copy()
nan_rows.loc[::4, "a"] = np.nan
nan_rows.to_csv("rows_nan.csv", index=False)
s = ort.InferenceSession("models/hgb_reg.onnx")
nan_pred = s.run(None, {s.get_inputs()[0].name: nan_rows.to_numpy(np.float32)})[0]
json.dump({"task": "regression", "values": np.asarray(nan_pred, dtype=np.float64).reshape(-1).tolist()},
          open("expect_nan_hgb_reg.json", "w"))

# save_model(estimator): converted by the helper, names from the DataFrame.
for name, est, y in [
    ("helper_hgb_binary", HistGradientBoostingClassifier(max_iter=30, random_state=0), df.yes),
    ("helper_forest_reg", RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0), df.y),
]:
    est.fit(df[FEATURES], y)
    path = mlcycle.save_model(est, f"models/{name}.onnx", rows=n)
    task = "classification" if hasattr(est, "classes_") else "regression"
    expect(name, str(path), task, getattr(est, "classes_", None))

# LightGBM through onnxmltools.
try:
    import lightgbm
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    for name, est, y in [
        ("lightgbm_reg", lightgbm.LGBMRegressor(n_estimators=30, verbose=-1), df.y),
        ("lightgbm_binary", lightgbm.LGBMClassifier(n_estimators=30, verbose=-1), df.yes),
        ("lightgbm_multi", lightgbm.LGBMClassifier(n_estimators=30, verbose=-1), df.k),
    ]:
        est.fit(Xf, y)
        onx = convert_lightgbm(est, initial_types=[("X", FloatTensorType([None, 3]))], target_opset=15)
        path = f"models/{name}.onnx"
        open(path, "wb").write(onx.SerializeToString())
        task = "classification" if hasattr(est, "classes_") else "regression"
        mlcycle.save_model(path, path, features=FEATURES, task=task)
        expect(name, path, task, getattr(est, "classes_", None))
except ImportError:
    print("lightgbm or onnxmltools is not installed: the LightGBM exports are skipped", file=sys.stderr)

# A network as PyTorch exports one.
try:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    path = "models/torch_logits.onnx"
    torch.onnx.export(net, torch.zeros(1, 3), path, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    mlcycle.save_model(path, path, features=FEATURES, task="classification",
                       classes=["0", "1", "2"], scores="logits")
    with torch.no_grad():
        logits = net(torch.tensor(rows.to_numpy(np.float32))).numpy().astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    json.dump({"task": "classification", "classes": ["0", "1", "2"],
               "proba": (e / e.sum(axis=1, keepdims=True)).tolist()},
              open("expect/torch_logits.json", "w"))
    print("torch_logits")
except ImportError:
    print("torch is not installed: the PyTorch export is skipped", file=sys.stderr)

from onnx import TensorProto, helper, numpy_helper

w1 = rng.normal(size=(3, 8)).astype(np.float32)
b1 = rng.normal(size=8).astype(np.float32)
w2 = rng.normal(size=(8, 1)).astype(np.float32)
b2 = rng.normal(size=1).astype(np.float32)
graph = helper.make_graph(
    [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("Gemm", ["h2", "w2", "b2"], ["y"]),
    ],
    "net",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])],
    [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
     numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
path = "models/net_reg.onnx"
mlcycle.save_model(model, path, features=FEATURES, task="regression", target="y")
expect("net_reg", path, "regression")
