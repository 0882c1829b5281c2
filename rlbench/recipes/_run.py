"""A recipe run's chores: the results it returns, the clock, periodic evaluation and early stop, logs,
checkpoint, and the run files with their HTML report (:class:`RunTracker`, :class:`TrainResults`).

The training loops stay about the algorithm; everything a run writes to disk is decided here.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..trainers import CSVLogger, save_checkpoint
from ._common import COMMON_FIELDS, FINAL_EVAL_SEED_OFFSET, PERIODIC_EVAL_SEED_OFFSET, config_to_dict, evaluate

__all__ = ["TrainResults", "RunTracker", "make_run_dir", "write_report"]


@dataclass
class TrainResults:
    """What a recipe's ``train`` returns.

    Example:
        >>> r = TrainResults(algo="ppo", env="CartPole-v1", final_eval_return=500.0, final_eval_std=0.0,
        ...                  eval_episodes=20, frames=20000, wall_time=5.0, train_time=4.0)
        >>> r.summary()
        'final mean evaluation return: 500.0 over 20 episodes'
    """

    algo: str
    """Recipe name."""
    env: str
    """Env name as given to make_env."""
    final_eval_return: float
    """Mean return of the final deterministic evaluation."""
    final_eval_std: float
    """Its standard deviation over the episodes."""
    eval_episodes: int
    """Episodes in each evaluation."""
    frames: int
    """Env steps collected."""
    wall_time: float
    """Seconds from start to end of train(), evaluations included."""
    train_time: float
    """Seconds spent training (collection and optimisation), evaluations excluded."""
    curve: list = field(default_factory=list)
    """One dict per evaluation: frames, train_time, eval_return, eval_std."""
    train_curve: list = field(default_factory=list)
    """(frames, mean return of recent training episodes) pairs, one per logged iteration."""
    solved_frames: int | None = None
    """Frames when an evaluation first reached config.target_return (None if never)."""
    solved_time: float | None = None
    """Training seconds at that moment."""
    run_dir: str | None = None
    """Folder with the checkpoint, logs and report (None when nothing was written)."""
    files: dict = field(default_factory=dict)
    """Paths of the files written: checkpoint, logs, curve, report, results."""
    config: dict = field(default_factory=dict)
    """The config that ran."""

    def summary(self) -> str:
        """The one-line result the CLI prints last."""
        return f"final mean evaluation return: {self.final_eval_return:.1f} over {self.eval_episodes} episodes"


class RunTracker:
    """The chores around a training loop: clock, periodic evaluation, early stop, logs, files.

    The clock counts training time only: :meth:`evaluate` pauses it, so ``train_time`` and
    ``solved_time`` compare with other libraries' "training time".

    Args:
        algo: recipe name (for results and file names).
        config: the recipe's Config (uses the :data:`COMMON_FIELDS`).
        logger: anything with ``log_scalar(name, value, step)``; ``None`` and ``config.out_dir``
            set: a CSV logger in the run directory.

    Example:
        >>> from dataclasses import dataclass
        >>> from tensordict.nn import TensorDictModule
        >>> @dataclass
        ... class Config:
        ...     env: str = "native:CartPole"; frames: int = 100; seed: int = 0; eval_episodes: int = 2
        ...     eval_every: int = 50; target_return: float | None = None; out_dir: str | None = None
        >>> run = RunTracker("demo", Config())
        >>> policy = TensorDictModule(lambda o: (o[..., 2] > 0).long(), ["observation"], ["action"])
        >>> run.step(50, policy, {"loss": 1.0})  # evaluates at 50 frames; False: no target, keep going
        False
        >>> results = run.finish(policy, 100, models={})
        >>> [row["frames"] for row in results.curve]
        [50, 100]
    """

    def __init__(self, algo: str, config, logger=None):
        missing = [f for f in COMMON_FIELDS if not hasattr(config, f)]
        if missing:
            raise TypeError(f"{algo} Config lacks the common fields {missing} (see rlbench.recipes._common)")
        self.algo, self.config = algo, config
        self.run_dir = make_run_dir(config.out_dir, algo, config.env) if config.out_dir else None
        self._owns_logger = False
        if logger is None and self.run_dir is not None:
            logger = _csv_logger(self.run_dir, config)
            self._owns_logger = True
        self.logger = logger
        self.curve: list[dict] = []
        self.train_curve: list[tuple[int, float]] = []
        self._running: torch.Tensor | None = None  # return so far of each sub-env's current episode
        self._recent: deque = deque(maxlen=100)
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

    def evaluate(self, policy, frames: int) -> tuple[float, float]:
        """Run a deterministic evaluation (clock paused), record it in the curve and the log."""
        t0 = time.perf_counter()
        cfg = self.config
        mean, std = evaluate(cfg.env, policy, cfg.eval_episodes, seed=cfg.seed + PERIODIC_EVAL_SEED_OFFSET)
        self._paused += time.perf_counter() - t0
        row = {"frames": int(frames), "train_time": round(self.train_time, 4), "eval_return": mean, "eval_std": std}
        self.curve.append(row)
        self.log({"eval/return": mean, "eval/return_std": std}, frames)
        if cfg.target_return is not None and mean >= cfg.target_return and self.solved_frames is None:
            self.solved_frames, self.solved_time = int(frames), row["train_time"]
        return mean, std

    def track_episodes(self, batch) -> float | None:
        """Add the episodes that ended in ``batch`` (a ``[*B, T]`` rollout); mean return of the recent 100.

        Returns are summed per sub-env across batches (an episode may span several), so the
        collector needs no progress bar or transform for this.
        """
        reward = batch.get(("next", "reward"))
        n_steps = batch.shape[-1]
        reward = reward.reshape(-1, n_steps, reward.shape[-1] if reward.dim() > batch.batch_dims else 1).sum(-1)
        done = batch.get(("next", "done")).reshape(-1, n_steps)
        if self._running is None or self._running.shape[0] != reward.shape[0]:
            self._running = torch.zeros(reward.shape[0], dtype=torch.float64)
        for t in range(n_steps):  # T is short (a batch's steps per env); each step is vectorized over envs
            self._running += reward[:, t].double().cpu()
            ended = done[:, t].cpu()
            if ended.any():
                self._recent.extend(self._running[ended].tolist())
                self._running[ended] = 0.0
        return sum(self._recent) / len(self._recent) if self._recent else None

    def step(self, frames: int, policy, values: dict | None = None, batch=None) -> bool:
        """Call once per iteration: logs ``values``, evaluates when due. True means stop (target reached).

        With ``batch``, finished training episodes are tracked (:meth:`track_episodes`) and their
        recent mean return is logged as ``"train/episode_return"`` and drawn in the report.
        """
        values = dict(values or {})
        if batch is not None:
            recent = self.track_episodes(batch)
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
        than the periodic ones (``+ PERIODIC_EVAL_SEED_OFFSET``), so a run stopped early because one evaluation reached the target
        reports an independent measurement, not the selected one. It is appended to the curve only
        when no periodic evaluation happened at ``frames``.
        """
        t0 = time.perf_counter()
        cfg = self.config
        mean, std = evaluate(cfg.env, policy, cfg.eval_episodes, seed=cfg.seed + FINAL_EVAL_SEED_OFFSET)
        self._paused += time.perf_counter() - t0
        if not self.curve or self.curve[-1]["frames"] != int(frames):
            self.curve.append({"frames": int(frames), "train_time": round(self.train_time, 4), "eval_return": mean,
                               "eval_std": std})
            self.log({"eval/return": mean, "eval/return_std": std}, frames)
        self.log({"eval/final_return": mean}, frames)
        results = TrainResults(
            algo=self.algo, env=self.config.env, final_eval_return=mean,
            final_eval_std=std, eval_episodes=self.config.eval_episodes, frames=int(frames),
            wall_time=time.perf_counter() - self._start, train_time=self.train_time, curve=list(self.curve),
            train_curve=list(self.train_curve),
            solved_frames=self.solved_frames, solved_time=self.solved_time,
            run_dir=str(self.run_dir) if self.run_dir else None, config=config_to_dict(self.config))
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


def _curve_png(results: TrainResults) -> bytes:
    import io

    # a bare Figure draws without any backend: pyplot (and a notebook's inline backend) stays untouched
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2), dpi=100)
    ax = fig.add_subplot()
    frames = [row["frames"] for row in results.curve]
    mean = np.array([row["eval_return"] for row in results.curve])
    std = np.array([row["eval_std"] for row in results.curve])
    if results.train_curve:
        ax.plot(*zip(*results.train_curve), color="tab:orange", lw=1, label="training episodes (recent mean)")
    ax.plot(frames, mean, marker="o", color="tab:blue", label="mean evaluation return")
    ax.fill_between(frames, mean - std, mean + std, alpha=0.25, label="± 1 std")
    target = results.config.get("target_return")
    if target is not None:
        ax.axhline(target, color="gray", ls="--", lw=1, label=f"target {target:g}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("return")
    ax.set_title(f"{results.algo} on {results.env}")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_report(path: str | os.PathLike, results: TrainResults) -> Path:
    """Write a small self-contained HTML report: learning curve (PNG embedded as base64) and config.

    Example:
        >>> import tempfile, os
        >>> r = TrainResults("ppo", "CartPole-v1", 500.0, 0.0, 20, 1000, 2.0, 1.5,
        ...                  curve=[{"frames": 500, "train_time": 1.0, "eval_return": 20.0, "eval_std": 1.0},
        ...                         {"frames": 1000, "train_time": 1.5, "eval_return": 500.0, "eval_std": 0.0}])
        >>> html = write_report(os.path.join(tempfile.mkdtemp(), "report.html"), r).read_text()
        >>> "data:image/png;base64," in html and "500.0" in html
        True
    """
    import base64
    import html

    png = base64.b64encode(_curve_png(results)).decode("ascii") if results.curve or results.train_curve else ""
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(str(k))}</td><td>{esc(str(v))}</td></tr>" for k, v in results.config.items())
    curve = "".join(f"<tr><td>{r['frames']}</td><td>{r['train_time']:.2f}</td><td>{r['eval_return']:.1f}</td>"
                    f"<td>{r['eval_std']:.1f}</td></tr>" for r in results.curve)
    solved = (f"reached the target at {results.solved_frames} env steps ({results.solved_time:.1f} s of training)"
              if results.solved_frames is not None else "")
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{esc(results.algo)} on {esc(results.env)}</title>
<style>body{{font-family:sans-serif;max-width:760px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}</style></head><body>
<h1>{esc(results.algo)} on {esc(results.env)}</h1>
<p><b>{esc(results.summary())}</b> (std {results.final_eval_std:.1f}); {results.frames} env steps,
{results.train_time:.1f} s of training, {results.wall_time:.1f} s in all. {esc(solved)}</p>
{f'<img alt="learning curve" src="data:image/png;base64,{png}">' if png else ''}
<h2>Evaluations</h2><table><tr><th>env steps</th><th>train s</th><th>mean return</th><th>std</th></tr>{curve}</table>
<h2>Config</h2><table>{rows}</table>
</body></html>
"""
    path = Path(path)
    path.write_text(page)
    return path
