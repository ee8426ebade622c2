"""Fit ridge regression with the Python standard library only.

Usage: python3 fit.py TRAIN_CSV MODEL_JSON ALPHA

Every column of TRAIN_CSV except the target is a numeric feature. The
weights solve the normal equations (XᵀX + αI) w = Xᵀy by Gaussian
elimination; X has a column of ones for the intercept, which is not
penalized. The result is written in mlcycle's model format (model.json),
so built-in stages such as evaluate.regression can score it.
"""
import csv
import hashlib
import json
import os
import sys

TARGET = "progression"


def solve(a, b):
    """Solve a·x = b by Gaussian elimination with partial pivoting."""
    n = len(b)
    m = [row[:] + [rhs] for row, rhs in zip(a, b)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            for c in range(col, n + 1):
                m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in reversed(range(n)):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def main():
    train_path, model_path, alpha = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with open(train_path, newline="") as f:
        reader = csv.DictReader(f)
        features = [c for c in reader.fieldnames if c != TARGET]
        rows = list(reader)
    x = [[float(r[c]) for c in features] + [1.0] for r in rows]  # last: intercept
    y = [float(r[TARGET]) for r in rows]

    k = len(features) + 1
    a = [[sum(row[i] * row[j] for row in x) for j in range(k)] for i in range(k)]
    for i in range(k - 1):  # penalize the coefficients, not the intercept
        a[i][i] += alpha
    b = [sum(row[i] * t for row, t in zip(x, y)) for i in range(k)]
    w = solve(a, b)
    coefficients, intercept = w[:-1], w[-1]

    mse = sum((sum(wi * xi for wi, xi in zip(w, row)) - t) ** 2 for row, t in zip(x, y)) / len(y)
    print(f"ridge, alpha {alpha}: {len(y)} rows, {len(features)} features, train RMSE {mse ** 0.5:.2f}")

    # mlcycle's own stages record the BLAKE3 of the training table; BLAKE3
    # is not in the standard library, so this is the SHA-256 of the CSV.
    with open(train_path, "rb") as f:
        data_hash = hashlib.sha256(f.read()).hexdigest()
    model = {
        "format": "mlcycle.model",
        "schema_version": 1,
        "kind": "python.ridge",
        "task": "regression",
        "inputs": [{"name": c, "type": "numeric"} for c in features],
        "ignored": [],
        "transforms": [],
        "features": features,
        "target": TARGET,
        "classes": [],
        "params": {"alpha": alpha},
        "lineage": {
            "stage": os.environ.get("MLCYCLE_STAGE", "fit"),
            "data_hash": data_hash,
            "rows": len(rows),
        },
        "fitted": {"algorithm": "linear", "coefficients": coefficients, "intercept": intercept},
    }
    with open(model_path, "w") as f:
        json.dump(model, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
