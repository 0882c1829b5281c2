"""Image transforms: layout and dtype, resizing, cropping, gray scale, frame stacking and max-pooling."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from tensordict import TensorDictBase

from ...specs import Bounded, Spec, Unbounded
from .base import Transform, episode_starts, expand_mask, gather_time, reset_mask, time_dim

__all__ = ["ToTensorImage", "Resize", "GrayScale", "CenterCrop", "CatFrames", "TimeMaxPool"]

IMAGE_KEYS = ["pixels"]


def _reshaped_spec(spec: Spec, shape, dtype=None, fn=None) -> Spec:
    """A spec of ``shape``: Bounded with ``fn(low)``/``fn(high)`` when ``spec`` is, else Unbounded."""
    dtype = spec.dtype if dtype is None else dtype
    if isinstance(spec, Bounded):
        low, high = (spec.low, spec.high) if fn is None else (fn(spec.low), fn(spec.high))
        if low.shape != torch.Size(shape):  # scalar-like summary when the layout cannot be mapped
            low, high = low.min(), high.max()
        return Bounded(low.clone(), high.clone(), shape, dtype, spec.device)
    return Unbounded(shape, dtype, spec.device)


def _scalar_bounds(spec: Spec):
    """``(min low, max high)`` of a Bounded floating spec, else ``None`` (used to clamp outputs)."""
    if isinstance(spec, Bounded) and spec.dtype.is_floating_point:
        return float(spec.low.min()), float(spec.high.max())
    return None


class ToTensorImage(Transform):
    """Images from ``uint8 [*, H, W, C]`` to ``float [*, C, H, W]`` in ``[0, 1]`` (as ``torchvision``).

    Integer images are divided by 255; floating images are only permuted and cast.

    Args:
        in_keys: image keys (default ``["pixels"]``).
        out_keys: where to write the results (default: in place).
        dtype: the floating dtype of the output.

    Example:
        >>> import torch
        >>> t = ToTensorImage()
        >>> t._apply_transform(torch.full((2, 4, 6, 3), 255, dtype=torch.uint8)).shape
        torch.Size([2, 3, 4, 6])
    """

    def __init__(self, in_keys=None, out_keys=None, dtype: torch.dtype = torch.float32):
        super().__init__(IMAGE_KEYS if in_keys is None else in_keys, out_keys)
        self.dtype = dtype

    def _apply_transform(self, x):
        out = x.movedim(-1, -3)
        if x.dtype.is_floating_point:
            return out.to(self.dtype)
        return out.to(self.dtype).div_(255.0)

    def _transform_spec(self, spec):
        shape = (*spec.shape[:-3], spec.shape[-1], *spec.shape[-3:-1])
        if not spec.dtype.is_floating_point:
            return Bounded(0.0, 1.0, shape, self.dtype, spec.device)
        return _reshaped_spec(spec, shape, self.dtype, lambda b: b.movedim(-1, -3))

    def extra_repr(self):
        return f"in_keys={self.in_keys}, dtype={self.dtype}"


class Resize(Transform):
    """Resize ``[*, C, H, W]`` images to ``[*, C, h, w]`` with ``torch.nn.functional.interpolate``.

    Integer images are resized in float and rounded back to their dtype. In an env whose image
    spec is bounded, outputs are clamped to the bounds (interpolation can overshoot by rounding, or
    by design for ``"bicubic"``).

    Args:
        w: output width.
        h: output height (default ``w``).
        interpolation: an ``interpolate`` mode: ``"bilinear"``, ``"nearest"``, ``"bicubic"``, ``"area"``.
        in_keys: image keys (default ``["pixels"]``).

    Example:
        >>> import torch
        >>> Resize(32, 16)._apply_transform(torch.rand(5, 3, 64, 64)).shape
        torch.Size([5, 3, 16, 32])
    """

    def __init__(self, w: int, h: int | None = None, interpolation: str = "bilinear", in_keys=None, out_keys=None):
        super().__init__(IMAGE_KEYS if in_keys is None else in_keys, out_keys)
        self.w, self.h = int(w), int(w if h is None else h)
        self.interpolation = interpolation
        self._bounds = None

    def _apply_transform(self, x):
        lead, chw = x.shape[:-3], x.shape[-3:]
        flat = x.reshape(-1, *chw)
        if not flat.is_floating_point():
            flat = flat.float()
        kwargs = {"align_corners": False} if self.interpolation in ("bilinear", "bicubic") else {}
        out = F.interpolate(flat, size=(self.h, self.w), mode=self.interpolation, **kwargs)
        if not x.is_floating_point():
            info = torch.iinfo(x.dtype)
            out = out.round_().clamp_(info.min, info.max).to(x.dtype)
        elif self._bounds is not None:
            out = out.clamp_(*self._bounds)
        return out.reshape(*lead, chw[0], self.h, self.w)

    def _transform_spec(self, spec):
        self._bounds = _scalar_bounds(spec)
        return _reshaped_spec(spec, (*spec.shape[:-2], self.h, self.w))

    def extra_repr(self):
        return f"w={self.w}, h={self.h}, interpolation={self.interpolation!r}, in_keys={self.in_keys}"


class GrayScale(Transform):
    """RGB images ``[*, 3, H, W]`` to gray ``[*, 1, H, W]`` (ITU-R BT.601 luma weights).

    Example:
        >>> import torch
        >>> GrayScale()._apply_transform(torch.ones(2, 3, 4, 4)).shape
        torch.Size([2, 1, 4, 4])
    """

    def __init__(self, in_keys=None, out_keys=None):
        super().__init__(IMAGE_KEYS if in_keys is None else in_keys, out_keys)
        self.register_buffer("weights", torch.tensor([0.299, 0.587, 0.114]).reshape(3, 1, 1), persistent=False)
        self._bounds = None

    def _apply_transform(self, x):
        if x.shape[-3] != 3:
            raise ValueError(f"GrayScale expects [*, 3, H, W] images (channels first), got shape {tuple(x.shape)}")
        xf = x if x.is_floating_point() else x.float()
        *lead, _, h, w = xf.shape  # one matrix product over the channels: 3x faster than a weighted sum
        out = (self.weights.reshape(3).to(xf.dtype) @ xf.reshape(*lead, 3, h * w)).reshape(*lead, 1, h, w)
        if not x.is_floating_point():
            return out.round_().to(x.dtype)
        return out.clamp_(*self._bounds) if self._bounds is not None else out

    def _transform_spec(self, spec):
        self._bounds = _scalar_bounds(spec)
        return _reshaped_spec(spec, (*spec.shape[:-3], 1, *spec.shape[-2:]))


class CenterCrop(Transform):
    """Crop the central ``h x w`` window of ``[*, H, W]`` images (the last two dims).

    Example:
        >>> import torch
        >>> CenterCrop(2)._apply_transform(torch.arange(16.0).reshape(1, 4, 4))
        tensor([[[ 5.,  6.],
                 [ 9., 10.]]])
    """

    def __init__(self, w: int, h: int | None = None, in_keys=None, out_keys=None):
        super().__init__(IMAGE_KEYS if in_keys is None else in_keys, out_keys)
        self.w, self.h = int(w), int(w if h is None else h)

    def _window(self, shape):
        H, W = shape[-2], shape[-1]
        if self.h > H or self.w > W:
            raise ValueError(f"CenterCrop({self.w}, {self.h}) is larger than the image ({W} x {H})")
        return (H - self.h) // 2, (W - self.w) // 2

    def _crop(self, x):
        top, left = self._window(x.shape)
        return x[..., top: top + self.h, left: left + self.w]

    def _apply_transform(self, x):
        return self._crop(x)

    def _transform_spec(self, spec):
        return _reshaped_spec(spec, (*spec.shape[:-2], self.h, self.w), fn=self._crop)

    def extra_repr(self):
        return f"w={self.w}, h={self.h}, in_keys={self.in_keys}"


class CatFrames(Transform):
    """Stack the last ``N`` frames of each key along ``dim`` (frame stacking, Mnih et al. 2015).

    In an env: a reset fills the history with ``N`` copies of the first frame; each step drops the
    oldest frame and appends the new one. In a batched env with a partial reset only the reset
    sub-envs' histories are refilled.

    On a TensorDict outside an env (``transform(td)``), there is no history to read:

    - with a time dim (a ``[B, T]`` rollout or slice sample, see
      :func:`~rlbench.envs.transforms.base.time_dim`), the stacks are rebuilt from the trajectory
      itself, episode by episode (episode starts from ``("next", "done")``), padding with the first
      frame of the episode, or of the slice when the slice starts mid-episode;
    - without one (a ``[B]`` sample of independent transitions), each transition is treated as the
      first step of an episode: the root stack is ``N`` copies of its frame and the ``"next"`` stack
      ``N - 1`` copies followed by the next frame.

    Args:
        N: the number of frames to stack.
        dim: the (negative) dim to stack along: ``-1`` for vectors, ``-3`` for ``[C, H, W]`` images.
        in_keys: keys to stack (default ``["pixels"]`` when ``dim == -3``, else ``["observation"]``).
        out_keys: where to write the stacks (default: in place).

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(), CatFrames(3, dim=-1))
        >>> env.rollout(2)["next", "observation"].tolist()
        [[0.0, 0.0, 1.0], [0.0, 1.0, 2.0]]
    """

    def __init__(self, N: int, dim: int = -1, in_keys=None, out_keys=None):
        if in_keys is None:
            in_keys = IMAGE_KEYS if dim == -3 else ["observation"]
        super().__init__(in_keys, out_keys)
        if int(N) < 1:
            raise ValueError(f"CatFrames: N must be >= 1, got {N}")
        if dim >= 0:
            raise ValueError(
                f"CatFrames: dim must be negative (counted from the end, so it means the same with or "
                f"without batch dims), got {dim}"
            )
        self.N, self.dim = int(N), int(dim)
        self._history: dict = {}

    def _repeat(self, frame):
        return torch.cat([frame] * self.N, self.dim) if self.N > 1 else frame.clone()

    def _reset(self, td, td_reset):
        mask = reset_mask(td, td_reset.batch_size)
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            frame = td_reset.get(in_key, None)
            if frame is None:
                continue
            stack = self._repeat(frame)
            old = self._history.get(out_key)
            if mask is not None and old is not None and old.shape == stack.shape:
                stack = torch.where(expand_mask(mask, stack), stack, old)
            self._history[out_key] = stack
            td_reset.set(out_key, stack)
        return td_reset

    def _step(self, td, next_td):
        dim = self.dim
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            frame = next_td.get(in_key, None)
            if frame is None:
                continue
            old = self._history.get(out_key)
            if old is None:
                raise RuntimeError(f"CatFrames: step before reset; call env.reset() first (key {in_key!r})")
            size = frame.shape[dim]
            # A new tensor each step (not an in-place roll): earlier outputs may still be referenced.
            stack = torch.cat([old.narrow(dim, size, old.shape[dim] - size), frame], dim)
            self._history[out_key] = stack
            next_td.set(out_key, stack)
        return next_td

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        tdim = time_dim(td)
        nxt = td.get("next", None)
        starts = episode_starts(td, tdim) if tdim is not None else None
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            obs = td.get(in_key, None)
            next_obs = None if nxt is None else nxt.get(in_key, None)
            if obs is None:
                if next_obs is not None:
                    nxt.set(out_key, self._repeat(next_obs))
                continue
            if tdim is None:
                if next_obs is not None:
                    nxt.set(out_key, torch.cat([obs] * (self.N - 1) + [next_obs], self.dim))
                td.set(out_key, self._repeat(obs))
                continue
            steps = torch.arange(td.shape[tdim], device=td.device)
            steps = steps.reshape(-1, *([1] * (td.batch_dims - tdim - 1))).expand(td.batch_size[tdim:])
            steps = steps.expand(td.batch_size)
            first = gather_time(obs, starts, tdim)
            root, after = [], []
            for k in range(self.N - 1, -1, -1):  # oldest frame first
                u = steps - k
                root.append(gather_time(obs, torch.maximum(u, starts), tdim))
                if next_obs is not None:
                    inside = expand_mask(u >= starts, next_obs)
                    after.append(torch.where(inside, gather_time(next_obs, u.clamp_min(0), tdim), first))
            if next_obs is not None:
                nxt.set(out_key, torch.cat(after, self.dim))
            td.set(out_key, torch.cat(root, self.dim))
        return td

    def _transform_spec(self, spec):
        shape = list(spec.shape)
        shape[self.dim] *= self.N
        return _reshaped_spec(spec, shape, fn=lambda b: torch.cat([b] * self.N, self.dim))

    def extra_repr(self):
        return f"N={self.N}, dim={self.dim}, in_keys={self.in_keys}"


class TimeMaxPool(Transform):
    """Element-wise max of each key over the last ``T`` frames the env produced (Mnih et al. 2015).

    Atari renders some sprites on alternate frames only; the Nature DQN takes the max of the last two
    frames of each frame-skipped step. Put this transform *before* :class:`FrameSkipTransform` in the
    list: it then sees every sub-step, and the skipped step's frame is the max of its last ``T`` frames.
    A reset fills the history with the first frame (a partial reset refills only the reset sub-envs).
    Outside an env (a replay sample) there is no history: the TensorDict is returned unchanged.

    Args:
        in_keys: image keys (default ``["pixels"]``); written in place.
        T: the number of frames pooled (>= 1; 1 changes nothing).

    Example:
        >>> import torch
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(max_steps=3), TimeMaxPool(in_keys=["observation"]))
        >>> env.rollout(3)["next", "observation"].squeeze(-1).tolist()  # counting up: the max is the newest
        [1.0, 2.0, 3.0]
        >>> pool = TimeMaxPool(in_keys=["observation"])
        >>> _ = pool._reset(None, env.reset().set("observation", torch.tensor([5.0])))
        >>> pool._step(None, env.reset().set("observation", torch.tensor([2.0])))["observation"]
        tensor([5.])
    """

    def __init__(self, in_keys=None, T: int = 2):
        super().__init__(IMAGE_KEYS if in_keys is None else in_keys)
        if int(T) < 1:
            raise ValueError(f"TimeMaxPool: T must be >= 1, got {T}")
        self.T = int(T)
        self._history: dict = {}

    def _reset(self, td, td_reset):
        mask = reset_mask(td, td_reset.batch_size)
        for key in self.in_keys:
            x = td_reset.get(key, None)
            if x is None:
                continue
            hist = self._history.get(key)
            if mask is None or hist is None or hist[0].shape != x.shape:
                self._history[key] = [x.clone() for _ in range(self.T - 1)]
            else:
                m = expand_mask(mask, x)
                self._history[key] = [torch.where(m, x, h) for h in hist]
        return td_reset

    def _step(self, td, next_td):
        if self.T == 1:
            return next_td
        for key in self.in_keys:
            x = next_td.get(key, None)
            hist = self._history.get(key)
            if x is None or hist is None:
                continue
            out = x
            for h in hist:
                out = torch.maximum(out, h)
            self._history[key] = hist[1:] + [x.clone()]
            next_td.set(key, out)
        return next_td

    def forward(self, td):
        return td

    def extra_repr(self):
        return f"in_keys={self.in_keys}, T={self.T}"
