"""Observation shape and dtype transforms: dtype casts, flattening, (un)squeezing, permuting, concatenation."""
from __future__ import annotations

import torch

from ...specs import Bounded, Composite, Spec, Unbounded
from .base import EnvSpecs, Transform, TransformKeyError, _norm_key

__all__ = ["DoubleToFloat", "FlattenObservation", "UnsqueezeTransform", "SqueezeTransform", "PermuteTransform",
           "CatTensors"]


def _cast_spec(spec: Spec, dtype: torch.dtype) -> Spec:
    if isinstance(spec, Bounded):
        return Bounded(spec.low.clone(), spec.high.clone(), spec.shape, dtype, spec.device)
    if isinstance(spec, Unbounded):
        return Unbounded(spec.shape, dtype, spec.device)
    return spec


def _check_negative(name: str, *dims: int) -> None:
    for d in dims:
        if d >= 0:
            raise ValueError(
                f"{name}: dims must be negative (counted from the end, so they mean the same with or without "
                f"batch dims), got {d}"
            )


def _float_leaves(spec: Composite) -> list:
    return [k for k, s in spec.items(True, True) if s.dtype == torch.float64]


class DoubleToFloat(Transform):
    """Cast float64 outputs to float32, and float32 actions back to float64 for the env.

    Args:
        in_keys: the float64 keys to cast (default: every float64 observation, and the reward if it is
            float64, found in the env's specs).
        in_keys_inv: the float64 inputs the env reads (default: the action and state keys that are
            float64); the caller writes them as float32.

    Outside an env with the defaults, ``transform(td)`` casts every float64 entry and ``inv(td)``
    casts a float32 ``"action"``.

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import DoubleCountingEnv
        >>> env = TransformedEnv(DoubleCountingEnv(), DoubleToFloat())
        >>> env.observation_spec["observation"].dtype, env.action_spec.dtype
        (torch.float32, torch.float32)
        >>> env.rollout(2)["action"].dtype
        torch.float32
    """

    def __init__(self, in_keys=None, in_keys_inv=None):
        super().__init__(in_keys, None, in_keys_inv)
        self._auto, self._auto_inv = in_keys is None, in_keys_inv is None
        self._resolved = False

    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        if self._auto:
            self.in_keys = _float_leaves(specs.observation)
            if specs.reward.dtype == torch.float64:
                self.in_keys.append(specs.reward_key)
            self.out_keys = list(self.in_keys)
        if self._auto_inv:
            self.in_keys_inv = [specs.action_key] if specs.action.dtype == torch.float64 else []
            self.in_keys_inv += _float_leaves(specs.state)
            self.out_keys_inv = list(self.in_keys_inv)
        self._resolved = True
        return super().transform_specs(specs)

    @property
    def has_inverse(self) -> bool:
        return bool(self.in_keys_inv) or (self._auto_inv and not self._resolved)

    def _apply_transform(self, x):
        return x.to(torch.float32) if x.dtype == torch.float64 else x

    def _inv_apply_transform(self, x):
        return x.to(torch.float64)

    def _call(self, td):
        if self._auto and not self._resolved:
            for key in td.keys(True, True):
                if not (isinstance(key, tuple) and key[0] == "next"):
                    value = td.get(key)
                    if value.dtype == torch.float64:
                        td.set(key, value.to(torch.float32))
            return td
        return super()._call(td)

    def _inv_call(self, td):
        if self._auto_inv and not self._resolved:
            action = td.get("action", None)
            if action is not None and action.dtype == torch.float32:
                td.set("action", action.to(torch.float64))
            return td
        return super()._inv_call(td)

    def _transform_spec(self, spec):
        return _cast_spec(spec, torch.float32)

    def _inv_transform_spec(self, spec):
        return _cast_spec(spec, torch.float32)


class FlattenObservation(Transform):
    """Flatten dims ``first_dim..last_dim`` (negative, counted from the end) of each key.

    Args:
        first_dim: the first dim to flatten (e.g. ``-3`` for ``[C, H, W]`` images).
        last_dim: the last dim to flatten (default ``-1``).
        in_keys: keys to flatten (default ``["pixels"]``, as TorchRL).

    Example:
        >>> import torch
        >>> FlattenObservation(-3)._apply_transform(torch.zeros(5, 3, 4, 4)).shape
        torch.Size([5, 48])
    """

    def __init__(self, first_dim: int, last_dim: int = -1, in_keys=None, out_keys=None):
        super().__init__(["pixels"] if in_keys is None else in_keys, out_keys)
        _check_negative("FlattenObservation", first_dim, last_dim)
        if first_dim > last_dim:
            raise ValueError(f"FlattenObservation: first_dim {first_dim} > last_dim {last_dim}")
        self.first_dim, self.last_dim = int(first_dim), int(last_dim)

    def _apply_transform(self, x):
        return x.flatten(self.first_dim, self.last_dim)

    def _transform_spec(self, spec):
        shape = torch.zeros(spec.shape, device="meta").flatten(self.first_dim, self.last_dim).shape
        if isinstance(spec, Bounded):
            return Bounded(self._apply_transform(spec.low), self._apply_transform(spec.high), shape, spec.dtype,
                           spec.device)
        return spec._clone_with(shape, spec.device)

    def extra_repr(self):
        return f"first_dim={self.first_dim}, last_dim={self.last_dim}, in_keys={self.in_keys}"


class UnsqueezeTransform(Transform):
    """Insert a singleton dim at ``dim`` (negative, counted from the end of the result).

    With ``in_keys_inv`` (e.g. ``["action"]``) the caller writes those inputs with the extra dim
    and the inverse transform squeezes it away before the env reads them.

    Example:
        >>> import torch
        >>> UnsqueezeTransform(-1, in_keys=["observation"])._apply_transform(torch.zeros(4, 3)).shape
        torch.Size([4, 3, 1])
    """

    def __init__(self, dim: int, in_keys=None, out_keys=None, in_keys_inv=None, out_keys_inv=None):
        super().__init__(["observation"] if in_keys is None else in_keys, out_keys, in_keys_inv, out_keys_inv)
        _check_negative("UnsqueezeTransform", dim)
        self.dim = int(dim)

    def _apply_transform(self, x):
        return x.unsqueeze(self.dim)

    def _inv_apply_transform(self, x):
        return x.squeeze(self.dim)

    def _transform_spec(self, spec):
        shape = list(spec.shape)
        shape.insert(len(shape) + 1 + self.dim, 1)
        if isinstance(spec, Bounded):
            return Bounded(spec.low.unsqueeze(self.dim), spec.high.unsqueeze(self.dim), shape, spec.dtype,
                           spec.device)
        return spec._clone_with(torch.Size(shape), spec.device)

    _inv_transform_spec = _transform_spec

    def extra_repr(self):
        return f"dim={self.dim}, in_keys={self.in_keys}, in_keys_inv={self.in_keys_inv}"


class SqueezeTransform(Transform):
    """Remove the singleton dim at ``dim`` (negative, counted from the end of the input).

    Example:
        >>> import torch
        >>> SqueezeTransform(-1, in_keys=["observation"])._apply_transform(torch.zeros(4, 3, 1)).shape
        torch.Size([4, 3])
    """

    def __init__(self, dim: int, in_keys=None, out_keys=None):
        super().__init__(["observation"] if in_keys is None else in_keys, out_keys)
        _check_negative("SqueezeTransform", dim)
        self.dim = int(dim)

    def _apply_transform(self, x):
        if x.shape[self.dim] != 1:
            raise ValueError(f"SqueezeTransform: dim {self.dim} of shape {tuple(x.shape)} is not 1")
        return x.squeeze(self.dim)

    def _transform_spec(self, spec):
        if spec.shape[self.dim] != 1:
            raise ValueError(f"SqueezeTransform: dim {self.dim} of the spec's shape {tuple(spec.shape)} is not 1")
        shape = list(spec.shape)
        del shape[len(shape) + self.dim]
        if isinstance(spec, Bounded):
            return Bounded(spec.low.squeeze(self.dim), spec.high.squeeze(self.dim), shape, spec.dtype, spec.device)
        return spec._clone_with(torch.Size(shape), spec.device)

    def extra_repr(self):
        return f"dim={self.dim}, in_keys={self.in_keys}"


class PermuteTransform(Transform):
    """Permute the last ``len(dims)`` dims: ``dims`` is a permutation of ``-len(dims), ..., -1``.

    E.g. ``PermuteTransform((-1, -3, -2))`` turns ``[*, H, W, C]`` images into ``[*, C, H, W]``; leading
    (batch, time) dims are left in place.

    Example:
        >>> import torch
        >>> PermuteTransform((-1, -3, -2), in_keys=["pixels"])._apply_transform(torch.zeros(2, 5, 6, 3)).shape
        torch.Size([2, 3, 5, 6])
    """

    def __init__(self, dims, in_keys=None, out_keys=None):
        super().__init__(["observation"] if in_keys is None else in_keys, out_keys)
        dims = tuple(int(d) for d in dims)
        if sorted(dims) != list(range(-len(dims), 0)):
            raise ValueError(f"PermuteTransform: dims must be a permutation of {tuple(range(-len(dims), 0))} "
                             f"(negative, counted from the end), got {dims}")
        self.dims = dims

    def _order(self, ndim: int) -> list:
        lead = ndim - len(self.dims)
        return list(range(lead)) + [ndim + d for d in self.dims]

    def _apply_transform(self, x):
        return x.permute(*self._order(x.ndim))

    def _transform_spec(self, spec):
        order = self._order(len(spec.shape))
        shape = [spec.shape[i] for i in order]
        if isinstance(spec, Bounded):
            low, high = spec.low.expand(spec.shape), spec.high.expand(spec.shape)
            return Bounded(low.permute(*order).clone(), high.permute(*order).clone(), shape, spec.dtype,
                           spec.device)
        return spec._clone_with(torch.Size(shape), spec.device)

    def extra_repr(self):
        return f"dims={self.dims}, in_keys={self.in_keys}"


class CatTensors(Transform):
    """Concatenate several observation keys into one along ``dim`` (deleting them by default).

    Args:
        in_keys: the keys to concatenate, in order.
        out_key: the key of the result.
        dim: the (negative) dim to concatenate along.
        del_keys: remove the ``in_keys`` afterwards.

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(), CatTensors(["observation", "total"], "vector"))
        >>> env.observation_spec["vector"].shape, "total" in env.observation_spec
        (torch.Size([2]), False)
    """

    def __init__(self, in_keys, out_key="observation_vector", dim: int = -1, del_keys: bool = True):
        super().__init__(in_keys)
        if not self.in_keys:
            raise ValueError("CatTensors needs at least one in_key")
        _check_negative("CatTensors", dim)
        self.out_key, self.dim, self.del_keys = _norm_key(out_key), int(dim), bool(del_keys)

    def _call(self, td):
        values = [td.get(k, None) for k in self.in_keys]
        if all(v is None for v in values):
            return td
        if any(v is None for v in values):
            missing = [k for k, v in zip(self.in_keys, values) if v is None]
            raise KeyError(f"CatTensors: keys {missing} are missing (present: {list(td.keys(True, True))})")
        td.set(self.out_key, torch.cat(values, self.dim))
        if self.del_keys:
            for k in self.in_keys:
                if k != self.out_key:
                    del td[k]
        return td

    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        self._check_keys(specs)
        obs = specs.observation
        for k in self.in_keys:
            if k not in obs or isinstance(obs[k], Composite):
                raise TransformKeyError(f"CatTensors: {k!r} is not an observation of the env; observations: "
                                        f"{obs.keys(True, True)}")
        parts = [obs[k] for k in self.in_keys]
        dtype = parts[0].dtype
        for p in parts[1:]:
            dtype = torch.promote_types(dtype, p.dtype)
        meta = [torch.zeros(p.shape, device="meta") for p in parts]
        try:
            shape = torch.cat(meta, self.dim).shape
        except RuntimeError as err:
            raise ValueError(
                f"CatTensors: cannot concatenate {[tuple(p.shape) for p in parts]} along dim {self.dim}"
            ) from err
        if all(isinstance(p, Bounded) for p in parts):
            low = torch.cat([p.low.to(dtype) for p in parts], self.dim)
            high = torch.cat([p.high.to(dtype) for p in parts], self.dim)
            spec = Bounded(low, high, shape, dtype, parts[0].device)
        else:
            spec = Unbounded(shape, dtype, parts[0].device)
        if self.del_keys:
            for k in self.in_keys:
                del obs[k]
        obs[self.out_key] = spec
        return specs

    def extra_repr(self):
        return f"in_keys={self.in_keys}, out_key={self.out_key!r}, dim={self.dim}, del_keys={self.del_keys}"
