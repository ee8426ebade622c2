"""Training: full-batch gradient descent on y = w x + b, params from params.yaml."""
import json


def params(path="params.yaml"):
    """The two-level `train:` mapping of params.yaml (standard library only)."""
    out, section = {}, None
    for line in open(path):
        text = line.split("#", 1)[0].rstrip()
        if not text.strip():
            continue
        key, _, value = text.strip().partition(":")
        if not line.startswith(" "):
            section = key
        elif section == "train":
            out[key] = float(value)
    return out


p = params()
rows = [tuple(map(float, l.split(","))) for l in open("data.csv").read().splitlines()[1:]]
w = b = 0.0
n = len(rows)
for _ in range(int(p["epochs"])):
    gw = sum((w * x + b - y) * x for x, y in rows) * 2 / n
    gb = sum((w * x + b - y) for x, y in rows) * 2 / n
    w -= p["lr"] * gw
    b -= p["lr"] * gb
mse = sum((w * x + b - y) ** 2 for x, y in rows) / n
open("model.txt", "w").write(f"{w!r} {b!r}\n")
json.dump({"mse": round(mse, 10), "w": round(w, 10), "b": round(b, 10)}, open("metrics.json", "w"))
