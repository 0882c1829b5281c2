"""``EnvBase``: the environment contract every rlbench env follows.

A subclass calls ``super().__init__(batch_size=..., device=...)``, assigns its specs as attributes and
implements three methods (each documented, with an example, on :class:`EnvBase`):

- ``_reset(td)`` returns a TensorDict with the observation keys (and optionally done flags and
  state keys). ``td`` is ``None`` or holds a ``"_reset"`` mask of the sub-envs to reset.
- ``_step(td)`` reads the action (and state keys) from ``td`` and returns a TensorDict with the next
  observation keys, ``"reward"`` and the done flags (``"terminated"``/``"truncated"``; ``"done"`` is
  derived when missing).
- ``_set_seed(seed)`` seeds the env's random number generators.

``step(td)`` writes the result under ``"next"``; ``rollout`` stacks steps into a ``[*batch, T]``
TensorDict, preallocated after the first step (or, when the data carry gradients, kept and stacked so
the result stays differentiable). An env with ``batch_locked = False`` takes its batch size from the
input TensorDict. Actions are checked for key, shape and dtype on every
step (cheap attribute comparisons) and for range when ``validate_actions`` is on; the full check of
every spec runs once, in :func:`~rlbench.envs.check_env_specs`.
"""
from __future__ import annotations

import contextlib
import operator

import torch
from tensordict import TensorDict, TensorDictBase

from ..specs import Binary, Composite, Spec, Unbounded
from .fused import FusedStepper
from .rollout_writer import RolloutWriter
from .utils import _DoneFlagError, _EnvOutputError, _KeyError, step_mdp

__all__ = ["EnvBase", "DONE_KEYS"]

DONE_KEYS = ("done", "terminated", "truncated")
_ACTION_SEED_OFFSET = 0x9E3779B97F4A7C15  # an odd constant (golden ratio): decorrelates seed streams
# the end of an out-of-range action error: how to let such actions through
_VALIDATE_HINT = (
    " To pass out-of-range actions to the env unchanged (e.g. gymnasium's Pendulum clips them), build it "
    "with {}(..., validate_actions=False)."
)
SEED_LIMIT = 2**63  # seeds are ints in [0, SEED_LIMIT): what torch, NumPy and gymnasium all accept


def _batch_size(batch_size, owner: str) -> torch.Size:
    """``batch_size`` as a ``torch.Size`` of positive ints (an int ``n`` means ``[n]``), or a clear error."""
    dims = None
    if isinstance(batch_size, int):
        dims = [batch_size]
    elif not isinstance(batch_size, (str, bytes)):
        try:
            dims = [operator.index(d) for d in batch_size]
        except TypeError:  # not iterable, or a dim that is not an int (2.5)
            dims = None
    if dims is None or any(d < 1 for d in dims):
        raise ValueError(
            f"{owner}: batch_size must be a list of positive ints (the env's batch dims, e.g. [] for one env or "
            f"[8] for a batch of 8), got {batch_size!r}"
        )
    return torch.Size(dims)


def check_frame_skip(frame_skip, owner: str) -> int:
    """``frame_skip`` as an int >= 1 (how many env steps one action is repeated for), or a ``ValueError``."""
    if isinstance(frame_skip, bool) or not hasattr(frame_skip, "__index__") or operator.index(frame_skip) < 1:
        raise ValueError(f"{owner}: frame_skip must be >= 1 (an int; 1: no repeat), got {frame_skip!r}")
    return operator.index(frame_skip)


def check_seed(seed, owner: str, count: int = 1) -> int | None:
    """``seed`` as an int in ``[0, 2**63 - count]`` (``count`` seeds ``seed, seed + 1, ...`` are used), or None.

    Raises a ``TypeError``/``ValueError`` naming the bad value and what is accepted.
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not hasattr(seed, "__index__"):
        raise TypeError(
            f"{owner}.set_seed: the seed must be an int in [0, 2**63) or None, got {seed!r} "
            f"({type(seed).__name__})"
        )
    value = operator.index(seed)
    top = SEED_LIMIT - count
    if not 0 <= value <= top:
        span = "[0, 2**63)" if count == 1 else f"[0, 2**63 - {count}] (sub-env i gets seed + i)"
        raise ValueError(f"{owner}.set_seed: the seed must be an int in {span} or None, got {seed!r}")
    return value


def _carries_grad(td: TensorDictBase) -> bool:
    """Whether any tensor of ``td`` (nested ones included) requires grad."""
    return any(isinstance(v, torch.Tensor) and v.requires_grad for v in td.values(True, True))


class EnvBase:
    """Base class of rlbench environments (TensorDict in, TensorDict out).

    Args:
        batch_size: the env's batch dims; every spec starts with them (positive ints; an int ``n`` means
            ``[n]``).
        device: where the env's tensors live.
        validate_actions: check each action's values against ``action_spec`` in ``step``
            (shape, dtype and key are always checked).

    A subclass whose class attribute ``batch_locked`` is False takes its batch size from the input
    TensorDict instead (TorchRL's convention for state-less envs that read their parameters from the
    TensorDict): ``reset(td)``, ``step(td)`` and ``rollout(..., tensordict=td)`` run ``td.batch_size``
    sub-envs, and ``_reset``/``_step`` return TensorDicts of that batch size. Its specs then describe
    one batch of ``batch_size`` (usually ``[]``): their leading batch dims are replaced by the input's.

    Example:
        >>> from rlbench.testing import CountingEnv
        >>> env = CountingEnv(max_steps=3, batch_size=[4])
        >>> td = env.rollout(10, break_when_any_done=False)
        >>> td.shape
        torch.Size([4, 10])
        >>> env.action_spec.is_in(td["action"])
        True
        >>> td["next", "done"][0, :4, 0].tolist()  # done sub-envs reset and continue
        [False, False, True, False]
    """

    action_key = "action"
    reward_key = "reward"
    batch_locked = True

    def __init__(self, *, batch_size=(), device=None, validate_actions: bool = True):
        self.batch_size = _batch_size(batch_size, type(self).__name__)
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.validate_actions = validate_actions
        shape = self.batch_size
        self._observation_spec = Composite(shape=shape, device=self.device)
        self._state_spec = Composite(shape=shape, device=self.device)
        self._action_spec: Spec = Unbounded(shape, device=self.device)
        self._reward_spec: Spec = Unbounded((*shape, 1), device=self.device)
        done = Binary(1, (*shape, 1), dtype=torch.bool, device=self.device)
        self._done_spec = Composite({k: done.clone() for k in DONE_KEYS}, shape=shape, device=self.device)
        self.is_closed = False
        self.action_generator: torch.Generator | None = None
        self._batch_specs: dict = {}  # unlocked envs: the action spec of each input batch size seen

    # -------------------------------------------------------------------- specs
    def _check_batch(self, name: str, spec, composite: bool = False) -> None:
        if composite and not isinstance(spec, Composite):
            raise TypeError(
                f"{type(self).__name__}.{name} must be a Composite, e.g. Composite(key=spec, "
                f"shape={tuple(self.batch_size)}), got {type(spec).__name__}"
            )
        if not isinstance(spec, Spec):
            raise TypeError(f"{type(self).__name__}.{name} must be a Spec, got {type(spec).__name__}")
        b = self.batch_size
        if spec.shape[: len(b)] != b:
            raise ValueError(
                f"{type(self).__name__}.{name} has shape {tuple(spec.shape)} but the env's batch_size is "
                f"{tuple(b)}: spec shapes start with the batch size. Use e.g. "
                f"spec.expand({(*b, *spec.shape)}) or pass shape={(*b, *spec.shape)}."
            )

    @property
    def observation_spec(self) -> Composite:
        """Composite spec of everything ``reset``/``step`` return as observations."""
        return self._observation_spec

    @observation_spec.setter
    def observation_spec(self, spec) -> None:
        if not isinstance(spec, Composite):  # a leaf spec describes the "observation" key
            self._check_batch("observation_spec", spec)
            spec = Composite(observation=spec, shape=self.batch_size, device=self.device)
        self._check_batch("observation_spec", spec)
        if spec.shape != self.batch_size:
            raise ValueError(
                f"{type(self).__name__}.observation_spec must be a Composite with shape=batch_size="
                f"{tuple(self.batch_size)}, got shape {tuple(spec.shape)}: build it with "
                f"Composite(..., shape={tuple(self.batch_size)})"
            )
        self._observation_spec = spec

    @property
    def state_spec(self) -> Composite:
        """Composite spec of the non-action inputs ``_step`` reads (state carried in the TensorDict)."""
        return self._state_spec

    @state_spec.setter
    def state_spec(self, spec: Composite) -> None:
        self._check_batch("state_spec", spec, composite=True)
        self._state_spec = spec

    @property
    def action_spec(self) -> Spec:
        return self._action_spec

    @action_spec.setter
    def action_spec(self, spec: Spec) -> None:
        self._check_batch("action_spec", spec)
        self._action_spec = spec

    @property
    def reward_spec(self) -> Spec:
        return self._reward_spec

    @reward_spec.setter
    def reward_spec(self, spec: Spec) -> None:
        self._check_batch("reward_spec", spec)
        self._reward_spec = spec

    @property
    def done_spec(self) -> Composite:
        """Composite spec of the ``done``, ``terminated`` and ``truncated`` flags."""
        return self._done_spec

    @done_spec.setter
    def done_spec(self, spec: Composite) -> None:
        self._check_batch("done_spec", spec, composite=True)
        self._done_spec = spec

    @property
    def done_keys(self) -> list:
        return self._done_spec.keys(True, True)

    @property
    def full_action_spec(self) -> Composite:
        return Composite({self.action_key: self.action_spec}, shape=self.batch_size, device=self.device)

    @property
    def full_reward_spec(self) -> Composite:
        return Composite({self.reward_key: self.reward_spec}, shape=self.batch_size, device=self.device)

    @property
    def full_observation_spec(self) -> Composite:
        """The observation spec (already a Composite: TorchRL's name for it)."""
        return self.observation_spec

    @property
    def full_done_spec(self) -> Composite:
        """The done spec (already a Composite: TorchRL's name for it)."""
        return self.done_spec

    @property
    def full_state_spec(self) -> Composite:
        """The state spec (already a Composite: TorchRL's name for it)."""
        return self.state_spec

    @property
    def input_spec(self) -> Composite:
        """What ``step`` reads: the action and the state keys."""
        return self.state_spec.clone().update(self.full_action_spec)

    @property
    def output_spec(self) -> Composite:
        """What ``step`` writes under ``"next"``: observations, reward and done flags."""
        out = self.observation_spec.clone()
        out.update(self.full_reward_spec)
        out.update(self.done_spec)
        return out

    # The specs of one element of the batch (the env's batch dims removed), as TorchRL names them:
    # what a policy for a single sub-env, or the unbatched env, reads and writes.
    def _unbatched(self, spec: Spec) -> Spec:
        return spec.unbatched(len(self.batch_size))

    @property
    def action_spec_unbatched(self) -> Spec:
        """``action_spec`` without the env's batch dims (the action of one sub-env).

        Example:
            >>> from rlbench.envs import PendulumEnv
            >>> env = PendulumEnv(batch_size=[8])
            >>> env.action_spec.shape, env.action_spec_unbatched.shape
            (torch.Size([8, 1]), torch.Size([1]))
        """
        return self._unbatched(self.action_spec)

    @property
    def observation_spec_unbatched(self) -> Composite:
        """``observation_spec`` without the env's batch dims."""
        return self._unbatched(self.observation_spec)

    @property
    def reward_spec_unbatched(self) -> Spec:
        """``reward_spec`` without the env's batch dims."""
        return self._unbatched(self.reward_spec)

    @property
    def done_spec_unbatched(self) -> Composite:
        """``done_spec`` without the env's batch dims."""
        return self._unbatched(self.done_spec)

    @property
    def state_spec_unbatched(self) -> Composite:
        """``state_spec`` without the env's batch dims."""
        return self._unbatched(self.state_spec)

    @property
    def full_action_spec_unbatched(self) -> Composite:
        """``full_action_spec`` without the env's batch dims."""
        return self._unbatched(self.full_action_spec)

    @property
    def full_reward_spec_unbatched(self) -> Composite:
        """``full_reward_spec`` without the env's batch dims."""
        return self._unbatched(self.full_reward_spec)

    @property
    def full_observation_spec_unbatched(self) -> Composite:
        """``full_observation_spec`` without the env's batch dims."""
        return self._unbatched(self.full_observation_spec)

    @property
    def full_done_spec_unbatched(self) -> Composite:
        """``full_done_spec`` without the env's batch dims."""
        return self._unbatched(self.full_done_spec)

    @property
    def full_state_spec_unbatched(self) -> Composite:
        """``full_state_spec`` without the env's batch dims."""
        return self._unbatched(self.full_state_spec)

    @property
    def input_spec_unbatched(self) -> Composite:
        """``input_spec`` without the env's batch dims."""
        return self._unbatched(self.input_spec)

    @property
    def output_spec_unbatched(self) -> Composite:
        """``output_spec`` without the env's batch dims."""
        return self._unbatched(self.output_spec)

    def _action_spec_for(self, batch_size: torch.Size) -> Spec:
        """The action spec of a call with input batch ``batch_size`` (an unlocked env's may differ)."""
        if batch_size == self.batch_size:
            return self._action_spec
        cached = self._batch_specs.get(batch_size)
        if cached is None or cached[0] is not self._action_spec:
            one = self._action_spec.unbatched(len(self.batch_size))
            cached = self._batch_specs[batch_size] = (self._action_spec, one.expand(*batch_size, *one.shape))
        return cached[1]

    def _call_batch(self, td: TensorDictBase | None) -> torch.Size:
        """The batch size of a call: the env's, or for an unlocked env that of the input TensorDict."""
        if td is None or self.batch_locked:
            return self.batch_size
        return td.batch_size

    # ------------------------------------------------------------- subclass API
    def _reset(self, td: TensorDictBase | None) -> TensorDictBase:  # pragma: no cover
        """Reset the env's state and return the first observations: the hook :meth:`reset` calls.

        Args:
            td: ``None`` for a full reset, or the TensorDict the caller passed to :meth:`reset` (an env
                may read its reset's parameters from it; an unlocked env, ``batch_locked = False``, also
                its batch size). For a partial reset of a batched env (done sub-envs reset in
                place by ``step_and_maybe_reset`` or ``rollout``), a TensorDict of the env's batch size
                holding a ``"_reset"`` bool mask shaped ``[*batch_size, 1]`` (True: reset this sub-env)
                and the current root values (observations, state keys).

        Returns:
            A TensorDict with ``batch_size == env.batch_size`` (an unlocked env: ``td.batch_size``) on
            the env's device holding every key of
            ``observation_spec`` (and of ``state_spec`` for state the env reads back in ``_step``),
            shaped and typed as the specs say. Done flags are optional (missing ones are filled in as
            False). In a partial reset only the masked rows are used: :meth:`reset` keeps the other
            sub-envs' values from ``td``, so their rows may hold anything, but the env must not change
            their internal state.

        Example:
            >>> import torch
            >>> from tensordict import TensorDict
            >>> from rlbench.envs import EnvBase
            >>> from rlbench.specs import Categorical, Unbounded
            >>> class Clock(EnvBase):
            ...     def __init__(self):
            ...         super().__init__(batch_size=[2])
            ...         self.observation_spec = Unbounded((2, 1))
            ...         self.action_spec = Categorical(2, (2,))
            ...         self.t = torch.zeros(2, 1)
            ...     def _reset(self, td):
            ...         mask = None if td is None else td.get("_reset", None)
            ...         if mask is None:
            ...             self.t.zero_()
            ...         else:  # only the masked sub-envs restart
            ...             self.t[mask] = 0.0
            ...         return TensorDict(observation=self.t.clone(), batch_size=[2])
            ...     def _step(self, td):
            ...         self.t += 1
            ...         return TensorDict(observation=self.t.clone(), reward=torch.ones(2, 1),
            ...                           terminated=self.t >= 3, batch_size=[2])
            ...     def _set_seed(self, seed):
            ...         pass
            >>> env = Clock()
            >>> root = env.reset()
            >>> for _ in range(2):
            ...     _, root = env.step_and_maybe_reset(env.rand_action(root))
            >>> root["observation"].squeeze(-1).tolist()
            [2.0, 2.0]
            >>> partial = root.set("_reset", torch.tensor([[True], [False]]))
            >>> env.reset(partial)["observation"].squeeze(-1).tolist()  # sub-env 1 keeps its value
            [0.0, 2.0]
        """
        raise NotImplementedError

    def _step(self, td: TensorDictBase) -> TensorDictBase:  # pragma: no cover
        """Apply the action in ``td`` and return the step's results: the hook :meth:`step` calls.

        Args:
            td: the step's input, of the env's batch size: the action under ``action_key`` (already
                checked against ``action_spec`` for key, shape and dtype; for range too when
                ``validate_actions``), the state keys of ``state_spec``, and whatever else the caller
                keeps at the root. Read it; do not modify it.

        Returns:
            A *new* TensorDict with ``batch_size == env.batch_size`` (an unlocked env: ``td.batch_size``)
            on the env's device, holding the
            next observations (every key of ``observation_spec``), the reward under ``reward_key``
            shaped ``[*batch_size, 1]`` and the done flags ``"terminated"`` (the episode ended for good)
            and ``"truncated"`` (cut short, e.g. a time limit), bool ``[*batch_size, 1]``. ``"done"`` may
            be left out: it is filled in as ``terminated | truncated`` (a missing ``truncated`` as
            False). :meth:`step` writes the result under ``td["next"]``; at a done step the
            observations are the true final ones, never a reset's. Do not reset here: resets are
            :meth:`_reset`'s (``step_and_maybe_reset`` calls it). Specs are checked by
            :func:`~rlbench.envs.check_env_specs`, not per step.

        Example:
            >>> import torch
            >>> from tensordict import TensorDict
            >>> from rlbench.envs import EnvBase, check_env_specs
            >>> from rlbench.specs import Bounded, Unbounded
            >>> class Walk(EnvBase):
            ...     def __init__(self):
            ...         super().__init__(batch_size=[])
            ...         self.observation_spec = Unbounded((1,))
            ...         self.action_spec = Bounded(-1.0, 1.0, (1,))
            ...         self.x = torch.zeros(1)
            ...     def _reset(self, td):
            ...         self.x = torch.zeros(1)
            ...         return TensorDict(observation=self.x.clone())
            ...     def _step(self, td):
            ...         self.x = self.x + td["action"]
            ...         return TensorDict(observation=self.x.clone(), reward=-self.x.abs(),
            ...                           terminated=self.x.abs() > 2, truncated=torch.zeros(1, dtype=torch.bool))
            ...     def _set_seed(self, seed):
            ...         pass
            >>> env = Walk()
            >>> check_env_specs(env)
            []
            >>> td = env.step(env.reset().set("action", torch.tensor([0.5])))
            >>> td["next", "observation"], td["next", "done"]
            (tensor([0.5000]), tensor([False]))
        """
        raise NotImplementedError

    def _set_seed(self, seed: int | None) -> None:  # pragma: no cover
        """Seed the env's own random number generators: the hook :meth:`set_seed` calls.

        Args:
            seed: an int, or None to draw fresh entropy (what "unseeded" means for this env).

        After ``_set_seed(s)`` the env's dynamics and resets must be reproducible: the same seed and the
        same actions give the same data. Use a generator the env owns (``torch.Generator``,
        ``numpy.random.Generator``), never a global RNG, which the user's code shares. Random *actions*
        are not this hook's business: :meth:`set_seed` seeds ``action_generator`` itself. A batched env
        gives each sub-env its own stream (``SerialEnv`` seeds sub-env ``i`` with ``seed + i``).

        Example:
            >>> import torch
            >>> from tensordict import TensorDict
            >>> from rlbench.envs import EnvBase
            >>> from rlbench.specs import Categorical, Unbounded
            >>> class Noise(EnvBase):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.observation_spec = Unbounded((1,))
            ...         self.action_spec = Categorical(2)
            ...         self.rng = torch.Generator()
            ...     def _set_seed(self, seed):
            ...         if seed is None:
            ...             self.rng.seed()
            ...         else:
            ...             self.rng.manual_seed(seed)
            ...     def _reset(self, td):
            ...         return TensorDict(observation=torch.rand(1, generator=self.rng))
            ...     def _step(self, td):
            ...         return TensorDict(observation=torch.rand(1, generator=self.rng), reward=torch.zeros(1),
            ...                           terminated=torch.zeros(1, dtype=torch.bool))
            >>> env = Noise()
            >>> _ = env.set_seed(7)
            >>> first = env.rollout(3)["next", "observation"]
            >>> _ = env.set_seed(7)
            >>> torch.equal(env.rollout(3)["next", "observation"], first)
            True
        """
        raise NotImplementedError

    # --------------------------------------------------------------- public API
    def set_seed(self, seed: int | None) -> int | None:
        """Seed the env's random number generators; returns the seed.

        Besides the env's own randomness (``_set_seed``), this seeds ``action_generator``, from which
        :meth:`rand_action` and random rollouts draw, so ``env.set_seed(s); env.rollout(n)`` gives
        the same data every time. Before any ``set_seed`` (or after ``set_seed(None)``), random
        actions come from torch's global RNG.

        Args:
            seed: an int in ``[0, 2**63)`` (NumPy ints too) or None; anything else raises an error that
                names the value.
        """
        seed = check_seed(seed, type(self).__name__, self._seeds_used())
        self._set_seed(seed)
        if seed is None:
            self.action_generator = None
        else:
            # offset so the action stream differs from an env RNG seeded with the same number
            self.action_generator = torch.Generator(device=self.device)
            self.action_generator.manual_seed((int(seed) + _ACTION_SEED_OFFSET) % 2**63)
        return seed

    def _seeds_used(self) -> int:
        """How many consecutive seeds ``set_seed(s)`` uses (``s, s + 1, ...``): one per sub-env of a batched env."""
        return 1

    def reset(self, td: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        """Reset the env, or with a ``"_reset"`` mask in ``td`` only the masked sub-envs.

        With a mask, the result is ``td`` (without ``"_reset"``) updated with the reset values of the
        masked sub-envs: the other sub-envs, and keys the env does not produce (a policy's hidden
        state), keep their values. Without one, ``td`` is the reset's input, handed to ``_reset`` (an env
        may read parameters from it; an unlocked env runs ``td.batch_size`` sub-envs).
        """
        mask = None if td is None else td.get("_reset", None)
        batch = self._call_batch(td)
        out = self._reset(td, **kwargs) if kwargs else self._reset(td)
        self._check_output(out, "_reset", batch)
        out = self._complete_done(out, reset=True)
        if mask is not None and batch:
            out = self._merge_partial_reset(td, out, mask)
        return out

    def _check_output(self, out, where: str, batch: torch.Size | None = None) -> None:
        """A clear error when ``_reset``/``_step`` return something other than a batch-sized TensorDict."""
        batch = self.batch_size if batch is None else batch
        expected = f"a TensorDict with batch_size {tuple(batch)}"
        if not isinstance(out, TensorDictBase):
            got = type(out).__name__
        elif out.batch_size != batch:
            got = f"batch_size {tuple(out.batch_size)}"
        else:
            return
        if self.batch_locked:
            size, hint = "the env's batch_size", (
                f"build the TensorDict that {where} returns with batch_size=self.batch_size, or fix the "
                f"batch_size passed to EnvBase.__init__"
            )
        else:
            size, hint = "the input TensorDict's batch_size (batch_locked=False)", (
                f"build the TensorDict that {where} returns with the batch size of the TensorDict it gets "
                f"(td.batch_size; self.batch_size when td is None)"
            )
        raise _EnvOutputError(
            f"{type(self).__name__}.{where} must return {expected} ({size}), got {got}: {hint}",
            where, expected, got, hint,
        )

    def _merge_partial_reset(self, old: TensorDictBase, new: TensorDictBase, mask: torch.Tensor):
        """``old`` updated with ``new``'s values for the masked sub-envs (and new keys as they come)."""
        batch = new.batch_size
        nb = len(batch)
        mask = mask.reshape(batch)
        merged = old.exclude("_reset", "next")
        if bool(mask.all()):
            return merged.update(new)
        masks = {}  # the mask reshaped per number of trailing dims, built once each
        flat = all(isinstance(v, torch.Tensor) for v in new.values())
        if not flat:  # fresh nested containers: setting nested keys must not write into ``old``'s
            merged = merged.copy()
        keys = list(new.keys()) if flat else list(new.keys(True, True))
        for key in keys:
            value = new.get(key)
            prev = old.get(key, None)
            if prev is not None:
                m = masks.get(value.ndim)
                if m is None:
                    m = masks[value.ndim] = mask.reshape(*batch, *([1] * (value.ndim - nb)))
                value = torch.where(m, value, prev)
            merged.set(key, value)
        return merged

    def _complete_done(self, out: TensorDictBase, reset: bool = False) -> TensorDictBase:
        """Fill in missing done flags: ``done = terminated | truncated`` and the like."""
        keys = out.keys()
        has_done, has_term, has_trunc = "done" in keys, "terminated" in keys, "truncated" in keys
        if has_done and has_term and has_trunc:
            return out
        shape, dev = (*out.batch_size, 1), self.device
        if reset and not (has_done or has_term or has_trunc):
            false = torch.zeros(shape, dtype=torch.bool, device=dev)
            out.set("done", false)
            out.set("terminated", false.clone())
            out.set("truncated", false.clone())
            return out
        if not has_term:
            term = out.get("done").clone() if has_done else torch.zeros(shape, dtype=torch.bool, device=dev)
            out.set("terminated", term)
        if not has_trunc:
            out.set("truncated", torch.zeros(shape, dtype=torch.bool, device=dev))
        if not has_done:
            term, trunc = out.get("terminated"), out.get("truncated")
            if term.dtype != torch.bool or trunc.dtype != torch.bool:
                self._raise_done_dtype(term, trunc, reset)
            out.set("done", term | trunc)
        return out

    def _raise_done_dtype(self, term, trunc, reset: bool) -> None:
        """``done = terminated | truncated`` needs bool flags: name the flag that is not one."""
        key, value = ("terminated", term) if term.dtype != torch.bool else ("truncated", trunc)
        where = "_reset" if reset else "_step"
        hint = (
            f"return bool done flags from {where}, e.g. (x > 0) or flag.bool() (flags are bool "
            f"[*batch_size, 1] tensors)"
        )
        raise _DoneFlagError(
            f"{type(self).__name__}.{where} returned {key!r} with dtype {value.dtype}, but done flags must be "
            f"torch.bool (done is derived as terminated | truncated): {hint}",
            where, key, value.dtype, hint,
        )

    def step(self, td: TensorDictBase) -> TensorDictBase:
        """Apply ``td["action"]``; write the results under ``"next"`` and return ``td``."""
        self._check_action(td)
        next_td = self._step(td)
        batch = self.batch_size if self.batch_locked else td.batch_size
        if next_td.__class__ is not TensorDict or next_td.batch_size != batch:
            self._check_output(next_td, "_step", batch)
        td.set("next", self._complete_done(next_td))
        return td

    def rand_step(self, td: TensorDictBase | None = None) -> TensorDictBase:
        """Step with a random action (:meth:`rand_action`, then :meth:`step`); returns ``td``.

        Example:
            >>> from rlbench.testing import CountingEnv
            >>> env = CountingEnv()
            >>> env.rand_step(env.reset())["next", "observation"]
            tensor([1.])
        """
        return self.step(self.rand_action(td))

    def _check_action(self, td: TensorDictBase) -> None:
        action = td.get(self.action_key, None)
        if action is None:
            raise _KeyError(
                f"{type(self).__name__}.step: the TensorDict has no action under key {self.action_key!r} "
                f"(expected {self.action_spec!r}); found keys {sorted(map(str, td.keys()))}. Set "
                f"td[{self.action_key!r}] (e.g. env.rand_action(td)) or run a policy that writes it."
            )
        spec = self.action_spec if self.batch_locked else self._action_spec_for(td.batch_size)
        values = False
        if not isinstance(action, torch.Tensor):
            why = f"expected a torch.Tensor, got {type(action).__name__}"
        elif action.shape != spec.shape:
            # exact here: one step takes exactly one action per sub-env (spec.mismatch would accept
            # extra batch dims, as rollouts have)
            why = f"expected shape {tuple(spec.shape)}, got {tuple(action.shape)}"
            if self.batch_locked and td.batch_size != self.batch_size:
                why += (f" (the TensorDict has batch size {tuple(td.batch_size)}, the env's batch_size is "
                        f"{tuple(self.batch_size)})")
        elif action.dtype != spec.dtype:
            why = spec.mismatch(action)
        elif self.validate_actions:
            why, values = spec.mismatch(action), True
        else:
            why = None
        if why is not None:
            raise ValueError(
                f"{type(self).__name__}.step: action under key {self.action_key!r} does not match "
                f"action_spec: {why}. The spec is {spec!r}."
                + (_VALIDATE_HINT.format(type(self).__name__) if values else "")
            )

    def step_and_maybe_reset(self, td: TensorDictBase) -> tuple[TensorDictBase, TensorDictBase]:
        """Step, then return ``(td, next_root)`` where done sub-envs of ``next_root`` are reset.

        ``td["next"]`` keeps the true final observation of a sub-env that is done; ``next_root`` holds
        its fresh reset observation (the input of the following step).
        """
        td = self.step(td)
        root = step_mdp(td, action_key=self.action_key, reward_key=self.reward_key)
        done = root.get("done")
        if bool(done.any()):
            if root.batch_size:
                root.set("_reset", done)
                root = self.reset(root)
            else:
                root = root.update(self.reset())
        return td, root

    def fused_stepper(self, random: bool = False) -> FusedStepper | None:
        """A :class:`~rlbench.envs.fused.FusedStepper` that gives this env's steps as NumPy arrays, or None.

        Collectors call this once per batch and, when they get a stepper, write its arrays straight
        into their buffers instead of calling :meth:`step_and_maybe_reset` (see
        :mod:`rlbench.envs.fused`). The default, None, keeps the generic path: an env overrides this
        only when its stepper's data are exactly those of ``step_and_maybe_reset``.

        Args:
            random: the collector will step with :meth:`FusedStepper.rand_action
                <rlbench.envs.fused.FusedStepper.rand_action>` instead of a policy; an env whose
                :meth:`rand_action` draws differently must then return None.
        """
        return None

    def rand_action(self, td: TensorDictBase | None = None) -> TensorDictBase:
        """Write a random action from ``action_spec`` into ``td`` (a new TensorDict if None).

        An unlocked env (``batch_locked = False``) draws one action per element of ``td``'s batch.
        """
        if td is None:
            td = TensorDict({}, batch_size=self.batch_size, device=self.device)
        spec = self.action_spec if self.batch_locked else self._action_spec_for(td.batch_size)
        td.set(self.action_key, spec.rand(generator=self.action_generator))
        return td

    def rollout(
        self,
        max_steps: int,
        policy=None,
        break_when_any_done: bool = True,
        auto_reset: bool = True,
        tensordict: TensorDictBase | None = None,
    ) -> TensorDictBase:
        """Run up to ``max_steps`` steps and return them stacked as a ``[*batch_size, T]`` TensorDict.

        Args:
            max_steps: the number of steps to run.
            policy: a callable ``td -> td`` that writes the action, such as a
                ``tensordict.nn.TensorDictModule`` (random actions if None).
            break_when_any_done: stop after the first step where any sub-env is done. Otherwise
                done sub-envs reset in place and the rollout continues.
            auto_reset: reset the env first (with ``tensordict`` as the reset's input when given, e.g.
                the parameters of an unlocked env); if False, start from ``tensordict``.
            tensordict: the starting TensorDict (``auto_reset=False``) or the reset's input.

        Every step must carry the same keys with the same shapes; a key that appears only after the
        first step is not recorded. An unlocked env (``batch_locked = False``) runs the batch of
        ``tensordict`` and returns ``[*tensordict.batch_size, T]``.

        Gradients: with gradients enabled (``torch.is_grad_enabled()``), when the first step's data
        carry a tensor that requires grad (a policy with trainable parameters, a starting state that
        requires grad, a learned env), the steps are kept as they are and stacked at the end, so the
        result is differentiable through a differentiable env (e.g. ``PendulumEnv``:
        ``rollout(...)["next", "reward"].sum().backward()`` reaches the policy's parameters). Otherwise
        (the default for data collection, and always under ``torch.no_grad()``) the steps are copied
        into buffers allocated after the first step and the rest of the rollout runs without autograd.
        Wrap a rollout in ``torch.no_grad()`` when its data are only collected.
        """
        if int(max_steps) < 1:
            raise ValueError(f"rollout: max_steps must be >= 1, got {max_steps}")
        if auto_reset:
            td = self.reset(tensordict)
        elif tensordict is None:
            raise ValueError("rollout(auto_reset=False) needs the starting state as tensordict=...")
        else:
            td = tensordict
        n = int(max_steps)
        batch = td.batch_size if not self.batch_locked else self.batch_size
        if not torch.is_grad_enabled():
            writer = RolloutWriter(batch, n)
            steps, _ = self._rollout_steps(td, range(n), n, policy, break_when_any_done, writer.write)
            return writer.result(steps)
        # Gradients on: the first step decides whether the data carry gradients to keep.
        first: list = []
        steps, td = self._rollout_steps(td, range(1), n, policy, break_when_any_done,
                                        lambda t, step: first.append(step))
        writer = RolloutWriter(batch, n, differentiable=_carries_grad(first[0]))
        writer.write(0, first[0])
        if td is not None:
            with contextlib.nullcontext() if writer.differentiable else torch.no_grad():
                steps, _ = self._rollout_steps(td, range(1, n), n, policy, break_when_any_done, writer.write)
        return writer.result(steps)

    def _rollout_steps(self, td, ts: range, n: int, policy, break_when_any_done: bool, record):
        """Run the steps ``ts`` of an ``n``-step rollout from root ``td``, passing each to ``record(t, td)``.

        Returns ``(steps done so far, the next root)``; the root is None when the rollout ended early.
        """
        steps = ts.start
        for t in ts:
            if policy is None:
                td = self.rand_action(td)
            else:
                out = policy(td)
                td = td if out is None else out  # policies that write in place may return None
            if break_when_any_done or t == n - 1:
                td = self.step(td)
                record(t, td)
                steps = t + 1
                if break_when_any_done and bool(td.get(("next", "done")).any()):
                    return steps, None
                td = step_mdp(td, action_key=self.action_key, reward_key=self.reward_key)
            else:
                td, root = self.step_and_maybe_reset(td)
                record(t, td)
                steps = t + 1
                td = root
        return steps, (td if steps < n else None)

    # --------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self.is_closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def fake_tensordict(self) -> TensorDictBase:
        """A zero-filled TensorDict with every key a step produces (root and ``"next"``)."""
        root = self.observation_spec.zero()
        root.update(self.state_spec.zero())
        root.update(self.done_spec.zero())
        root.set(self.action_key, self.action_spec.zero())
        nxt = self.observation_spec.zero()
        nxt.update(self.done_spec.zero())
        nxt.set(self.reward_key, self.reward_spec.zero())
        root.set("next", nxt)
        return root

    def __repr__(self) -> str:
        def indent(s):
            return s.replace("\n", "\n    ")

        return (
            f"{type(self).__name__}(\n    batch_size={tuple(self.batch_size)}, device={self.device},\n"
            f"    observation_spec={indent(repr(self.observation_spec))},\n"
            f"    action_spec={self.action_spec!r},\n    reward_spec={self.reward_spec!r})"
        )
