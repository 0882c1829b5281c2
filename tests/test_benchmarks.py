"""Every benchmark script runs (``--quick``) and prints at least one ratio against its baseline.

Speed itself is never asserted here: timings on a shared CI machine are noise. The numbers live in
benchmarks/README.md and come from full runs.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("bench_*.py"))


def test_there_are_benchmarks():
    assert SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_quick_run(script):
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    result = subprocess.run([sys.executable, str(script), "--quick"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "ratio" in result.stdout, f"{script.name} printed no ratio:\n{result.stdout}"
