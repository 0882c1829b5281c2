"""Shared helpers for rlbench benchmarks: best-of-N timing and one-line ratio reports.

Every benchmark script measures rlbench and a baseline *in the same process* and prints a ratio,
so numbers from a loaded or slower machine still compare like with like. Run any script with
``--quick`` for a seconds-long smoke run (the test suite does that); without it, the full run.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Callable

import torch


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs, numbers are noise")
    parser.add_argument("--repeats", type=int, default=None, help="best of N timings (default 5, quick 1)")
    parser.add_argument("--json", type=str, default=None, help="also append results as JSON lines to this file")
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    torch.set_num_threads(1)  # single-thread numbers are comparable across machines and with baselines
    return args


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best wall-clock seconds of ``repeats`` calls of ``fn`` (best-of filters scheduler noise)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def report(name: str, ours: float, baseline: float, unit: str, baseline_name: str,
           target: str = "", higher_is_better: bool = False, json_path: str | None = None) -> float:
    """Print ``ours`` vs ``baseline`` and their ratio; returns the ratio ours / baseline."""
    ratio = ours / baseline if baseline else float("nan")
    line = f"{name}: {ours:.4g} {unit} vs {baseline_name} {baseline:.4g} {unit} -> ratio {ratio:.2f}x"
    if target:
        line += f" (target {target})"
    print(line, flush=True)
    if json_path:
        with open(json_path, "a") as f:
            f.write(json.dumps({"name": name, "ours": ours, "baseline": baseline, "unit": unit,
                                "baseline_name": baseline_name, "ratio": ratio, "target": target,
                                "pid": os.getpid()}) + "\n")
    return ratio
