"""Envs from a name, seeding, and the seeded evaluation the recipes run.

Environment names (:func:`make_env`): any gymnasium id (``"CartPole-v1"``), or a torch-native batched
env as ``"native:CartPole"`` (also ``Pendulum``, ``MountainCar``, ``MountainCarContinuous``,
``Acrobot``; a ``-vN`` suffix is accepted and ignored). Atari ids (``"ALE/Pong-v5"``, the ``atari`` extra) get
the standard preprocessing of :class:`AtariPreprocessing` by default. DeepMind Control Suite tasks are
``"dmc:DOMAIN-TASK"`` (``"dmc:cartpole-swingup"``, ``"dmc:ball_in_cup-catch"``; the ``dm_control`` extra).
:func:`start_run` is the first line of every
recipe's ``train()``: threads, every seed, then the training env. :func:`evaluate` runs
:func:`rlbench.trainers.evaluate_policy` on a fresh, seeded batched env with one sub-env per episode.
"""
from __future__ import annotations

import importlib.util
import random
from typing import Callable

import numpy as np
import torch

from ..envs import (
    AcrobotEnv,
    CartPoleEnv,
    CatTensors,
    DMControlEnv,
    EnvBase,
    GymEnv,
    MountainCarContinuousEnv,
    MountainCarEnv,
    PendulumEnv,
    SerialEnv,
    TransformedEnv,
)
from ..envs.libs.atari import AtariPreprocessing
from ..trainers import evaluate_policy

__all__ = ["NATIVE_ENVS", "AtariPreprocessing", "make_env", "max_episode_steps", "seed_everything", "start_run",
           "evaluate"]

NATIVE_ENVS: dict[str, type] = {
    "CartPole": CartPoleEnv,
    "Pendulum": PendulumEnv,
    "MountainCar": MountainCarEnv,
    "MountainCarContinuous": MountainCarContinuousEnv,
    "Acrobot": AcrobotEnv,
}
"""Torch-native envs by the name used after ``native:``."""

NATIVE_PREFIX = "native:"
DMC_PREFIX = "dmc:"
_SUITES = f"{NATIVE_PREFIX}NAME (torch-native), {DMC_PREFIX}DOMAIN-TASK (DeepMind Control) or a gymnasium id"


def _native_class(name: str):
    base = name[len(NATIVE_PREFIX):].split("-v")[0]
    if base not in NATIVE_ENVS:
        raise ValueError(f"unknown torch-native env {name!r}: expected one of "
                         f"{', '.join(NATIVE_PREFIX + k for k in NATIVE_ENVS)} "
                         f"(or a gymnasium id such as 'CartPole-v1')")
    return NATIVE_ENVS[base]


ATARI_PREFIX = "ALE/"


def _make_atari(name: str, num_envs: int, atari, device):
    if atari is False:
        return GymEnv(name, num_envs=int(num_envs), device=device) if num_envs > 1 else GymEnv(name, device=device)
    prep = AtariPreprocessing() if atari is None or atari is True else atari
    if not isinstance(prep, AtariPreprocessing):
        raise TypeError(f"make_env: atari must be None, False or an AtariPreprocessing, got {atari!r}")
    if num_envs == 1:
        return prep.make(name, device)
    return SerialEnv(int(num_envs), lambda: prep.make(name, device))


def _dmc_names(name: str) -> tuple[str, str]:
    """``"dmc:ball_in_cup-catch"`` -> ``("ball_in_cup", "catch")``: domains have no ``-``, so split on the first."""
    domain, sep, task = name[len(DMC_PREFIX):].partition("-")
    if not (sep and domain and task):
        raise ValueError(f"make_env: {name!r} is not a DeepMind Control name: expected {DMC_PREFIX}DOMAIN-TASK, "
                         f"e.g. 'dmc:cartpole-swingup' or 'dmc:ball_in_cup-catch'")
    return domain, task


def _make_dmc(name: str, num_envs: int, device) -> EnvBase:
    """A DMControlEnv (a SerialEnv of them for ``num_envs > 1``) with its observations concatenated.

    dm_control names each observation array (``"position"``, ``"velocity"``, ...); the recipes' networks
    read one ``"observation"`` vector, so a ``CatTensors`` transform joins them in the task's order. Doing
    it here rather than in the model builders keeps every builder (and a user's own network) reading one
    key, and the replay buffers store one tensor instead of several.
    """
    domain, task = _dmc_names(name)
    env = DMControlEnv(domain, task, device=device)  # an unknown domain or task fails here, listing the valid ones
    if num_envs > 1:
        envs = [env] + [DMControlEnv(domain, task, device=device) for _ in range(num_envs - 1)]
        env = SerialEnv(num_envs, [lambda e=e: e for e in envs])
    keys = list(env.observation_spec.keys())
    if keys != ["observation"]:
        env = TransformedEnv(env, CatTensors(keys, "observation"))
    return env


def _check_suite(name: str) -> None:
    """Refuse ``"suite:..."`` names of a suite rlbench does not have (gymnasium's ``"module:Id"`` still works)."""
    prefix = name.split(":", 1)[0]
    try:
        is_module = importlib.util.find_spec(prefix) is not None
    except (ImportError, ValueError):
        is_module = False
    if not is_module:
        raise ValueError(f"make_env: unknown env suite {prefix + ':'!r} in {name!r}: expected {_SUITES} (such as "
                         f"'native:CartPole', 'dmc:cartpole-swingup', 'CartPole-v1')")


def make_env(name: str, num_envs: int = 1, *, seed: int | None = None, device=None,
             atari: AtariPreprocessing | bool | None = None) -> EnvBase:
    """Build an env from a gymnasium id, a ``"native:Name"`` torch-native env or a ``"dmc:DOMAIN-TASK"`` task.

    Args:
        name: ``"CartPole-v1"`` (any registered gymnasium id), ``"native:CartPole"``, or
            ``"dmc:cartpole-swingup"`` (a :class:`~rlbench.envs.DMControlEnv` whose observation arrays are
            concatenated into one ``"observation"`` vector by :class:`~rlbench.envs.transforms.CatTensors`).
        num_envs: number of sub-envs. Native envs step them as one batch; gymnasium ids become a
            synchronous gymnasium vector env (``batch_size=[num_envs]``); ``dmc:`` tasks a
            :class:`~rlbench.envs.SerialEnv`; ``1`` gives an unbatched env.
        seed: seed the env (``None``: leave it unseeded).
        device: device of a native or DeepMind Control env's tensors.
        atari: for ``"ALE/..."`` ids: the preprocessing (default ``AtariPreprocessing()``, the Nature/Machado
            recipe), or ``False`` for the raw ALE env. Several Atari sub-envs are a ``SerialEnv``.

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
    elif name.startswith(ATARI_PREFIX):
        env = _make_atari(name, int(num_envs), atari, device)
    elif name.startswith(DMC_PREFIX):
        env = _make_dmc(name, int(num_envs), device)
    else:
        if ":" in name:
            _check_suite(name)
        try:
            env = GymEnv(name, num_envs=int(num_envs)) if num_envs > 1 else GymEnv(name)
        except Exception as err:  # gymnasium's NameNotFound etc.: say what names are accepted
            if "not found" in str(err).lower() or "doesn't exist" in str(err).lower():
                raise ValueError(f"make_env: unknown env {name!r}: expected a gymnasium id such as 'CartPole-v1', "
                                 f"a torch-native env {', '.join(NATIVE_PREFIX + k for k in NATIVE_ENVS)} or a "
                                 f"DeepMind Control task such as 'dmc:cartpole-swingup'") from err
            raise
    if seed is not None:
        env.set_seed(int(seed))
    return env


def max_episode_steps(name: str, default: int = 1000) -> int:
    """The time limit of env ``name`` (gymnasium's registered one, or the native env's), else ``default``.

    ``dmc:`` tasks end themselves at their time limit (1000 control steps for the suite's tasks): ``default``.

    Example:
        >>> max_episode_steps("CartPole-v1"), max_episode_steps("native:Pendulum")
        (500, 200)
    """
    if name.startswith(NATIVE_PREFIX):
        limit = _native_class(name)().max_episode_steps
    elif name.startswith(DMC_PREFIX):
        limit = None
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


def evaluate(env_name: str, policy: Callable, num_episodes: int = 20, *, seed: int = 0,
             max_steps: int | None = None) -> tuple[float, float]:
    """Mean and standard deviation of the return of ``num_episodes`` deterministic episodes.

    The episodes run side by side in one fresh batched env (``make_env(env_name, num_episodes,
    seed=seed)``: each sub-env starts from a different initial state), each sub-env's first episode
    counting, so an evaluation costs one episode's worth of policy calls. The policy runs under
    ``ExplorationType.DETERMINISTIC`` (the distribution's mode or mean), without gradients
    (:func:`rlbench.trainers.evaluate_policy`). An episode that has not ended after ``max_steps``
    (default: the env's time limit) counts its return so far.

    Args:
        env_name: as for :func:`make_env`.
        policy: a ``td -> td`` callable writing the action (an actor).
        num_episodes: episodes to average over.
        seed: seed of the evaluation env.
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
    try:
        returns = evaluate_policy(env, policy, num_episodes, max_steps=max_steps or max_episode_steps(env_name),
                                  include_unfinished=True)
    finally:
        env.close()
    returns = torch.tensor(returns, dtype=torch.float64)
    std = returns.std(unbiased=False) if num_episodes > 1 else returns.new_zeros(())
    return float(returns.mean()), float(std)
