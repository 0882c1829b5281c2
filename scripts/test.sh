#!/usr/bin/env bash
# Set everything up, then lint (ruff, configured in pyproject.toml) and run the whole test suite: unit
# tests, doctests, notebooks (papermill with small budgets, nbval on the concept notebooks) and a
# quick smoke run of every benchmark.
# Extra arguments go to pytest (e.g. scripts/test.sh -k specs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy MPLBACKEND=Agg PYTHONHASHSEED=0
if [ "${CI:-}" = "true" ]; then
    jupyter kernelspec list
fi
echo "[test] ruff check"
python -m ruff check .
workers=${RLBENCH_TEST_WORKERS:-2}
exec python -m pytest -n "$workers" --dist loadscope --durations=15 "$@"
