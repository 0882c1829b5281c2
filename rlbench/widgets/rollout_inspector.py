"""RolloutInspector: scrub through a rollout frame by frame, with its values and synced plots.

Everything the view needs is sent ONCE, as binary buffers: one Float32/Float64 buffer per numeric
key and all frames JPEG-compressed in a single buffer with an offsets table (see
:mod:`rlbench.widgets._encode`). Scrubbing, playback, the env selector and plot choices then run
in the browser alone; nothing goes back to the kernel, so the saved HTML behaves like the live view.

Synced fields (the view's contract, ``widgets/rollout_inspector.js``):

- ``title``: header text.
- ``meta``: dict with ``batch`` (B), ``steps`` (T), ``series`` (one entry per buffer: ``name``,
  ``key``, ``shape``, ``dtype``, ``kind`` in bool/int/float, ``format`` f4/f8, ``size``), ``reward``,
  ``done``, ``terminated``, ``truncated``, ``plot_key`` (series names or null), ``frames`` (count,
  kept ``steps``, ``width``/``height``, ``mime``, ``stride``, ``note``; or null), ``notes``, ``bytes``.
- ``series``: list of bytes, ``series[i]`` is ``meta["series"][i]`` laid out ``[B, T, size]``.
- ``frames``: bytes, the compressed frames (env-major); ``frame_offsets``: Uint32 offsets.
- ``step`` / ``env``: set them from Python to move the view; scrubbing in the browser does not write
  them back (it sends nothing to the kernel).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
import traitlets
from tensordict import TensorDictBase

from ._encode import FramePack, as_key_tuple, encode_frames, encode_series, key_name, to_rgb_uint8
from .base import Inspector

__all__ = ["RolloutInspector"]

_REWARD_KEYS = (("next", "reward"), ("reward",))
_DONE_KEYS = (("next", "done"), ("done",))
_TERMINATED_KEYS = (("next", "terminated"), ("terminated",))
_TRUNCATED_KEYS = (("next", "truncated"), ("truncated",))


def _as_rollout(td: Any) -> tuple[TensorDictBase, list[int]]:
    """``td`` as a ``[B, T]`` TensorDict (a ``[T]`` rollout becomes ``[1, T]``) and its original batch size."""
    if not isinstance(td, TensorDictBase):
        raise TypeError(
            f"RolloutInspector expects a TensorDict rollout such as env.rollout(...) (batch size [T] or "
            f"[B, T]), got {type(td).__name__}"
        )
    shape = list(td.batch_size)
    if len(shape) == 1:
        td = td.unsqueeze(0)
    elif len(shape) != 2:
        hint = (" A single step has no timeline: pass a rollout." if not shape else
                f" Flatten the leading dims first, e.g. td.reshape(-1, {shape[-1]}), to see them as envs.")
        raise ValueError(f"RolloutInspector shows rollouts of batch size [T] or [B, T] (time last); got "
                         f"{shape}.{hint}")
    if td.batch_size[1] == 0 or td.batch_size[0] == 0:
        raise ValueError(f"RolloutInspector: the rollout is empty (batch size {shape}); nothing to show")
    return td, shape


def _find(td: TensorDictBase, candidates: Sequence[tuple]) -> tuple | None:
    for key in candidates:
        if key in td.keys(include_nested=True):
            v = td.get(key)
            if isinstance(v, torch.Tensor):
                return key
    return None


def _frame_source(td: TensorDictBase, frames: Any, frames_key: Any, notes: list[str]):
    """Resolve where frames come from. Returns ``(get, (H, W), excluded_key)`` or ``None``."""
    B, T = td.batch_size
    if frames is None:
        key = as_key_tuple(frames_key) if frames_key is not None else None
        if key is None or key not in td.keys(include_nested=True):
            if key is not None and frames_key != "pixels":
                raise KeyError(f"RolloutInspector: frames_key={frames_key!r} is not in the rollout; its keys are "
                               f"{sorted(key_name(k) for k in td.keys(include_nested=True, leaves_only=True))}")
            if key is not None:
                notes.append("no frames: the rollout has no 'pixels' (use GymEnv(..., from_pixels=True), "
                             "or pass frames=[env.render() ...] or frames=env.render)")
            return None
        value = td.get(key)
        if not isinstance(value, torch.Tensor) or value.ndim < 5:
            raise ValueError(f"RolloutInspector: frames_key {key_name(key)!r} should hold images [T, H, W, C], "
                             f"got {type(value).__name__} of shape {list(getattr(value, 'shape', []))}")
        return _indexable_source(value, B, T, key_name(key)) + (key,)
    if callable(frames):
        render: Callable = frames

        def get_rendered(b: int, steps: Sequence[int]):
            out = render(td[b, list(steps)])
            if len(out) != len(steps):
                raise ValueError(f"frames={render!r} returned {len(out)} frames for {len(steps)} steps")
            return out

        try:
            first = to_rgb_uint8(render(td[0, [0]]))
        except TypeError as err:
            # e.g. GymEnv.render takes no argument: it draws the env's current state, not a rollout's
            raise TypeError(
                f"frames={getattr(render, '__qualname__', render)!r} must render a [n] slice of the rollout "
                f"(like CartPoleEnv.render(td)); it failed with: {err}. For an env that can only draw its "
                "current state, collect frames=[env.render() ...] during the rollout, or use "
                "GymEnv(..., from_pixels=True)") from err
        return get_rendered, tuple(first.shape[-3:-1]), None
    if isinstance(frames, (torch.Tensor, np.ndarray)):
        arr = frames if frames.ndim >= 5 or B > 1 else frames[None]
        if arr.ndim < 5:
            raise ValueError(f"frames for a rollout of {B} envs should be [B, T, H, W, C], got {list(frames.shape)}")
        return _indexable_source(arr, B, T, "frames") + (None,)
    if isinstance(frames, (list, tuple)):
        per_env = [frames] if B == 1 else list(frames)
        if len(per_env) != B or (B > 1 and not all(isinstance(f, (list, tuple)) for f in per_env)):
            raise ValueError(f"frames for a rollout of {B} envs should be a list of {B} lists of frames, "
                             f"got a list of {len(per_env)} {type(per_env[0]).__name__ if per_env else ''}")
        for f in per_env:
            _check_length(len(f), T)

        def get_listed(b: int, steps: Sequence[int]) -> list:
            return [per_env[b][s] for s in steps]

        first = to_rgb_uint8(per_env[0][0])
        return get_listed, tuple(first.shape[-3:-1]), None
    raise TypeError(f"frames should be a list of images, an array/tensor [T, H, W, C], or a callable "
                    f"rendering a [n] slice of the rollout (such as CartPoleEnv().render); got {type(frames).__name__}")


def _check_length(n: int, T: int) -> None:
    if n not in (T, T + 1):
        raise ValueError(f"frames has {n} entries but the rollout has {T} steps; expected {T} (one per step) "
                         f"or {T + 1} (the reset frame, then one after each step)")


def _indexable_source(value, B: int, T: int, what: str):
    if value.shape[0] != B:
        raise ValueError(f"{what} has {value.shape[0]} envs in its first dim, the rollout has {B}")
    _check_length(value.shape[1], T)
    first = to_rgb_uint8(value[0, :1])

    def get(b: int, steps: Sequence[int]) -> list:
        return [value[b, s] for s in steps]  # views: each frame is copied once, by its encoder thread

    return get, tuple(first.shape[-3:-1])


def prepare_rollout(td: Any, *, frames: Any = None, frames_key: Any = "pixels", plot_key: Any = None,
                    max_frames: int = 1000, max_frame_bytes: int = 30_000_000, max_side: int = 640,
                    frame_format: str = "jpeg", quality: int = 80) -> dict:
    """Everything the view needs, encoded: ``{"meta", "series", "frames", "frame_offsets"}``.

    Separate from the widget so it is testable and timeable without Jupyter (see the class for the
    arguments).

    Example:
        >>> from tensordict import TensorDict
        >>> td = TensorDict({"observation": torch.zeros(5, 2), "action": torch.ones(5, 1),
        ...                  "next": {"reward": torch.ones(5, 1), "done": torch.zeros(5, 1, dtype=torch.bool)}}, [5])
        >>> payload = prepare_rollout(td)
        >>> payload["meta"]["steps"], payload["meta"]["reward"], payload["meta"]["plot_key"]
        (5, 'next.reward', 'action')
    """
    td, shape = _as_rollout(td)
    B, T = td.batch_size
    notes: list[str] = []
    source = _frame_source(td, frames, frames_key, notes)
    pack = FramePack()
    exclude = []
    if source is not None:
        get, hw, excluded = source
        if excluded is not None:
            exclude.append(excluded)
            exclude.append(("next",) + excluded)  # the next frame is the following step's frame
        pack = encode_frames(get, B, T, hw, max_side=max_side, max_frames=max_frames,
                             max_bytes=max_frame_bytes, fmt=frame_format, quality=quality)
        if pack.note:
            notes.append(pack.note)
    series = encode_series(td, exclude=exclude)
    notes.extend(series.skipped)
    names = {m["name"] for m in series.meta}

    def name_of(candidates):
        key = _find(td, candidates)
        return key_name(key) if key is not None and key_name(key) in names else None

    if plot_key is not None:
        chosen = key_name(plot_key)
        if chosen not in names:
            raise KeyError(f"RolloutInspector: plot_key {chosen!r} is not a numeric key of the rollout; "
                           f"choose one of {sorted(names)}")
    else:
        chosen = next((n for n in ("action", "observation", "next.observation") if n in names), None)
    reward = name_of(_REWARD_KEYS)
    if reward is None:
        notes.append("no reward key (('next', 'reward')): reward and return plots are empty")
    meta = {
        "batch": B, "steps": T, "batch_size": shape,
        "series": series.meta, "reward": reward, "done": name_of(_DONE_KEYS),
        "terminated": name_of(_TERMINATED_KEYS), "truncated": name_of(_TRUNCATED_KEYS),
        "plot_key": chosen, "frames": pack.meta() if pack.count else None, "notes": notes,
        "bytes": series.nbytes + len(pack.data) + len(pack.offsets),
    }
    return {"meta": meta, "series": series.buffers, "frames": pack.data, "frame_offsets": pack.offsets}


class RolloutInspector(Inspector):
    """Scrub through a rollout: frames, the step's values, and plots of reward, return and a key.

    Args:
        td: a rollout TensorDict of batch size ``[T]`` or ``[B, T]`` (``env.rollout(...)``, a
            collector batch). Nested keys show as ``next.reward``; bool/int/float keys of any dtype
            work, keys with more than 64 values per step are listed but not shown.
        frames_key: key holding images ``[.., T, H, W, C]`` (default ``"pixels"``, what
            ``GymEnv(..., from_pixels=True)`` writes; used when present).
        frames: frames from elsewhere instead: a list of ``env.render()`` images (``T`` of them, or
            ``T + 1`` with the reset frame first), an array/tensor ``[T, H, W, C]`` or ``[B, T, ...]``,
            or a callable that renders a ``[n]`` slice of the rollout (e.g. ``CartPoleEnv.render``, so
            only the frames that are kept are ever drawn).
        plot_key: the key plotted under reward and return (default: ``action``).
        max_frames: at most this many frames in total (every k-th step is kept beyond it).
        max_frame_bytes: about this many compressed bytes of frames in total (default 30 MB).
        max_side: frames are downscaled to this longest side (pixels).
        frame_format: ``"jpeg"`` (default) or ``"webp"``. quality: encoder quality.

    The widget says what it dropped ("showing every 4th frame at 300×200").

    Example:
        >>> from rlbench.envs import CartPoleEnv
        >>> env = CartPoleEnv(seed=0)
        >>> td = env.rollout(20, break_when_any_done=False)
        >>> w = RolloutInspector(td, frames=env.render, max_side=150)
        >>> w.meta["steps"], w.meta["frames"]["width"], w.meta["frames"]["height"]
        (20, 150, 100)
    """

    _view = "rollout_inspector"

    meta = traitlets.Dict().tag(sync=True)
    series = traitlets.List().tag(sync=True)
    frames = traitlets.Bytes(b"").tag(sync=True)
    frame_offsets = traitlets.Bytes(b"").tag(sync=True)
    step = traitlets.Int(0).tag(sync=True)
    env = traitlets.Int(0).tag(sync=True)

    def __init__(self, td: Any, *, frames_key: Any = "pixels", frames: Any = None, plot_key: Any = None,
                 max_frames: int = 1000, max_frame_bytes: int = 30_000_000, max_side: int = 640,
                 frame_format: str = "jpeg", quality: int = 80, title: str | None = None, **kwargs):
        payload = prepare_rollout(td, frames=frames, frames_key=frames_key, plot_key=plot_key,
                                  max_frames=max_frames, max_frame_bytes=max_frame_bytes, max_side=max_side,
                                  frame_format=frame_format, quality=quality)
        meta = payload["meta"]
        if title is None:
            envs = f"{meta['batch']} envs × " if meta["batch"] > 1 else ""
            title = f"Rollout: {envs}{meta['steps']} steps"
        super().__init__(title=title, meta=meta, series=payload["series"], frames=payload["frames"],
                         frame_offsets=payload["frame_offsets"], **kwargs)

    @property
    def nbytes(self) -> int:
        """Bytes of data this inspector sends to the browser (series + frames + offsets)."""
        return int(self.meta.get("bytes", 0))

    # ------------------------------------------------------------------ fallbacks
    def _summary_rows(self):
        m = self.meta
        rows = [("steps", m["steps"]), ("envs", m["batch"])]
        if m.get("frames"):
            f = m["frames"]
            note = f" ({f['note']})" if f["note"] else ""
            rows.append(("frames", f"{f['count']} at {f['width']}×{f['height']}{note}"))
        rows.append(("keys", ", ".join(s["name"] for s in m["series"])))
        reward = self._column(m.get("reward"))
        if reward is not None:
            done = self._column(m.get("done"))
            n_eps = int((done != 0).sum()) if done is not None else 0
            rows.append(("total reward (env 0)", f"{float(np.nansum(reward)):.4g} over {n_eps} finished episodes"))
        rows.extend(("note", n) for n in m.get("notes", []))
        return rows

    def _column(self, name: str | None, env: int = 0, component: int = 0) -> np.ndarray | None:
        """Values of series ``name`` for one env over time (from the encoded buffers)."""
        for i, s in enumerate(self.meta["series"]):
            if s["name"] == name:
                arr = np.frombuffer(self.series[i], dtype="<f8" if s["format"] == "f8" else "<f4")
                return arr.reshape(self.meta["batch"], self.meta["steps"], s["size"])[env, :, component]
        return None

    def _plot(self, fig) -> bool:
        reward = self._column(self.meta.get("reward"))
        if reward is None:
            return False
        done = self._column(self.meta.get("done"))
        ret = np.zeros_like(reward, dtype=np.float64)
        acc = 0.0
        for t, r in enumerate(reward):  # T floats: a Python loop is fine for a static picture
            acc += 0.0 if math.isnan(r) else float(r)
            ret[t] = acc
            if done is not None and done[t]:
                acc = 0.0
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(reward, label="reward", lw=1)
        ax.plot(ret, label="return (episode)", lw=1)
        if done is not None:
            for t in np.flatnonzero(done):
                ax.axvline(t + 0.5, color="0.7", ls="--", lw=0.8)
        ax.set_xlabel("step")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(self.title, fontsize=9)
        return True
