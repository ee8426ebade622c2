"""Data preparation: deliberately slow (2 s), then 500 seeded rows y = 3x + 1 + noise."""
import os
import random
import time

# Counts executions across tools and their temp copies (an absolute path).
if os.environ.get("SWEEP_COUNT"):
    with open(os.environ["SWEEP_COUNT"], "a") as f:
        f.write("prep\n")
time.sleep(2)
rng = random.Random(7)
with open("data.csv", "w") as f:
    f.write("x,y\n")
    for _ in range(500):
        x = rng.uniform(-1, 1)
        f.write(f"{x:.6f},{3 * x + 1 + rng.gauss(0, 0.1):.6f}\n")
