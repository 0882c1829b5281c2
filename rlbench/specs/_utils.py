"""Shape, dtype and formatting helpers shared by the spec classes."""
from __future__ import annotations

import math

import torch


def _size(shape) -> torch.Size:
    if shape is None:
        return torch.Size([])
    if isinstance(shape, int):
        return torch.Size([shape])
    return torch.Size(int(s) for s in shape)


def _device(device) -> torch.device:
    return torch.device("cpu") if device is None else torch.device(device)


def _insert_points(data_shape: torch.Size, spec_shape: torch.Size, max_b: int | None = None) -> list[int]:
    """Every position ``b`` where extra dims inserted into ``spec_shape`` give ``data_shape``.

    ``data_shape == spec_shape[:b] + extra + spec_shape[b:]``. Positions come rightmost first, so
    extra dims count as batch/time dims sitting just before the event dims whenever that is possible.
    ``max_b`` caps the position: specs whose last dim is an event dim (one-hot, binary, ...) never
    accept extra dims after it.
    """
    n, m = len(spec_shape), len(data_shape)
    if m < n:
        return []
    top = n if max_b is None else max(min(max_b, n), 0)
    out = []
    for b in range(top, -1, -1):
        tail = n - b
        if data_shape[:b] == spec_shape[:b] and data_shape[m - tail:] == spec_shape[b:]:
            out.append(b)
    return out


def _fmt_values(t: torch.Tensor) -> str:
    """Short printable form of a bound tensor: a scalar when all entries agree."""
    flat = t.reshape(-1)
    if flat.numel() and bool((flat == flat[0]).all()):
        v = flat[0].item()
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    if flat.numel() > 8:
        return f"[{', '.join(f'{v:.4g}' for v in flat[:6].tolist())}, ...]"
    return "[" + ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat.tolist()) + "]"


def _examples(x: torch.Tensor, bad: torch.Tensor, k: int = 3) -> list:
    """Up to ``k`` offending values of ``x`` (``bad`` is a bool mask broadcastable to ``x``)."""
    return x[bad.expand_as(x)].reshape(-1)[:k].tolist()


def _within(x: torch.Tensor, low, high) -> bool:
    """True when every element of ``x`` lies in ``[low, high]`` (scalars); NaN never does.

    One ``aminmax`` and two scalar reads: this runs on every env step (action validation), where
    each eager op costs microseconds, so it beats the element-wise ``(x >= low) & (x <= high)``.
    """
    if x.numel() == 0:
        return True
    lo, hi = torch.aminmax(x)
    return bool(lo.item() >= low) and bool(hi.item() <= high)  # NaN compares False


def _check_int_dtype(cls: str, dtype: torch.dtype) -> None:
    if dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
        raise TypeError(f"{cls} needs an integer dtype (e.g. torch.int64), got {dtype}")


def _int_limits(dtype: torch.dtype) -> tuple[int, int, float]:
    """``(min, max, max_f)``: an integer dtype's range, and the largest float64 not above its max.

    Casting a float that is out of an integer dtype's range is undefined (int64 gives -2**63 for
    1e20), so floats are clamped to ``[min, max_f]`` before any cast.
    """
    info = torch.iinfo(dtype)
    max_f = float(info.max)
    if int(max_f) > info.max:  # float64 rounds int64's max up to 2**63
        max_f = math.nextafter(max_f, 0.0)
    return info.min, info.max, max_f


def _to_int64(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Round any tensor to int64 without overflow, within the range of the integer ``dtype``.

    NaN becomes 0 and +-inf the ends of the range; the result is safe to cast to ``dtype``.
    """
    lo, hi, hi_f = _int_limits(dtype)
    if x.dtype == torch.bool:
        return x.to(torch.int64)
    if x.is_floating_point():
        x = torch.nan_to_num(x.to(torch.float64), nan=0.0).round().clamp(float(lo), hi_f)
        return x.to(torch.int64)
    return x.to(torch.int64).clamp(lo, hi)
