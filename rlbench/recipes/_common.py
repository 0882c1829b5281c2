"""What every recipe shares: envs from a name, seeding, evaluation, configs, results and run files.

How a recipe plugs in
---------------------
A recipe is one module ``rlbench/recipes/<algo>.py`` with three public names:

* ``Config``: a ``@dataclass`` whose every field has a default and a one-line *attribute
  docstring* (a string literal on the line after the field). :func:`config_docs` reads those
  docstrings with ``ast``, so ``rlbench train <algo> --help`` lists them and a test checks that
  no field is undocumented. The fields :data:`COMMON_FIELDS` names (``env``, ``frames``,
  ``seed``, ``eval_episodes``, ``eval_every``, ``target_return``, ``out_dir``) are read by the CLI
  and by ``benchmarks/learning.py``: every recipe must have them, with the meaning given there.
* ``make_models(env, config)``: builds the networks from the env's specs.
* ``train(config, logger=None, progress=True) -> TrainResults``: the training loop, top to
  bottom. It uses a :class:`RunTracker` for the chores (clock, periodic evaluation, early stop at
  ``target_return``, logging, checkpoint and report files) so the loop itself shows only the algorithm.

Then add one line to ``ALGORITHMS`` in ``rlbench/recipes/__init__.py``:
``"sac": "rlbench.recipes.sac",`` (module paths; recipes are imported only when asked for).

Environment names (:func:`make_env`): any gymnasium id (``"CartPole-v1"``), or a torch-native
batched env as ``"native:CartPole"`` (also ``Pendulum``, ``MountainCar``, ``MountainCarContinuous``,
``Acrobot``; a ``-vN`` suffix is accepted and ignored).
"""
from __future__ import annotations

import ast
import csv
import dataclasses
import inspect
import json
import math
import os
import random
import textwrap
import time
import types
import typing
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..envs import (AcrobotEnv, CartPoleEnv, EnvBase, GymEnv, MountainCarContinuousEnv, MountainCarEnv, PendulumEnv,
                    SerialEnv)
from ..modules import ExplorationType, set_exploration_type
from ..trainers import CSVLogger, save_checkpoint

__all__ = [
    "COMMON_FIELDS",
    "RecipeConfig",
    "start_run",
    "episode_return_stats",
    "NATIVE_ENVS",
    "make_env",
    "max_episode_steps",
    "seed_everything",
    "evaluate",
    "config_docs",
    "config_to_dict",
    "apply_overrides",
    "TrainResults",
    "RunTracker",
    "make_run_dir",
    "write_report",
    "observation_key",
    "make_encoder",
    "orthogonal_init",
    "make_stochastic_actor",
    "make_value_network",
]

COMMON_FIELDS = ("env", "frames", "seed", "eval_episodes", "eval_every", "target_return", "out_dir")
"""Config fields every recipe has: the CLI and the learning benchmark set them by name."""

FINAL_EVAL_SEED_OFFSET = 10_000
"""The final evaluation's env seed is ``config.seed`` plus this (training envs use ``config.seed``)."""
PERIODIC_EVAL_SEED_OFFSET = 20_000
"""Periodic evaluations (which may stop a run early) use other start states than the final one."""

NATIVE_ENVS: dict[str, type] = {
    "CartPole": CartPoleEnv,
    "Pendulum": PendulumEnv,
    "MountainCar": MountainCarEnv,
    "MountainCarContinuous": MountainCarContinuousEnv,
    "Acrobot": AcrobotEnv,
}
"""Torch-native envs by the name used after ``native:``."""

NATIVE_PREFIX = "native:"


def _native_class(name: str):
    base = name[len(NATIVE_PREFIX):].split("-v")[0]
    if base not in NATIVE_ENVS:
        raise ValueError(f"unknown torch-native env {name!r}: expected one of "
                         f"{', '.join(NATIVE_PREFIX + k for k in NATIVE_ENVS)} (or a gymnasium id such as 'CartPole-v1')")
    return NATIVE_ENVS[base]


def make_env(name: str, num_envs: int = 1, *, seed: int | None = None, device=None) -> EnvBase:
    """Build an env from a gymnasium id or a ``"native:Name"`` torch-native env.

    Args:
        name: ``"CartPole-v1"`` (any registered gymnasium id) or ``"native:CartPole"``.
        num_envs: number of sub-envs. Native envs step them as one batch; gymnasium ids become a
            synchronous gymnasium vector env (``batch_size=[num_envs]``); ``1`` gives an unbatched
            gymnasium env.
        seed: seed the env (``None``: leave it unseeded).
        device: device of a native env's tensors.

    Example:
        >>> make_env("native:CartPole", num_envs=8, seed=0).batch_size
        torch.Size([8])
        >>> make_env("CartPole-v1", seed=0).batch_size
        torch.Size([])
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"make_env: env name must be a non-empty string, got {name!r}")
    if int(num_envs) < 1:
        raise ValueError(f"make_env: num_envs must be >= 1, got {num_envs}")
    if name.startswith(NATIVE_PREFIX):
        env = _native_class(name)(batch_size=[int(num_envs)], device=device)
    else:
        try:
            env = GymEnv(name, num_envs=int(num_envs)) if num_envs > 1 else GymEnv(name)
        except Exception as err:  # gymnasium's NameNotFound etc.: say what names are accepted
            if "not found" in str(err).lower() or "doesn't exist" in str(err).lower():
                raise ValueError(f"make_env: unknown env {name!r}: expected a gymnasium id such as 'CartPole-v1' or "
                                 f"a torch-native env {', '.join(NATIVE_PREFIX + k for k in NATIVE_ENVS)}") from err
            raise
    if seed is not None:
        env.set_seed(int(seed))
    return env


def max_episode_steps(name: str, default: int = 1000) -> int:
    """The time limit of env ``name`` (gymnasium's registered one, or the native env's), else ``default``.

    Example:
        >>> max_episode_steps("CartPole-v1"), max_episode_steps("native:Pendulum")
        (500, 200)
    """
    if name.startswith(NATIVE_PREFIX):
        limit = _native_class(name)().max_episode_steps
    else:
        import gymnasium

        try:
            limit = gymnasium.spec(name).max_episode_steps
        except Exception:  # an id gymnasium does not know: the caller's default
            limit = None
    return int(limit) if limit else default


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (envs are seeded separately)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@torch.no_grad()
def evaluate(env_name: str, policy: Callable, num_episodes: int = 20, *, seed: int = 0,
             max_steps: int | None = None) -> tuple[float, float]:
    """Mean and standard deviation of the return of ``num_episodes`` deterministic episodes.

    The episodes run side by side in one batched env (a native batch or a gymnasium vector env),
    so an evaluation costs one episode's worth of policy calls. The policy runs under
    ``ExplorationType.DETERMINISTIC`` (the distribution's mode or mean), without gradients.
    An episode that has not ended after ``max_steps`` (default: the env's time limit) counts its
    return so far.

    Args:
        env_name: as for :func:`make_env`.
        policy: a ``td -> td`` callable writing the action (an actor).
        num_episodes: episodes to average over.
        seed: seed of the evaluation env (each sub-env starts from a different initial state).
        max_steps: step cap.

    Example:
        >>> from tensordict.nn import TensorDictModule
        >>> push_toward_pole = TensorDictModule(lambda o: (o[..., 2] > 0).long(), ["observation"], ["action"])
        >>> mean, std = evaluate("native:CartPole", push_toward_pole, num_episodes=4, seed=0)
        >>> mean > 20
        True
    """
    if int(num_episodes) < 1:
        raise ValueError(f"evaluate: num_episodes must be >= 1, got {num_episodes}")
    env = make_env(env_name, num_episodes, seed=seed)
    if num_episodes == 1 and not env_name.startswith(NATIVE_PREFIX):
        env = SerialEnv(1, lambda: GymEnv(env_name))  # keep the [num_episodes] batch dim
        env.set_seed(seed)
    steps = max_steps or max_episode_steps(env_name)
    try:
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            rollout = env.rollout(steps, policy, break_when_any_done=False)
    finally:
        env.close()
    reward = rollout["next", "reward"].reshape(num_episodes, -1).double()
    done = rollout["next", "done"].reshape(num_episodes, -1)
    # steps up to and including each sub-env's first done belong to its first episode
    before_first_done = (done.long().cumsum(-1) - done.long()) == 0
    returns = (reward * before_first_done).sum(-1)
    std = returns.std(unbiased=False) if num_episodes > 1 else returns.new_zeros(())
    return float(returns.mean()), float(std)


# ---------------------------------------------------------------------------------------- configs
@dataclass
class RecipeConfig:
    """The fields every recipe's ``Config`` has (:data:`COMMON_FIELDS` plus ``torch_threads``), documented once.

    Each recipe's ``Config`` subclasses it (the off-policy ones through ``OffPolicyConfig``) and redeclares a
    field only to change its default; a redeclared field without a docstring keeps this one
    (:func:`config_docs` falls back to the base's). ``num_envs`` is not here: every recipe tunes it and
    :func:`start_run` reads it from the subclass.

    Example:
        >>> RecipeConfig().seed, RecipeConfig(frames=10).frames
        (0, 10)
    """

    env: str = "CartPole-v1"
    """Environment: a gymnasium id or a torch-native env such as native:CartPole."""
    frames: int = 50_000
    """Total env steps to collect (the training budget)."""
    seed: int = 0
    """Seed of torch, NumPy, Python and the envs."""
    torch_threads: int = 1
    """torch.set_num_threads during training (small networks run fastest on one thread)."""
    eval_episodes: int = 20
    """Deterministic episodes in each evaluation."""
    eval_every: int = 0
    """Evaluate every this many frames (0: only at the end, which also disables early stopping)."""
    target_return: float | None = None
    """Stop as soon as an evaluation's mean return reaches this (None: use the whole budget)."""
    out_dir: str | None = None
    """Write checkpoint, logs, curve and HTML report under this folder (None: write nothing)."""


def start_run(config) -> EnvBase:
    """Apply ``config``'s process-wide settings (torch threads, every seed), then make its training env.

    Every recipe's ``train()`` starts with this, in this order, so a seed reproduces a run exactly.

    Example:
        >>> from rlbench.recipes import ppo
        >>> start_run(ppo.Config(env="native:CartPole", num_envs=3)).batch_size
        torch.Size([3])
    """
    torch.set_num_threads(config.torch_threads)
    seed_everything(config.seed)
    return make_env(config.env, config.num_envs, seed=config.seed)


def episode_return_stats(collector) -> dict[str, float]:
    """``{"train/episode_return": mean}`` of the episodes ``collector`` finished in its last batch (``{}`` if none).

    Example:
        >>> from types import SimpleNamespace
        >>> episode_return_stats(SimpleNamespace(episode_returns=[1.0, 2.0])), episode_return_stats(
        ...     SimpleNamespace(episode_returns=[]))
        ({'train/episode_return': 1.5}, {})
    """
    returns = collector.episode_returns
    return {"train/episode_return": sum(returns) / len(returns)} if returns else {}


def config_docs(config_cls) -> dict[str, str]:
    """The attribute docstring of each field of a Config dataclass (``""`` where there is none).

    A subclass that redeclares a field without a docstring (to change its default) keeps its base's.
    A field is documented by a string literal on the line right after it::

        @dataclass
        class Config:
            lr: float = 3e-4
            \"\"\"Adam learning rate.\"\"\"

    Example:
        >>> from rlbench.recipes import ppo
        >>> config_docs(ppo.Config)["lr"]
        'Adam learning rate.'
    """
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config_docs: expected a dataclass, got {config_cls!r}")
    docs = {f.name: "" for f in dataclasses.fields(config_cls)}
    for klass in reversed(config_cls.__mro__):  # a subclass's docstring overrides its base's
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):  # defined in a REPL: no source to read
            continue
        body = ast.parse(source).body[0].body
        for stmt, nxt in zip(body, body[1:]):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)
                    and stmt.target.id in docs):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def config_to_dict(config) -> dict[str, Any]:
    """A JSON-friendly dict of a Config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _parse_value(text: str, kind, name: str):
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.strip().lower() in ("none", "null", ""):
            return None
        inner = [a for a in args if a is not type(None)]
        return _parse_value(text, inner[0], name)
    if origin in (tuple, list):
        item = args[0] if args else str
        parts = [p for p in text.replace("(", "").replace(")", "").replace("[", "").replace("]", "").split(",")
                 if p.strip()]
        values = [_parse_value(p.strip(), item, name) for p in parts]
        return tuple(values) if origin is tuple else values
    if kind is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if kind is int:
        value = float(text)  # accept "1e5"
        if value != int(value):
            raise ValueError(f"expected an integer, got {text!r}")
        return int(value)
    if kind is float:
        return float(text)
    return text


def apply_overrides(config, overrides) -> Any:
    """Return a copy of ``config`` with fields replaced from ``"key=value"`` strings (or a dict).

    Values are converted to the field's annotated type: ``int`` (``1e5`` is accepted), ``float``,
    ``bool`` (``true/false/1/0``), ``str``, ``tuple[int, ...]`` (``64,64``), ``X | None``
    (``none``). An unknown key or a value that does not convert raises a ``ValueError`` naming the
    field, the expected type and the valid fields.

    Example:
        >>> from rlbench.recipes import ppo
        >>> apply_overrides(ppo.Config(), ["lr=1e-3", "hidden_sizes=32,32"]).hidden_sizes
        (32, 32)
    """
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        items = []
        for item in overrides:
            if "=" not in item:
                raise ValueError(f"config override {item!r} is not of the form key=value (e.g. lr=3e-4)")
            key, value = item.split("=", 1)
            items.append((key.strip(), value))
    changes = {}
    for key, value in items:
        if key not in names:
            raise ValueError(f"unknown config field {key!r} for {type(config).__module__}.{type(config).__name__}; "
                             f"valid fields: {', '.join(names)}")
        if isinstance(value, str):
            try:
                value = _parse_value(value, hints[key], key)
            except ValueError as err:
                type_name = getattr(hints[key], "__name__", str(hints[key]))
                raise ValueError(f"config field {key!r} expects {type_name}: {err}") from None
        changes[key] = value
    return dataclasses.replace(config, **changes)


# ---------------------------------------------------------------------------------------- results
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


# ---------------------------------------------------------------------------------------- models
def observation_key(env: EnvBase) -> str:
    """The observation entry networks read: ``"observation"``, else ``"pixels"``.

    Example:
        >>> observation_key(make_env("native:CartPole"))
        'observation'
    """
    keys = list(env.observation_spec.keys())
    for key in ("observation", "pixels"):
        if key in keys:
            return key
    raise ValueError(f"the env's observation spec has neither 'observation' nor 'pixels' (keys: {keys}); rename "
                     f"the entry to read with rlbench.envs.transforms.RenameTransform")


def make_encoder(env: EnvBase, hidden_sizes, out_features: int, activation=torch.nn.Tanh) -> torch.nn.Module:
    """A network from the env's observation to ``out_features``: an MLP for vectors, ConvNet + MLP for pixels.

    Pixel observations must be float ``[C, H, W]`` (apply ``ToTensorImage`` to ``uint8`` frames).

    Example:
        >>> net = make_encoder(make_env("native:CartPole"), (16,), 2)
        >>> net(torch.zeros(5, 4)).shape
        torch.Size([5, 2])
    """
    from ..modules import MLP, ConvNet

    key = observation_key(env)
    spec = env.observation_spec[key]
    shape = spec.shape[len(env.batch_size):]
    if key == "pixels" or len(shape) == 3:
        if len(shape) != 3:
            raise ValueError(f"pixel observations must be [C, H, W], got shape {tuple(shape)}")
        conv = ConvNet(in_features=shape[0], num_cells=[32, 64, 64], kernel_sizes=[8, 4, 3], strides=[4, 2, 1],
                       activation_class=torch.nn.ReLU)
        with torch.no_grad():  # infer the flattened feature size from one dummy frame
            n_features = conv(torch.zeros(1, *shape)).shape[-1]
        return torch.nn.Sequential(conv, MLP(in_features=n_features, out_features=out_features,
                                             num_cells=list(hidden_sizes), activation_class=torch.nn.ReLU))
    if len(shape) != 1:
        raise ValueError(f"vector observations must be 1-d, got shape {tuple(shape)} for {key!r}; flatten them "
                         f"with rlbench.envs.transforms.FlattenObservation")
    return MLP(in_features=shape[0], out_features=out_features, num_cells=list(hidden_sizes),
               activation_class=activation)


def orthogonal_init(net: torch.nn.Module, last_gain: float) -> torch.nn.Module:
    """Orthogonal weights and zero biases: gain sqrt(2) for hidden layers, ``last_gain`` for the output.

    The small output gain of a policy (0.01) starts it near uniform over actions, which keeps early
    PPO/A2C updates from locking onto one action (Engstrom et al. 2020, "Implementation Matters in
    Deep Policy Gradients"; Stable-Baselines3's ``ortho_init``). Returns ``net``.

    Example:
        >>> net = orthogonal_init(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)), 0.01)
        >>> float(net[2].weight.detach().norm()) < 0.05
        True
    """
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    for i, layer in enumerate(layers):
        torch.nn.init.orthogonal_(layer.weight, gain=last_gain if i == len(layers) - 1 else math.sqrt(2))
        torch.nn.init.zeros_(layer.bias)
    return net


def make_stochastic_actor(env: EnvBase, hidden_sizes, activation=torch.nn.Tanh, ortho_init: bool = False):
    """A sampling policy for the env's action spec: Categorical logits, or a TanhNormal within bounds.

    Writes ``"action"`` and ``"sample_log_prob"``; deterministic mode gives the most likely action
    (discrete) or the squashed mean (continuous). ``ortho_init``: :func:`orthogonal_init` with an
    output gain of 0.01.

    Example:
        >>> env = make_env("native:Pendulum", num_envs=3)
        >>> td = make_stochastic_actor(env, (16,))(env.reset())
        >>> td["action"].shape, bool(env.action_spec.is_in(td["action"]))
        (torch.Size([3, 1]), True)
    """
    from tensordict.nn import TensorDictModule

    from ..modules import NormalParamExtractor, ProbabilisticActor, TanhNormal
    from ..specs import Bounded, Categorical, OneHot

    spec = env.action_spec
    key = observation_key(env)

    def encoder(out_features):
        net = make_encoder(env, hidden_sizes, out_features, activation)
        return orthogonal_init(net, 0.01) if ortho_init else net

    if isinstance(spec, Categorical):
        net = encoder(spec.n)
        # argument validation costs more than the log-prob itself for small batches; the spec
        # already guarantees valid actions
        return ProbabilisticActor(TensorDictModule(net, [key], ["logits"]), in_keys=["logits"],
                                  distribution_class=torch.distributions.Categorical,
                                  distribution_kwargs={"validate_args": False}, spec=spec, return_log_prob=True)
    if isinstance(spec, OneHot):
        from ..modules import OneHotCategorical

        net = encoder(spec.n)
        return ProbabilisticActor(TensorDictModule(net, [key], ["logits"]), in_keys=["logits"],
                                  distribution_class=OneHotCategorical, spec=spec, return_log_prob=True)
    if isinstance(spec, Bounded):
        n = spec.shape[-1]
        net = torch.nn.Sequential(encoder(2 * n), NormalParamExtractor())
        low, high = spec.low.reshape(-1, n)[0], spec.high.reshape(-1, n)[0]
        return ProbabilisticActor(TensorDictModule(net, [key], ["loc", "scale"]), in_keys=["loc", "scale"],
                                  distribution_class=TanhNormal, distribution_kwargs={"low": low, "high": high},
                                  spec=spec, return_log_prob=True)
    raise TypeError(f"no stochastic actor for action spec {type(spec).__name__}: expected Categorical, OneHot or "
                    f"Bounded (wrap an unbounded action space so that it has bounds)")


def make_value_network(env: EnvBase, hidden_sizes, activation=torch.nn.Tanh, ortho_init: bool = False):
    """A critic ``V(s)`` writing ``"state_value"`` from the env's observation (``ortho_init``: output gain 1).

    Example:
        >>> env = make_env("native:CartPole", num_envs=3)
        >>> make_value_network(env, (16,))(env.reset())["state_value"].shape
        torch.Size([3, 1])
    """
    from ..modules import ValueOperator

    net = make_encoder(env, hidden_sizes, 1, activation)
    return ValueOperator(orthogonal_init(net, 1.0) if ortho_init else net, in_keys=[observation_key(env)])
