"""``Transform`` and ``Compose``: the building blocks every env transform is made of.

A transform works in two directions:

- **forward**, on what the env produces: the output of ``reset`` and the ``"next"`` content of
  ``step``. Per key through ``_apply_transform(tensor)``, or for multi-key work by overriding
  ``_call(td)``; stateful transforms also override the ``_reset(td, td_reset)`` and
  ``_step(td, next_td)`` hooks.
- **inverse**, on what the env consumes (the action, state keys) before the env below sees them:
  ``_inv_apply_transform(tensor)`` per key, or ``_inv_call(td)``. ``in_keys_inv`` name the keys as
  the env below reads them, ``out_keys_inv`` as the caller writes them (TorchRL's convention).

Each transform also rewrites the env's specs (``transform_observation_spec``, ``transform_reward_spec``,
``transform_done_spec``, ``transform_action_spec``, ``transform_state_spec``; or ``transform_specs``
for all at once). :class:`~rlbench.envs.transforms.TransformedEnv` runs them once, whenever its list
of transforms changes, never per step.

Calling ``transform(td)`` on any TensorDict (e.g. a replay-buffer sample of shape ``[B]`` or
``[B, T]``) applies the forward transform to its keys and to the matching ``("next", key)`` entries.

A transform's *container* is the ``Compose`` or the env holding it (``Transform.container``). The env at
the top of the containers (a :class:`~rlbench.envs.transforms.TransformedEnv`) answers three calls:
``_parent_of(transform)`` (the env a transform sees), ``_view(base, transforms)`` (``base`` seen through
``transforms``: how a ``Compose`` builds the ``parent`` of a transform inside it) and
``_refresh_specs()`` (after a change). This module therefore needs no import of the env module.
Transforms that keep per-episode state (``CatFrames``, ``RewardSum``, ``StepCounter``, ``InitTracker``)
read such a batch as trajectories when it has a time dim (see :func:`time_dim`): episode starts are
recovered from ``("next", "done")``; a batch without one is treated as independent first steps.
"""
from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from torch import nn

from ...specs import Composite, Spec

__all__ = ["Transform", "Compose", "EnvSpecs", "TransformKeyError", "time_dim", "episode_starts"]


class TransformKeyError(KeyError):
    """A transform names a key that the env it transforms does not have."""

    def __str__(self) -> str:  # KeyError's default str() quotes the whole message
        return str(self.args[0]) if self.args else ""


def _norm_key(key):
    if isinstance(key, tuple):
        if not key or not all(isinstance(k, str) for k in key):
            raise TypeError(f"a nested key is a tuple of strings, got {key!r}")
        return key[0] if len(key) == 1 else key
    if not isinstance(key, str):
        raise TypeError(f"keys are strings or tuples of strings, got {key!r}")
    return key


def _norm_keys(keys) -> list | None:
    """``None`` stays None; a single key becomes a one-item list; nested keys go in a list."""
    if keys is None:
        return None
    if isinstance(keys, str):
        return [keys]
    return [_norm_key(k) for k in keys]


@dataclass
class EnvSpecs:
    """The specs of an env as a transform sees them, passed through ``Transform.transform_specs``."""

    observation: Composite
    reward: Spec
    done: Composite
    action: Spec
    state: Composite
    batch_size: torch.Size
    device: torch.device
    reward_key: str = "reward"
    action_key: str = "action"
    env_name: str = "env"

    @classmethod
    def from_env(cls, env) -> "EnvSpecs":
        """Copies of ``env``'s specs (transforms may edit them freely)."""
        return cls(
            env.observation_spec.clone(), env.reward_spec.clone(), env.done_spec.clone(),
            env.action_spec.clone(), env.state_spec.clone(), env.batch_size, env.device,
            env.reward_key, env.action_key, type(env).__name__,
        )

    def forward_keys(self) -> list:
        """Every key the env writes: observations (nested too), the reward and the done flags."""
        return [*self.observation.keys(True), self.reward_key, *self.done.keys(True)]

    def input_keys(self) -> list:
        """Every key the env reads besides its own outputs: the action and the state keys."""
        return [self.action_key, *self.state.keys(True)]


def _missing_key_error(transform, key, available: list, specs: EnvSpecs, what: str) -> TransformKeyError:
    names = [k if isinstance(k, str) else "/".join(k) for k in available]
    target = key if isinstance(key, str) else "/".join(key)
    close = difflib.get_close_matches(target, names, n=1) or [n for n in names if target in n or n in target][:1]
    hint = f" Did you mean {available[names.index(close[0])]!r}?" if close else ""
    return TransformKeyError(
        f"{type(transform).__name__}: {what} {key!r} is not a key of the env it transforms "
        f"({specs.env_name} plus the transforms before it). Available keys: {available}.{hint} "
        f"Pass {what}s=[...] naming one of them."
    )


def time_dim(td: TensorDictBase) -> int | None:
    """The time dim of a batch of transitions, or ``None`` if it has none.

    A TensorDict of two or more dims (e.g. a ``[B, T]`` rollout or slice sample) has time as its last
    dim; a 1-D TensorDict has a time dim only when that dim is named ``"time"``
    (``td.refine_names("time")``): otherwise it is read as independent transitions.
    """
    if td.batch_dims >= 2:
        return td.batch_dims - 1
    if td.batch_dims == 1 and td.names[0] == "time":
        return 0
    return None


def episode_starts(td: TensorDictBase, dim: int) -> torch.Tensor:
    """For every step along time dim ``dim``, the index of the step where its episode started.

    A step starts an episode when it is the first of the batch or follows a step whose
    ``("next", "done")`` is True (episodes cut by the start of the batch begin at index 0).
    Returns an int64 tensor of the batch shape.
    """
    shape = td.batch_size
    steps = shape[dim]
    idx = torch.arange(steps, device=td.device).reshape(steps, *([1] * (len(shape) - dim - 1)))
    idx = idx.expand(shape[dim:]).expand(shape)
    done = td.get(("next", "done"), None)
    if done is None:
        return torch.zeros(shape, dtype=torch.int64, device=td.device)
    done = done.reshape(shape)
    start = torch.zeros(shape, dtype=torch.bool, device=td.device)
    start.narrow(dim, 1, steps - 1).copy_(done.narrow(dim, 0, steps - 1))
    return torch.where(start, idx, torch.zeros_like(idx)).cummax(dim).values


def gather_time(x: torch.Tensor, index: torch.Tensor, dim: int) -> torch.Tensor:
    """``x`` indexed along time dim ``dim`` by ``index`` (batch-shaped), broadcast over event dims."""
    index = index.reshape(*index.shape, *([1] * (x.ndim - index.ndim))).expand_as(x)
    return x.gather(dim, index)


def reset_mask(td: TensorDictBase | None, batch_size: torch.Size) -> torch.Tensor | None:
    """The ``"_reset"`` mask of a partial reset reshaped to ``batch_size``, or ``None`` (reset all)."""
    if td is None:
        return None
    mask = td.get("_reset", None)
    if mask is None or not batch_size:
        return None
    return mask.reshape(batch_size)


def expand_mask(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A batch-shaped mask with trailing singleton dims so that it broadcasts against ``x``."""
    return mask.reshape(*mask.shape, *([1] * (x.ndim - mask.ndim)))


class Transform(nn.Module):
    """Base class of env transforms (see the module docstring for the two directions).

    Args:
        in_keys: keys the forward transform reads.
        out_keys: keys it writes (default: ``in_keys``, i.e. in place).
        in_keys_inv: keys the inverse transform writes, as the env below reads them.
        out_keys_inv: keys the inverse transform reads, as the caller writes them
            (default: ``in_keys_inv``).

    A subclass overrides ``_apply_transform`` (and ``_transform_spec`` when it changes a shape,
    dtype or range), or the hooks described in the module docstring.

    Example:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> class Double(Transform):
        ...     def _apply_transform(self, x):
        ...         return x * 2
        >>> td = TensorDict({"observation": torch.ones(2), "next": {"observation": torch.ones(2)}}, [])
        >>> Double(in_keys=["observation"])(td)["next", "observation"]
        tensor([2., 2.])
    """

    def __init__(self, in_keys=None, out_keys=None, in_keys_inv=None, out_keys_inv=None):
        super().__init__()
        self.in_keys = _norm_keys(in_keys) or []
        self.out_keys = list(self.in_keys) if out_keys is None else _norm_keys(out_keys)
        self.in_keys_inv = _norm_keys(in_keys_inv) or []
        self.out_keys_inv = list(self.in_keys_inv) if out_keys_inv is None else _norm_keys(out_keys_inv)
        if len(self.in_keys) != len(self.out_keys):
            raise ValueError(
                f"{type(self).__name__}: in_keys {self.in_keys} and out_keys {self.out_keys} differ in length"
            )
        if len(self.in_keys_inv) != len(self.out_keys_inv):
            raise ValueError(
                f"{type(self).__name__}: in_keys_inv {self.in_keys_inv} and out_keys_inv {self.out_keys_inv} "
                f"differ in length"
            )
        # Plain attributes, set through __dict__ so nn.Module does not register the container (a
        # Compose) as a child module: that would make a reference cycle in the module tree.
        self.__dict__["_container"] = None
        self.__dict__["_parent_cache"] = None
        self.__dict__["_reward_key"] = "reward"
        self.__dict__["_action_key"] = "action"

    # ------------------------------------------------------------------ forward
    def _apply_transform(self, x: torch.Tensor) -> torch.Tensor:
        """The forward transform of one tensor: the hook most transforms override.

        Args:
            x: the value under one of ``in_keys``, with any leading batch (and time) dims: a reset's
                ``[*batch, *event]``, or a replay sample's ``[B, T, *event]``.

        Returns:
            The value written under the matching out_key. It keeps ``x``'s leading dims; its event
            shape, dtype and range must be those that :meth:`_transform_spec` declares (the default
            declares them unchanged), or ``check_env_specs`` reports the mismatch.

        Example:
            >>> import torch
            >>> from rlbench.envs.transforms import Transform, TransformedEnv
            >>> from rlbench.testing import CountingEnv
            >>> class Negate(Transform):
            ...     def _apply_transform(self, x):
            ...         return -x
            >>> env = TransformedEnv(CountingEnv(max_steps=3), Negate(in_keys=["observation"]))
            >>> env.rollout(3)["next", "observation"].squeeze(-1).tolist()
            [-1.0, -2.0, -3.0]
        """
        raise NotImplementedError(
            f"{type(self).__name__} transforms no single tensor: it overrides _call/_step/_reset instead"
        )

    def _call(self, td: TensorDictBase) -> TensorDictBase:
        """Apply the forward transform to the keys of ``td`` (one level: root or ``"next"``).

        The default runs :meth:`_apply_transform` on every in_key that ``td`` holds and writes the result
        under its out_key. Override it for work that reads several keys at once; it must write into
        ``td`` (or return a TensorDict of the same batch size) and return it, and it must skip keys
        ``td`` lacks: it also runs on replay samples and on reset outputs, which may hold fewer keys.
        """
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            value = td.get(in_key, None)
            if value is not None:
                td.set(out_key, self._apply_transform(value))
        return td

    def _step(self, td: TensorDictBase, next_td: TensorDictBase) -> TensorDictBase:
        """Hook run on each step of the env the transform sits in.

        Args:
            td: the step's input (root) TensorDict, with the action as the env below received it; read it,
                do not modify it.
            next_td: what the env below wrote under ``"next"``: observations, ``"reward"`` and the
                ``"done"``/``"terminated"``/``"truncated"`` flags (``[*batch, 1]`` bool), of the env's
                batch size.

        Returns:
            The transformed ``"next"`` content (usually ``next_td`` itself, edited in place), with the same
            batch size and every key the transformed env's specs declare. The default is ``_call(next_td)``;
            stateful transforms (counters, frame stacks) update their state here first.

        Example:
            >>> import torch
            >>> from rlbench.envs.transforms import Transform, TransformedEnv
            >>> from rlbench.testing import CountingEnv
            >>> class CountSteps(Transform):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.steps = 0
            ...     def _step(self, td, next_td):
            ...         self.steps += 1
            ...         return next_td
            >>> env = TransformedEnv(CountingEnv(max_steps=5), CountSteps())
            >>> _ = env.rollout(4)
            >>> env.transform[0].steps
            4
        """
        return self._call(next_td)

    def close(self) -> None:
        """Called when the env the transform belongs to closes (a VideoRecorder writes its last frames)."""

    def set_seed(self, seed: int | None) -> None:
        """Called by the env's ``set_seed(seed)``: a transform with its own randomness seeds it here."""

    def _reset(self, td: TensorDictBase | None, td_reset: TensorDictBase) -> TensorDictBase:
        """Hook run on each reset of the env the transform sits in.

        Args:
            td: the reset's input: ``None`` for a full reset, or a TensorDict holding a ``"_reset"`` bool
                mask (``[*batch, 1]``) of the sub-envs being reset (a partial reset of a batched env).
            td_reset: what the env below returned: the observations and done flags (all False), of the
                env's batch size. In a partial reset the rows of sub-envs that are not reset are
                overwritten afterwards with their previous values, so only the masked rows count.

        Returns:
            The transformed reset output (usually ``td_reset`` edited in place), with the keys the
            transformed env's specs declare. The default is ``_call(td_reset)``; stateful transforms
            refill their state here -- for the masked sub-envs only when ``td`` holds a mask (see
            :func:`reset_mask`).

        Example:
            >>> import torch
            >>> from rlbench.envs.transforms import Transform, TransformedEnv
            >>> from rlbench.envs.transforms.base import reset_mask
            >>> from rlbench.testing import CountingEnv
            >>> class CountResets(Transform):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.resets = torch.zeros(2, dtype=torch.int64)
            ...     def _reset(self, td, td_reset):
            ...         mask = reset_mask(td, td_reset.batch_size)
            ...         self.resets += 1 if mask is None else mask.long()
            ...         return td_reset
            >>> env = TransformedEnv(CountingEnv(max_steps=torch.tensor([2, 3]), batch_size=[2]), CountResets())
            >>> _ = env.rollout(6, break_when_any_done=False)  # sub-env 0 ends at steps 2, 4, 6; sub-env 1 at 3, 6
            >>> env.transform[0].resets.tolist()  # the first reset plus the automatic ones
            [3, 2]
        """
        return self._call(td_reset)

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        """Transform a TensorDict in place outside any env (e.g. a replay-buffer sample).

        The in_keys are transformed at the root and under ``"next"``. An in_key may also name a
        ``"next"`` entry itself (TorchRL's way: ``in_keys=["observation", ("next", "observation")]``);
        each entry is still transformed once.

        Example:
            >>> import torch
            >>> from tensordict import TensorDict
            >>> from rlbench.envs.transforms import RewardScaling
            >>> td = TensorDict({"reward": torch.ones(1), "next": {"reward": torch.ones(1)}}, [])
            >>> RewardScaling(0.0, 3.0, in_keys=["reward", ("next", "reward")])(td)["next", "reward"]
            tensor([3.])
        """
        self._call(td)
        nxt = td.get("next", None)
        if nxt is None:
            return td
        listed = [k[1] if len(k) == 2 else k[1:] for k in self.in_keys
                  if isinstance(k, tuple) and len(k) > 1 and k[0] == "next"]
        if not listed:
            self._call(nxt)
            return td
        # the root pass transformed the ("next", key) entries already: hide them from the "next" pass,
        # then write its results back into td["next"] (and drop what it removed)
        out = self._call(nxt.exclude(*listed))
        keep = set(out.keys(True, True)) | set(listed)
        for key in nxt.keys(True, True):
            if key not in keep:
                del nxt[key]
        nxt.update(out)
        return td

    # ------------------------------------------------------------------ inverse
    def _inv_apply_transform(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse transform of one tensor: the caller's value as the env below reads it.

        ``x`` is the value under an out_key_inv; the result goes under the matching in_key_inv.

        It must return a member of the env below's spec for that key (its action spec, or its state
        spec's entry) for every member of the spec :meth:`_inv_transform_spec` declares.

        Example:
            >>> import torch
            >>> from tensordict import TensorDict
            >>> from rlbench.envs.transforms import Transform
            >>> class Halve(Transform):
            ...     def _inv_apply_transform(self, x):
            ...         return x / 2
            >>> Halve(in_keys_inv=["action"]).inv(TensorDict(action=torch.tensor([4.0]))).get("action")
            tensor([2.])
        """
        raise NotImplementedError(f"{type(self).__name__} has no inverse transform")

    def _inv_call(self, td: TensorDictBase) -> TensorDictBase:
        """Apply the inverse transform to ``td`` (a shallow copy of the caller's step input); returns it.

        The default runs :meth:`_inv_apply_transform` from each out_key_inv to its in_key_inv, skipping
        keys ``td`` lacks.
        """
        for in_key, out_key in zip(self.in_keys_inv, self.out_keys_inv):
            value = td.get(out_key, None)
            if value is not None:
                td.set(in_key, self._inv_apply_transform(value))
        return td

    def inv(self, td: TensorDictBase) -> TensorDictBase:
        """The inverse transform of ``td``: the caller's action as the env below reads it.

        Returns a shallow copy, so ``td`` itself keeps the caller's values.
        """
        return self._inv_call(td.copy())

    @property
    def has_inverse(self) -> bool:
        """Whether the inverse direction does anything (TransformedEnv skips it when not).

        True when ``in_keys_inv`` is set; a subclass that overrides ``_inv_call`` without using
        ``in_keys_inv`` must override this property too.
        """
        return bool(self.in_keys_inv)

    # -------------------------------------------------------------------- specs
    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        """Rewrite all of an env's specs; checks this transform's keys first.

        Run once each time the env's list of transforms changes, never per step. ``specs`` holds copies
        of the specs of the env below (plus the transforms before this one), which this method may edit
        in place; it returns them. The default calls the five per-group hooks
        (``transform_observation_spec`` ... ``transform_state_spec``); a transform whose keys cross
        groups (moves a key from observation to state, say) overrides this method instead.
        """
        self.__dict__["_reward_key"], self.__dict__["_action_key"] = specs.reward_key, specs.action_key
        self._check_keys(specs)
        specs.observation = self.transform_observation_spec(specs.observation)
        specs.reward = self.transform_reward_spec(specs.reward)
        specs.done = self.transform_done_spec(specs.done)
        specs.action = self.transform_action_spec(specs.action)
        specs.state = self.transform_state_spec(specs.state)
        return specs

    def _check_keys(self, specs: EnvSpecs) -> None:
        available = specs.forward_keys()
        for key in self.in_keys:
            if key not in available:
                raise _missing_key_error(self, key, available, specs, "in_key")
        inputs = specs.input_keys()
        for key in self.in_keys_inv:
            if key not in inputs:
                raise _missing_key_error(self, key, inputs, specs, "in_key_inv")

    def _transform_spec(self, spec: Spec) -> Spec:
        """The spec of ``_apply_transform(x)`` for ``x`` in ``spec`` (default: unchanged).

        ``spec`` is a leaf spec with the env's batch dims in front; the result must keep them (only
        event dims, dtype and range may change) and must not be ``spec`` itself when it differs from it
        (specs are shared with the env below: build a new one).

        Example:
            >>> import torch
            >>> from rlbench.envs.transforms import Transform, TransformedEnv
            >>> from rlbench.specs import Unbounded
            >>> from rlbench.testing import CountingEnv
            >>> class ToDouble(Transform):
            ...     def _apply_transform(self, x):
            ...         return x.double()
            ...     def _transform_spec(self, spec):
            ...         return Unbounded(spec.shape, torch.float64, spec.device)
            >>> env = TransformedEnv(CountingEnv(), ToDouble(in_keys=["observation"]))
            >>> env.observation_spec["observation"].dtype
            torch.float64
        """
        return spec

    def _inv_transform_spec(self, spec: Spec) -> Spec:
        """The spec the caller writes, given the spec the env below reads (default: unchanged).

        ``spec`` is the env below's leaf spec of an in_key_inv; the result is the spec of the matching
        out_key_inv (the transformed env's ``action_spec``, or its state spec's entry), with the same
        batch dims. :meth:`_inv_apply_transform` must map every member of the result into ``spec``.
        """
        return spec

    def transform_observation_spec(self, spec: Composite) -> Composite:
        """The transformed env's observation spec, given the one below (a copy: edit it, return it).

        ``spec`` is a ``Composite`` of the env's batch size whose keys are what ``reset`` returns and what
        ``step`` writes under ``"next"`` (besides reward and done flags). The default replaces the spec of
        every in_key it holds with ``_transform_spec`` of it, under the out_key. A transform that adds an
        observation (a step counter) adds its spec here; one that removes a key deletes it.

        Example:
            >>> import torch
            >>> from rlbench.envs.transforms import Transform, TransformedEnv
            >>> from rlbench.specs import Unbounded
            >>> from rlbench.testing import CountingEnv
            >>> class AddClock(Transform):
            ...     def _call(self, td):
            ...         return td.set("clock", torch.zeros(*td.batch_size, 1))
            ...     def transform_observation_spec(self, spec):
            ...         spec["clock"] = Unbounded((*spec.shape, 1))
            ...         return spec
            >>> env = TransformedEnv(CountingEnv(), AddClock())
            >>> sorted(env.observation_spec.keys()), env.rollout(2)["next", "clock"].shape
            (['clock', 'observation', 'total'], torch.Size([2, 1]))
        """
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            if in_key in spec and not isinstance(spec[in_key], Composite):
                spec[out_key] = self._transform_spec(spec[in_key])
        return spec

    def transform_reward_spec(self, spec: Spec) -> Spec:
        """The transformed env's reward spec (a leaf spec shaped ``[*batch, 1]``), given the one below.

        The default applies ``_transform_spec`` when the reward key is an in_key. The result must keep
        the ``[*batch, 1]`` shape.
        """
        if self._reward_key in self.in_keys:
            return self._transform_spec(spec)
        return spec

    def transform_done_spec(self, spec: Composite) -> Composite:
        """The transformed env's done spec, given the one below (a copy: edit it, return it).

        ``spec`` is a ``Composite`` holding ``"done"``, ``"terminated"`` and ``"truncated"`` (bool,
        ``[*batch, 1]``); the result must still hold all three, with ``done == terminated | truncated``
        in the data (a time limit sets ``truncated`` and ``done``). The default transforms the in_keys
        it holds, as :meth:`transform_observation_spec` does.
        """
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            if in_key in spec:
                spec[out_key] = self._transform_spec(spec[in_key])
        return spec

    def transform_action_spec(self, spec: Spec) -> Spec:
        """The action spec the caller of the transformed env writes, given the one the env below reads.

        The default applies ``_inv_transform_spec`` when the action key is an in_key_inv. Random actions
        of the transformed env (``rand_action``) are drawn from the result and go through
        :meth:`_inv_call`, so every member of the result must map into ``spec``.
        """
        if self._action_key in self.in_keys_inv:
            return self._inv_transform_spec(spec)
        return spec

    def transform_state_spec(self, spec: Composite) -> Composite:
        """The state spec the caller writes (non-action step inputs), given the env below's (a copy).

        The default replaces the spec of every in_key_inv it holds with ``_inv_transform_spec`` of it,
        under the out_key_inv (removing the in_key_inv when the names differ).
        """
        for in_key, out_key in zip(self.in_keys_inv, self.out_keys_inv):
            if in_key in spec:
                spec[out_key] = self._inv_transform_spec(spec[in_key])
                if out_key != in_key:
                    del spec[in_key]
        return spec

    # --------------------------------------------------------------- structure
    @property
    def container(self):
        """The ``Compose`` or ``TransformedEnv`` holding this transform (``None`` if free)."""
        return self._container

    def set_container(self, container) -> None:
        current = self._container
        if container is not None and current is not None and current is not container:
            raise ValueError(
                f"{type(self).__name__} already belongs to a {type(current).__name__}; one transform instance "
                f"can sit in one env or Compose only (its state belongs to that env). Build a new one or "
                f"use copy.deepcopy(transform)."
            )
        self.__dict__["_container"] = container
        self._clear_caches()

    @property
    def parent(self):
        """The env as this transform sees it: the base env plus the transforms before this one.

        ``None`` when the transform is not in an env. The result is cached until the env's list of
        transforms changes; it shares the transform instances (and their state) with the env.
        """
        if self._parent_cache is None:
            container = self._container
            if container is None:
                return None
            self.__dict__["_parent_cache"] = container._parent_of(self)
        return self._parent_cache

    def _clear_caches(self) -> None:
        self.__dict__["_parent_cache"] = None

    def _env_container(self):
        """The env at the top of this transform's containers (through any Compose), or None."""
        container = self._container
        while isinstance(container, Compose):
            container = container._container
        return container

    def _notify_change(self) -> None:
        """Tell the enclosing env that specs must be recomputed (e.g. after new statistics)."""
        container = self._env_container()
        if container is not None:
            container._refresh_specs()
        else:
            self._clear_caches()

    def __deepcopy__(self, memo):
        # A deep copy is a free transform: it must not carry the original's container or parent.
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            if key in ("_container", "_parent_cache"):
                new.__dict__[key] = None
            else:
                new.__dict__[key] = copy.deepcopy(value, memo)
        return new

    def extra_repr(self) -> str:
        parts = []
        if self.in_keys:
            parts.append(f"in_keys={self.in_keys}")
        if self.out_keys != self.in_keys:
            parts.append(f"out_keys={self.out_keys}")
        if self.in_keys_inv:
            parts.append(f"in_keys_inv={self.in_keys_inv}")
        if self.out_keys_inv != self.in_keys_inv:
            parts.append(f"out_keys_inv={self.out_keys_inv}")
        return ", ".join(parts)


class Compose(Transform):
    """A sequence of transforms applied in order (the inverse in reverse order).

    Supports ``len``, indexing, iteration, ``append``, ``insert`` and ``pop``; a change made while
    the Compose sits in an env recomputes the env's specs at once (and is undone if a transform's
    keys do not fit the env).

    Example:
        >>> from rlbench.envs.transforms import RewardScaling, StepCounter, TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(), Compose(StepCounter(), RewardScaling(0.0, 2.0)))
        >>> len(env.transform), type(env.transform[1]).__name__
        (2, 'RewardScaling')
        >>> env.rollout(3)["next", "reward"].squeeze(-1).tolist()
        [2.0, 2.0, 2.0]
    """

    def __init__(self, *transforms: Transform, _adopt: bool = True):
        super().__init__()
        if len(transforms) == 1 and isinstance(transforms[0], (list, tuple)):
            transforms = tuple(transforms[0])
        for t in transforms:
            if not isinstance(t, Transform):
                raise TypeError(f"Compose takes Transform instances, got {type(t).__name__}")
            if _adopt:
                t.set_container(self)
        self.transforms = nn.ModuleList(transforms)
        self._seq = tuple(transforms)  # iterating a tuple is cheaper than a ModuleList in the step loop

    # --------------------------------------------------------------- sequence
    def __len__(self) -> int:
        return len(self._seq)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(self._seq[index])
        return self._seq[index]

    def __iter__(self):
        return iter(self._seq)

    def _changed(self, undo) -> None:
        self._seq = tuple(self.transforms)
        try:
            self._notify_change()
        except Exception:
            undo()
            self._seq = tuple(self.transforms)
            self._notify_change()
            raise
        self._clear_caches()

    def append(self, transform: Transform) -> "Compose":
        """Add ``transform`` at the end.

        Raises (and leaves the Compose unchanged) if its keys do not fit the env the Compose is in.
        """
        return self.insert(len(self._seq), transform)

    def insert(self, index: int, transform: Transform) -> "Compose":
        """Insert ``transform`` before position ``index`` (as ``list.insert``)."""
        if not isinstance(transform, Transform):
            raise TypeError(f"Compose takes Transform instances, got {type(transform).__name__}")
        transform.set_container(self)
        n = len(self._seq)
        index = max(0, min(n, index + n if index < 0 else index))
        self.transforms.insert(index, transform)

        def undo():
            del self.transforms[index]
            transform.__dict__["_container"] = None

        self._changed(undo)
        return self

    def pop(self, index: int = -1) -> Transform:
        """Remove and return the transform at ``index``."""
        transform = self._seq[index]
        index = self._seq.index(transform)
        del self.transforms[index]

        def undo():
            self.transforms.insert(index, transform)

        self._changed(undo)
        transform.__dict__["_container"] = None
        transform._clear_caches()
        return transform

    def _parent_of(self, transform: Transform):
        index = next(i for i, t in enumerate(self._seq) if t is transform)
        base = self.parent
        if base is None or index == 0:
            return base
        # the env holding this Compose builds the view: a Compose knows transforms, not envs
        return self._env_container()._view(base, self._seq[:index])

    def __deepcopy__(self, memo):
        new = super().__deepcopy__(memo)
        for t in new._seq:
            t.__dict__["_container"] = new
        return new

    def _clear_caches(self) -> None:
        super()._clear_caches()
        for t in self._seq if "_seq" in self.__dict__ else ():
            t._clear_caches()

    # ------------------------------------------------------------- directions
    def _call(self, td):
        for t in self._seq:
            td = t._call(td)
        return td

    def _step(self, td, next_td):
        for t in self._seq:
            next_td = t._step(td, next_td)
        return next_td

    def _reset(self, td, td_reset):
        for t in self._seq:
            td_reset = t._reset(td, td_reset)
        return td_reset

    def close(self) -> None:
        for t in self._seq:
            t.close()

    def set_seed(self, seed: int | None) -> None:
        for t in self._seq:
            t.set_seed(seed)

    def forward(self, td):
        for t in self._seq:
            td = t(td)
        return td

    def _inv_call(self, td):
        for t in reversed(self._seq):
            td = t._inv_call(td)
        return td

    @property
    def has_inverse(self) -> bool:
        return any(t.has_inverse for t in self._seq)

    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        for t in self._seq:
            specs = t.transform_specs(specs)
        return specs

    def __repr__(self) -> str:
        inner = ",\n".join("    " + repr(t).replace("\n", "\n    ") for t in self._seq)
        return f"Compose(\n{inner})" if inner else "Compose()"
