"""Cross-validation summary: the mean and spread of each fold's metrics.

Usage: python3 cv_mean.py OUT FOLD_METRICS...  (one metrics file per fold, as
`evaluate.regression` writes them). Writes the mean and standard deviation of
RMSE, MAE and R² to OUT.
"""
import json
import statistics
import sys

out_path, paths = sys.argv[1], sys.argv[2:]
folds = [json.load(open(p)) for p in paths]
out = {}
for key in ("rmse", "mae", "r2"):
    values = [f[key] for f in folds]
    out[f"{key}_mean"] = statistics.fmean(values)
    out[f"{key}_std"] = statistics.stdev(values)
out["folds"] = len(folds)
with open(out_path, "w") as f:
    json.dump(out, f, indent=2)
