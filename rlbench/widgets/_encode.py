"""Turn rollouts into the binary buffers the rollout inspector's front end reads.

Everything here is plain torch/NumPy/PIL work with no widget import, so it is testable (and fast)
without Jupyter. Two products:

- **series**: one little-endian Float32 (or Float64) buffer per leaf key, laid out ``[B, T, n]`` with
  ``n`` the per-step element count, plus JSON-able metadata (readable name, key path, per-step shape,
  source dtype). The browser scrubs and plots from these without asking the kernel anything.
- **frames**: JPEG (or WebP) images concatenated in one buffer with a Uint32 offsets table. Large
  inputs degrade on purpose (longest-side cap, then every k-th frame, then a total byte cap) and the
  result carries a sentence that says what was dropped, which the widget shows.
"""
from __future__ import annotations

import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tensordict import TensorDictBase

#: per-step element count above which a key is not sent as values (an image is a frame, not 720k numbers)
MAX_SERIES_ELEMENTS = 64

#: readable separator of nested key names: ("next", "reward") shows as "next.reward"
KEY_SEP = "."


def key_name(key: str | tuple) -> str:
    """Readable name of a (nested) TensorDict key: ``("next", "reward")`` -> ``"next.reward"``."""
    if isinstance(key, str):
        return key
    return KEY_SEP.join(str(k) for k in key)


def as_key_tuple(key: str | tuple) -> tuple:
    return (key,) if isinstance(key, str) else tuple(key)


def leaf_items(td: TensorDictBase) -> list[tuple[tuple, torch.Tensor | None]]:
    """All leaves of ``td`` as ``(key_tuple, tensor)``; non-tensor leaves come back with ``None``.

    Non-tensor data (``NonTensorData`` strings and the like) are not ``leaves_only`` items, so walk
    the tree ourselves to be able to report them instead of silently losing them.
    """
    out: list[tuple[tuple, torch.Tensor | None]] = []

    def walk(sub: TensorDictBase, prefix: tuple) -> None:
        for k in sub.keys():
            v = sub.get(k)
            if isinstance(v, torch.Tensor):
                out.append((prefix + (k,), v))
            elif isinstance(v, TensorDictBase) and not _is_non_tensor(v):
                walk(v, prefix + (k,))
            else:
                out.append((prefix + (k,), None))

    walk(td, ())
    return out


def _is_non_tensor(v: Any) -> bool:
    return type(v).__name__ in ("NonTensorData", "NonTensorStack")


def _kind(dtype: torch.dtype) -> str | None:
    if dtype == torch.bool:
        return "bool"
    if dtype.is_complex:
        return None
    if dtype.is_floating_point:
        return "float"
    return "int"


@dataclass
class SeriesPack:
    """Encoded per-step values: ``meta[i]`` describes ``buffers[i]`` (bytes of ``[B, T, n]``)."""

    meta: list[dict] = field(default_factory=list)
    buffers: list[bytes] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # human-readable reasons, shown in the widget

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.buffers)


def encode_series(td: TensorDictBase, exclude: Sequence[tuple] = (),
                  max_elements: int = MAX_SERIES_ELEMENTS) -> SeriesPack:
    """Encode every numeric leaf of a ``[B, T]`` TensorDict as one buffer per key.

    Float64 and wide integers travel as Float64 so the values shown are the stored ones; everything
    else (float32/16, bool, small ints) as Float32. Bools become 0/1 and keep ``dtype="bool"`` so
    the front end prints ``true``/``false``.

    Args:
        td: a TensorDict with batch dims exactly ``[B, T]``.
        exclude: key tuples not to send (e.g. the frames key).
        max_elements: keys with more elements per step are skipped (and listed in ``skipped``).

    Example:
        >>> from tensordict import TensorDict
        >>> td = TensorDict({"obs": torch.zeros(1, 3, 2), "done": torch.ones(1, 3, 1, dtype=torch.bool)}, [1, 3])
        >>> pack = encode_series(td)
        >>> [(m["name"], m["shape"], m["dtype"], m["format"]) for m in pack.meta]
        [('obs', [2], 'float32', 'f4'), ('done', [1], 'bool', 'f4')]
        >>> np.frombuffer(pack.buffers[1], dtype="<f4").tolist()
        [1.0, 1.0, 1.0]
    """
    if td.batch_dims != 2:
        raise ValueError(f"encode_series expects a [B, T] TensorDict, got batch_size {list(td.batch_size)}")
    excluded = {as_key_tuple(k) for k in exclude}
    pack = SeriesPack()
    B, T = td.batch_size
    for key, value in leaf_items(td):
        name = key_name(key)
        if key in excluded:
            continue
        if value is None:
            pack.skipped.append(f"{name}: not a tensor (not shown)")
            continue
        kind = _kind(value.dtype)
        if kind is None:
            pack.skipped.append(f"{name}: {str(value.dtype).replace('torch.', '')} values are not shown")
            continue
        per_step = list(value.shape[2:])
        n = math.prod(per_step)
        if n > max_elements:
            pack.skipped.append(f"{name}: {per_step} per step is too large to list (max {max_elements} values)")
            continue
        wide = value.dtype in (torch.float64, torch.int64, torch.int32, torch.uint32, torch.uint64)
        fmt, np_dtype = ("f8", "<f8") if wide else ("f4", "<f4")
        arr = value.detach().to("cpu").reshape(B, T, n)
        arr = arr.to(torch.float64 if wide else torch.float32).numpy().astype(np_dtype, copy=False)
        pack.meta.append({"name": name, "key": [str(k) for k in key], "shape": per_step,
                          "dtype": str(value.dtype).replace("torch.", ""), "kind": kind, "format": fmt, "size": n})
        pack.buffers.append(np.ascontiguousarray(arr).tobytes())
    return pack


# ---------------------------------------------------------------------------------------------- frames

@dataclass
class FramePack:
    """Compressed frames of ``B`` envs at the same kept steps, env-major.

    Frame ``b * len(steps) + i`` is env ``b`` at step ``steps[i]``. ``offsets`` has ``count + 1``
    entries (Uint32, little endian).
    """

    data: bytes = b""
    offsets: bytes = b""
    steps: list[int] = field(default_factory=list)
    width: int = 0
    height: int = 0
    source_width: int = 0
    source_height: int = 0
    stride: int = 1
    mime: str = "image/jpeg"
    note: str = ""

    @property
    def count(self) -> int:
        return max(0, len(self.offsets) // 4 - 1)

    def meta(self) -> dict:
        return {"count": self.count, "steps": self.steps, "width": self.width, "height": self.height,
                "source_width": self.source_width, "source_height": self.source_height,
                "stride": self.stride, "mime": self.mime, "note": self.note, "bytes": len(self.data)}


FrameGetter = Callable[[int, Sequence[int]], Sequence[Any]]
"""``get(env_index, steps)``: the frames of one env at ``steps`` (a sequence of images, e.g. tensor
views or an array ``[len(steps), H, W, C]``), read lazily by the encoder and converted per frame."""


def to_rgb_uint8(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    """``[..., H, W, C]`` or channel-first ``[..., C, H, W]`` frames as uint8 RGB ``[..., H, W, 3]``.

    Floats are taken as ``[0, 1]`` intensities (what image transforms produce); 1 channel is grey,
    4 channels lose alpha (JPEG has none).
    """
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().to("cpu").numpy()
    arr = np.asarray(frames)
    if arr.ndim < 3:
        raise ValueError(f"frames must be images [..., H, W, C] (C in 1, 3, 4), got shape {list(arr.shape)}")
    if arr.shape[-1] not in (1, 3, 4) and arr.shape[-3] in (1, 3, 4):
        arr = np.moveaxis(arr, -3, -1)  # channel-first, as ToTensorImage leaves pixels
    if arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"frames must have 1, 3 or 4 channels, last dims are {list(arr.shape[-3:])}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype.kind == "f":
        arr = (np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 4:
        arr = arr[..., :3]
    return arr


def _encode_one(frame: np.ndarray, size: tuple[int, int], fmt: str, quality: int) -> bytes:
    from PIL import Image  # PIL comes with matplotlib; imported here to keep `import rlbench` light

    img = Image.fromarray(np.ascontiguousarray(frame), "RGB")
    if img.size != size:
        img = img.resize(size, Image.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=quality)
    return buf.getvalue()


def _convert_and_encode(frame, size: tuple[int, int], fmt: str, quality: int) -> bytes:
    return _encode_one(to_rgb_uint8(frame), size, fmt, quality)


def encode_frames(get: FrameGetter, n_envs: int, n_steps: int, frame_hw: tuple[int, int], *,
                  max_side: int = 640, min_side: int = 240, max_frames: int = 1000,
                  max_bytes: int = 30_000_000, fmt: str = "jpeg", quality: int = 80,
                  chunk: int = 32) -> FramePack:
    """Compress the frames of ``n_envs`` envs over ``n_steps`` steps within fixed bounds.

    The bounds, applied in this order:

    1. at most ``max_frames`` frames in total (every k-th step kept, ``k = stride``);
    2. longest side at most ``max_side`` pixels;
    3. about ``max_bytes`` in total: from a few probe frames, shrink the picture (down to
       ``min_side``) and then raise the stride until the estimate fits; if the real frames still
       overflow, the stride doubles and the frames in between are dropped (already-encoded frames
       at multiples of the new stride are kept, so no frame is encoded twice).

    Time and memory are bounded by ``max_frames`` and ``chunk``: only kept frames are read, ``chunk``
    at a time, never the whole input; frames are converted and encoded on a few threads.

    Args:
        get: reads frames lazily (see :data:`FrameGetter`).
        n_envs: the rollout's batch size.
        n_steps: the rollout's time size.
        frame_hw: source ``(height, width)``.
        max_side: longest side of a sent frame, in pixels.
        min_side: the smallest longest side the byte budget may shrink frames to.
        max_frames: frames sent at most (every k-th step is kept beyond it).
        max_bytes: about how many bytes all frames may take.
        fmt: ``"jpeg"`` or ``"webp"``.
        quality: encoder quality.
        chunk: frames read and encoded at a time.

    Example:
        >>> frames = np.zeros((10, 40, 60, 3), dtype=np.uint8)
        >>> pack = encode_frames(lambda b, steps: frames[list(steps)], 1, 10, (40, 60), max_frames=5)
        >>> pack.count, pack.steps, pack.note
        (5, [0, 2, 4, 6, 8], 'showing every 2nd frame at 60×40')
    """
    fmt = fmt.lower()
    if fmt not in ("jpeg", "webp"):
        raise ValueError(f"frame format must be 'jpeg' or 'webp', got {fmt!r}")
    h, w = int(frame_hw[0]), int(frame_hw[1])
    pack = FramePack(source_width=w, source_height=h, mime=f"image/{fmt}")
    if n_envs == 0 or n_steps == 0:
        pack.offsets = np.zeros(1, dtype="<u4").tobytes()
        return pack
    per_env = max(1, max_frames // n_envs)
    stride = max(1, math.ceil(n_steps / per_env))
    scale = min(1.0, max_side / max(h, w))

    def size_at(s: float) -> tuple[int, int]:
        return max(1, round(w * s)), max(1, round(h * s))

    # probe a few frames spread over the rollout to estimate bytes per frame at this size
    probe_steps = sorted({int(round(x)) for x in np.linspace(0, n_steps - 1, min(4, n_steps))})
    probe = [to_rgb_uint8(f) for f in get(0, probe_steps)]
    planned = n_envs * math.ceil(n_steps / stride)

    def measure(s: float) -> float:
        return float(np.mean([len(_encode_one(f, size_at(s), fmt, quality)) for f in probe]))

    per_frame = measure(scale)
    floor = min(1.0, min_side / max(h, w))
    while planned * per_frame > 0.9 * max_bytes and scale * 0.75 >= floor:
        scale *= 0.75
        per_frame = measure(scale)  # re-measured: JPEG bytes shrink slower than the area
    while planned * per_frame > 0.9 * max_bytes and stride < n_steps:
        stride += max(1, stride // 4)
        planned = n_envs * math.ceil(n_steps / stride)
    size = size_at(scale)

    encoded: dict[int, list[bytes]] = {}  # step -> one frame per env
    total = 0
    t = 0
    # Pillow releases the GIL while it resizes and encodes, so threads use every core
    pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))
    encode = partial(_convert_and_encode, size=size, fmt=fmt, quality=quality)
    try:
        while t < n_steps:
            steps = list(range(t, min(n_steps, t + chunk * stride), stride))
            for b in range(n_envs):
                for s, data in zip(steps, pool.map(encode, get(b, steps))):
                    encoded.setdefault(s, []).append(data)
                    total += len(data)
            t = steps[-1] + stride
            while total > max_bytes and len(encoded) > 1:
                stride *= 2  # over budget: keep every other kept frame and go on at the new stride
                for s in [s for s in encoded if s % stride]:
                    total -= sum(len(x) for x in encoded.pop(s))
                t = ((t + stride - 1) // stride) * stride
    finally:
        pool.shutdown(wait=True)

    pack.steps = sorted(encoded)
    chunks = [encoded[s][b] for b in range(n_envs) for s in pack.steps]
    lengths = np.array([len(c) for c in chunks], dtype=np.int64)
    pack.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype("<u4").tobytes()
    pack.data = b"".join(chunks)
    pack.width, pack.height, pack.stride = size[0], size[1], stride
    pack.note = _frames_note(stride, size, (w, h))
    return pack


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _frames_note(stride: int, size: tuple[int, int], source: tuple[int, int]) -> str:
    parts = []
    if stride > 1:
        parts.append(f"showing every {_ordinal(stride)} frame")
    if size != source:
        parts.append(f"downscaled from {source[0]}×{source[1]}")
    if not parts:
        return ""
    text = parts[0] if stride > 1 else "showing every frame"
    return f"{text} at {size[0]}×{size[1]}" + (f" ({parts[-1]})" if size != source else "")


# ---------------------------------------------------------------------------------------------- image layouts

#: a channel-first stack has at most this many channels (above it, [C, H, W] is not taken as images)
MAX_STACK_CHANNELS = 32

_LAYOUT_HELP = ("expected one image per step: [H, W, C] or [C, H, W] with C = 1 (grey) or 3 (RGB), a grey [H, W], "
                f"or a stack of k frames: [k*C, H, W] (what CatFrames writes, k*C <= {MAX_STACK_CHANNELS}), "
                "[H, W, k*C], [k, H, W, C] or [k, C, H, W]")


@dataclass(frozen=True)
class ImageLayout:
    """How one step's image tensor is laid out, from its per-step shape (see :func:`image_layout`).

    ``stack`` frames of ``channels`` channels each, ``height`` x ``width``; ``order`` names the axes of
    the per-step tensor (``"hw"``, ``"hwc"``, ``"chw"`` with the stack folded into ``c``, ``"khwc"``,
    ``"kchw"``). A single image has ``stack == 1``.
    """

    order: str
    stack: int
    channels: int
    height: int
    width: int

    @property
    def is_stack(self) -> bool:
        return self.stack > 1

    def describe(self) -> str:
        """"4 stacked 84×84 grey frames" / "one 64×64 RGB frame" (shown under the agent's view)."""
        kind = {1: "grey", 3: "RGB", 4: "RGBA"}[self.channels]
        size = f"{self.width}×{self.height}"
        return f"{self.stack} stacked {size} {kind} frames" if self.is_stack else f"one {size} {kind} frame"

    def frames_hwc(self, x) -> np.ndarray:
        """One step's tensor as ``[stack, H, W, channels]`` (a NumPy array, dtype unchanged)."""
        if isinstance(x, torch.Tensor):
            x = x.detach().to("cpu").numpy()
        a = np.asarray(x)
        if self.order == "hw":
            return a[None, :, :, None]
        if self.order == "hwc":
            if self.is_stack:  # [H, W, k*C]
                return np.moveaxis(a.reshape(self.height, self.width, self.stack, self.channels), 2, 0)
            return a[None]
        if self.order == "chw":
            return np.moveaxis(a.reshape(self.stack, self.channels, self.height, self.width), 1, -1)
        if self.order == "khwc":
            return a
        return np.moveaxis(a, 1, -1)  # kchw

    def grid(self) -> tuple[int, int]:
        """``(columns, rows)`` of the tiles: a strip up to 3 frames, else a near-square grid (4 -> 2×2)."""
        if self.stack <= 3:
            return self.stack, 1
        cols = math.ceil(math.sqrt(self.stack))
        return cols, math.ceil(self.stack / cols)

    def tiled_hw(self, gap: int = 2) -> tuple[int, int]:
        """``(height, width)`` of :meth:`to_rgb` images."""
        cols, rows = self.grid()
        return rows * self.height + (rows - 1) * gap, cols * self.width + (cols - 1) * gap

    def to_rgb(self, x, gap: int = 2) -> np.ndarray:
        """One step's tensor as ONE uint8 RGB image: the image itself, or the stack's frames tiled.

        Tiles run oldest first, left to right then top to bottom, ``gap`` px of grey between them.
        """
        frames = to_rgb_uint8(self.frames_hwc(x))  # [k, H, W, 3]
        if not self.is_stack:
            return frames[0]
        cols, rows = self.grid()
        out = np.full(self.tiled_hw(gap) + (3,), 128, dtype=np.uint8)
        for i in range(self.stack):
            r, c = divmod(i, cols)
            y, x0 = r * (self.height + gap), c * (self.width + gap)
            out[y:y + self.height, x0:x0 + self.width] = frames[i]
        return out


def image_layout(shape: Sequence[int], stack: int | None = None, what: str = "frames") -> ImageLayout:
    """Recognise the images in a per-step shape, or say which shape was found and what is expected.

    The channel axis is the small one: ``[H, W, C]`` (gymnasium, dm_control renders) or ``[C, H, W]``
    (image transforms such as ``ToTensorImage``), ``C`` at most :data:`MAX_STACK_CHANNELS`. ``C = 1`` or ``3``
    is one image; any other ``C`` is a stack (``CatFrames`` along the channel dim): ``k = C / 3`` RGB frames
    when ``C`` is a multiple of 3, else ``k = C`` grey frames. ``stack=k`` overrides that guess
    (``[3, 84, 84]`` as 3 grey frames: ``stack=3``; an RGBA ``[H, W, 4]``: ``stack=1``).

    Args:
        shape: the per-step shape (batch and time dims removed).
        stack: frames per step, when the guess above is wrong.
        what: the name used in error messages (e.g. ``"frames_key 'pixels'"``).

    Example:
        >>> image_layout([4, 84, 84]).describe()
        '4 stacked 84×84 grey frames'
        >>> image_layout([64, 64, 3]).describe(), image_layout([3, 64, 64]).order
        ('one 64×64 RGB frame', 'chw')
    """
    shape = [int(s) for s in shape]
    found = f"{what} holds {shape} per step"
    if stack is not None and (int(stack) != stack or stack < 1):
        raise ValueError(f"{what}: stack must be a positive int (frames per step), got {stack!r}")
    if len(shape) == 2:
        order, k, c, h, w = "hw", 1, 1, shape[0], shape[1]
    elif len(shape) == 3:
        first, last = shape[0], shape[-1]
        if last in (1, 3) and first not in (1, 3):
            order = "hwc"
        elif first in (1, 3) and last not in (1, 3):
            order = "chw"
        elif first <= MAX_STACK_CHANNELS < last:
            order = "chw"
        elif last <= MAX_STACK_CHANNELS < first:
            order = "hwc"
        elif max(first, last) <= MAX_STACK_CHANNELS:  # tiny images: the reading with the squarer picture
            def squareness(a: int, b: int) -> float:
                return min(a, b) / max(a, b)

            order = "hwc" if squareness(shape[0], shape[1]) >= squareness(shape[1], shape[2]) else "chw"
        else:
            raise ValueError(f"{found}; {_LAYOUT_HELP}")
        if order == "hwc":
            total, h, w = last, shape[0], shape[1]
        else:
            total, h, w = first, shape[1], shape[2]
        if stack is not None:
            k = int(stack)
            if total % k or total // k not in ((1, 3, 4) if k == 1 else (1, 3)):
                raise ValueError(f"{found}: {total} channels do not split into stack={k} grey or RGB frames; "
                                 f"{_LAYOUT_HELP}")
            c = total // k
        elif total in (1, 3):
            k, c = 1, total
        else:
            k, c = (total // 3, 3) if total % 3 == 0 else (total, 1)
    elif len(shape) == 4:
        if shape[-1] in (1, 3, 4):
            order, k, h, w, c = "khwc", shape[0], shape[1], shape[2], shape[3]
        elif shape[1] in (1, 3):
            order, k, c, h, w = "kchw", shape[0], shape[1], shape[2], shape[3]
        else:
            raise ValueError(f"{found}; {_LAYOUT_HELP}")
        if stack is not None and stack != k:
            raise ValueError(f"{found}: a stack of {k} frames, not stack={stack}")
    else:
        raise ValueError(f"{found}; {_LAYOUT_HELP}")
    if h < 1 or w < 1 or k < 1:
        raise ValueError(f"{found}: an empty image; {_LAYOUT_HELP}")
    return ImageLayout(order=order, stack=k, channels=c, height=h, width=w)
