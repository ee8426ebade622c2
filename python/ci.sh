#!/usr/bin/env bash
# Test the mlcycle Python package in a fresh virtual environment.
#
#   MLCYCLE_BIN=target/release/mlcycle python/ci.sh [VENV_DIR] [PYTEST_ARGS...]
#
# Creates VENV_DIR (default: a new temporary folder), installs
# './python[test]' from the repository root and runs pytest on the installed
# package. The end-to-end test runs pipelines with the binary in MLCYCLE_BIN
# and is skipped when it is unset. Exits non-zero when anything fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-python3}"

venv="${1:-}"
if [ -z "$venv" ]; then
    venv="$(mktemp -d "${TMPDIR:-/tmp}/mlcycle-python.XXXXXX")/venv"
fi
shift || true

bin="${MLCYCLE_BIN:-}"
if [ -n "$bin" ]; then
    case "$bin" in
        /*) ;;
        */*) bin="$PWD/$bin" ;;          # relative to where ci.sh was started
        *) bin="$(command -v "$bin" || echo "$bin")" ;;
    esac
    echo "ci.sh: end-to-end tests with MLCYCLE_BIN=$bin"
else
    echo "ci.sh: MLCYCLE_BIN is not set: the end-to-end tests will be skipped"
fi

echo "ci.sh: virtual environment in $venv"
"$python" -m venv "$venv"
cd "$root"
# setuptools builds in python/build/; a stale copy there could hold files
# since removed from src/.
rm -rf "$here/build"
"$venv/bin/python" -m pip install --quiet './python[test]'

# From python/, whose top level holds no `mlcycle` folder: the tests import
# the installed package, not the source tree.
cd "$here"
MLCYCLE_BIN="$bin" "$venv/bin/python" -m pytest tests -p no:cacheprovider "$@"
