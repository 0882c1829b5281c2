"""Observation normalization: fixed (``ObservationNorm``) and running (``VecNorm``)."""
from __future__ import annotations

import math

import torch
from tensordict import TensorDictBase

from ...specs import Bounded, Unbounded
from .base import Transform, reset_mask

__all__ = ["ObservationNorm", "VecNorm"]


def _float_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype.is_floating_point else torch.get_default_dtype()


def _make_room_for_lazy_buffers(module: torch.nn.Module, state_dict: dict, prefix: str, names) -> None:
    """Give each buffer of ``names`` that is still ``None`` an empty tensor shaped like its saved value.

    Such buffers hold statistics not computed yet. ``nn.Module`` skips ``None`` buffers, so without this
    ``load_state_dict`` would report their entries in ``state_dict`` as unexpected instead of filling them.
    """
    for name in names:
        value = state_dict.get(prefix + name)
        if value is not None and module._buffers.get(name) is None:
            module._buffers[name] = torch.empty_like(value)


class ObservationNorm(Transform):
    """Affine normalization of observations with fixed ``loc`` and ``scale``.

    With ``standard_normal=True`` the output is ``(x - loc) / scale``; otherwise ``x * scale + loc``.
    Leave ``loc``/``scale`` out and call :meth:`init_stats` to estimate them from random steps of the
    env the transform sits in. ``loc`` and ``scale`` are buffers: ``state_dict`` saves them.

    Args:
        loc: the location (scalar or tensor broadcastable to the observation's event shape).
        scale: the scale (same).
        in_keys: keys to normalize (default ``["observation"]``).
        out_keys: where to write (default: in place).
        standard_normal: which of the two formulas above to use.
        eps: lower bound of the scale estimated by :meth:`init_stats`.

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(max_steps=4), ObservationNorm(loc=1.0, scale=2.0))
        >>> env.rollout(3)["next", "observation"].squeeze(-1).tolist()
        [0.0, 0.5, 1.0]
        >>> norm = env.transform[0]
        >>> norm.init_stats(num_iter=100)
        >>> round(norm.loc.item(), 1)  # CountingEnv(4) observes 0..3, then resets
        1.5
    """

    def __init__(self, loc=None, scale=None, in_keys=None, out_keys=None, standard_normal: bool = True,
                 eps: float = 1e-6):
        super().__init__(["observation"] if in_keys is None else in_keys, out_keys)
        if (loc is None) != (scale is None):
            raise ValueError("ObservationNorm: pass both loc and scale, or neither (then call init_stats)")
        dtype = torch.get_default_dtype()
        self.register_buffer("loc", None if loc is None else torch.as_tensor(loc, dtype=dtype))
        self.register_buffer("scale", None if scale is None else torch.as_tensor(scale, dtype=dtype))
        self.standard_normal = standard_normal
        self.eps = eps

    @property
    def initialized(self) -> bool:
        """Whether ``loc`` and ``scale`` are set (passed in, computed by :meth:`init_stats` or loaded)."""
        return self.loc is not None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        _make_room_for_lazy_buffers(self, state_dict, prefix, ("loc", "scale"))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._notify_change()  # new constants: the env's specs change with them

    def _apply_transform(self, x):
        loc, scale = self.loc, self.scale
        if loc is None:
            raise RuntimeError(
                "ObservationNorm has no loc/scale yet: pass loc= and scale=, or call "
                "transform.init_stats(num_iter) once it is in an env"
            )
        if self.standard_normal:
            return (x - loc) / scale
        return x * scale + loc

    def _transform_spec(self, spec):
        dtype = _float_dtype(spec.dtype)
        if self.loc is None or not isinstance(spec, Bounded):
            return Unbounded(spec.shape, dtype, spec.device)
        a = self._apply_transform(spec.low.to(dtype))
        b = self._apply_transform(spec.high.to(dtype))
        low, high = torch.minimum(a, b), torch.maximum(a, b)
        return Bounded(low.expand(spec.shape).clone(), high.expand(spec.shape).clone(), spec.shape, dtype, spec.device)

    @torch.no_grad()
    def init_stats(self, num_iter: int, reduce_dim=None, cat_dim=None, key=None, keep_dims=None) -> None:
        """Estimate ``loc`` and ``scale`` from ``num_iter`` random steps of the parent env.

        Runs ``parent.rollout(num_iter, break_when_any_done=False)`` (done sub-envs reset in place),
        takes the observations it visited (shape ``[*batch, num_iter, *event]``) and sets ``loc`` to
        their mean and ``scale`` to their standard deviation (``torch.std``, clamped to ``eps``) over
        ``reduce_dim``. The arguments are TorchRL's.

        Args:
            num_iter: the number of steps to run.
            reduce_dim: dims of the collected data to reduce (int or tuple; negative dims count from
                the end, as in TorchRL). Default: every batch and time dim, so ``loc`` has the
                observation's event shape (TorchRL's default, 0, is the time dim of an unbatched env).
            cat_dim: TorchRL concatenates several rollouts along this dim; here the data come from one
                rollout, so it only has to be one of ``reduce_dim`` (as TorchRL requires).
            key: which in_key to compute statistics of (needed only with several in_keys).
            keep_dims: dims of ``reduce_dim`` to keep as size-1 dims in ``loc``/``scale`` (e.g.
                ``reduce_dim=(0, -2, -1), keep_dims=(-2, -1)`` on ``[T, C, H, W]`` images gives
                ``[C, 1, 1]`` per-channel statistics).

        Unlike TorchRL, calling it again re-estimates (and replaces) ``loc`` and ``scale``.

        Example:
            >>> from rlbench.envs import PendulumEnv, TransformedEnv
            >>> env = TransformedEnv(PendulumEnv(batch_size=[2]), ObservationNorm(in_keys=["observation"]))
            >>> env.transform[0].init_stats(20, reduce_dim=-2)  # over time only: one loc per sub-env
            >>> env.transform[0].loc.shape
            torch.Size([2, 3])
        """
        parent = self.parent
        if parent is None:
            raise RuntimeError(
                "ObservationNorm.init_stats runs the env the transform sits in: put it in one first, "
                "e.g. TransformedEnv(env, ObservationNorm(in_keys=[...])), then call init_stats"
            )
        if key is None:
            if len(self.in_keys) != 1:
                raise ValueError(f"ObservationNorm.init_stats: pass key= (one of {self.in_keys})")
            key = self.in_keys[0]
        data = parent.rollout(num_iter, break_when_any_done=False).get(key)
        data = data.to(_float_dtype(data.dtype))
        if reduce_dim is None:
            dims = tuple(range(len(parent.batch_size) + 1))
        else:
            dims = self._dims("reduce_dim", reduce_dim, data.ndim)
        if cat_dim is not None and self._dims("cat_dim", cat_dim, data.ndim)[0] not in dims:
            raise ValueError(f"ObservationNorm.init_stats: cat_dim={cat_dim} must be one of reduce_dim={reduce_dim}")
        kept = () if keep_dims is None else self._dims("keep_dims", keep_dims, data.ndim)
        if not set(kept) <= set(dims):
            raise ValueError(
                f"ObservationNorm.init_stats: keep_dims={keep_dims} must be dims of reduce_dim={reduce_dim}"
            )
        loc = data.mean(dims, keepdim=True)
        if math.prod(data.shape[d] for d in dims) > 1:
            scale = data.std(dims, keepdim=True).clamp_min(self.eps)
        else:  # one sample: no spread to measure
            scale = torch.ones_like(loc)
        for d in sorted(set(dims) - set(kept), reverse=True):
            loc, scale = loc.squeeze(d), scale.squeeze(d)
        if not self.standard_normal:
            loc, scale = -loc / scale, 1.0 / scale
        self.loc, self.scale = loc, scale
        self._notify_change()

    @staticmethod
    def _dims(name: str, dims, ndim: int) -> tuple:
        """``dims`` (an int or a sequence, negatives from the end) as sorted non-negative dims of ``ndim``."""
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        out = []
        for d in dims:
            if not -ndim <= int(d) < ndim:
                raise ValueError(
                    f"ObservationNorm.init_stats: {name}={dims} has dim {d}, but the data have {ndim} dims"
                )
            out.append(int(d) % ndim)
        return tuple(sorted(set(out)))

    def extra_repr(self):
        def fmt(t):
            return None if t is None else (round(t.item(), 4) if t.numel() == 1 else tuple(t.shape))

        return (f"loc={fmt(self.loc)}, scale={fmt(self.scale)}, in_keys={self.in_keys}, "
                f"standard_normal={self.standard_normal}")


class VecNorm(Transform):
    """Normalize observations with running statistics: ``(x - mean) / max(std, eps)``.

    Statistics are decayed sums over every observation the env produces (reset and step outputs,
    all batch dims): ``S <- decay * S + sum(x)``, ``Q <- decay * Q + sum(x**2)``,
    ``N <- decay * N + count``; ``mean = S / N`` and ``var = Q / N - mean**2``. With ``decay=1`` these
    are the exact (population) mean and variance of all data seen. ``freeze()`` stops the updates
    (for evaluation); applied outside an env (``transform(td)`` on a replay sample) the transform
    uses the statistics without updating them. The statistics are buffers: ``state_dict`` /
    ``load_state_dict`` round-trip them, even into a fresh ``VecNorm``.

    Args:
        in_keys: keys to normalize (default ``["observation"]``).
        out_keys: where to write (default: in place).
        decay: weight of the past statistics at each update.
        eps: lower bound of the standard deviation.

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(max_steps=4), VecNorm(decay=1.0))
        >>> _ = env.rollout(3)
        >>> mean, var = env.transform[0].stats()
        >>> mean.item(), var.item()  # of the observations 0, 1, 2, 3
        (1.5, 1.25)
    """

    def __init__(self, in_keys=None, out_keys=None, decay: float = 0.9999, eps: float = 1e-4):
        super().__init__(["observation"] if in_keys is None else in_keys, out_keys)
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"VecNorm: decay must be in (0, 1], got {decay}")
        self.decay, self.eps = float(decay), float(eps)
        self.frozen = False
        for i in range(len(self.in_keys)):
            for name in ("sum", "ssq", "count"):
                self.register_buffer(f"{name}_{i}", None)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        names = [f"{name}_{i}" for i in range(len(self.in_keys)) for name in ("sum", "ssq", "count")]
        _make_room_for_lazy_buffers(self, state_dict, prefix, names)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._notify_change()

    def freeze(self) -> "VecNorm":
        """Stop updating the statistics."""
        self.frozen = True
        return self

    def unfreeze(self) -> "VecNorm":
        """Resume updating the statistics."""
        self.frozen = False
        return self

    def stats(self, key=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, var)`` of ``key`` (default: the only in_key), of the observation's event shape."""
        i = 0 if key is None else self.in_keys.index(key)
        count = getattr(self, f"count_{i}")
        if count is None:
            raise RuntimeError(f"VecNorm has seen no data for {self.in_keys[i]!r} yet")
        mean = getattr(self, f"sum_{i}") / count
        var = (getattr(self, f"ssq_{i}") / count - mean * mean).clamp_min(0.0)
        return mean, var

    def _update(self, i: int, x: torch.Tensor, batch_dims: int) -> None:
        data = x.detach().to(torch.float64)
        dims = tuple(range(batch_dims))
        n = math.prod(x.shape[:batch_dims])
        s, q = data.sum(dims), (data * data).sum(dims)
        if getattr(self, f"count_{i}") is None:
            setattr(self, f"sum_{i}", s)
            setattr(self, f"ssq_{i}", q)
            setattr(self, f"count_{i}", torch.tensor(float(n), dtype=torch.float64, device=x.device))
            return
        d = self.decay
        getattr(self, f"sum_{i}").mul_(d).add_(s)
        getattr(self, f"ssq_{i}").mul_(d).add_(q)
        getattr(self, f"count_{i}").mul_(d).add_(n)

    def _normalize(self, i: int, x: torch.Tensor) -> torch.Tensor:
        dtype = _float_dtype(x.dtype)
        if getattr(self, f"count_{i}") is None:
            return x.to(dtype)
        mean, var = self.stats(self.in_keys[i])
        return ((x - mean) / var.sqrt().clamp_min(self.eps)).to(dtype)

    def _normalize_td(self, td: TensorDictBase, update: bool, mask=None) -> TensorDictBase:
        for i, (in_key, out_key) in enumerate(zip(self.in_keys, self.out_keys)):
            x = td.get(in_key, None)
            if x is None:
                continue
            if update and not self.frozen:
                if mask is None:
                    self._update(i, x, td.batch_dims)
                elif bool(mask.any()):
                    self._update(i, x[mask], 1)
            td.set(out_key, self._normalize(i, x))
        return td

    def _call(self, td):
        return self._normalize_td(td, update=False)

    def _reset(self, td, td_reset):
        # With a partial reset, only the reset sub-envs' observations are new data.
        return self._normalize_td(td_reset, update=True, mask=reset_mask(td, td_reset.batch_size))

    def _step(self, td, next_td):
        return self._normalize_td(next_td, update=True)

    def _transform_spec(self, spec):
        return Unbounded(spec.shape, _float_dtype(spec.dtype), spec.device)

    def extra_repr(self):
        return f"in_keys={self.in_keys}, decay={self.decay}, eps={self.eps}, frozen={self.frozen}"
