"""``DMControlWrapper`` and ``DMControlEnv``: DeepMind Control Suite envs behind the rlbench contract.

Mapping from the dm_env specs:

- each observation array keeps its dm_control name as its own key (``"position"``, ``"velocity"``,
  ...) in ``observation_spec``; a scalar observation becomes shape ``[1]``; float64 arrays are
  float32 (``double_to_float=True``, as :class:`~rlbench.envs.GymWrapper` does: torch models run in
  float32), other dtypes are kept;
- ``action_spec`` is ``Bounded`` by the action spec's ``minimum``/``maximum`` (float32 with
  ``double_to_float``); ``reward`` is float32 ``[1]``;
- ``from_pixels=True`` adds ``"pixels"``, uint8 ``[height, width, 3]``, rendered headless (see
  :mod:`rlbench.envs.libs.mujoco_gl`); ``pixels_only=True`` keeps only the pixels.

Episode ends follow the data contract. dm_control ends an episode with a ``LAST`` time step whose
``discount`` says why: 0 when the task terminated (no bootstrapping), 1 at the time limit. So
``terminated = last and discount == 0`` and ``truncated = last and not terminated``.

``frame_skip=k`` repeats each action ``k`` times and sums the rewards, stopping early at the end of
an episode; pixels are rendered once, after the last repeat. ``set_seed(s)`` reseeds the task's
``RandomState`` in place, which is what ``suite.load(..., task_kwargs={"random": s})`` seeds, so the
same seed and actions give the same trajectory as a plain dm_control env built with that seed.

dm_control and mujoco are imported when the first env is built, never by ``import rlbench``.
"""
from __future__ import annotations

import difflib
import logging
import threading
import weakref

import numpy as np
import torch
from tensordict import TensorDict

from ...specs import Bounded, Categorical, Composite, Spec, Unbounded
from ..common import EnvBase, check_frame_skip
from .mujoco_gl import render_help, select_mujoco_gl

__all__ = ["DMControlWrapper", "DMControlEnv"]

logger = logging.getLogger(__name__)

# pip < 23.3 does not normalise extra names (PEP 685): there only the normalised spelling installs it
_EXTRA = 'pip install "rlbench[dm_control]" (with pip < 23.3: pip install "rlbench[dm-control]")'
_UINT32 = 2**32
_LAST = 2  # dm_env.StepType.LAST (an IntEnum), without importing dm_env here


def _import_suite():
    """``dm_control.suite``, with ``MUJOCO_GL`` chosen first and errors that say what to install."""
    select_mujoco_gl()
    try:
        from dm_control import suite
    except ModuleNotFoundError as err:
        missing = (err.name or "").split(".")[0]
        if missing in ("dm_control", "mujoco", "dm_env", "dm_tree", "tree", "labmaze", "lxml", "absl"):
            raise ImportError(
                f"DMControlEnv needs dm_control and mujoco, and {missing!r} is not installed: {_EXTRA}"
            ) from err
        raise
    except Exception as err:  # dm_control's OpenGL backend failed while importing (e.g. no libOSMesa)
        raise RuntimeError(f"dm_control could not load its OpenGL backend ({type(err).__name__}: {err}). "
                           f"{render_help()}") from err
    _register_exit_hook()
    return suite


# --------------------------------------------------------------- clean exit
# dm_control frees a render context through a thread pool; at interpreter exit, Python shuts thread
# pools down before running atexit handlers, so dm_control's own atexit hook prints tracebacks
# ("cannot schedule new futures after shutdown"). Closing the wrappers still alive from a threading
# exit hook, which runs before the pools shut down, frees the contexts while that still works.
_LIVE: weakref.WeakSet = weakref.WeakSet()
_HOOKED: list = []


def _close_live() -> None:
    for env in list(_LIVE):
        try:
            env.close()
        except Exception:  # noqa: BLE001 -- best effort at exit, never mask the real exit status
            logger.debug("DMControlWrapper: close at exit failed", exc_info=True)


def _register_exit_hook() -> None:
    register = getattr(threading, "_register_atexit", None)  # CPython >= 3.9
    if register is not None and not _HOOKED:
        register(_close_live)
        _HOOKED.append(True)


# -------------------------------------------------------------- spec mapping
def _torch_dtype(np_dtype, double_to_float: bool) -> torch.dtype:
    np_dtype = np.dtype(np_dtype)
    if np_dtype == np.float64 and double_to_float:
        return torch.float32
    return torch.from_numpy(np.zeros(0, dtype=np_dtype)).dtype


def _array_spec(spec, batch, device, double_to_float: bool, name: str) -> Spec:
    """An rlbench spec for one dm_env ``Array``/``BoundedArray``/``DiscreteArray`` (scalars get shape [1])."""
    kind = type(spec).__name__
    if kind not in ("Array", "BoundedArray", "DiscreteArray", "StringArray"):
        raise TypeError(
            f"DMControlWrapper: {name} spec {spec!r} is a {kind}; only dm_env Array, BoundedArray and "
            f"DiscreteArray leaves (or a dict of them) can be mapped to rlbench specs"
        )
    if kind == "StringArray":
        raise TypeError(f"DMControlWrapper: {name} spec {spec!r} holds strings, which tensors cannot")
    shape = (*batch, *(tuple(spec.shape) or (1,)))
    dtype = _torch_dtype(spec.dtype, double_to_float)
    if kind == "DiscreteArray":
        return Categorical(int(spec.num_values), shape[:-1] if not spec.shape else shape, device=device)
    if kind == "BoundedArray":
        low = torch.tensor(np.broadcast_to(spec.minimum, spec.shape or (1,)), dtype=dtype)
        high = torch.tensor(np.broadcast_to(spec.maximum, spec.shape or (1,)), dtype=dtype)
        return Bounded(low, high, shape, dtype=dtype, device=device)
    if dtype == torch.uint8:
        return Bounded(0, 255, shape, dtype=dtype, device=device)
    return Unbounded(shape, dtype=dtype, device=device)


def _seed_value(seed: int):
    """What numpy's ``RandomState.seed`` takes for ``seed`` (ints of any size; negative ones refused)."""
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"DMControlWrapper.set_seed: seed must be >= 0 (numpy's RandomState), got {seed}")
    if seed < _UINT32:
        return seed  # exactly what suite.load(..., task_kwargs={"random": seed}) uses
    return np.random.SeedSequence(seed).generate_state(4)


class DMControlWrapper(EnvBase):
    """Wrap a dm_control (dm_env) environment as an rlbench env.

    Args:
        env: a ``dm_env.Environment`` from dm_control: ``suite.load(...)``, a ``control.Environment``,
            or a dm_control wrapper around one. Pixels need its ``physics``; seeding needs its
            ``task.random`` (suite tasks) or ``random_state`` (composer envs).
        from_pixels: add ``"pixels"`` (uint8 ``[height, width, 3]``) rendered by ``physics.render``,
            headless.
        pixels_only: with ``from_pixels``, keep only ``"pixels"`` as observation.
        height, width: the rendered frame's size.
        camera_id: the camera ``physics.render`` renders from.
        frame_skip: repeat each action this many times and sum the rewards (stopping at an episode's
            end).
        double_to_float: float64 observations and actions are float32 tensors (False keeps float64).
        device: device of the returned tensors.
        validate_actions: check every action against ``action_spec`` (range included) in ``step``.

    Example:
        >>> from rlbench.envs.libs.mujoco_gl import select_mujoco_gl
        >>> _ = select_mujoco_gl()  # before dm_control is first imported: headless rendering
        >>> from dm_control import suite
        >>> env = DMControlWrapper(suite.load("cartpole", "balance"))
        >>> sorted(env.observation_spec.keys())
        ['position', 'velocity']
        >>> _ = env.set_seed(0)
        >>> td = env.rollout(3)
        >>> td["next", "position"].shape, td["next", "reward"].dtype
        (torch.Size([3, 3]), torch.float32)
        >>> env.close()
    """

    def __init__(
        self,
        env,
        from_pixels: bool = False,
        pixels_only: bool = False,
        height: int = 84,
        width: int = 84,
        camera_id: int | str = 0,
        frame_skip: int = 1,
        double_to_float: bool = True,
        device=None,
        validate_actions: bool = True,
    ):
        if pixels_only and not from_pixels:
            raise ValueError("pixels_only=True needs from_pixels=True")
        frame_skip = check_frame_skip(frame_skip, type(self).__name__)
        if from_pixels and (int(height) < 1 or int(width) < 1):
            raise ValueError(f"height and width must be >= 1, got height={height}, width={width}")
        super().__init__(batch_size=(), device=device, validate_actions=validate_actions)
        self._env = env
        self.from_pixels, self.pixels_only = bool(from_pixels), bool(pixels_only)
        self.height, self.width, self.camera_id = int(height), int(width), camera_id
        self.frame_skip = int(frame_skip)
        self.double_to_float = bool(double_to_float)
        self._needs_reset = True
        self._build_specs()
        if self.from_pixels:
            self._check_rendering()
        _LIVE.add(self)

    # ------------------------------------------------------------------ set-up
    def _build_specs(self) -> None:
        batch, device, cast = self.batch_size, self.device, self.double_to_float
        obs_spec = self._env.observation_spec()
        if not isinstance(obs_spec, dict):  # a single array (e.g. flat_observation=True)
            obs_spec = {"observation": obs_spec}
        spec = Composite(shape=batch, device=device)
        # (key, shape, numpy dtype) of each observation, read in this order at every step
        self._obs_layout: list = []
        if not self.pixels_only:
            for key, leaf in obs_spec.items():
                if isinstance(leaf, dict):
                    raise TypeError(
                        f"DMControlWrapper: observation {key!r} is a nested dict; only flat dicts of arrays "
                        f"(as dm_control's suite gives) are supported"
                    )
                spec[key] = _array_spec(leaf, batch, device, cast, f"observation {key!r}")
                np_dtype = torch.zeros(0, dtype=spec[key].dtype).numpy().dtype
                self._obs_layout.append((key, tuple(spec[key].shape), np_dtype))
        if self.from_pixels:
            if "pixels" in spec.keys():
                raise ValueError("the dm_env already has a 'pixels' observation; from_pixels=True would overwrite it")
            spec["pixels"] = Bounded(0, 255, (*batch, self.height, self.width, 3), dtype=torch.uint8, device=device)
        self.observation_spec = spec
        act = self._env.action_spec()
        if isinstance(act, (dict, list, tuple)):
            raise TypeError(
                f"DMControlWrapper: the action spec is a {type(act).__name__} of arrays; rlbench actions are one "
                f"tensor. Wrap the env so that it takes a single array."
            )
        self.action_spec = _array_spec(act, batch, device, cast, "action")
        self._action_shape = tuple(act.shape)
        self._cpu = self.device.type == "cpu"
        self._unchecked_td = self._cpu and hasattr(TensorDict, "_new_unsafe")

    def _check_rendering(self) -> None:
        if getattr(self._env, "physics", None) is None:
            raise TypeError(
                f"from_pixels=True renders with env.physics.render, and {type(self._env).__name__} has no physics"
            )
        frame = self.render()
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"physics.render gave {frame.dtype} {frame.shape}, expected uint8 "
                             f"{(self.height, self.width, 3)}")

    # ---------------------------------------------------------------- helpers
    @property
    def dm_env(self):
        """The wrapped dm_env environment."""
        return self._env

    def render(self, height: int | None = None, width: int | None = None, camera_id=None) -> np.ndarray:
        """A frame of the current state, uint8 ``[height, width, 3]`` (the env's size and camera by default)."""
        h = self.height if height is None else int(height)
        w = self.width if width is None else int(width)
        cam = self.camera_id if camera_id is None else camera_id
        try:
            frame = self._env.physics.render(h, w, camera_id=cam)
        except Exception as err:
            text = f"{type(err).__name__}: {err}"
            if isinstance(err, ValueError) and "camera" in str(err).lower():
                raise  # a bad camera_id: dm_control's message names it
            raise RuntimeError(f"{type(self).__name__}: rendering a {h}x{w} frame failed ({text}). "
                               f"{render_help()}") from err
        return np.ascontiguousarray(frame)  # dm_control flips rows with a negative-stride view

    def _random_state(self):
        task = getattr(self._env, "task", None)
        random = getattr(task, "random", None)
        if random is None:
            random = getattr(self._env, "random_state", None)  # composer envs
        if not isinstance(random, np.random.RandomState):
            raise TypeError(
                f"{type(self).__name__}.set_seed: cannot seed {type(self._env).__name__}: it has neither "
                f"task.random nor random_state (a numpy RandomState). Seed it where it is built instead, e.g. "
                f"suite.load(domain, task, task_kwargs={{'random': seed}})."
            )
        return random

    def _observation(self, obs) -> dict:
        data = {}
        if not isinstance(obs, dict):
            obs = {"observation": obs}
        for key, shape, dtype in self._obs_layout:
            data[key] = torch.from_numpy(np.array(obs[key], dtype=dtype).reshape(shape))
        if self.from_pixels:
            data["pixels"] = torch.from_numpy(self.render())
        return data

    def _td(self, data: dict):
        if self._unchecked_td:
            # every entry was just built here with the right shape on the CPU: skip the checks
            return TensorDict._new_unsafe(data, batch_size=self.batch_size, device=self.device)
        return TensorDict(data, batch_size=self.batch_size, device=self.device)

    # ------------------------------------------------------------ EnvBase API
    def _set_seed(self, seed) -> None:
        self._random_state().seed(None if seed is None else _seed_value(seed))

    def _reset(self, td=None):
        ts = self._env.reset()
        self._needs_reset = False
        return self._td(self._observation(ts.observation))

    def _step(self, td):
        if self._needs_reset:
            raise RuntimeError(
                f"{type(self).__name__}.step: the episode is over (or never started); call env.reset() first "
                f"(rollout and step_and_maybe_reset do)"
            )
        action = td.get(self.action_key)
        action = action.detach().cpu().numpy().reshape(self._action_shape)
        env_step = self._env.step
        reward = 0.0
        for _ in range(self.frame_skip):
            ts = env_step(action)
            if ts.reward is not None:
                reward += ts.reward
            if ts.step_type == _LAST:
                break
        last = ts.step_type == _LAST
        terminated = last and ts.discount == 0
        truncated = last and not terminated
        self._needs_reset = last
        data = self._observation(ts.observation)
        data[self.reward_key] = torch.from_numpy(np.array([reward], dtype=np.float32))
        data["terminated"] = torch.from_numpy(np.array([terminated], dtype=bool))
        data["truncated"] = torch.from_numpy(np.array([truncated], dtype=bool))
        data["done"] = torch.from_numpy(np.array([last], dtype=bool))
        return self._td(data)

    # --------------------------------------------------------------- rollout
    def _steps_unchanged(self) -> bool:
        """Whether this class keeps the steps, resets and random actions that the fast rollout reproduces."""
        cls, base = type(self), DMControlWrapper
        return (
            cls._step is base._step and cls._reset is base._reset and cls._observation is base._observation
            and cls.step is EnvBase.step and cls.reset is EnvBase.reset and cls.rand_action is EnvBase.rand_action
            and cls.render is base.render
        )

    @torch.no_grad()
    def rollout(self, max_steps: int, policy=None, break_when_any_done: bool = True, auto_reset: bool = True,
                tensordict=None):
        """Like :meth:`EnvBase.rollout`; a random rollout (``policy=None``) takes a NumPy fast path.

        The fast path draws every random action at once from ``action_spec`` (the same numbers as one
        draw per step), steps the dm_env in a tight loop that writes into preallocated NumPy arrays and
        converts them to torch once: the same keys, values and reset semantics as the generic path.
        """
        if policy is not None or not auto_reset or not self._steps_unchanged():
            return super().rollout(max_steps, policy, break_when_any_done, auto_reset, tensordict)
        if int(max_steps) < 1:
            raise ValueError(f"rollout: max_steps must be >= 1, got {max_steps}")
        return self._fast_rollout(int(max_steps), break_when_any_done)

    def _raw_observation(self, obs) -> list:
        """The observation arrays in ``observation_spec`` order, uncast (assigning into a buffer casts)."""
        if not isinstance(obs, dict):
            obs = {"observation": obs}
        values = [obs[key] for key, _, _ in self._obs_layout]
        if self.from_pixels:
            values.append(self.render())
        return values

    def _fast_rollout(self, n: int, stop_at_done: bool):
        actions = self.action_spec.rand((n,), generator=self.action_generator)
        np_actions = actions.numpy().reshape(n, *self._action_shape)
        layout = list(self._obs_layout)
        if self.from_pixels:
            layout.append(("pixels", (self.height, self.width, 3), np.dtype(np.uint8)))
        root = [np.empty((n, *shape), dtype) for _, shape, dtype in layout]
        nxt = [np.empty((n, *shape), dtype) for _, shape, dtype in layout]
        reward = np.zeros((n, 1), np.float32)
        term = np.zeros((n, 1), bool)
        trunc = np.zeros((n, 1), bool)
        env, skip, read = self._env, self.frame_skip, self._raw_observation
        current = read(env.reset().observation)
        self._needs_reset = False
        steps = n
        for t in range(n):
            for buf, value in zip(root, current):
                buf[t] = value
            action = np_actions[t]
            r = 0.0
            for _ in range(skip):
                ts = env.step(action)
                if ts.reward is not None:
                    r += ts.reward
                if ts.step_type == _LAST:
                    break
            current = read(ts.observation)
            for buf, value in zip(nxt, current):
                buf[t] = value
            reward[t, 0] = r
            if ts.step_type == _LAST:
                terminated = ts.discount == 0
                term[t, 0], trunc[t, 0] = terminated, not terminated
                if stop_at_done or t == n - 1:
                    self._needs_reset, steps = True, t + 1
                    break
                current = read(env.reset().observation)
        return self._pack(steps, actions, [key for key, _, _ in layout], root, nxt, reward, term, trunc)

    def _pack(self, s, actions, keys, root, nxt, reward, term, trunc):
        out = TensorDict({}, batch_size=[s], device=self.device)
        false = torch.zeros((s, 1), dtype=torch.bool)
        for key, buf in zip(keys, root):
            out.set(key, torch.from_numpy(buf[:s]))
        for name in ("done", "terminated", "truncated"):
            out.set(name, false.clone())
        out.set(self.action_key, actions[:s].clone() if s < actions.shape[0] else actions)
        for key, buf in zip(keys, nxt):
            out.set(("next", key), torch.from_numpy(buf[:s]))
        term_t, trunc_t = torch.from_numpy(term[:s]), torch.from_numpy(trunc[:s])
        out.set(("next", self.reward_key), torch.from_numpy(reward[:s]))
        out.set(("next", "done"), term_t | trunc_t)
        out.set(("next", "terminated"), term_t)
        out.set(("next", "truncated"), trunc_t)
        return out

    # -------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Free the physics' render contexts and mark the env closed (it cannot step afterwards)."""
        if not self.is_closed:
            _LIVE.discard(self)
            physics = getattr(self._env, "physics", None)
            close = getattr(self._env, "close", None)
            if close is not None:
                close()
            if physics is not None and hasattr(physics, "free"):
                physics.free()
        super().close()

    def __repr__(self) -> str:
        return super().__repr__().replace(f"{type(self).__name__}(", f"{type(self).__name__}(\n    "
                                          f"frame_skip={self.frame_skip}, from_pixels={self.from_pixels},", 1)


def _check_names(suite, domain: str, task: str) -> None:
    """A ValueError naming the valid domains (or the domain's tasks) for an unknown ``(domain, task)``."""
    tasks: dict = {}
    for d, t in suite.ALL_TASKS:
        tasks.setdefault(d, []).append(t)
    if domain not in tasks:
        close = difflib.get_close_matches(str(domain), list(tasks), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"DMControlEnv: unknown dm_control domain {domain!r}.{hint} Valid domains: {', '.join(sorted(tasks))}. "
            f"The benchmarking set (dm_control.suite.BENCHMARKING) is: "
            f"{', '.join(f'{d}-{t}' for d, t in suite.BENCHMARKING)}."
        )
    if task not in tasks[domain]:
        close = difflib.get_close_matches(str(task), tasks[domain], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"DMControlEnv: domain {domain!r} has no task {task!r}.{hint} Its tasks: {', '.join(tasks[domain])}."
        )


class DMControlEnv(DMControlWrapper):
    """Load a DeepMind Control Suite task by name and wrap it.

    Args:
        domain: the suite's domain, e.g. ``"cartpole"`` (``dm_control.suite.ALL_TASKS`` lists them).
        task: the domain's task, e.g. ``"swingup"``.
        from_pixels, pixels_only, height, width, camera_id, frame_skip: see :class:`DMControlWrapper`.
        task_kwargs: passed to the task, e.g. ``{"time_limit": 5}`` (seconds) or ``{"random": 0}``.
        environment_kwargs: passed to ``control.Environment``, e.g. ``{"n_sub_steps": 2}``.
        double_to_float, device, validate_actions: see :class:`DMControlWrapper`.

    Needs the ``dm_control`` extra (``pip install "rlbench[dm_control]"``); rendering picks a headless
    ``MUJOCO_GL`` first (:func:`~rlbench.envs.libs.mujoco_gl.select_mujoco_gl`).

    Example:
        >>> env = DMControlEnv("cartpole", "swingup", task_kwargs={"time_limit": 0.05})
        >>> _ = env.set_seed(0)
        >>> td = env.rollout(10)
        >>> td.shape, bool(td["next", "truncated"][-1]), bool(td["next", "terminated"][-1])
        (torch.Size([5]), True, False)
        >>> pixels = DMControlEnv("cartpole", "swingup", from_pixels=True, pixels_only=True, height=32, width=32)
        >>> pixels.reset()["pixels"].shape
        torch.Size([32, 32, 3])
        >>> env.close(), pixels.close()
        (None, None)
    """

    def __init__(
        self,
        domain: str,
        task: str,
        from_pixels: bool = False,
        pixels_only: bool = False,
        height: int = 84,
        width: int = 84,
        camera_id: int | str = 0,
        frame_skip: int = 1,
        task_kwargs: dict | None = None,
        environment_kwargs: dict | None = None,
        double_to_float: bool = True,
        device=None,
        validate_actions: bool = True,
    ):
        suite = _import_suite()
        _check_names(suite, domain, task)
        self.domain, self.task = domain, task
        env = suite.load(domain, task, task_kwargs=dict(task_kwargs or {}),
                         environment_kwargs=None if environment_kwargs is None else dict(environment_kwargs))
        super().__init__(env, from_pixels=from_pixels, pixels_only=pixels_only, height=height, width=width,
                         camera_id=camera_id, frame_skip=frame_skip, double_to_float=double_to_float, device=device,
                         validate_actions=validate_actions)

    def __repr__(self) -> str:
        return super().__repr__().replace("DMControlEnv(", f"DMControlEnv(\n    domain={self.domain!r}, "
                                          f"task={self.task!r},", 1)
