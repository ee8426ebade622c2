#!/usr/bin/env bash
# Slurm driver benchmark: plan and submit an N-stage pipeline (default
# 10 000) with `mlcycle run --executor slurm --detach` against a fake
# `sbatch` that records its arguments and prints a job id, and report the
# driver's time and memory per stage. No cluster needed. See docs/slurm.md.
#
# Usage: bash bench/slurm.sh [N] [REPEATS]
#   MLCYCLE=path/to/mlcycle   use this binary instead of `cargo build --release`
# Needs /usr/bin/time (GNU time) for peak memory.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
N="${1:-10000}"
REPEATS="${2:-3}"
if [ -z "${MLCYCLE:-}" ]; then
  (cd "$ROOT" && cargo build --release)
  MLCYCLE="$ROOT/target/release/mlcycle"
fi
WORK="$HERE/work/slurm"
rm -rf "$WORK"
mkdir -p "$WORK/bin" "$HERE/results"

# The fake sbatch: one line per call with its arguments; its PID is the job id.
cat > "$WORK/bin/sbatch" <<'SH'
#!/bin/sh
echo "$*" >> "$FAKE_SBATCH_LOG"
echo $$
SH
chmod +x "$WORK/bin/sbatch"
export MLCYCLE_SBATCH="$WORK/bin/sbatch" FAKE_SBATCH_LOG="$WORK/sbatch.log"

# A chain of N stages (the worst case for dependencies: each waits on one job).
gen() {
  local dir="$1" n="$2"
  mkdir -p "$dir"
  {
    echo "name: chain-$n"
    echo "resources: {time: 10, mem: 1G}"
    echo "stages:"
    echo "  s0:"
    echo "    run: echo 0 > \${outputs.o}"
    echo "    outs: [out/s0.txt]"
    for i in $(seq 1 $((n - 1))); do
      echo "  s$i:"
      echo "    run: cat \${inputs.s$((i - 1))} > \${outputs.o}"
      echo "    deps: [{s$((i - 1)): out/s$((i - 1)).txt}]"
      echo "    outs: [{o: out/s$i.txt}]"
    done
  } > "$dir/mlcycle.yaml"
  sed -i 's/^    outs: \[out\/s0.txt\]$/    outs: [{o: out\/s0.txt}]/' "$dir/mlcycle.yaml"
}

measure() { # dir -> "seconds maxrss_kb"
  local dir="$1"
  rm -rf "$dir/.mlcycle" "$dir/mlcycle.lock" "$FAKE_SBATCH_LOG"
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$MLCYCLE" -C "$dir" run --executor slurm --detach -q > /dev/null
  cat "$WORK/time.txt"
}

gen "$WORK/small" 10
gen "$WORK/big" "$N"
# One validation run, untimed, to fill the page cache.
"$MLCYCLE" -C "$WORK/big" validate > /dev/null

small=(); big=()
for _ in $(seq 1 "$REPEATS"); do
  small+=("$(measure "$WORK/small")")
  big+=("$(measure "$WORK/big")")
  calls=$(wc -l < "$FAKE_SBATCH_LOG")
  [ "$calls" = "$N" ] || { echo "expected $N sbatch calls, saw $calls" >&2; exit 1; }
done
# What one call of the fake sbatch costs by itself (process start-up).
t0=$(date +%s.%N)
for _ in $(seq 1 1000); do "$WORK/bin/sbatch" --wrap=x > /dev/null; done
t1=$(date +%s.%N)

python3 - "$N" "$t0" "$t1" "${small[@]}" -- "${big[@]}" <<'PY' | tee "$HERE/results/slurm-summary.md"
import statistics, sys
n = int(sys.argv[1]); t0, t1 = float(sys.argv[2]), float(sys.argv[3])
rest = sys.argv[4:]; cut = rest.index("--")
small = [tuple(map(float, x.split())) for x in rest[:cut]]
big = [tuple(map(float, x.split())) for x in rest[cut + 1:]]
med = lambda xs: statistics.median(xs)
t_big, t_small = med([b[0] for b in big]), med([s[0] for s in small])
m_big, m_small = max(b[1] for b in big), max(s[1] for s in small)
spawn = (t1 - t0) / 1000
per_stage = (t_big - t_small) / (n - 10)
driver = per_stage - spawn
mem = (m_big - m_small) / (n - 10)
print(f"# Slurm driver, {n} stages against a fake sbatch ({len(big)} runs, medians)\n")
print("| measure | value |\n|---|---|")
print(f"| wall time, {n}-stage chain, plan + submit (median) | {t_big:.2f} s |")
print(f"| wall time, 10-stage chain (median) | {t_small:.3f} s |")
print(f"| per stage, whole driver (difference / {n - 10}) | {per_stage * 1000:.3f} ms |")
print(f"| of which one fake-sbatch process (measured alone) | {spawn * 1000:.3f} ms |")
print(f"| per stage, driver without the sbatch process | {driver * 1000:.3f} ms |")
print(f"| peak RSS, {n} stages / 10 stages | {m_big / 1024:.1f} MiB / {m_small / 1024:.1f} MiB |")
print(f"| memory per stage (difference / {n - 10}) | {mem:.2f} KiB |")
PY
