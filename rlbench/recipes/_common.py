"""What every recipe shares: envs from a name, seeding, evaluation and configs.

Run chores and files live in :mod:`rlbench.recipes._run`, spec-driven network builders in
:mod:`rlbench.recipes._models`.

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
  bottom. It uses a :class:`~rlbench.recipes._run.RunTracker` for the chores (clock, periodic evaluation, early stop at
  ``target_return``, logging, checkpoint and report files) so the loop itself shows only the algorithm.

Then add one line to ``ALGORITHMS`` in ``rlbench/recipes/__init__.py``:
``"sac": "rlbench.recipes.sac",`` (module paths; recipes are imported only when asked for).

Environment names (:func:`make_env`): any gymnasium id (``"CartPole-v1"``), or a torch-native
batched env as ``"native:CartPole"`` (also ``Pendulum``, ``MountainCar``, ``MountainCarContinuous``,
``Acrobot``; a ``-vN`` suffix is accepted and ignored).
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import random
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..envs import (
    AcrobotEnv,
    CartPoleEnv,
    EnvBase,
    GymEnv,
    MountainCarContinuousEnv,
    MountainCarEnv,
    PendulumEnv,
    SerialEnv,
)
from ..modules import ExplorationType, set_exploration_type

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
