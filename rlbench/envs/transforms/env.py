"""``TransformedEnv``: an env seen through a list of transforms."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase

from ..common import EnvBase
from .base import Compose, EnvSpecs, Transform

__all__ = ["TransformedEnv"]

class TransformedEnv(EnvBase):
    """An env whose inputs and outputs pass through transforms; it is itself an :class:`EnvBase`.

    Its specs are the base env's specs rewritten by each transform in turn, computed once when the
    list of transforms changes (construction, ``append_transform``, ``insert_transform``), never per
    step. A transform whose keys the env lacks raises :class:`~rlbench.envs.transforms.TransformKeyError`
    right there, naming the key and listing the keys the env has.

    Args:
        env: the env to transform (any :class:`EnvBase`, including another ``TransformedEnv``).
        transform: a :class:`Transform`, a :class:`Compose` or ``None``. ``env.transform`` is always a
            :class:`Compose` (a single transform is wrapped), so ``env.transform[i]`` works.

    Attribute look-ups the TransformedEnv does not answer go to the base env (``env.max_steps``).
    The specs are read from the base env when the transform list changes: after changing the base
    env's specs (e.g. appending to an inner ``TransformedEnv``), call ``env.transform`` 's
    ``_notify_change()`` or rebuild the outer env.

    Example:
        >>> from rlbench.envs.transforms import RewardSum, StepCounter
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(max_steps=3), StepCounter())
        >>> env.append_transform(RewardSum())
        >>> td = env.rollout(5)
        >>> td["next", "episode_reward"].squeeze(-1).tolist(), td["next", "step_count"].squeeze(-1).tolist()
        ([1.0, 2.0, 3.0], [1, 2, 3])
        >>> env.transform[1].parent.observation_spec["step_count"].dtype
        torch.int64
    """

    def __init__(self, env: EnvBase, transform: Transform | None = None, *, _adopt: bool = True):
        if not isinstance(env, EnvBase):
            raise TypeError(f"TransformedEnv wraps an EnvBase, got {type(env).__name__}")
        super().__init__(batch_size=env.batch_size, device=env.device, validate_actions=False)
        self.action_key, self.reward_key = env.action_key, env.reward_key
        self.base_env = env
        self._adopted = _adopt
        self._is_view = not _adopt  # a transform's ``parent``: shares the transforms, owns none of them
        wrapped = False
        if transform is None:
            transform = Compose(_adopt=_adopt)
        elif not isinstance(transform, Transform):
            raise TypeError(f"TransformedEnv: transform must be a Transform, got {type(transform).__name__}")
        elif not isinstance(transform, Compose):
            transform, wrapped = Compose(transform, _adopt=_adopt), True
        self._transform = transform
        if not _adopt:
            self._refresh_specs()
            return
        transform.set_container(self)
        try:
            self._refresh_specs()
        except Exception:
            transform.__dict__["_container"] = None
            if wrapped:  # free the user's transform again so it can be used elsewhere
                for t in transform:
                    t.__dict__["_container"] = None
            raise

    # ------------------------------------------------------------- transforms
    @property
    def transform(self) -> Compose:
        """The env's transforms (a :class:`Compose`; index it for a single one)."""
        return self._transform

    def append_transform(self, transform: Transform) -> None:
        """Add a transform at the end (raises, leaving the env unchanged, if its keys do not fit)."""
        self._transform.append(transform)

    def insert_transform(self, index: int, transform: Transform) -> None:
        """Insert a transform before position ``index``."""
        self._transform.insert(index, transform)

    def _parent_of(self, transform: Transform):
        return self.base_env

    @staticmethod
    def _view(base: EnvBase, transforms) -> "TransformedEnv":
        """``base`` seen through ``transforms``, which the view shares but does not adopt.

        It is the ``parent`` of the transform after them (see :attr:`Transform.parent`).
        """
        return TransformedEnv(base, Compose(*transforms, _adopt=False), _adopt=False)

    def _refresh_specs(self) -> None:
        specs = self._transform.transform_specs(EnvSpecs.from_env(self.base_env))
        self.observation_spec = specs.observation
        self.reward_spec = specs.reward
        self.done_spec = specs.done
        self.action_spec = specs.action
        self.state_spec = specs.state
        # A transform may move the data (DeviceCastTransform): the env's device is where its output lives,
        # so rollouts, rand_action and collectors build their TensorDicts there.
        self.device = torch.device(specs.device)
        self._has_inv = self._transform.has_inverse
        base = self.base_env
        keys = dict(base.observation_spec.items(True, True))
        keys.update(base.state_spec.items(True, True))
        keys.update(base.done_spec.items(True, True))
        # Root keys whose spec no transform changed can go from a transformed td to the base env as
        # they are (no per-key check at each partial reset); the others need a check (see below).
        mine = dict(self.observation_spec.items(True, True))
        mine.update(self.state_spec.items(True, True))
        mine.update(self.done_spec.items(True, True))
        same = lambda a, b: b is not None and a.shape == b.shape and a.dtype == b.dtype  # noqa: E731
        self._base_same_keys = tuple(k for k, s in keys.items() if same(s, mine.get(k)))
        self._base_root_specs = tuple((k, s) for k, s in keys.items() if k not in self._base_same_keys)
        if self._adopted:
            self._transform._clear_caches()

    @property
    def batch_locked(self) -> bool:
        """The base env's: an unlocked base env takes its batch size from the input TensorDict."""
        return self.base_env.batch_locked

    def _seeds_used(self) -> int:
        return self.base_env._seeds_used()

    # ----------------------------------------------------------------- EnvBase
    def step(self, td: TensorDictBase) -> TensorDictBase:
        """Inverse-transform the action, step the base env, forward-transform ``"next"``."""
        if self._has_inv:
            self._check_action(td)
            td_in = self._transform._inv_call(td.copy())
            self._step_inverted(td_in)
            td.set("next", td_in.get("next"))
        else:
            # No inverse transform: the action reaches the base env unchanged (same spec), and the
            # base env checks it; checking here too would only double the cost.
            self._step_inverted(td)
        return td

    def _step_inverted(self, td: TensorDictBase) -> TensorDictBase:
        """Step with an action already in the base env's terms, then run the forward transforms.

        ``FrameSkipTransform`` repeats steps through this on its parent env.
        """
        self.base_env.step(td)
        nxt = td.get("next")
        new = self._transform._step(td, nxt)
        if new is not nxt:
            td.set("next", new)
        return td

    def _step(self, td: TensorDictBase) -> TensorDictBase:
        # Batched envs (SerialEnv) call sub-envs' _step directly; keep the caller's td untouched.
        td_in = td.copy()
        if self._has_inv:
            td_in = self._transform._inv_call(td_in)
        return self._step_inverted(td_in).get("next")

    def reset(self, td: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        """Reset the base env and run the transforms' reset hooks on its output.

        ``td`` (when given) goes to the base env's reset through the inverse transforms, so an env that
        reads its reset's input (the parameters of an unlocked env, TorchRL's ``gen_params``) gets it,
        and the transforms' reset hooks see it. With a ``"_reset"`` mask (a partial reset of a batched
        env) the result is ``td`` with the reset sub-envs' values replaced, as for any :class:`EnvBase`.
        """
        mask = None if td is None else td.get("_reset", None)
        batch = self._call_batch(td)
        if mask is None or not batch:
            base_in = None
            if td is not None:
                base_in = td.exclude("_reset", "next")
                if self._has_inv:
                    base_in = self._transform._inv_call(base_in)
            return self._transform._reset(td, self.base_env.reset(base_in, **kwargs))
        base_in, taken = self._base_reset_input(td)
        out = self.base_env.reset(base_in, **kwargs)
        # The base env already merged the keys it got from ``td``: those that no transform replaces
        # are right for every sub-env, so only the replaced ones need a torch.where below.
        merged_by_base = {key: out.get(key, None) for key in taken}
        out = self._transform._reset(td, out)
        mask = mask.reshape(batch)
        nb = len(batch)
        merged = td.exclude("_reset", "next")
        for key in out.keys(True, True):
            value = out.get(key)
            if merged_by_base.get(key) is not value:
                prev = td.get(key, None)
                if prev is not None and prev.shape == value.shape:
                    value = torch.where(mask.reshape(*mask.shape, *([1] * (value.ndim - nb))), value, prev)
            merged.set(key, value)
        return merged

    def _reset(self, td: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        return self.reset(td, **kwargs)

    def _base_reset_input(self, td: TensorDictBase) -> tuple[TensorDictBase, list]:
        """What a partial reset hands the base env: the mask plus a value for each of its root keys.

        ``td`` holds *transformed* values; the base env may need its own (e.g. a batched env keeps
        the old values of the sub-envs it does not reset, and a state-less env reads its state). A value
        whose shape or dtype the transforms changed is replaced by a zero of the base spec: it only
        stands for sub-envs whose result is thrown away. Also returns the keys taken from ``td``.
        """
        out = td.select("_reset", *self._base_same_keys, strict=False)
        taken = [k for k in self._base_same_keys if out.get(k, None) is not None]
        nb, lead = len(self.batch_size), td.batch_size
        for key, spec in self._base_root_specs:
            if not self.batch_locked and lead != self.batch_size:  # an unlocked env: the input's batch
                spec = spec.unbatched(nb).expand(*lead, *spec.shape[nb:])
            value = td.get(key, None)
            if value is None or value.shape != spec.shape or value.dtype != spec.dtype:
                value = spec.zero()
            else:
                taken.append(key)
            out.set(key, value)
        return out, taken

    def _set_seed(self, seed):
        self.base_env.set_seed(seed)
        if self._adopted:
            self._transform.set_seed(seed)

    def close(self) -> None:
        """Close the transforms (only an env that owns them: not a transform's ``parent`` view), then the base env."""
        if self._adopted and not self.is_closed:
            self._transform.close()
        self.base_env.close()
        super().close()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """The transforms' state (running statistics, normalization constants)."""
        return self._transform.state_dict()

    def load_state_dict(self, state_dict: dict, strict: bool = True):
        out = self._transform.load_state_dict(state_dict, strict=strict)
        self._refresh_specs()
        return out

    def __getattr__(self, name: str):
        # Only reached when normal look-up fails: forward public attributes to the base env.
        if name.startswith("_") or "base_env" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return getattr(self.__dict__["base_env"], name)

    def __repr__(self) -> str:
        env = repr(self.base_env).replace("\n", "\n    ")
        transform = repr(self._transform).replace("\n", "\n    ")
        return f"TransformedEnv(\n    env={env},\n    transform={transform})"
