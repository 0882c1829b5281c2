"""``GymWrapper`` and ``GymEnv``: gymnasium (and legacy gym) environments behind the rlbench contract.

One wrapper serves three step APIs, told apart by the shape of each call's result:

- gymnasium and gym >= 0.26: ``reset() -> (obs, info)``, ``step() -> (obs, reward, terminated,
  truncated, info)``;
- gym < 0.26: ``reset() -> obs``, ``step() -> (obs, reward, done, info)`` where
  ``info["TimeLimit.truncated"]`` marks a time-limit end (reported as ``truncated``, not
  ``terminated``).

Gymnasium vector envs give a batched env (``batch_size=[num_envs]``). They must auto-reset in
``SAME_STEP`` mode: a done sub-env is reset inside the step that ended it, its true final observation
is in ``info["final_obs"]``, and no fake "reset transition" ever reaches a rollout. The wrapper writes
the final observation to ``("next", "observation")`` and hands the fresh one out at the following
partial ``reset`` (the ``"_reset"`` mask protocol of :class:`~rlbench.envs.EnvBase`);
``step_and_maybe_reset`` (what collectors call) does both in one pass, with the same result (see
:mod:`rlbench.envs.gym_vector`, whose :class:`~rlbench.envs.gym_vector.SameStepVector` a vector wrapper
holds), and :meth:`GymWrapper.fused_stepper` hands a collector the same steps as NumPy arrays.

NumPy kernels that batch single gym envs (:mod:`rlbench.envs.serial_gym`) step the wrapped env through
:meth:`GymWrapper.numpy_access`, which says whether the wrapper's data is exactly what such a kernel
produces and gives it what it needs.

Data conventions: float64 ``Box`` observations are cast to **float32** (their spec says float32);
rewards are float32 ``[*batch, 1]``; done flags are bool ``[*batch, 1]``. Random actions
(``rand_action``, ``rollout(policy=None)``) come from the env's ``action_generator``, seeded by
:meth:`GymWrapper.set_seed` together with the gym env, so a seeded rollout is reproducible.
"""
from __future__ import annotations

import inspect
import os
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from tensordict import TensorDict

from ..specs import Bounded, Categorical, Composite, MultiCategorical
from .common import EnvBase, check_frame_skip
from .fused import FusedStepper
from .gym_backend import ensure_ale_registered, import_backend, infer_backend, strip_legacy_checker
from .gym_spaces import ObservationReader, make_action_converter, space_kind, space_to_spec, torch_to_numpy
from .gym_vector import SameStepVector
from .libs.gym_mujoco import prepare_gym_mujoco

__all__ = ["GymWrapper", "GymEnv", "NumpyAccess"]


_RENDER_EXTRA = "pip install rlbench[notebooks]  (or just pip install pygame)"


def _is_vector(env) -> bool:
    return hasattr(env, "num_envs") and hasattr(env, "single_observation_space")


class NumpyAccess(NamedTuple):
    """What a NumPy kernel needs to step a single :class:`GymWrapper`'s gym env itself.

    Returned by :meth:`GymWrapper.numpy_access` only when the kernel's arrays are exactly the wrapper's
    data: one observation array under ``key`` with NumPy dtype ``dtype``, and steps and resets that
    the wrapper does not change (no subclass override, no pixels).

    Attributes:
        key: the observation key.
        dtype: the observation's NumPy dtype (the spec's: float64 Boxes read as float32).
        action_space: the gym action space (for a batch action converter).
        cheap_checked: whether the wrapper's action converter range-checks actions (integer kinds), so
            that the spec check of each action is only shape and dtype.
        step: ``step(gym action) -> (obs, reward, terminated, truncated, info)``, whatever the step API.
        reset: ``reset(seed, options) -> obs`` (a pending ``set_seed`` seed is used once).
    """

    key: str
    dtype: Any
    action_space: Any
    cheap_checked: bool
    step: Callable
    reset: Callable


def _takes_seed(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "seed" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class GymWrapper(EnvBase):
    """Wrap a gymnasium / gym env (or a gymnasium vector env) as an rlbench env.

    Args:
        env: the env to wrap: ``gymnasium.Env``, a legacy ``gym.Env`` (0.26 or the older 4-tuple
            API), or a ``gymnasium.vector.VectorEnv`` created with ``autoreset_mode=SAME_STEP``.
        backend: ``"gymnasium"`` or ``"gym"``; inferred from the env's classes when None.
        from_pixels: add a ``"pixels"`` observation (uint8 ``[H, W, 3]``) from ``env.render()``; the
            env must have ``render_mode="rgb_array"``.
        pixels_only: with ``from_pixels``, drop the state observation.
        categorical_action_encoding: ``Discrete`` actions are integer indices (``Categorical``);
            when False they are one-hot vectors (``OneHot``).
        device: device of the tensors the env returns.
        validate_actions: check continuous actions against ``action_spec`` on every step (integer
            actions are always range-checked: it costs next to nothing). False passes out-of-range
            continuous actions to the gym env as they are, as TorchRL does (gymnasium's Pendulum, for
            one, clips them).
        frame_skip: repeat each action this many times, summing the rewards; the repeats stop at the
            end of an episode, so ``("next", ...)`` is always a real step's outcome. Single envs only
            (a vector env resets a finished sub-env inside the step: use
            ``TransformedEnv(env, FrameSkipTransform(k))``).

    Observations keep gym's structure: a ``Box``/``Discrete`` observation is ``"observation"``,
    a ``Dict`` observation gives its own (nested) keys, a ``Tuple`` gives ``("observation", "0")``, ...

    Example:
        >>> import gymnasium
        >>> env = GymWrapper(gymnasium.make("CartPole-v1"))
        >>> _ = env.set_seed(0)
        >>> td = env.rollout(5)
        >>> td["next", "observation"].shape, td["next", "reward"].dtype
        (torch.Size([5, 4]), torch.float32)
        >>> env.close()
    """

    def __init__(
        self,
        env,
        backend: str | None = None,
        from_pixels: bool = False,
        pixels_only: bool = False,
        categorical_action_encoding: bool = True,
        device=None,
        validate_actions: bool = True,
        frame_skip: int = 1,
    ):
        if pixels_only and not from_pixels:
            raise ValueError("pixels_only=True needs from_pixels=True")
        self.frame_skip = check_frame_skip(frame_skip, type(self).__name__)
        self.backend = backend if backend is not None else infer_backend(env)
        if self.backend not in ("gymnasium", "gym"):
            raise ValueError(f"backend must be 'gymnasium' or 'gym', got {backend!r}")
        if self.backend == "gym":
            env = strip_legacy_checker(env)
        self._env = env
        self.is_vector = _is_vector(env)
        if self.is_vector and frame_skip > 1:
            raise NotImplementedError(
                f"{type(self).__name__}: frame_skip={frame_skip} is not supported for vector envs: a SAME_STEP "
                f"vector env resets a finished sub-env inside the step, so repeating the action would step the "
                f"next episode. Use TransformedEnv(env, FrameSkipTransform({frame_skip})), which stops the "
                f"repeats at the first done sub-env."
            )
        super().__init__(
            batch_size=(env.num_envs,) if self.is_vector else (), device=device, validate_actions=validate_actions
        )
        self.from_pixels, self.pixels_only = from_pixels, pixels_only
        self.categorical_action_encoding = categorical_action_encoding
        if self.is_vector:
            self._check_vector_env(env)
            obs_space, act_space = env.single_observation_space, env.single_action_space
        else:
            obs_space, act_space = env.observation_space, env.action_space
        self._obs_space, self._act_space = obs_space, act_space
        self._reset_takes_seed = _takes_seed(env.reset)
        self._pending_seed = None
        self._build_specs(obs_space, act_space)

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _check_vector_env(env) -> None:
        metadata = getattr(env, "metadata", None)
        mode = metadata.get("autoreset_mode", None) if isinstance(metadata, dict) else None
        if getattr(mode, "value", mode) != "SameStep":
            raise ValueError(
                f"GymWrapper needs a vector env that auto-resets in SAME_STEP mode (got autoreset_mode={mode!r}): "
                f"in NEXT_STEP mode every episode end adds a step that never happened. Create it with "
                f"gymnasium.make_vec(..., vector_kwargs={{'autoreset_mode': AutoresetMode.SAME_STEP}}) (AutoresetMode "
                f"from gymnasium.vector) or use GymEnv(name, num_envs=N)."
            )

    def _build_specs(self, obs_space, act_space) -> None:
        batch, device = self.batch_size, self.device
        obs_spec = Composite(shape=batch, device=device)
        if not self.pixels_only:
            try:
                body = space_to_spec(obs_space, batch, device)
            except TypeError as err:
                raise TypeError(f"{type(self).__name__}: observation space: {err}") from None
            if space_kind(obs_space) == "Dict":
                obs_spec = body
            else:
                obs_spec["observation"] = body
        self._reader = ObservationReader(None if self.pixels_only else obs_space)
        if self.from_pixels:
            if self.is_vector:
                raise NotImplementedError(
                    "from_pixels is not supported for vector envs: a SAME_STEP vector env has already reset a "
                    "done sub-env when it could render, so the final frame is lost. Batch single GymEnv("
                    "..., from_pixels=True) envs instead."
                )
            if "pixels" in obs_spec:
                raise ValueError("the observation space already has a 'pixels' key; from_pixels would overwrite it")
            frame = self._first_frame()
            obs_spec["pixels"] = Bounded(0, 255, (*batch, *frame.shape), dtype=torch.uint8, device=device)
        self.observation_spec = obs_spec
        try:
            self.action_spec = space_to_spec(act_space, batch, device, self.categorical_action_encoding)
        except TypeError as err:
            raise TypeError(f"{type(self).__name__}: action space: {err}") from None
        if isinstance(self.action_spec, Composite):
            raise TypeError(
                f"{type(self).__name__}: action space {act_space!r} is a Dict/Tuple; rlbench actions are a single "
                f"tensor (Box, Discrete, MultiDiscrete or MultiBinary). Wrap the env in a gymnasium ActionWrapper "
                f"that takes one such action and builds the Dict/Tuple from it."
            )
        self._convert_action = make_action_converter(act_space, self.action_spec, self._raise_action_error)
        # integer kinds are range-checked by the converter, so step() skips the generic spec check
        self._cheap_checked = isinstance(self.action_spec, (Categorical, MultiCategorical)) or (
            space_kind(act_space) == "MultiBinary"
        )
        self._unchecked_td = (
            not self.is_vector and self._reader.flat and self.device.type == "cpu"
            and hasattr(TensorDict, "_new_unsafe")
        )
        # a vector env's SAME_STEP bookkeeping; it resets the gym env through the wrapper's reset
        self._vector = SameStepVector(self._reader, batch, device, self._gym_reset) if self.is_vector else None
        # the fused step_and_maybe_reset gives exactly what the generic path gives unless a subclass
        # changes a step or a reset; nested (Dict) observations keep the generic path, whose step_mdp
        # copies nested containers
        self._fuse_vector = self.is_vector and self._reader.flat and self._steps_unchanged()

    def _steps_unchanged(self) -> bool:
        """Whether this env's class keeps GymWrapper's ``_step``/``_reset``/``step``/``reset``.

        The NumPy fast paths reproduce exactly those; a subclass that changes one gets the generic path.
        """
        cls = type(self)
        return (
            cls._step is GymWrapper._step and cls._reset is GymWrapper._reset
            and cls.step is GymWrapper.step and cls.reset is GymWrapper.reset
        )

    def _first_frame(self) -> np.ndarray:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless: no window, no display needed
        mode = getattr(self._env, "render_mode", None)
        if mode != "rgb_array":
            raise ValueError(
                f"from_pixels=True needs an env created with render_mode='rgb_array' (got render_mode={mode!r}), "
                f"e.g. gymnasium.make(name, render_mode='rgb_array') or GymEnv(name, from_pixels=True)"
            )
        self._gym_reset(None, None)  # gymnasium refuses to render before the first reset
        frame = self._render_frame()
        if frame.ndim != 3 or frame.dtype != np.uint8:
            raise ValueError(f"env.render() returned {frame.dtype} {frame.shape}; from_pixels needs uint8 [H, W, C]")
        return frame

    def _render_frame(self) -> np.ndarray:
        try:
            frame = self._env.render()
        except Exception as err:
            if isinstance(err, ImportError) or type(err).__name__ == "DependencyNotInstalled":
                raise ImportError(f"rendering needs pygame, which is missing: {_RENDER_EXTRA}. ({err})") from err
            raise
        return np.asarray(frame)

    # ---------------------------------------------------------------- helpers
    @property
    def gym_env(self):
        """The wrapped gym(nasium) env."""
        return self._env

    def _raise_action_error(self, action):
        why = self.action_spec.mismatch(action) or "values out of range"
        raise ValueError(
            f"{type(self).__name__}.step: action under key {self.action_key!r} does not match action_spec: {why}. "
            f"The spec is {self.action_spec!r}."
        )

    def _check_action(self, td) -> None:
        # the cheap common case inline; anything off goes to EnvBase's check and its error messages
        action = td.get(self.action_key, None)
        spec = self._action_spec
        if (
            action is None or action.shape != spec.shape or action.dtype != spec.dtype
            or (self.validate_actions and not self._cheap_checked)
        ):
            super()._check_action(td)

    def _obs_dict(self, obs) -> dict:
        data = self._reader.read(obs)
        if self.from_pixels:
            data["pixels"] = torch.from_numpy(np.array(self._render_frame(), dtype=np.uint8))
        return data

    def _gym_reset(self, seed, options):
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        kwargs = {}
        if seed is not None and self._reset_takes_seed:
            kwargs["seed"] = seed
        if options is not None:
            kwargs["options"] = options
        out = self._env.reset(**kwargs)
        # new API: (obs, info). Old API: obs alone, which may itself be a tuple for Tuple spaces.
        if (
            isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)
            and not (space_kind(self._obs_space) == "Tuple" and self._obs_space.contains(out))
        ):
            return out[0]
        return out

    # ------------------------------------------------------------ EnvBase API
    def _set_seed(self, seed) -> None:
        self._pending_seed = seed
        for name in ("action_space", "observation_space", "single_action_space", "single_observation_space"):
            space = getattr(self._env, name, None)
            if space is not None and hasattr(space, "seed"):
                space.seed(seed)
        if not self._reset_takes_seed and hasattr(self._env, "seed"):
            self._env.seed(seed)  # gym < 0.26 seeds through env.seed(), not reset(seed=...)

    def _reset(self, td=None, seed=None, options=None):
        """Reset the gym env (``seed`` and ``options`` go to its ``reset``).

        A vector env resets the ``"_reset"``-masked sub-envs only, handing out the observations its
        SAME_STEP autoreset already made (see :mod:`rlbench.envs.gym_vector`).
        """
        if self.is_vector:
            out = self._vector.reset(td, seed, options)
            return self.observation_spec.zero() if out is None else out  # None: EnvBase keeps every value
        data = self._obs_dict(self._gym_reset(seed, options))
        return TensorDict(data, batch_size=self.batch_size, device=self.device)

    def _gym_step(self, action):
        """``env.step(action)`` as ``(obs, reward, terminated, truncated, info)``, whatever the step API.

        With ``frame_skip > 1`` the action is repeated (until the episode ends) and the rewards summed.
        """
        if self.frame_skip == 1:
            return self._gym_step_once(action)
        obs, reward, term, trunc, info = self._gym_step_once(action)
        for _ in range(self.frame_skip - 1):
            if term or trunc:
                break
            obs, r, term, trunc, info = self._gym_step_once(action)
            reward = reward + r
        return obs, reward, term, trunc, info

    def _gym_step_once(self, action):
        out = self._env.step(action)
        if len(out) == 5:
            return out
        # gym < 0.26: done + info["TimeLimit.truncated"]
        obs, reward, done, info = out
        if self.is_vector:
            trunc = np.asarray(info.get("TimeLimit.truncated", np.zeros(self.batch_size, bool)), dtype=bool)
            term = np.asarray(done, dtype=bool) & ~trunc
        else:
            trunc = bool(info.get("TimeLimit.truncated", False))
            term = bool(done) and not trunc
        return obs, reward, term, trunc, info

    def _step(self, td):
        obs, reward, term, trunc, info = self._gym_step(self._convert_action(td.get(self.action_key)))
        if self.is_vector:
            return self._vector.step_td(obs, reward, term, trunc, info)
        data = self._obs_dict(obs)
        data["reward"] = torch.from_numpy(np.array([reward], dtype=np.float32))
        data["terminated"] = torch.from_numpy(np.array([term], dtype=bool))
        data["truncated"] = torch.from_numpy(np.array([trunc], dtype=bool))
        data["done"] = torch.from_numpy(np.array([term or trunc], dtype=bool))
        if self._unchecked_td:
            # every entry was just built here with the right shape on the CPU: skip the checks
            return TensorDict._new_unsafe(data, batch_size=self.batch_size, device=self.device)
        return TensorDict(data, batch_size=self.batch_size, device=self.device)

    def step_and_maybe_reset(self, td):
        """Like :meth:`EnvBase.step_and_maybe_reset`, with the same output.

        Vector envs take a fused path that builds the step and the next root from the step's NumPy
        outputs, with no partial reset to merge (see :mod:`rlbench.envs.gym_vector`).
        """
        if self._fuse_vector and td.batch_size == self.batch_size:
            self._check_action(td)
            out = self._gym_step(self._convert_action(td.get(self.action_key)))
            return self._vector.step_and_reset(td, out, self.action_key, self.reward_key)
        return super().step_and_maybe_reset(td)

    def fused_stepper(self, random: bool = False) -> FusedStepper | None:
        """A :class:`~rlbench.envs.gym_vector.VectorFusedStepper`, or None (see :meth:`EnvBase.fused_stepper`).

        Only for a SAME_STEP vector env whose fused ``step_and_maybe_reset`` applies unchanged: one
        observation array, on the CPU, no partial reset pending, no subclass override of the step, the
        action check or (for ``random``) the random actions.
        """
        cls = type(self)
        if (
            not self._fuse_vector or self.from_pixels
            or cls.step_and_maybe_reset is not GymWrapper.step_and_maybe_reset
            or cls._check_action is not GymWrapper._check_action
            or (random and cls.rand_action is not GymWrapper.rand_action)
        ):
            return None
        convert, gym_step = self._convert_action, self._gym_step
        return self._vector.fused_stepper(
            lambda action: gym_step(convert(action)), self.action_spec,
            cheap=self._cheap_checked or not self.validate_actions, generator=self.action_generator,
        )

    def numpy_access(self) -> NumpyAccess | None:
        """What a NumPy kernel batching single gym envs needs to step this one, or None.

        None when the kernel's data would differ from this wrapper's (the kernel:
        :mod:`rlbench.envs.serial_gym`).

        Available for a single (not vector) env with one observation array, no pixels, on the CPU, whose
        class keeps GymWrapper's steps and resets.

        Example:
            >>> env = GymEnv("CartPole-v1")
            >>> access = env.numpy_access()
            >>> access.key, access.dtype, access.cheap_checked
            ('observation', dtype('float32'), True)
            >>> obs = access.reset(0, None)
            >>> len(access.step(1))  # (obs, reward, terminated, truncated, info)
            5
            >>> GymEnv("CartPole-v1", num_envs=2).numpy_access() is None
            True
        """
        reader = self._reader
        if self.is_vector or self.from_pixels or reader.simple is None or self.device.type != "cpu" or (
            not self._steps_unchanged()
        ):
            return None
        key, dtype = reader.simple
        return NumpyAccess(key, dtype, self._act_space, self._cheap_checked, self._gym_step, self._gym_reset)

    # --------------------------------------------------------------- rollout
    def rollout(self, max_steps: int, policy=None, break_when_any_done: bool = True, auto_reset: bool = True,
                tensordict=None):
        """Like :meth:`EnvBase.rollout`; random rollouts of a single env take a fast NumPy path.

        With ``policy=None``, ``auto_reset=True``, no pixels and a non-vector env, all random actions
        are drawn at once from ``action_spec``, the raw gym env is stepped in a tight loop that writes
        into preallocated NumPy arrays, and the result is converted to torch once. The output has the
        same keys, shapes, dtypes and reset semantics as the generic path.
        """
        fast = (
            policy is None and auto_reset and not self.is_vector and not self.from_pixels
            and type(self)._step is GymWrapper._step and type(self)._reset is GymWrapper._reset
        )
        if not fast:
            return super().rollout(max_steps, policy, break_when_any_done, auto_reset, tensordict)
        if max_steps < 1:
            raise ValueError(f"rollout: max_steps must be >= 1, got {max_steps}")
        return self._fast_rollout(int(max_steps), break_when_any_done)

    def _fast_rollout(self, n: int, break_when_any_done: bool):
        actions = self.action_spec.rand((n,), generator=self.action_generator)
        gym_actions = torch_to_numpy(actions.cpu(), self._act_space, self.action_spec)
        gym_actions = gym_actions.tolist() if space_kind(self._act_space) == "Discrete" else list(gym_actions)
        leaves = self._reader.leaves
        root = [np.empty((n, *leaf.shape), leaf.dtype) for leaf in leaves]
        nxt = [np.empty((n, *leaf.shape), leaf.dtype) for leaf in leaves]
        pairs = [(leaf.path, r, x) for leaf, r, x in zip(leaves, root, nxt)]
        reward = np.zeros((n, 1), np.float32)
        term = np.zeros((n, 1), bool)
        trunc = np.zeros((n, 1), bool)
        step, reset = (self._env.step if self.frame_skip == 1 else self._gym_step), self._gym_reset
        obs = reset(None, None)
        steps = n
        for t in range(n):
            for path, r, _ in pairs:
                value = obs
                for p in path:
                    value = value[p]
                r[t] = value
            out = step(gym_actions[t])
            if len(out) == 5:
                obs, rew, te, tr, _ = out
            else:
                obs, rew, d, info = out
                tr = bool(info.get("TimeLimit.truncated", False))
                te = bool(d) and not tr
            for path, _, x in pairs:
                value = obs
                for p in path:
                    value = value[p]
                x[t] = value
            reward[t, 0] = rew
            term[t, 0] = te
            trunc[t, 0] = tr
            if te or tr:
                if break_when_any_done:
                    steps = t + 1
                    break
                if t < n - 1:
                    obs = reset(None, None)
        return self._pack_rollout(steps, actions, leaves, root, nxt, reward, term, trunc)

    def _pack_rollout(self, s, actions, leaves, root, nxt, reward, term, trunc):
        def tensor(a, leaf=None):
            a = a[:s]
            if leaf is not None and leaf.offset is not None:
                a -= np.asarray(leaf.offset, dtype=a.dtype)
            return torch.from_numpy(a)

        false = torch.zeros((s, 1), dtype=torch.bool)
        out = TensorDict({}, batch_size=[s], device=self.device)
        for leaf, r in zip(leaves, root):
            out.set(leaf.key, tensor(r, leaf))
        out.set("done", false)
        out.set("terminated", false.clone())
        out.set("truncated", false.clone())
        out.set(self.action_key, actions[:s].clone() if s < actions.shape[0] else actions)
        for leaf, x in zip(leaves, nxt):
            out.set(("next", *((leaf.key,) if self._reader.flat else leaf.key)), tensor(x, leaf))
        term_t, trunc_t = tensor(term), tensor(trunc)
        out.set(("next", self.reward_key), tensor(reward))
        out.set(("next", "done"), term_t | trunc_t)
        out.set(("next", "terminated"), term_t)
        out.set(("next", "truncated"), trunc_t)
        return out

    # -------------------------------------------------------------- lifecycle
    def render(self):
        """``env.render()`` of the wrapped env (a frame for ``render_mode="rgb_array"``)."""
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        return self._render_frame()

    def close(self) -> None:
        if not self.is_closed:
            self._env.close()
        super().close()


class GymEnv(GymWrapper):
    """Make a gymnasium (or legacy gym) env by name and wrap it.

    Args:
        name: the registered env id, e.g. ``"CartPole-v1"``.
        backend: ``"gymnasium"`` (default) or ``"gym"`` (legacy gym 0.26: ``pip install rlbench[gym]``).
        from_pixels: add ``"pixels"`` from ``render()`` (the env is made with ``render_mode="rgb_array"``;
            rendering is headless).
        pixels_only: keep only ``"pixels"`` as observation.
        num_envs: make a gymnasium vector env of this many copies (``batch_size=[num_envs]``),
            synchronous unless ``vectorization_mode="async"`` is passed.
        categorical_action_encoding: True (the default): ``Discrete`` actions are integer indices
            (a scalar ``Categorical``); False: one-hot vectors (``OneHot``). See :class:`GymWrapper`.
        device: device of the returned tensors.
        validate_actions: see :class:`GymWrapper` (False lets out-of-range continuous actions through).
        frame_skip: repeat each action this many times, summing the rewards (see :class:`GymWrapper`).
        **make_kwargs: passed to ``gymnasium.make`` / ``make_vec`` / ``gym.make``, e.g.
            ``max_episode_steps=100``.

    Example:
        >>> env = GymEnv("CartPole-v1", max_episode_steps=5)
        >>> td = env.rollout(10)
        >>> td.shape, bool(td["next", "truncated"][-1]), bool(td["next", "terminated"][-1])
        (torch.Size([5]), True, False)
        >>> GymEnv("CartPole-v1", num_envs=3).rollout(4).shape
        torch.Size([3, 4])
    """

    def __init__(
        self,
        name: str,
        backend: str = "gymnasium",
        from_pixels: bool = False,
        pixels_only: bool = False,
        num_envs: int | None = None,
        categorical_action_encoding: bool = True,
        device=None,
        validate_actions: bool = True,
        frame_skip: int = 1,
        **make_kwargs,
    ):
        module = import_backend(backend)
        check_frame_skip(frame_skip, "GymEnv")
        if num_envs is not None and frame_skip != 1:
            raise NotImplementedError(
                f"GymEnv: frame_skip={frame_skip} is not supported with num_envs (a SAME_STEP vector env resets a "
                f"finished sub-env inside the step): use TransformedEnv(GymEnv(name, num_envs=...), "
                f"FrameSkipTransform({frame_skip}))"
            )
        self.env_name = name
        if backend == "gymnasium":
            ensure_ale_registered(name, module)
        if from_pixels:
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
            make_kwargs.setdefault("render_mode", "rgb_array")
        if backend == "gymnasium":  # a MuJoCo id: its extra, and MUJOCO_GL chosen before mujoco is imported
            prepare_gym_mujoco(name, from_pixels)
        if num_envs is not None:
            if backend != "gymnasium":
                raise ValueError("num_envs is only supported with backend='gymnasium' (legacy gym vector envs are not)")
            if from_pixels:
                raise NotImplementedError("from_pixels is not supported with num_envs (see GymWrapper)")
            from gymnasium.vector import AutoresetMode

            vector_kwargs = dict(make_kwargs.pop("vector_kwargs", None) or {})
            vector_kwargs["autoreset_mode"] = AutoresetMode.SAME_STEP
            mode = make_kwargs.pop("vectorization_mode", "sync")
            env = module.make_vec(name, num_envs=num_envs, vectorization_mode=mode, vector_kwargs=vector_kwargs,
                                  **make_kwargs)
        elif backend == "gym":
            make_kwargs.setdefault("disable_env_checker", True)  # its checker crashes under NumPy 2
            env = module.make(name, **make_kwargs)
        else:
            env = module.make(name, **make_kwargs)
        super().__init__(env, backend=backend, from_pixels=from_pixels, pixels_only=pixels_only,
                         categorical_action_encoding=categorical_action_encoding, device=device,
                         validate_actions=validate_actions, frame_skip=frame_skip)

    def __repr__(self) -> str:
        head = f"GymEnv(\n    name={self.env_name!r}, backend={self.backend!r},"
        return super().__repr__().replace("GymEnv(", head, 1)
