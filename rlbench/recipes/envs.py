"""Envs from a name, seeding, and the seeded evaluation the recipes run.

Environment names (:func:`make_env`): any gymnasium id (``"CartPole-v1"``), or a torch-native batched
env as ``"native:CartPole"`` (also ``Pendulum``, ``MountainCar``, ``MountainCarContinuous``,
``Acrobot``; a ``-vN`` suffix is accepted and ignored). Atari ids (``"ALE/Pong-v5"``, the ``atari`` extra) get
the standard preprocessing of :class:`AtariPreprocessing` by default. DeepMind Control Suite tasks are
``"dmc:DOMAIN-TASK"`` (``"dmc:cartpole-swingup"``, ``"dmc:ball_in_cup-catch"``; the ``dm_control`` extra).
``pixels=True`` trains from rendered frames (DeepMind Control tasks and gymnasium ids that render): see
:func:`make_env`. :func:`env_family` names the suite whose published defaults a recipe's Config applies, and
:func:`env_options` turns a Config's suite fields into :func:`make_env`'s keyword arguments.
:func:`start_run` is the first line of every
recipe's ``train()``: threads, every seed, then the training env. :func:`evaluate` runs
:func:`rlbench.trainers.evaluate_policy` on a fresh, seeded batched env with one sub-env per episode.
"""
from __future__ import annotations

import functools
import importlib.util
import random
from typing import Callable

import numpy as np
import torch

from ..envs import (
    AcrobotEnv,
    CartPoleEnv,
    CatFrames,
    CatTensors,
    Compose,
    DMControlEnv,
    EnvBase,
    FrameSkipTransform,
    GymEnv,
    MountainCarContinuousEnv,
    MountainCarEnv,
    PendulumEnv,
    PermuteTransform,
    Resize,
    SerialEnv,
    ToTensorImage,
    TransformedEnv,
)
from ..envs.libs.atari import AtariPreprocessing
from ..trainers import evaluate_policy

__all__ = ["NATIVE_ENVS", "DMC_ACTION_REPEAT", "AtariPreprocessing", "make_env", "env_family", "env_options",
           "dmc_action_repeat", "max_episode_steps", "seed_everything", "start_run", "evaluator", "evaluate"]

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


DMC_ACTION_REPEAT: dict[str, int] = {"cartpole": 8, "finger": 2, "walker": 2}
"""Action repeat of DeepMind Control domains from pixels, as in PlaNet (Hafner et al. 2019), SAC-AE (Yarats et
al. 2021) and DrQ (Kostrikov et al. 2021); every other domain repeats 4 times."""


def dmc_action_repeat(domain: str) -> int:
    """The action repeat SAC-AE and DrQ use for DeepMind Control ``domain`` from pixels (:data:`DMC_ACTION_REPEAT`).

    Example:
        >>> dmc_action_repeat("cartpole"), dmc_action_repeat("walker"), dmc_action_repeat("cheetah")
        (8, 2, 4)
    """
    return DMC_ACTION_REPEAT.get(domain, 4)


def _batched(num_envs: int, make: Callable[[], EnvBase]) -> EnvBase:
    """``make()``, or a SerialEnv of ``num_envs`` of them (built here, so that a failure surfaces now)."""
    if num_envs == 1:
        return make()
    envs = [make() for _ in range(num_envs)]
    return SerialEnv(num_envs, [lambda e=e: e for e in envs])


def _pixel_steps(size: int | None, frame_stack: int, *, from_uint8_hwc: bool) -> list:
    """``"pixels"`` ``[H, W, 3]`` -> ``[3 * frame_stack, size, size]``: to channels first, resize, stack."""
    if from_uint8_hwc:  # already at the wanted size: permute only, the frames stay uint8 (4x smaller in replay)
        steps = [PermuteTransform((-1, -3, -2), in_keys=["pixels"])]
    else:
        steps = [ToTensorImage(in_keys=["pixels"]), Resize(size, size, in_keys=["pixels"])]
    if frame_stack > 1:
        steps.append(CatFrames(frame_stack, dim=-3, in_keys=["pixels"]))
    return steps


def _make_dmc(name: str, num_envs: int, device, pixels: bool = False, pixel_size: int = 84, frame_stack: int = 3,
              action_repeat: int = 0) -> EnvBase:
    """A DMControlEnv (a SerialEnv of them for ``num_envs > 1``): states concatenated, or stacked pixels.

    From states, dm_control names each observation array (``"position"``, ``"velocity"``, ...); the recipes'
    networks read one ``"observation"`` vector, so a ``CatTensors`` transform joins them in the task's order.
    Doing it here rather than in the model builders keeps every builder (and a user's own network) reading one
    key, and the replay buffers store one tensor instead of several.

    From pixels, the task renders ``pixel_size`` square frames (no resize), permuted to channels first and
    stacked ``frame_stack`` deep, uint8 throughout: ``"pixels"`` ``[3 * frame_stack, size, size]``.
    """
    domain, task = _dmc_names(name)
    repeat = int(action_repeat) or (dmc_action_repeat(domain) if pixels else 1)
    size = int(pixel_size)
    # an unknown domain or task fails in the first DMControlEnv, listing the valid ones; a machine that
    # cannot render fails there too, saying what to install or set (rlbench.envs.libs.mujoco_gl)
    env = _batched(num_envs, lambda: DMControlEnv(domain, task, from_pixels=pixels, pixels_only=pixels, height=size,
                                                  width=size, frame_skip=repeat, device=device))
    if pixels:
        return TransformedEnv(env, Compose(*_pixel_steps(size, int(frame_stack), from_uint8_hwc=True)))
    keys = list(env.observation_spec.keys())
    if keys != ["observation"]:
        env = TransformedEnv(env, CatTensors(keys, "observation"))
    return env


def _make_gym(name: str, num_envs: int, pixels: bool, pixel_size: int, frame_stack: int,
              action_repeat: int) -> EnvBase:
    """A gymnasium env; with ``pixels``, its rendered frames resized to ``pixel_size`` and stacked."""
    repeat = int(action_repeat) or 1
    if not pixels:
        if num_envs == 1:
            return GymEnv(name, frame_skip=repeat)
        env = GymEnv(name, num_envs=num_envs)
        return TransformedEnv(env, FrameSkipTransform(repeat)) if repeat > 1 else env

    # gymnasium's MuJoCo envs render at the size they are asked for: no 480x480 frame to shrink every step
    size = dict(width=int(pixel_size), height=int(pixel_size)) if env_family(name) == "mujoco" else {}

    def one() -> EnvBase:
        try:
            return GymEnv(name, from_pixels=True, pixels_only=True, frame_skip=repeat, **size)
        except (ImportError, ValueError):
            raise  # a missing extra or an unknown id: their messages say what to do
        except Exception as err:  # the env has no rgb_array rendering, or no OpenGL backend
            raise RuntimeError(f"make_env: {name!r} cannot render frames for pixels=True ({type(err).__name__}: "
                               f"{err}). It needs gymnasium's render_mode='rgb_array' (pygame for the classic "
                               f"control envs: pip install pygame; the mujoco extra and a headless OpenGL for "
                               f"MuJoCo, see rlbench.envs.libs.mujoco_gl)") from err

    env = _batched(num_envs, one)
    return TransformedEnv(env, Compose(*_pixel_steps(int(pixel_size), int(frame_stack), from_uint8_hwc=False)))


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
             atari: AtariPreprocessing | bool | None = None, pixels: bool = False, pixel_size: int = 84,
             frame_stack: int = 3, action_repeat: int = 0) -> EnvBase:
    """Build an env from a gymnasium id, a ``"native:Name"`` torch-native env or a ``"dmc:DOMAIN-TASK"`` task.

    From pixels (``pixels=True``), the preprocessing of the DeepMind Control literature (SAC-AE: Yarats et al.
    2021, arXiv:1910.01741; DrQ: Kostrikov, Yarats & Fergus 2021, arXiv:2004.13649): frames of
    ``pixel_size x pixel_size`` (84), the last ``frame_stack`` (3) stacked on the channel dim, each action
    repeated ``action_repeat`` times (DrQ's per-domain value for ``dmc:`` tasks, :data:`DMC_ACTION_REPEAT`).
    ``"pixels"`` is then ``[3 * frame_stack, pixel_size, pixel_size]``: ``uint8`` for ``dmc:`` tasks, rendered
    at that size (a replay buffer keeps them 4x smaller than float; the recipes' encoders scale them), float
    in ``[0, 1]`` for gymnasium ids (their frames are resized).

    Args:
        name: ``"CartPole-v1"`` (any registered gymnasium id), ``"native:CartPole"``,
            ``"dmc:cartpole-swingup"`` (a :class:`~rlbench.envs.DMControlEnv` whose observation arrays are
            concatenated into one ``"observation"`` vector by :class:`~rlbench.envs.transforms.CatTensors`),
            or an Atari id such as ``"ALE/Pong-v5"``.
        num_envs: number of sub-envs. Native envs step them as one batch; gymnasium ids become a
            synchronous gymnasium vector env (``batch_size=[num_envs]``); ``dmc:`` tasks, Atari ids and pixel
            envs a :class:`~rlbench.envs.SerialEnv`; ``1`` gives an unbatched env.
        seed: seed the env (``None``: leave it unseeded).
        device: device of a native or DeepMind Control env's tensors.
        atari: for ``"ALE/..."`` ids: the preprocessing (default ``AtariPreprocessing()``, the Nature/Machado
            recipe), or ``False`` for the raw ALE env. Several Atari sub-envs are a ``SerialEnv``.
        pixels: observe rendered frames (``"pixels"``) instead of states. ``ALE/`` ids are pixels anyway;
            torch-native envs do not render (use their gymnasium id).
        pixel_size: height and width of the frames.
        frame_stack: frames stacked (``1``: none).
        action_repeat: repeat each action this many times, summing rewards (``0``: ``dmc:`` tasks from pixels
            use :func:`dmc_action_repeat`, everything else 1). Atari ids repeat with ``atari``'s ``frame_skip``.

    Close pixel envs of ``dmc:`` tasks (``env.close()``) rather than leave them to the garbage collector:
    dm_control frees a render context through its render thread, and freeing one from a garbage
    collection that runs at the wrong moment has been seen to hang the process.

    Raises:
        ValueError: an unknown name (the message lists the accepted forms), or ``pixels``/``action_repeat``
            where the suite has no such option.
        RuntimeError: ``pixels=True`` where the env cannot render (the message says what to install or set).

    Example:
        >>> make_env("native:CartPole", num_envs=8, seed=0).batch_size
        torch.Size([8])
        >>> make_env("CartPole-v1", seed=0).batch_size
        torch.Size([])
        >>> env = make_env("dmc:cartpole-swingup", pixels=True, pixel_size=32)
        >>> env.observation_spec["pixels"].shape, env.observation_spec["pixels"].dtype
        (torch.Size([9, 32, 32]), torch.uint8)
        >>> env.close()  # frees the render context now (see the note above)
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"make_env: env name must be a non-empty string, got {name!r}")
    num_envs = int(num_envs)
    if num_envs < 1:
        raise ValueError(f"make_env: num_envs must be >= 1, got {num_envs}")
    for arg, value, low in (("pixel_size", pixel_size, 1), ("frame_stack", frame_stack, 1),
                            ("action_repeat", action_repeat, 0)):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise ValueError(f"make_env: {arg} must be an integer >= {low}, got {value!r}")
    if name.startswith(NATIVE_PREFIX):
        if pixels:
            raise ValueError(f"make_env: torch-native envs do not render, so {name!r} has no pixels=True; use its "
                             f"gymnasium id (e.g. 'Pendulum-v1', needs pygame) or a DeepMind Control task "
                             f"('dmc:cartpole-swingup')")
        if action_repeat > 1:
            raise ValueError(f"make_env: action_repeat={action_repeat} is not supported for torch-native envs; "
                             f"use the gymnasium id or wrap the env in FrameSkipTransform")
        # seeded at construction when a seed is given: an unseeded native env draws one from torch's global RNG,
        # which would shift every later draw (the networks' initialisation) against a gymnasium env of that seed
        env = _native_class(name)(batch_size=[num_envs], device=device, seed=None if seed is None else int(seed))
    elif name.startswith(ATARI_PREFIX):
        if action_repeat > 1:
            raise ValueError(f"make_env: action_repeat does not apply to Atari ids ({name!r}); their frame skip is "
                             f"the Atari preprocessing's (atari_frame_skip in a recipe's Config)")
        env = _make_atari(name, num_envs, atari, device)  # pixels already: the flag changes nothing
    elif name.startswith(DMC_PREFIX):
        env = _make_dmc(name, num_envs, device, pixels, pixel_size, frame_stack, action_repeat)
    else:
        if ":" in name:
            _check_suite(name)
        try:
            env = _make_gym(name, num_envs, pixels, pixel_size, frame_stack, action_repeat)
        except Exception as err:  # gymnasium's NameNotFound etc.: say what names are accepted
            if "not found" in str(err).lower() or "doesn't exist" in str(err).lower():
                raise ValueError(f"make_env: unknown env {name!r}: expected a gymnasium id such as 'CartPole-v1', "
                                 f"a torch-native env {', '.join(NATIVE_PREFIX + k for k in NATIVE_ENVS)}, a "
                                 f"DeepMind Control task such as 'dmc:cartpole-swingup' or an Atari id such as "
                                 f"'ALE/Pong-v5'") from err
            raise
    if seed is not None:
        env.set_seed(int(seed))
    return env


def env_family(name: str, pixels: bool = False) -> str | None:
    """The suite whose published defaults a recipe applies to env ``name`` (see ``RecipeConfig``), or None.

    ``"atari"`` (``ALE/`` ids), ``"dmc"`` / ``"dmc_pixels"`` (``dmc:`` tasks from states / pixels),
    ``"mujoco"`` (gymnasium's MuJoCo ids, such as ``HalfCheetah-v5``); None for anything else.

    Example:
        >>> env_family("dmc:cartpole-swingup"), env_family("dmc:cartpole-swingup", pixels=True)
        ('dmc', 'dmc_pixels')
        >>> env_family("ALE/Pong-v5"), env_family("HalfCheetah-v5"), env_family("CartPole-v1")
        ('atari', 'mujoco', None)
    """
    if name.startswith(ATARI_PREFIX):
        return "atari"
    if name.startswith(DMC_PREFIX):
        return "dmc_pixels" if pixels else "dmc"
    if name.startswith(NATIVE_PREFIX) or ":" in name:
        return None
    from ..envs.libs.gym_mujoco import is_gym_mujoco

    try:
        return "mujoco" if is_gym_mujoco(name) else None
    except Exception:  # gymnasium's registry could not be read: no family
        return None


def env_options(config) -> dict:
    """:func:`make_env`'s keyword arguments from a recipe Config's suite fields (pixels, frame stack, Atari).

    Example:
        >>> from rlbench.recipes import sac
        >>> options = env_options(sac.Config(pixels=True, atari_frame_skip=2))
        >>> options["pixels"], options["frame_stack"], options["atari"].frame_skip
        (True, 3, 2)
    """
    atari = AtariPreprocessing(**{f: getattr(config, "atari_" + f) for f in _ATARI_FIELDS
                                  if hasattr(config, "atari_" + f)})
    return {"pixels": bool(getattr(config, "pixels", False)), "pixel_size": int(getattr(config, "pixel_size", 84)),
            "frame_stack": int(getattr(config, "frame_stack", 3)),
            "action_repeat": int(getattr(config, "action_repeat", 0)), "atari": atari}


_ATARI_FIELDS = ("noop_max", "frame_skip", "max_pool", "end_of_life", "grayscale", "screen_size", "frame_stack",
                 "sign_reward", "repeat_action_probability")
"""The AtariPreprocessing fields a recipe Config sets as ``atari_<field>``."""


def max_episode_steps(name: str, default: int = 1000) -> int:
    """The time limit of env ``name`` (gymnasium's registered one, or the native env's), else ``default``.

    ``dmc:`` tasks end themselves at their time limit (1000 control steps for the suite's tasks): ``default``.
    ``ALE/`` ids: 27000 steps, the 108k frames (30 minutes of play at 60 Hz, frame skip 4) that Machado et al.
    2018 recommend as the episode cap (ale-py's v5 envs end there too).

    Example:
        >>> max_episode_steps("CartPole-v1"), max_episode_steps("native:Pendulum")
        (500, 200)
    """
    if name.startswith(NATIVE_PREFIX):
        limit = _native_class(name)(seed=0).max_episode_steps  # a seed: no draw from torch's global RNG
    elif name.startswith(DMC_PREFIX):
        limit = None
    elif name.startswith(ATARI_PREFIX):
        limit = 108_000 // 4
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
    return make_env(config.env, config.num_envs, seed=config.seed, **env_options(config))


def evaluator(config) -> Callable:
    """The evaluation a recipe hands its ``RunTracker``: :func:`evaluate` on ``config.env`` built as for training.

    Example:
        >>> from rlbench.recipes import dqn
        >>> evaluator(dqn.Config(env="native:CartPole")).keywords["pixels"]
        False
    """
    cap = int(getattr(config, "eval_max_steps", 0)) or None
    return functools.partial(evaluate, config.env, max_steps=cap, **env_options(config))


def evaluate(env_name: str, policy: Callable, num_episodes: int = 20, *, seed: int = 0,
             max_steps: int | None = None, **env_kwargs) -> tuple[float, float]:
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
        env_kwargs: more :func:`make_env` arguments (the recipes pass ``env_options(config)``, so the policy
            is evaluated on the observations it was trained on).

    Example:
        >>> from tensordict.nn import TensorDictModule
        >>> push_toward_pole = TensorDictModule(lambda o: (o[..., 2] > 0).long(), ["observation"], ["action"])
        >>> mean, std = evaluate("native:CartPole", push_toward_pole, num_episodes=4, seed=0)
        >>> mean > 20
        True
    """
    if int(num_episodes) < 1:
        raise ValueError(f"evaluate: num_episodes must be >= 1, got {num_episodes}")
    env = make_env(env_name, num_episodes, seed=seed, **env_kwargs)
    try:
        returns = evaluate_policy(env, policy, num_episodes, max_steps=max_steps or max_episode_steps(env_name),
                                  include_unfinished=True)
    finally:
        env.close()
    returns = torch.tensor(returns, dtype=torch.float64)
    std = returns.std(unbiased=False) if num_episodes > 1 else returns.new_zeros(())
    return float(returns.mean()), float(std)
