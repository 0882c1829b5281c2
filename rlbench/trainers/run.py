"""A training run's record: the clock, periodic evaluation and early stop, logs, and the run's files.

:class:`RunTracker` does the chores around a hand-written training loop (the recipes' loops in
:mod:`rlbench.recipes` use it) so the loop itself shows only the algorithm; :class:`TrainResults` is
what it returns. Training returns come from an :class:`~rlbench.collectors.EpisodeReturns` (a
collector's ``collector.episodes``); evaluations from a callable, e.g. :func:`rlbench.recipes.evaluate`
bound to an env name. The files of a run (checkpoint, logs, curve, results, HTML report) are all
decided here and in :mod:`rlbench.trainers.report`.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .checkpoint import save_checkpoint
from .loggers import CSVLogger
from .report import write_report
from .results import TrainResults

__all__ = ["TrainResults", "RunTracker", "COMMON_FIELDS", "FINAL_EVAL_SEED_OFFSET", "PERIODIC_EVAL_SEED_OFFSET",
           "config_to_dict", "make_run_dir"]

COMMON_FIELDS = ("env", "frames", "seed", "eval_episodes", "eval_every", "target_return", "out_dir")
"""The config fields a :class:`RunTracker` reads (every recipe's ``Config`` has them; the CLI and
``benchmarks/learning.py`` set them by name)."""

FINAL_EVAL_SEED_OFFSET = 10_000
"""The final evaluation's env seed is ``config.seed`` plus this (training envs use ``config.seed``)."""
PERIODIC_EVAL_SEED_OFFSET = 20_000
"""Periodic evaluations (which may stop a run early) use other start states than the final one."""


def config_to_dict(config) -> dict[str, Any]:
    """A JSON-friendly dict of a Config dataclass (tuples become lists).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Config:
        ...     lr: float = 1e-3
        ...     hidden_sizes: tuple = (64, 64)
        >>> config_to_dict(Config())
        {'lr': 0.001, 'hidden_sizes': [64, 64]}
    """
    return json.loads(json.dumps(dataclasses.asdict(config)))


class RunTracker:
    """The chores around a training loop: clock, training returns, periodic evaluation, early stop, logs, files.

    The clock counts training time only: evaluations pause it, so ``train_time`` and ``solved_time``
    compare with other libraries' "training time". Call :meth:`step` once per iteration and
    :meth:`finish` at the end.

    Args:
        algo: the algorithm's name (for results and file names).
        config: the run's Config dataclass; it must have the :data:`COMMON_FIELDS`.
        logger: anything with ``log_scalar(name, value, step)``; ``None`` and ``config.out_dir``
            set: a CSV logger in the run directory.
        evaluate: ``evaluate(policy, num_episodes, seed=...) -> (mean, std)``, e.g.
            ``functools.partial(rlbench.recipes.evaluate, config.env)``. Periodic evaluations (every
            ``config.eval_every`` frames) use ``seed=config.seed + PERIODIC_EVAL_SEED_OFFSET``, the final
            one ``config.seed + FINAL_EVAL_SEED_OFFSET``.
        episodes: the :class:`~rlbench.collectors.EpisodeReturns` of the training episodes (a
            collector's ``collector.episodes``): each :meth:`step` logs the mean of its recent
            returns as ``"train/episode_return"`` and adds it to the training curve.
        video: ``video(policy, logger, step)``, called by :meth:`finish` after the final evaluation (clock
            paused) to film the policy through the run's logger (e.g.
            :func:`rlbench.recipes.video.video_recorder`); ``None``: no video.

    Example:
        >>> from dataclasses import dataclass
        >>> from functools import partial
        >>> from tensordict.nn import TensorDictModule
        >>> from rlbench.recipes import evaluate
        >>> @dataclass
        ... class Config:
        ...     env: str = "native:CartPole"; frames: int = 100; seed: int = 0; eval_episodes: int = 2
        ...     eval_every: int = 50; target_return: float | None = None; out_dir: str | None = None
        >>> run = RunTracker("demo", Config(), evaluate=partial(evaluate, "native:CartPole"))
        >>> policy = TensorDictModule(lambda o: (o[..., 2] > 0).long(), ["observation"], ["action"])
        >>> run.step(50, policy, {"loss": 1.0})  # evaluates at 50 frames; False: no target, keep going
        False
        >>> results = run.finish(policy, 100, models={})
        >>> [row["frames"] for row in results.curve]
        [50, 100]
    """

    def __init__(self, algo: str, config, logger=None, *, evaluate: Callable, episodes=None,
                 video: Callable | None = None):
        missing = [f for f in COMMON_FIELDS if not hasattr(config, f)]
        if missing:
            raise TypeError(f"{algo} Config lacks the common fields {missing} (see rlbench.trainers.run.COMMON_FIELDS)")
        if not callable(evaluate):
            raise TypeError(f"RunTracker: evaluate must be a callable (policy, num_episodes, seed=...) -> (mean, std), "
                            f"got {type(evaluate).__name__}")
        self.algo, self.config = algo, config
        if video is not None and not callable(video):
            raise TypeError(f"RunTracker: video must be None or a callable (policy, logger, step), "
                            f"got {type(video).__name__}")
        self.evaluate_fn, self.episodes, self.video_fn = evaluate, episodes, video
        self.run_dir = make_run_dir(config.out_dir, algo, config.env) if config.out_dir else None
        self._owns_logger = False
        if logger is None and self.run_dir is not None:
            logger = _csv_logger(self.run_dir, config)
            self._owns_logger = True
        self.logger = logger
        self.curve: list[dict] = []
        self.train_curve: list[tuple[int, float]] = []
        self.solved_frames = self.solved_time = None
        self._next_eval = config.eval_every if config.eval_every and config.eval_every > 0 else math.inf
        self._start = time.perf_counter()
        self._paused = 0.0

    @property
    def train_time(self) -> float:
        """Seconds since the start, minus time spent evaluating."""
        return time.perf_counter() - self._start - self._paused

    def log(self, values: dict, frames: int) -> None:
        """Send scalars to the logger (if any) at step ``frames``."""
        if self.logger is None:
            return
        for name, value in values.items():
            value = value.detach() if isinstance(value, torch.Tensor) else value
            self.logger.log_scalar(name, float(value), int(frames))

    def _timed_evaluation(self, policy, seed: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        mean, std = self.evaluate_fn(policy, self.config.eval_episodes, seed=seed)
        self._paused += time.perf_counter() - t0
        return float(mean), float(std)

    def evaluate(self, policy, frames: int) -> tuple[float, float]:
        """Run a periodic evaluation now (clock paused); record it in the curve and the log."""
        cfg = self.config
        mean, std = self._timed_evaluation(policy, cfg.seed + PERIODIC_EVAL_SEED_OFFSET)
        row = {"frames": int(frames), "train_time": round(self.train_time, 4), "eval_return": mean, "eval_std": std}
        self.curve.append(row)
        self.log({"eval/return": mean, "eval/return_std": std}, frames)
        if cfg.target_return is not None and mean >= cfg.target_return and self.solved_frames is None:
            self.solved_frames, self.solved_time = int(frames), row["train_time"]
        return mean, std

    def step(self, frames: int, policy, values: dict | None = None) -> bool:
        """Call once per iteration: logs ``values``, evaluates when due. True means stop (target reached).

        The recent training return (``episodes.mean()``) is logged as ``"train/episode_return"``
        and drawn in the report once an episode has ended (a value given under that name wins).
        """
        values = dict(values or {})
        if self.episodes is not None and "train/episode_return" not in values:
            recent = self.episodes.mean()
            if recent is not None:
                values["train/episode_return"] = recent
        if "train/episode_return" in values:
            self.train_curve.append((int(frames), float(values["train/episode_return"])))
        if values:
            self.log(values, frames)
        if frames >= self._next_eval:
            while self._next_eval <= frames:
                self._next_eval += self.config.eval_every
            self.evaluate(policy, frames)
        return self.solved_frames is not None

    def finish(self, policy, frames: int, models: dict, optimizer=None) -> TrainResults:
        """Final evaluation on fresh episodes, then results and run files.

        The final evaluation uses other start states (seed ``config.seed + FINAL_EVAL_SEED_OFFSET``)
        than the periodic ones (``+ PERIODIC_EVAL_SEED_OFFSET``), so a run stopped early because one
        evaluation reached the target reports an independent measurement, not the selected one. It is
        appended to the curve only when no periodic evaluation happened at ``frames``.

        Args:
            policy: the policy to evaluate.
            frames: env steps collected.
            models: modules saved in the checkpoint, by name (e.g. ``{"actor": actor}``).
            optimizer: saved in the checkpoint too, when given.
        """
        cfg = self.config
        mean, std = self._timed_evaluation(policy, cfg.seed + FINAL_EVAL_SEED_OFFSET)
        if not self.curve or self.curve[-1]["frames"] != int(frames):
            self.curve.append({"frames": int(frames), "train_time": round(self.train_time, 4), "eval_return": mean,
                               "eval_std": std})
            self.log({"eval/return": mean, "eval/return_std": std}, frames)
        self.log({"eval/final_return": mean}, frames)
        if self.video_fn is not None:
            t0 = time.perf_counter()
            self.video_fn(policy, self.logger, int(frames))
            self._paused += time.perf_counter() - t0
        results = TrainResults(
            algo=self.algo, env=cfg.env, final_eval_return=mean,
            final_eval_std=std, eval_episodes=cfg.eval_episodes, frames=int(frames),
            wall_time=time.perf_counter() - self._start, train_time=self.train_time, curve=list(self.curve),
            train_curve=list(self.train_curve),
            solved_frames=self.solved_frames, solved_time=self.solved_time,
            run_dir=str(self.run_dir) if self.run_dir else None, config=config_to_dict(cfg))
        if self._owns_logger and hasattr(self.logger, "close"):
            self.logger.close()
        if self.run_dir is not None:
            results.files = _write_run_files(self.run_dir, results, models, optimizer)
        return results


# ---------------------------------------------------------------------------------------- files
def make_run_dir(out_dir: str | os.PathLike, algo: str, env: str) -> Path:
    """Create and return ``out_dir/<algo>-<env>-<YYYYmmdd-HHMMSS>[-n]`` (a fresh folder per run).

    Example:
        >>> import tempfile
        >>> make_run_dir(tempfile.mkdtemp(), "ppo", "native:CartPole").name.startswith("ppo-native_CartPole-")
        True
    """
    safe_env = "".join(c if c.isalnum() or c in "-_." else "_" for c in env)
    base = Path(out_dir) / f"{algo}-{safe_env}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def _csv_logger(run_dir: Path, config):
    logger = CSVLogger(run_dir, "logs")
    logger.log_hparams(config_to_dict(config))
    return logger


def _write_run_files(run_dir: Path, results: TrainResults, models: dict, optimizer) -> dict:
    files = {"checkpoint": run_dir / "checkpoint.pt", "curve": run_dir / "curve.csv",
             "results": run_dir / "results.json", "report": run_dir / "report.html"}
    # weights_only-safe (rlbench.trainers.load_checkpoint): modules, optimiser, plain config dict
    components = dict(models)
    if optimizer is not None:
        components["optimizer"] = optimizer
    save_checkpoint(files["checkpoint"], **components, config=results.config, frames=results.frames)
    with open(files["curve"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["frames", "train_time", "eval_return", "eval_std"])
        writer.writeheader()
        writer.writerows(results.curve)
    logs = run_dir / "logs" / "scalars.csv"
    if logs.exists():
        files["logs"] = logs
    files = {k: str(v) for k, v in files.items()}
    results.files = files
    write_report(files["report"], results)
    Path(files["results"]).write_text(json.dumps(dataclasses.asdict(results), indent=2))
    return files


