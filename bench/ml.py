#!/usr/bin/env python3
"""ML benchmark: mlcycle's built-in ML stages against scikit-learn (and the
neural network against PyTorch).

Run it through bench/ml.sh, which builds mlcycle (or takes $MLCYCLE) and
prepares bench/.venv-ml (scikit-learn, numpy, pandas, pinned there) and,
for the mlp cases, bench/.venv-torch (PyTorch's CPU build, $TORCH_PYTHON).

Data (generated afresh into bench/work/ml/data/ on every run, numpy, seeded):
  reg-N  20 features x1..x20 on very different scales, y = X·w + b + noise
         (noise sd = half the signal's sd, so R² ≈ 0.8)
  clf-N  the same kind of features; label = 1 if a linear score plus noise
         is > 0, else 0 (noise sd = half the score's sd: accuracy ≈ 0.85)
Each data set is split 80/20 (first rows / last rows) into train.csv and
test.csv; both tools read exactly these files.

Cases, each end to end from the CSV files on disk to a metric on test.csv
(every built-in trainer, and the two data stages on their own):
  linreg      standard scaler + linear regression (OLS)       --rows       R²
  elastic     standard scaler + elastic net (defaults)        --rows       R²
  sgd         standard scaler + SGD regression (defaults)     --slow-rows  R²
  logreg      standard scaler + logistic regression           --rows       accuracy
              (--logistic-rows slow-rows moves it to --slow-rows)
  nb          standard scaler + Gaussian naive Bayes          --rows       accuracy
  tree        standard scaler + decision tree                 --slow-rows  accuracy
  forest      standard scaler + random forest (defaults)      --slow-rows  accuracy
  svm         standard scaler + SVM, Gaussian kernel (defaults) --svm-rows accuracy
  svm_linear  standard scaler + SVM, linear kernel            --svm-rows   accuracy
  kmeans      k-means, 8 clusters, 10 runs (no scaler)        --rows       test inertia
  boost       standard scaler + gradient boosting (classes)   --boost-rows accuracy
  boost_reg   standard scaler + gradient boosting (values)    --boost-rows R²
  boost_na, boost_reg_na  the same, with 10 % of the feature cells missing
              (empty in the CSV; both tools learn where they go)
  mlp         standard scaler + neural network, vs PyTorch    --mlp-rows   accuracy
  mlp_reg     standard scaler + neural network, vs PyTorch    --mlp-rows   R²
  csv         read train.csv (dataset.csv / pandas.read_csv)  --rows       (rows read)
  scale       read train.csv + standard scaler                --rows       (no metric)
The last two time one step each; compare their breakdowns (stage vs phase).
k-means' metric is the inertia of test.csv (sum of squared distances to the
nearest centroid; lower is better), computed by this script from each
tool's centroids, so both are scored by the same code.

mlcycle: one generated workspace per case (bench/work/ml/cases/CASE/mlcycle/)
with dataset.csv (train and test as two stages), preprocess.scale, train.*,
evaluate.*; the time is the whole `mlcycle run --json` process, cold (.mlcycle/,
artifacts/ and mlcycle.lock deleted before every run); the metric is read from
artifacts/evaluate/metrics.json.
scikit-learn: a generated script (bench/work/ml/cases/CASE/sklearn/run.py,
runnable by hand) in a fresh Python process: pandas.read_csv of both files,
make_pipeline(StandardScaler(), MODEL).fit on train, the metric on test.

Matching settings (the constants below):
  logistic: mlcycle `alpha` is the L2 weight in  sum(log-loss) + alpha/2·|w|²
            (linfa-logistic, intercept not penalized); scikit-learn minimizes
            C·sum(log-loss) + 1/2·|w|², so C = 1/alpha exactly. Both L-BFGS,
            at most 100 iterations, tolerance 1e-4.
  tree:     max_depth 10, gini, min_samples_split 2, min_samples_leaf 1.
  elastic:  both at their defaults (alpha 1, l1_ratio 0.5, 1000 iterations,
            tolerance 1e-4: the same objective).
  sgd:      both at their defaults (mlcycle: batches of 32, learning rate
            0.01; scikit-learn: one row a step, invscaling from 0.01; both
            tol 1e-3 with 5 epochs of patience).
  nb:       both at their defaults (var_smoothing 1e-9).
  forest:   both at their defaults (100 trees, unlimited depth, sqrt
            features, bootstrap); scikit-learn with n_jobs=-1 (every core,
            as mlcycle uses).
  svm:      both at their defaults (C 1, Gaussian kernel, gamma 'scale',
            one-vs-one).
  svm_linear: C 1, linear kernel (scikit-learn SVC(kernel='linear')).
  kmeans:   8 clusters, 10 k-means++ runs, 300 iterations, tolerance 1e-4.
  boost:    HistGradientBoosting at its defaults (100 iterations, learning
            rate 0.1, 31 leaves, min_samples_leaf 20, 255 bins), early
            stopping off in both so that both grow every tree.
  mlp:      PyTorch: nn.Sequential(Linear(20, 64), ReLU, Linear(64, 64),
            ReLU, Linear(64, out)), float32, Adam (lr 1e-3), MSELoss on the
            standardised target or CrossEntropyLoss, MLP_EPOCHS epochs of
            batches of MLP_BATCH rows in a seeded random order
            (torch.randperm), torch's default threads; mlcycle train.mlp
            with the same layers, optimiser, loss, epochs and batch size.

Measures per run: wall time (monotonic clock around the child process), peak
RSS ("Maximum resident set size" of /usr/bin/time -v), exit status, the
metric, and the
breakdown each tool reports (mlcycle: per-stage ms from --json; the script:
import / read / fit / score seconds). Runs alternate mlcycle, scikit-learn
within each repeat; figures are medians over --repeat runs.

Peak memory and wait4: ml.json also keeps wait4's ru_maxrss of each child
(`wait4_peak_mib`), but on Linux that figure is floored at this script's own
RSS when it forked (exec keeps the pre-exec high-water mark, and this
process has numpy and pandas loaded: about 100 MiB), so it overstates a small
mlcycle run. /usr/bin/time forks from a tiny process and has no such floor;
wait4 is only the fallback when /usr/bin/time is missing (apt-get install time).

Outputs: bench/results/ml.json (raw runs), bench/results/ml-summary.md
(the Markdown summary, also printed on stdout).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(HERE, "work", "ml")
DATA = os.path.join(WORK, "data")
RESULTS = os.path.join(HERE, "results")
MLCYCLE = os.path.abspath(os.environ.get("MLCYCLE")
                          or os.path.join(ROOT, "target", "release", "mlcycle"))
TIME_BIN = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None

FEATURES = 20
TEST_SHARE = 0.2
SEEDS = {"reg": 1, "clf": 2, "reg_na": 1, "clf_na": 2}
MISSING_SHARE = 0.1     # of the feature cells, in the *_na data sets
ALPHA = 1.0             # mlcycle train.logistic_regression L2 weight; sklearn C = 1 / ALPHA
MAX_ITER = 100
TOL = 1e-4
TREE_DEPTH = 10
TREE_SEED = 42
TOOLS = ["mlcycle", "sklearn"]     # "sklearn": the peer (PyTorch for the mlp cases)
MLP_LAYERS = [64, 64]
MLP_EPOCHS = 10
MLP_BATCH = 128
MLP_LR = 1e-3
TORCH_PYTHON = os.environ.get("TORCH_PYTHON", "")
QUALITY_TOLERANCE_PCT = 1.0   # the target: metric within 1 % of scikit-learn's

RUNS: list[dict] = []
META: dict = {}


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    title: str
    data: str                 # "reg" or "clf"
    rows: int                 # rows generated (train + test)
    metric: str               # key in mlcycle's metrics.json
    trainer: str              # mlcycle stage kind
    trainer_with: dict = field(default_factory=dict)
    sk_import: str = ""
    sk_model: str = ""
    scaler: bool = True
    # "model": data, scaler, trainer, evaluation; "read": read train.csv
    # only; "scale": read it and scale it.
    steps: str = "model"
    # The mlcycle stage and the script phase compared on their own.
    stage_pair: tuple = ("fit", "fit")
    # The peer tool, and the time target (mlcycle / peer, end to end).
    peer: str = "scikit-learn"
    time_target: float = 1.0

    @property
    def higher_is_better(self) -> bool:
        return self.metric != "inertia"

    @property
    def dataset(self) -> str:
        return f"{self.data}-{self.rows}"

    @property
    def target(self) -> str:
        return "y" if self.data.startswith("reg") else "label"

    @property
    def evaluator(self) -> str:
        return "evaluate.regression" if self.data.startswith("reg") else "evaluate.classification"

    @property
    def sk_metric(self) -> str:
        return "r2_score" if self.metric == "r2" else "accuracy_score"

    @property
    def evaluates(self) -> bool:
        return self.steps == "model" and self.metric != "inertia"


CASE_NAMES = ["linreg", "elastic", "sgd", "logreg", "nb", "tree", "forest", "svm",
              "svm_linear", "kmeans", "boost", "boost_reg", "boost_na", "boost_reg_na", "mlp", "mlp_reg", "csv", "scale"]


MLP_WITH = {"layers": MLP_LAYERS, "activation": "relu", "optimizer": "adam",
            "learning_rate": MLP_LR, "epochs": MLP_EPOCHS, "batch_size": MLP_BATCH,
            "seed": TREE_SEED}


def make_cases(a: argparse.Namespace) -> list[Case]:
    logistic_rows = a.rows if a.logistic_rows == "rows" else a.slow_rows
    all_cases = [
        Case("linreg", "standard scaler + linear regression", "reg", a.rows, "r2",
             "train.linear_regression", {},
             "from sklearn.linear_model import LinearRegression", "LinearRegression()"),
        Case("elastic", "standard scaler + elastic net", "reg", a.rows, "r2",
             "train.elastic_net", {},
             "from sklearn.linear_model import ElasticNet", "ElasticNet()"),
        Case("sgd", "standard scaler + SGD regression", "reg", a.slow_rows, "r2",
             "train.sgd_regression", {},
             "from sklearn.linear_model import SGDRegressor", "SGDRegressor()"),
        Case("logreg", "standard scaler + logistic regression", "clf", logistic_rows, "accuracy",
             "train.logistic_regression",
             {"alpha": ALPHA, "max_iterations": MAX_ITER, "tolerance": TOL},
             "from sklearn.linear_model import LogisticRegression",
             f"LogisticRegression(C={1 / ALPHA!r}, max_iter={MAX_ITER}, tol={TOL!r})"),
        Case("nb", "standard scaler + Gaussian naive Bayes", "clf", a.rows, "accuracy",
             "train.naive_bayes", {},
             "from sklearn.naive_bayes import GaussianNB", "GaussianNB()"),
        Case("tree", "standard scaler + decision tree", "clf", a.slow_rows, "accuracy",
             "train.decision_tree",
             {"max_depth": TREE_DEPTH, "criterion": "gini", "min_samples_split": 2,
              "min_samples_leaf": 1, "seed": TREE_SEED},
             "from sklearn.tree import DecisionTreeClassifier",
             f"DecisionTreeClassifier(max_depth={TREE_DEPTH}, criterion='gini', "
             f"min_samples_split=2, min_samples_leaf=1, random_state={TREE_SEED})"),
        Case("forest", "standard scaler + random forest", "clf", a.slow_rows, "accuracy",
             "train.random_forest", {},
             "from sklearn.ensemble import RandomForestClassifier",
             f"RandomForestClassifier(n_jobs=-1, random_state={TREE_SEED})"),
        Case("svm", "standard scaler + SVM (Gaussian kernel)", "clf", a.svm_rows, "accuracy",
             "train.svm", {},
             "from sklearn.svm import SVC", "SVC()"),
        Case("svm_linear", "standard scaler + SVM (linear kernel)", "clf", a.svm_rows, "accuracy",
             "train.svm", {"kernel": "linear"},
             "from sklearn.svm import SVC", "SVC(kernel='linear')"),
        Case("kmeans", "k-means, 8 clusters", "clf", a.rows, "inertia",
             "train.kmeans", {"clusters": 8, "runs": 10, "max_iterations": 300, "tolerance": 1e-4},
             "from sklearn.cluster import KMeans",
             f"KMeans(n_clusters=8, n_init=10, max_iter=300, tol=1e-4, random_state={TREE_SEED})",
             scaler=False),
        Case("boost", "standard scaler + gradient boosting", "clf", a.boost_rows, "accuracy",
             "train.gradient_boosting", {"early_stopping": False},
             "from sklearn.ensemble import HistGradientBoostingClassifier",
             "HistGradientBoostingClassifier(early_stopping=False, random_state=42)"),
        Case("boost_reg", "standard scaler + gradient boosting", "reg", a.boost_rows, "r2",
             "train.gradient_boosting", {"early_stopping": False},
             "from sklearn.ensemble import HistGradientBoostingRegressor",
             "HistGradientBoostingRegressor(early_stopping=False, random_state=42)"),
        Case("boost_na", "standard scaler + gradient boosting, 10 % missing", "clf_na",
             a.boost_rows, "accuracy", "train.gradient_boosting", {"early_stopping": False},
             "from sklearn.ensemble import HistGradientBoostingClassifier",
             "HistGradientBoostingClassifier(early_stopping=False, random_state=42)"),
        Case("boost_reg_na", "standard scaler + gradient boosting, 10 % missing", "reg_na",
             a.boost_rows, "r2", "train.gradient_boosting", {"early_stopping": False},
             "from sklearn.ensemble import HistGradientBoostingRegressor",
             "HistGradientBoostingRegressor(early_stopping=False, random_state=42)"),
        Case("mlp", "standard scaler + neural network", "clf", a.mlp_rows, "accuracy",
             "train.mlp", MLP_WITH, peer="PyTorch", time_target=1.5),
        Case("mlp_reg", "standard scaler + neural network", "reg", a.mlp_rows, "r2",
             "train.mlp", MLP_WITH, peer="PyTorch", time_target=1.5),
        Case("csv", "read train.csv", "clf", a.rows, "rows", "", steps="read",
             stage_pair=("train_data", "read")),
        Case("scale", "read train.csv + standard scaler", "clf", a.rows, "", "", steps="scale",
             stage_pair=("scale", "fit")),
    ]
    return [c for c in all_cases if c.name in a.cases]


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def generate(kind: str, rows: int) -> dict:
    """Write DATA/<kind>-<rows>/{train,test}.csv; return a description."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEEDS[kind])
    mean = rng.uniform(-10, 10, FEATURES)
    scale = 10 ** rng.uniform(-1, 2, FEATURES)          # 0.1 .. 100: scaling matters
    weights = rng.normal(0, 1, FEATURES)
    z = rng.standard_normal((rows, FEATURES))
    x = mean + scale * z
    signal = z @ weights                                   # linear in x as well
    noise = rng.normal(0, 0.5 * signal.std(), rows)
    if kind.endswith("_na"):
        # Missing completely at random: the cells are blanked after the
        # target is drawn, so they carry no signal.
        blank = np.random.default_rng(SEEDS[kind] + 100).random(x.shape) < MISSING_SHARE
        x = np.where(blank, np.nan, x)
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(1, FEATURES + 1)])
    if kind.startswith("reg"):
        df["y"] = 3.0 + signal + noise
    else:
        df["label"] = (signal + noise > 0).astype(np.int64)
    folder = os.path.join(DATA, f"{kind}-{rows}")
    os.makedirs(folder, exist_ok=True)
    n_train = rows - int(round(rows * TEST_SHARE))
    df.iloc[:n_train].to_csv(os.path.join(folder, "train.csv"), index=False, float_format="%.6f")
    df.iloc[n_train:].to_csv(os.path.join(folder, "test.csv"), index=False, float_format="%.6f")
    desc = {"rows": rows, "train_rows": n_train, "test_rows": rows - n_train,
            "train_mib": round(os.path.getsize(os.path.join(folder, "train.csv")) / 2**20, 1),
            "test_mib": round(os.path.getsize(os.path.join(folder, "test.csv")) / 2**20, 1)}
    if kind.startswith("clf"):
        desc["share_of_1"] = round(float(df["label"].mean()), 4)
    return desc


# --------------------------------------------------------------------------
# Workspaces
# --------------------------------------------------------------------------
def case_dir(case: Case, tool: str) -> str:
    return os.path.join(WORK, "cases", case.name, tool)


def data_path(case: Case, split: str, ws: str) -> str:
    """The CSV file, relative to the workspace `ws`."""
    return os.path.relpath(os.path.join(DATA, case.dataset, f"{split}.csv"), ws)


def flow(d: dict) -> str:
    """A YAML flow mapping of simple values."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        return json.dumps(v) if isinstance(v, (str, list)) else (flow(v) if isinstance(v, dict) else repr(v))
    return "{" + ", ".join(f"{k}: {val(v)}" for k, v in d.items()) + "}"


def render_mlcycle(case: Case) -> str:
    ws = case_dir(case, "mlcycle")
    types = {"types": {case.target: "categorical"}} if case.data.startswith("clf") else {}
    lines = [f"# Generated by bench/ml.py: {case.title}, {case.rows} rows ({case.dataset}).",
             f"name: ml-bench-{case.name}",
             "stages:"]
    splits = ("train", "test") if case.steps == "model" else ("train",)
    for split in splits:
        lines += [f"  {split}_data:",
                  "    uses: dataset.csv",
                  f"    with: {flow({'path': data_path(case, split, ws), 'target': case.target, **types})}"]
    if case.steps == "read":
        return "\n".join(lines) + "\n"
    train = "train_data.data"
    if case.scaler:
        lines += ["  scale:",
                  "    uses: preprocess.scale",
                  "    inputs: {data: train_data.data}",
                  "    with: {method: standard}"]
        train = "scale.data"
    if case.steps == "scale":
        return "\n".join(lines) + "\n"
    lines += ["  fit:",
              f"    uses: {case.trainer}",
              f"    inputs: {{train: {train}}}"]
    if case.trainer_with:
        lines.append(f"    with: {flow(case.trainer_with)}")
    if case.evaluates:
        lines += ["  evaluate:",
                  f"    uses: {case.evaluator}",
                  "    inputs: {model: fit.model, test: test_data.data}"]
    return "\n".join(lines) + "\n"


SKLEARN_SCRIPT = '''\
# Generated by bench/ml.py: {title}, {rows} rows ({dataset}), in scikit-learn.
# Run from this folder; writes metrics.json.
import json
import time

t0 = time.perf_counter()
import pandas as pd
from sklearn.metrics import {sk_metric}
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
{sk_import}

t1 = time.perf_counter()
train = pd.read_csv({train!r})
test = pd.read_csv({test!r})
t2 = time.perf_counter()
model = make_pipeline(StandardScaler(), {sk_model})
model.fit(train.drop(columns=[{target!r}]).to_numpy(), train[{target!r}].to_numpy())
t3 = time.perf_counter()
value = {sk_metric}(test[{target!r}].to_numpy(), model.predict(test.drop(columns=[{target!r}]).to_numpy()))
t4 = time.perf_counter()
with open("metrics.json", "w") as f:
    json.dump({{"{metric}": float(value), "rows": len(test),
               "phases_s": {{"import": t1 - t0, "read": t2 - t1, "fit": t3 - t2, "score": t4 - t3}}}}, f, indent=1)
'''


SKLEARN_READ = '''\
# Generated by bench/ml.py: {title}, {rows} rows ({dataset}), in pandas.
# Run from this folder; writes metrics.json.
import json
import time

t0 = time.perf_counter()
import pandas as pd
{imports}
t1 = time.perf_counter()
train = pd.read_csv({train!r})
t2 = time.perf_counter()
{work}
t3 = time.perf_counter()
with open("metrics.json", "w") as f:
    json.dump({{{value}
               "phases_s": {{"import": t1 - t0, "read": t2 - t1, "fit": t3 - t2}}}}, f, indent=1)
'''

SKLEARN_KMEANS = '''\
# Generated by bench/ml.py: {title}, {rows} rows ({dataset}), in scikit-learn.
# Run from this folder; writes metrics.json (the centroids; bench/ml.py
# scores them on test.csv).
import json
import time

t0 = time.perf_counter()
import pandas as pd
{sk_import}

t1 = time.perf_counter()
train = pd.read_csv({train!r})
t2 = time.perf_counter()
model = {sk_model}
model.fit(train.drop(columns=[{target!r}]).to_numpy())
t3 = time.perf_counter()
with open("metrics.json", "w") as f:
    json.dump({{"centroids": model.cluster_centers_.tolist(),
               "features": [c for c in train.columns if c != {target!r}],
               "phases_s": {{"import": t1 - t0, "read": t2 - t1, "fit": t3 - t2}}}}, f, indent=1)
'''


TORCH_SCRIPT = '''\
# Generated by bench/ml.py: {title}, {rows} rows ({dataset}), in PyTorch
# (CPU). Run from this folder; writes metrics.json.
import json
import time

t0 = time.perf_counter()
import numpy as np
import pandas as pd
import torch
from torch import nn
from sklearn.metrics import {sk_metric}
from sklearn.preprocessing import StandardScaler

t1 = time.perf_counter()
train = pd.read_csv({train!r})
test = pd.read_csv({test!r})
t2 = time.perf_counter()
torch.manual_seed({seed})
scaler = StandardScaler()
x = torch.tensor(scaler.fit_transform(train.drop(columns=[{target!r}]).to_numpy()), dtype=torch.float32)
y_raw = train[{target!r}].to_numpy()
classify = {classify}
if classify:
    classes = np.unique(y_raw)
    y = torch.tensor(np.searchsorted(classes, y_raw), dtype=torch.long)
    outputs, loss_fn = len(classes), nn.CrossEntropyLoss()
else:
    # The standardised target, as mlcycle's `standardize_target`.
    mean, sd = y_raw.mean(), y_raw.std()
    y = torch.tensor((y_raw - mean) / sd, dtype=torch.float32).unsqueeze(1)
    outputs, loss_fn = 1, nn.MSELoss()
layers, width = [], x.shape[1]
for w in {layers!r}:
    layers += [nn.Linear(width, w), nn.ReLU()]
    width = w
model = nn.Sequential(*layers, nn.Linear(width, outputs))
opt = torch.optim.Adam(model.parameters(), lr={lr!r})
n = x.shape[0]
for epoch in range({epochs}):
    perm = torch.randperm(n)
    for i in range(0, n, {batch}):
        idx = perm[i:i + {batch}]
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
t3 = time.perf_counter()
with torch.no_grad():
    out = model(torch.tensor(scaler.transform(test.drop(columns=[{target!r}]).to_numpy()), dtype=torch.float32))
pred = classes[out.argmax(1).numpy()] if classify else out.squeeze(1).numpy() * sd + mean
value = {sk_metric}(test[{target!r}].to_numpy(), pred)
t4 = time.perf_counter()
with open("metrics.json", "w") as f:
    json.dump({{"{metric}": float(value), "rows": len(test),
               "phases_s": {{"import": t1 - t0, "read": t2 - t1, "fit": t3 - t2, "score": t4 - t3}}}}, f, indent=1)
'''


def render_sklearn(case: Case) -> str:
    ws = case_dir(case, "sklearn")
    common = dict(title=case.title, rows=case.rows, dataset=case.dataset,
                  target=case.target, train=data_path(case, "train", ws))
    if case.peer == "PyTorch":
        return TORCH_SCRIPT.format(**common, sk_metric=case.sk_metric, metric=case.metric,
                                   test=data_path(case, "test", ws), seed=TREE_SEED,
                                   classify=case.data == "clf", layers=MLP_LAYERS, lr=MLP_LR,
                                   epochs=MLP_EPOCHS, batch=MLP_BATCH)
    if case.steps == "read":
        return SKLEARN_READ.format(**common, imports="", work="",
                                   value='"rows": len(train),')
    if case.steps == "scale":
        return SKLEARN_READ.format(
            **common, imports="from sklearn.preprocessing import StandardScaler",
            work=f"scaled = StandardScaler().fit_transform(train.drop(columns=[{case.target!r}]).to_numpy())",
            value="")
    if case.metric == "inertia":
        return SKLEARN_KMEANS.format(**common, sk_import=case.sk_import, sk_model=case.sk_model)
    return SKLEARN_SCRIPT.format(**common, sk_metric=case.sk_metric, sk_import=case.sk_import,
                                 sk_model=case.sk_model, metric=case.metric,
                                 test=data_path(case, "test", ws))


def test_inertia(case: Case, centroids: list, features: list) -> float:
    """The sum over test.csv's rows of the squared distance to the nearest
    centroid, the features taken in `features` order."""
    import numpy as np
    import pandas as pd
    test = pd.read_csv(os.path.join(DATA, case.dataset, "test.csv"))
    x = test[features].to_numpy()
    c = np.asarray(centroids, dtype=float)
    d = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
    return float(d.min(axis=1).sum())


def prepare(case: Case) -> None:
    for tool, name, text in (("mlcycle", "mlcycle.yaml", render_mlcycle(case)),
                             ("sklearn", "run.py", render_sklearn(case))):
        ws = case_dir(case, tool)
        shutil.rmtree(ws, ignore_errors=True)
        os.makedirs(ws)
        write(os.path.join(ws, name), text)


def make_cold(tool: str, ws: str) -> None:
    """Remove everything a previous run left, so the next run starts cold."""
    names = [".mlcycle", "artifacts", "mlcycle.lock"] if tool == "mlcycle" else ["metrics.json"]
    for n in names:
        p = os.path.join(ws, n)
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)


def command(tool: str, case: Case) -> list[str]:
    if tool == "mlcycle":
        return [MLCYCLE, "run", "--json"]
    if case.peer == "PyTorch":
        return [TORCH_PYTHON, "run.py"]
    return [sys.executable, "run.py"]


# --------------------------------------------------------------------------
# Running and timing
# --------------------------------------------------------------------------
def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def shown(cmd: list[str]) -> str:
    return " ".join("mlcycle" if c == MLCYCLE else ("python" if c in (sys.executable, TORCH_PYTHON) else c)
                    for c in cmd)


def timed(cmd: list[str], cwd: str, stem: str, bound: float) -> dict:
    """Run `cmd` once: wall, peak RSS, exit status. stdout goes to stem.out,
    stderr to stem.err, /usr/bin/time's report to stem.time. The process
    group is killed after `bound` seconds."""
    wrapped = [TIME_BIN, "-v", "-o", stem + ".time", *cmd] if TIME_BIN else cmd
    if os.path.exists(stem + ".time"):
        os.remove(stem + ".time")
    with open(stem + ".out", "wb") as out, open(stem + ".err", "wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(wrapped, cwd=cwd, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        watchdog = threading.Timer(bound, kill)
        watchdog.start()
        # wait4, not proc.wait: it also gives the rusage (ru_maxrss = the
        # largest single process among the child and those it waited for)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        watchdog.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    r = {"wall_s": round(wall, 4), "rc": proc.returncode, "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
         "wait4_peak_mib": round(ru.ru_maxrss / 1024, 1), "peak_mib": None}
    if TIME_BIN and os.path.exists(stem + ".time"):
        with open(stem + ".time") as f:
            text = f.read()
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        if m:
            r["peak_mib"] = round(int(m.group(1)) / 1024, 1)
    if r["peak_mib"] is None:
        r["peak_mib"] = r["wait4_peak_mib"]
    if killed.is_set():
        r["exceeded"] = True
    return r


def tail(path: str, n: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "\n".join(f.read().rstrip().splitlines()[-n:])
    except FileNotFoundError:
        return ""


def run_once(case: Case, tool: str, rep: int, bound: float) -> dict:
    ws = case_dir(case, tool)
    logdir = os.path.join(WORK, "logs")
    os.makedirs(logdir, exist_ok=True)
    stem = os.path.join(logdir, f"{case.name}-{tool}-{rep}")
    make_cold(tool, ws)
    cmd = command(tool, case)
    r = timed(cmd, ws, stem, bound)
    row = {"case": case.name, "tool": tool, "rep": rep, "rows": case.rows,
           "dataset": case.dataset, "cmd": shown(cmd), "cwd": os.path.relpath(ws, ROOT),
           **r, "metric": case.metric, "value": None, "breakdown": {}}
    metrics = os.path.join(ws, "artifacts", "evaluate", "metrics.json") if tool == "mlcycle" \
        else os.path.join(ws, "metrics.json")
    try:
        if tool == "mlcycle" and case.metric == "inertia":
            with open(os.path.join(ws, "artifacts", "fit", "model.json")) as f:
                model = json.load(f)
            features = model["features"]
            row["value"] = test_inertia(case, model["fitted"]["centroids"], features)
        elif tool == "mlcycle" and case.steps != "model":
            row["value"] = None
        else:
            with open(metrics) as f:
                m = json.load(f)
            if tool == "sklearn":
                row["breakdown"] = {k: round(v * 1000, 1) for k, v in m["phases_s"].items()}
            if case.metric == "inertia":
                row["value"] = test_inertia(case, m["centroids"], m["features"])
            else:
                row["value"] = m.get(case.metric)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if tool == "mlcycle":
        try:
            with open(stem + ".out") as f:
                summary = json.load(f)
            row["breakdown"] = {s["stage"]: s.get("duration_ms") for s in summary["stages"]}
            bad = [s["stage"] + ": " + s["outcome"] for s in summary["stages"] if s["outcome"] != "ran"]
            if bad:
                row["stage_outcomes"] = bad
        except (OSError, ValueError, KeyError, TypeError):
            pass
    if row["rc"] != 0 or r.get("exceeded") or (row["value"] is None and case.steps == "model"):
        row["error"] = tail(stem + ".err") or tail(stem + ".out")
    RUNS.append(row)
    save_json()
    value = f"{row['value']:.4f}" if isinstance(row["value"], (int, float)) else "–"
    flag = " EXCEEDED" if r.get("exceeded") else (" FAILED" if "error" in row else "")
    log(f"  {case.name:7s} {tool:8s} #{rep} wall={r['wall_s']:.2f}s peak={r['peak_mib']}MiB "
        f"rc={row['rc']} {case.metric}={value}{flag}")
    if "error" in row:
        log(f"    $ (cd {row['cwd']} && {row['cmd']})\n" + "\n".join("    " + l for l in row["error"].splitlines()))
    return row


def save_json() -> None:
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "ml.json"), "w") as f:
        json.dump({"meta": META, "runs": RUNS}, f, indent=1)


# --------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------
def rows_of(case: str, tool: str, ok_only: bool = True) -> list[dict]:
    return [r for r in RUNS if r["case"] == case and r["tool"] == tool
            and (not ok_only or ("error" not in r))]


def med(case: str, tool: str, key: str) -> float | None:
    vals = [r[key] for r in rows_of(case, tool) if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt_s(x: float | None) -> str:
    return "–" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")


def split_text(case: Case) -> str:
    d = META["data"][case.dataset]
    return f"{d['train_rows']:,} / {d['test_rows']:,}".replace(",", " ")


def comparison(case: Case) -> tuple[float | None, float | None]:
    """(time ratio mlcycle/sklearn, quality difference in % of sklearn's:
    positive when mlcycle's is better, whichever way the metric points)."""
    t = [med(case.name, tool, "wall_s") for tool in TOOLS]
    v = [med(case.name, tool, "value") for tool in TOOLS]
    ratio = t[0] / t[1] if None not in t and t[1] > 0 else None
    if case.steps != "model" or None in v or v[1] == 0:
        return ratio, None
    diff = 100 * (v[0] - v[1]) / abs(v[1])
    return ratio, diff if case.higher_is_better else -diff


def stage_ratio(case: Case) -> float | None:
    """mlcycle's stage time over the script's matching phase (medians)."""
    stage, phase = case.stage_pair
    ml = [r["breakdown"].get(stage) for r in rows_of(case.name, "mlcycle")]
    sk = [r["breakdown"].get(phase) for r in rows_of(case.name, "sklearn")]
    ml = [x for x in ml if x is not None]
    sk = [x for x in sk if x is not None]
    if not ml or not sk or statistics.median(sk) <= 0:
        return None
    return statistics.median(ml) / statistics.median(sk)


def main_table(cases: list[Case]) -> list[str]:
    out = ["| case | rows (train / test) | tool | time s (median) | min–max | peak RSS MiB | metric | "
           "time mlcycle / peer | metric diff % |",
           "|---|---|---|---|---|---|---|---|---|"]
    for c in cases:
        ratio, diff = comparison(c)
        for tool in TOOLS:
            ok, every = rows_of(c.name, tool), rows_of(c.name, tool, ok_only=False)
            walls = [r["wall_s"] for r in ok]
            peaks = [r["peak_mib"] for r in ok if r["peak_mib"] is not None]
            value = med(c.name, tool, "value")
            failed = len(every) - len(ok)
            label = c.peer if tool == "sklearn" else tool
            cells = [f"{c.name}: {c.title}", split_text(c),
                     label + (f" ({failed} of {len(every)} runs failed)" if failed else ""),
                     fmt_s(statistics.median(walls)) if walls else "FAILED",
                     f"{min(walls):.3f}–{max(walls):.3f}" if walls else "–",
                     f"{max(peaks):.0f}" if peaks else "–",
                     (f"{c.metric} {value:.6g}" if value is not None else f"{c.metric} –")
                     if c.metric else "–"]
            if tool == "mlcycle":
                cells += [f"{ratio:.2f}×" if ratio is not None else "–",
                          f"{diff:+.2f}" if diff is not None else "–"]
            else:
                cells += ["", ""]
            out.append("| " + " | ".join(cells) + " |")
    return out


def targets_table(cases: list[Case]) -> list[str]:
    out = ["| case | time, end to end | stage / phase time | quality (+: mlcycle better) | result |",
           "|---|---|---|---|---|"]
    for c in cases:
        ratio, diff = comparison(c)
        sr = stage_ratio(c)
        fast = None if ratio is None else ratio <= c.time_target
        # Better than scikit-learn is not a failure.
        good = True if c.steps != "model" else (None if diff is None else diff >= -QUALITY_TOLERANCE_PCT)
        verdict = "not measured" if None in (fast, good) else ("PASS" if fast and good else "FAIL")
        if rows_of(c.name, "mlcycle", ok_only=False) and not rows_of(c.name, "mlcycle"):
            verdict = "FAIL (every mlcycle run failed, see below)"
        stage, phase = c.stage_pair
        out.append(f"| {c.name} | {'–' if ratio is None else f'{ratio:.2f}× {c.peer} (target ≤ {c.time_target}×)'} | "
                   f"{'–' if sr is None else f'{sr:.2f}× ({stage} / {phase})'} | "
                   f"{'–' if diff is None else f'{diff:+.2f} %'} | {verdict} |")
    return out


def breakdown_table(cases: list[Case]) -> list[str]:
    out = ["| case | tool | breakdown, ms (median) |", "|---|---|---|"]
    for c in cases:
        for tool in TOOLS:
            ok = rows_of(c.name, tool)
            keys = list(ok[0]["breakdown"]) if ok else []
            parts = []
            for k in keys:
                vals = [r["breakdown"].get(k) for r in ok if r["breakdown"].get(k) is not None]
                if vals:
                    parts.append(f"{k} {statistics.median(vals):,.0f}".replace(",", " "))
            out.append(f"| {c.name} | {c.peer if tool == 'sklearn' else tool} | {', '.join(parts) or '–'} |")
    return out


def failures() -> list[str]:
    out = []
    for r in RUNS:
        if "error" in r:
            out += [f"- {r['case']} / {r['tool']} run {r['rep']}: rc={r['rc']}"
                    + (" (killed at the bound)" if r.get("exceeded") else ""),
                    f"  `cd {r['cwd']} && {r['cmd']}`", "", "  ```",
                    *["  " + line for line in (r["error"] or "(no output)").splitlines()], "  ```"]
    return out


def summarize(cases: list[Case]) -> str:
    m, v, a = META["machine"], META["versions"], META["args"]
    logistic = next((c for c in cases if c.name == "logreg"), None)
    parts = [
        "# mlcycle ML stages against scikit-learn",
        "",
        f"Run {META['date_utc']} with `{' '.join(META['argv'])}`; total {META.get('total_s', '?')} s.",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB RAM, {m['platform']}; "
        f"load average {m['loadavg_start'][0]:.2f} at start, {META.get('loadavg_end', [0])[0]:.2f} at end.",
        "Versions: " + "; ".join(v.values()) + ".",
        "",
        f"Data: {FEATURES} features, numpy-seeded, split 80/20 into train.csv / test.csv read by both tools "
        f"(page cache warm). Each figure is the median of {a['repeat']} cold run(s) of the whole process: "
        "`mlcycle run` with .mlcycle/, artifacts/ and mlcycle.lock removed first, and a fresh "
        "`python run.py` (imports included). Peak RSS: the largest of the runs, "
        + ("from `/usr/bin/time -v`." if TIME_BIN else
           "from wait4's ru_maxrss (/usr/bin/time missing: floored at the benchmark's own RSS, "
           "about 100 MiB, see bench/ml.py)."),
        "",
        "Settings (see bench/ml.py's docstring for each case): scaler = standard (fit on train "
        "only) in every model case but k-means; logistic regression "
        f"alpha {ALPHA} (mlcycle) ↔ C = 1/alpha = {1 / ALPHA} (scikit-learn), L-BFGS, "
        f"max {MAX_ITER} iterations, tolerance {TOL}; decision tree max_depth {TREE_DEPTH}, gini."
        + (f" Logistic regression runs on {'--rows' if a['logistic_rows'] == 'rows' else '--slow-rows'} "
           f"({logistic.rows:,} rows).".replace(",", " ") if logistic else ""),
        "",
        "## Side by side",
        "", *main_table(cases), "",
        "## Targets (every built-in stage at least as fast as scikit-learn end to end, the network "
        "within 1.5× PyTorch; quality within 1 %)",
        "",
        "k-means' quality is the inertia of test.csv (lower is better; shown as + when mlcycle's is "
        "lower). csv and scale have no quality; their stage / phase column compares the step alone.",
        "", *targets_table(cases), "",
        "## Where the time goes",
        "",
        "mlcycle: each stage's duration from `mlcycle run --json` (train and test data are read in "
        "parallel); scikit-learn: the script's phases.",
        "", *breakdown_table(cases), "",
    ]
    fails = failures()
    if fails:
        parts += ["## Failed runs", "", *fails, ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------
def version_of(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
        return (out.stdout.strip() or out.stderr.strip()).splitlines()[0] if out.returncode == 0 else "unavailable"
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unavailable"


def mlcycle_version() -> str:
    head = version_of(["git", "rev-parse", "--short", "HEAD"])
    if MLCYCLE != os.path.join(ROOT, "target", "release", "mlcycle"):
        return f"{version_of([MLCYCLE, '--version'])} (binary given by $MLCYCLE: {MLCYCLE}; checkout at {head})"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return f"{version_of([MLCYCLE, '--version'])} (release, built from {head}{' + local changes' if dirty else ''})"


def python_versions() -> dict:
    from importlib.metadata import version
    out = {p: f"{p} {version(p)}" for p in ("scikit-learn", "numpy", "pandas", "scipy")}
    if TORCH_PYTHON:
        out["torch"] = "torch " + version_of([TORCH_PYTHON, "-c", "import torch; print(torch.__version__)"])
    return out


def machine() -> dict:
    m = {"cores": os.cpu_count(), "platform": platform.platform(), "loadavg_start": os.getloadavg()}
    with open("/proc/cpuinfo") as f:
        m["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        m["mem_gib"] = round(int(f.readline().split()[1]) / (1 << 20), 1)
    return m


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="mlcycle ML stages against scikit-learn (see the module docstring)")
    ap.add_argument("--rows", type=int, default=1_000_000,
                    help="rows generated for linreg and logreg, train + test (default 1000000)")
    ap.add_argument("--slow-rows", type=int, default=100_000,
                    help="rows for the decision tree, train + test (default 100000)")
    ap.add_argument("--svm-rows", type=int, default=10_000,
                    help="rows for the two SVM cases, train + test (default 10000; a kernel SVM is "
                         "quadratic in rows)")
    ap.add_argument("--boost-rows", type=int, default=200_000,
                    help="rows for the two gradient-boosting cases (default 200000)")
    ap.add_argument("--mlp-rows", type=int, default=100_000,
                    help="rows for the two neural-network cases (default 100000)")
    ap.add_argument("--repeat", type=int, default=3, help="cold runs per case and tool (default 3)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: --rows 20000 --slow-rows 5000 --svm-rows 2000 --repeat 1")
    ap.add_argument("--logistic-rows", choices=["rows", "slow-rows"], default="rows",
                    help="which size logistic regression runs on (default rows)")
    ap.add_argument("--cases", default=",".join(CASE_NAMES),
                    help="comma list of " + ", ".join(CASE_NAMES) + " (default all)")
    ap.add_argument("--bound", type=float, default=3600,
                    help="seconds one run may take before it is killed (default 3600)")
    a = ap.parse_args()
    if a.quick:
        a.rows, a.slow_rows, a.svm_rows, a.repeat = 20_000, 5_000, 2_000, 1
        a.boost_rows, a.mlp_rows = 20_000, 5_000
    a.cases = [c for c in a.cases.split(",") if c]
    for c in a.cases:
        if c not in CASE_NAMES:
            ap.error(f"unknown case {c!r} (expected one of {', '.join(CASE_NAMES)})")
    if any(c.startswith("mlp") for c in a.cases) and not (TORCH_PYTHON and os.access(TORCH_PYTHON, os.X_OK)):
        ap.error("the mlp cases need PyTorch: run through bench/ml.sh, which sets $TORCH_PYTHON")
    if min(a.rows, a.slow_rows, a.svm_rows, a.boost_rows, a.mlp_rows) < 10 or a.repeat < 1:
        ap.error("--rows, --slow-rows and --svm-rows must be at least 10, --repeat at least 1")
    return a


def main() -> None:
    a = parse_args()
    if not os.access(MLCYCLE, os.X_OK):
        raise SystemExit(f"mlcycle binary not found: {MLCYCLE} (run through bench/ml.sh)")
    t0 = time.monotonic()
    cases = make_cases(a)
    META.update({"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "argv": ["bench/ml.sh", *sys.argv[1:]], "args": vars(a),
                 "machine": machine(),
                 "versions": {"mlcycle": mlcycle_version(), **python_versions(),
                              "python": "Python " + platform.python_version(),
                              "time": "peak RSS by " + (TIME_BIN + " -v" if TIME_BIN else "wait4")},
                 "settings": {"alpha": ALPHA, "C": 1 / ALPHA, "max_iter": MAX_ITER, "tol": TOL,
                              "tree_max_depth": TREE_DEPTH, "features": FEATURES,
                              "test_share": TEST_SHARE, "seeds": SEEDS},
                 "data": {}})
    log(json.dumps({k: META[k] for k in ("argv", "versions")}))
    for old in ("data", "cases", "logs"):       # nothing from an earlier run is reused
        shutil.rmtree(os.path.join(WORK, old), ignore_errors=True)
    for c in cases:
        if c.dataset not in META["data"]:
            g0 = time.monotonic()
            META["data"][c.dataset] = generate(c.data, c.rows)
            log(f"generated {c.dataset}: {META['data'][c.dataset]} in {time.monotonic() - g0:.1f} s")
    for c in cases:
        prepare(c)
    for c in cases:
        log(f"== {c.name}: {c.title}, {c.rows} rows")
        for rep in range(1, a.repeat + 1):
            for tool in TOOLS:
                run_once(c, tool, rep, a.bound)
    META["loadavg_end"] = os.getloadavg()
    META["total_s"] = round(time.monotonic() - t0, 1)
    save_json()
    summary = summarize(cases)
    write(os.path.join(RESULTS, "ml-summary.md"), summary)
    print(summary)
    log(f"total {META['total_s']} s -> bench/results/ml-summary.md, bench/results/ml.json")


if __name__ == "__main__":
    main()
