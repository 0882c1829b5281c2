"""``ActionMask``: random actions drawn among the allowed ones, illegal actions refused.

rlbench's discrete specs hold no mask, so the transform gives the transformed env an action spec
(a ``Categorical`` or ``OneHot`` subclass) that draws ``rand`` samples among the actions the env's latest
mask allows; the mask comes from the env's output at each reset and step.
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase

from ...specs import Categorical, OneHot
from .base import EnvSpecs, Transform, _missing_key_error, expand_mask, reset_mask

__all__ = ["ActionMask"]


class _MaskHolder:
    """The latest mask, shared by every copy of the masked action spec (specs are cloned freely)."""

    def __init__(self):
        self.mask: torch.Tensor | None = None


def _draw(mask: torch.Tensor, shape, generator) -> torch.Tensor:
    """One allowed index per row of ``mask`` (``[*batch, n]`` bool), for extra leading dims ``shape``."""
    n = mask.shape[-1]
    if not bool(mask.any(-1).all()):
        raise ValueError("ActionMask: a sub-env's action mask allows no action, so no random action can be drawn")
    probs = mask.expand((*shape, *mask.shape)).reshape(-1, n).float()
    index = torch.multinomial(probs, 1, generator=generator)
    return index.reshape((*shape, *mask.shape[:-1]))


class _MaskedCategorical(Categorical):
    """A ``Categorical`` whose ``rand`` draws among the actions the holder's mask allows."""

    def __init__(self, n, shape, dtype, device, holder: _MaskHolder):
        super().__init__(n, shape, dtype, device)
        self.holder = holder

    def _rand(self, shape, generator=None):
        mask = self.holder.mask
        extra = shape[: len(shape) - self.ndim]
        if mask is None or mask.shape != (*self.shape, self.n):  # e.g. the unbatched spec: no mask of its shape
            return super()._rand(shape, generator)
        return _draw(mask.to(self.device), extra, generator).to(self.dtype)

    def _clone_with(self, shape, device):
        return _MaskedCategorical(self.n, shape, self.dtype, device, self.holder)


class _MaskedOneHot(OneHot):
    """A ``OneHot`` whose ``rand`` draws among the actions the holder's mask allows."""

    def __init__(self, n, shape, dtype, device, holder: _MaskHolder):
        super().__init__(n, shape, dtype, device)
        self.holder = holder

    def _rand(self, shape, generator=None):
        mask = self.holder.mask
        extra = shape[: len(shape) - self.ndim]
        if mask is None or mask.shape != self.shape:
            return super()._rand(shape, generator)
        index = _draw(mask.to(self.device), extra, generator)
        return torch.nn.functional.one_hot(index, self.n).to(self.dtype)

    def _clone_with(self, shape, device):
        return _MaskedOneHot(self.n, shape, self.dtype, device, self.holder)


class ActionMask(Transform):
    """Restrict a discrete action to those allowed by a bool mask that the env writes.

    The env below writes ``mask_key`` (bool, one entry per action: ``[*batch, n]``) with its observations.
    The transformed env's action spec then draws ``rand_action`` among the allowed actions of the
    latest reset or step, and a step whose action the step input's mask forbids raises ``ValueError``.
    The action spec must be a ``Categorical`` or a ``OneHot`` (rlbench's specs carry no mask themselves:
    membership, ``is_in``, ignores it; only ``rand`` and the step check use it). A spec copy whose shape
    does not fit the latest mask (e.g. ``action_spec_unbatched``) draws from all actions; so does a
    ``SerialEnv`` of ``ActionMask`` envs (its stacked spec cannot see the sub-envs' masks): put the
    transform over the ``SerialEnv`` instead.

    Args:
        action_key: the action the mask restricts.
        mask_key: the env's bool mask.

    Example:
        >>> import torch
        >>> from rlbench.envs.transforms import Transform, TransformedEnv
        >>> from rlbench.specs import Binary
        >>> from rlbench.testing import CountingEnv
        >>> class OnlyOne(Transform):  # an env that allows action 1 only (CountingEnv has 2 actions)
        ...     def _call(self, td):
        ...         return td.set("action_mask", torch.tensor([False, True]).expand(*td.batch_size, 2))
        ...     def transform_observation_spec(self, spec):
        ...         spec["action_mask"] = Binary(2, (*spec.shape, 2), torch.bool)
        ...         return spec
        >>> env = TransformedEnv(TransformedEnv(CountingEnv(), OnlyOne()), ActionMask())
        >>> env.rollout(3)["action"].tolist()
        [1, 1, 1]
    """

    def __init__(self, action_key="action", mask_key="action_mask"):
        super().__init__()
        self.action_key = action_key
        self.mask_key = mask_key
        self.__dict__["_holder"] = _MaskHolder()

    def __deepcopy__(self, memo):
        new = super().__deepcopy__(memo)
        new.__dict__["_holder"] = _MaskHolder()
        return new

    # ------------------------------------------------------------- mask updates
    def _update(self, mask: torch.Tensor | None, reset: torch.Tensor | None = None) -> None:
        if mask is None:
            return
        old = self._holder.mask
        if reset is not None and old is not None and old.shape == mask.shape:
            mask = torch.where(expand_mask(reset, mask), mask, old)
        self._holder.mask = mask.bool()

    def _reset(self, td, td_reset: TensorDictBase) -> TensorDictBase:
        self._update(td_reset.get(self.mask_key, None), reset_mask(td, td_reset.batch_size))
        return td_reset

    def _step(self, td: TensorDictBase, next_td: TensorDictBase) -> TensorDictBase:
        self._update(next_td.get(self.mask_key, None))
        return next_td

    # ------------------------------------------------------------------ inverse
    @property
    def has_inverse(self) -> bool:
        return True

    def _inv_call(self, td: TensorDictBase) -> TensorDictBase:
        mask, action = td.get(self.mask_key, None), td.get(self.action_key, None)
        if mask is None or action is None:
            return td
        index = action.long() if action.shape == mask.shape[:-1] else action.long().argmax(-1)
        if index.shape != mask.shape[:-1]:
            return td
        allowed = mask.bool().gather(-1, index.unsqueeze(-1)).squeeze(-1)
        if not bool(allowed.all()):
            bad = index[~allowed][:5].tolist()
            raise ValueError(
                f"ActionMask: action(s) {bad} under {self.action_key!r} are not allowed by {self.mask_key!r}; "
                f"draw actions with env.rand_action(td) or mask the policy's logits with td[{self.mask_key!r}]"
            )
        return td

    # -------------------------------------------------------------------- specs
    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        available = list(specs.observation.keys(True, True))
        if self.mask_key not in available:
            raise _missing_key_error(self, self.mask_key, available, specs, "mask_key")
        if self.action_key != specs.action_key:
            raise _missing_key_error(self, self.action_key, [specs.action_key], specs, "action_key")
        action = specs.action
        if type(action) in (Categorical, _MaskedCategorical):
            specs.action = _MaskedCategorical(action.n, action.shape, action.dtype, action.device, self._holder)
        elif type(action) in (OneHot, _MaskedOneHot):
            specs.action = _MaskedOneHot(action.n, action.shape, action.dtype, action.device, self._holder)
        else:
            raise TypeError(
                f"ActionMask: the action spec must be a Categorical or a OneHot, got {type(action).__name__}"
            )
        return specs

    def extra_repr(self) -> str:
        return f"action_key={self.action_key!r}, mask_key={self.mask_key!r}"
