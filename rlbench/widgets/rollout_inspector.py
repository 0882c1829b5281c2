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
  kept ``steps``, ``width``/``height``, ``mime``, ``stride``, ``note``, source ``key`` or null; or null),
  ``agent_frames`` (the same for the agent's view, plus ``layout``, ``stack``, ``columns``, ``rows``,
  ``tile_width``, ``tile_height`` of its tiles; or null), ``notes``, ``bytes``.
- ``series``: list of bytes, ``series[i]`` is ``meta["series"][i]`` laid out ``[B, T, size]``.
- ``frames``: bytes, the compressed frames (env-major); ``frame_offsets``: Uint32 offsets.
- ``agent_frames`` / ``agent_frame_offsets``: the agent's view, tiled one image per step, the same way.
- ``step`` / ``env``: set them from Python to move the view; scrubbing in the browser does not write
  them back (it sends nothing to the kernel).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
import traitlets
from tensordict import TensorDictBase

from ._encode import (
    FramePack,
    ImageLayout,
    as_key_tuple,
    encode_frames,
    encode_series,
    image_layout,
    key_name,
    to_rgb_uint8,
)
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


#: the agent's view is downscaled only above this longest side (max_side applies to the raw frame)
AGENT_MAX_SIDE = 640

#: where a rollout keeps the raw RGB frame beside a preprocessed ``"pixels"`` (looked up when raw_key is None)
RAW_FRAME_KEYS = (("raw", "pixels"), ("pixels_raw",), ("raw_pixels",))


@dataclass
class _Source:
    """Frames to encode: ``get(b, steps)`` gives RGB images of ``hw``.

    ``key`` is the rollout key they came from (kept out of the series), ``layout`` how its images are laid out.
    """

    get: Callable[[int, Sequence[int]], Sequence[Any]]
    hw: tuple[int, int]
    key: tuple | None = None
    layout: ImageLayout | None = None


def _keys_text(td: TensorDictBase) -> list[str]:
    return sorted(key_name(k) for k in td.keys(include_nested=True, leaves_only=True))


def _key_source(td: TensorDictBase, key: tuple, stack: int | None, what: str) -> _Source:
    value = td.get(key)
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"RolloutInspector: {what} {key_name(key)!r} should hold images per step, got "
                         f"{type(value).__name__}")
    layout = image_layout(value.shape[2:], stack, what=f"RolloutInspector: {what} {key_name(key)!r}")
    direct = (not layout.is_stack and layout.order in ("hwc", "chw") and layout.channels in (1, 3)
              and layout.width > 4)

    def get(b: int, steps: Sequence[int]) -> list:
        if direct:  # views: each frame is converted once, by its encoder thread (to_rgb_uint8 reads this layout)
            return [value[b, s] for s in steps]
        return [layout.to_rgb(value[b, s]) for s in steps]

    return _Source(get, layout.tiled_hw(), key, layout)


def _frame_sources(td: TensorDictBase, frames: Any, frames_key: Any, raw_key: Any, stack: int | None,
                   notes: list[str]) -> tuple[_Source | None, _Source | None]:
    """Resolve the frames: ``(main, agent_view)``, either None.

    ``main`` is the raw frame (``frames=``, ``raw_key``, or a single-image ``frames_key``); ``agent_view``
    is ``frames_key`` as the agent sees it, when it is a stack or when a raw frame is shown beside it.
    """
    keys = td.keys(include_nested=True)
    raw = None
    if frames is not None:
        raw = _frame_source(td, frames)
    elif raw_key is not None:
        key = as_key_tuple(raw_key)
        if key not in keys:
            raise KeyError(f"RolloutInspector: raw_key={raw_key!r} is not in the rollout; its keys are "
                           f"{_keys_text(td)}")
        raw = _key_source(td, key, None, "raw_key")
    else:
        key = next((k for k in RAW_FRAME_KEYS if k in keys and k != as_key_tuple(frames_key or ())), None)
        if key is not None:
            raw = _key_source(td, key, None, "raw frame key")
    if raw is not None and raw.layout is not None and raw.layout.is_stack:
        raise ValueError(f"RolloutInspector: {key_name(raw.key)!r} holds {raw.layout.describe()}; the raw frame "
                         "should be one RGB or grey image per step (show stacks through frames_key)")
    obs = None
    if frames_key is not None:
        key = as_key_tuple(frames_key)
        if key in keys:
            obs = _key_source(td, key, stack, "frames_key")
        elif frames_key != "pixels":
            raise KeyError(f"RolloutInspector: frames_key={frames_key!r} is not in the rollout; its keys are "
                           f"{_keys_text(td)}")
    if raw is None and obs is None:
        if frames_key is not None:
            notes.append("no frames: the rollout has no 'pixels' (use GymEnv(..., from_pixels=True), "
                         "or pass frames=[env.render() ...] or frames=env.render)")
        return None, None
    if raw is None and not obs.layout.is_stack:
        return obs, None  # one image per step: that is the frame
    if raw is None:
        notes.append(f"no raw frame beside the agent's view ({key_name(obs.key)}): pass frames=[env.render() ...], "
                     "or keep the raw frame in the rollout as ('raw', 'pixels') (see the RolloutInspector docs)")
    return raw, obs


def _frame_source(td: TensorDictBase, frames: Any) -> _Source:
    """Frames given by the user (``frames=``): a list, an array/tensor, or a render callable."""
    B, T = td.batch_size
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
        return _Source(get_rendered, tuple(first.shape[-3:-1]))
    if isinstance(frames, (torch.Tensor, np.ndarray)):
        arr = frames if frames.ndim >= 5 or B > 1 else frames[None]
        if arr.ndim < 5:
            raise ValueError(f"frames for a rollout of {B} envs should be [B, T, H, W, C], got {list(frames.shape)}")
        return _Source(*_indexable_source(arr, B, T, "frames"))
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
        return _Source(get_listed, tuple(first.shape[-3:-1]))
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


def prepare_rollout(td: Any, *, frames: Any = None, frames_key: Any = "pixels", raw_key: Any = None,
                    stack: int | None = None, plot_key: Any = None, max_frames: int = 1000,
                    max_frame_bytes: int = 30_000_000, max_side: int = 640, frame_format: str = "jpeg",
                    quality: int = 80) -> dict:
    """Everything the view needs, encoded.

    Keys: ``"meta"``, ``"series"``, ``"frames"``, ``"frame_offsets"``, ``"agent_frames"``, ``"agent_frame_offsets"``.

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
    main, agent = _frame_sources(td, frames, frames_key, raw_key, stack, notes)
    exclude = []
    for source in (main, agent):
        if source is not None and source.key is not None:
            exclude.append(source.key)
            exclude.append(("next",) + source.key)  # the next frame is the following step's frame
    # with both panels, the agent's view (small grey tiles) gets a third of the byte budget
    budget = max_frame_bytes if agent is None or main is None else max_frame_bytes * 2 // 3

    def encode(source: _Source, max_bytes: int, side: int) -> FramePack:
        pack = encode_frames(source.get, B, T, source.hw, max_side=side, max_frames=max_frames,
                             max_bytes=max_bytes, fmt=frame_format, quality=quality)
        if pack.note:
            notes.append(pack.note)
        return pack

    pack = encode(main, budget, max_side) if main is not None else FramePack()
    # the agent's view keeps its own (small) size: its pixels are the point
    agent_budget = max_frame_bytes - budget if main is not None else budget
    agent_pack = encode(agent, agent_budget, max(max_side, AGENT_MAX_SIDE)) if agent else FramePack()
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
        "plot_key": chosen, "frames": _frames_meta(pack, main), "agent_frames": _frames_meta(agent_pack, agent),
        "notes": notes,
        "bytes": series.nbytes + sum(len(p.data) + len(p.offsets) for p in (pack, agent_pack)),
    }
    return {"meta": meta, "series": series.buffers, "frames": pack.data, "frame_offsets": pack.offsets,
            "agent_frames": agent_pack.data, "agent_frame_offsets": agent_pack.offsets}


def _frames_meta(pack: FramePack, source: _Source | None) -> dict | None:
    """The pack's meta plus where it came from.

    ``key`` (None for ``frames=``) and, for a key, its ``layout`` sentence and tile grid (``stack``,
    ``columns``, ``rows``, ``tile_width``, ``tile_height``).
    """
    if not pack.count:
        return None
    meta = pack.meta()
    meta["key"] = key_name(source.key) if source.key is not None else None
    layout = source.layout
    if layout is not None:
        cols, rows = layout.grid()
        meta.update(layout=layout.describe(), stack=layout.stack, columns=cols, rows=rows,
                    tile_width=layout.width, tile_height=layout.height)
    return meta


class RolloutInspector(Inspector):
    """Scrub through a rollout: frames, the step's values, and plots of reward, return and a key.

    Frames, and the observation as the agent sees it. Two picture panels, each shown when there is
    something for it:

    - the **frame**: the raw picture of the step, from ``frames=``, from ``raw_key``, or from
      ``frames_key`` itself when that holds one image per step (a DeepMind Control
      ``DMControlEnv(..., from_pixels=True)`` rollout's uint8 ``[T, H, W, 3]``, a gymnasium
      ``from_pixels`` frame, a ``ToTensorImage`` float ``[T, 3, H, W]`` in ``[0, 1]``);
    - the **agent's view**: ``frames_key`` when it is a stack of frames (Atari after
      ``rlbench.recipes.make_env("ALE/Pong-v5")``: float ``[T, 4, 84, 84]``, four grey frames, shown as
      a 2×2 grid, oldest first), or when a raw frame is shown beside it (e.g. the 64×64 picture a
      Dreamer encoder reads next to the full render).

    The per-step layout is recognised from the shape (:func:`~rlbench.widgets._encode.image_layout`):
    ``[H, W, C]`` or ``[C, H, W]`` with ``C`` = 1 or 3, a grey ``[H, W]``, and stacks ``[k*C, H, W]``,
    ``[H, W, k*C]``, ``[k, H, W, C]``, ``[k, C, H, W]`` (``C = 3`` when ``k*C`` is a multiple of 3, else
    grey); anything else is refused with the shape found. Floats are ``[0, 1]`` intensities, uint8
    ``0..255``.

    To keep Atari's raw frame beside the preprocessed stack, copy it before the preprocessing::

        base = GymEnv("ALE/Pong-v5", frameskip=1)
        raw = TransformedEnv(base, RenameTransform(["observation"], [("raw", "pixels")], create_copy=True))
        env = TransformedEnv(raw, AtariPreprocessing().transforms())
        RolloutInspector(env.rollout(200))  # ("raw", "pixels") is found by itself

    Args:
        td: a rollout TensorDict of batch size ``[T]`` or ``[B, T]`` (``env.rollout(...)``, a
            collector batch). Nested keys show as ``next.reward``; bool/int/float keys of any dtype
            work, keys with more than 64 values per step are listed but not shown.
        frames_key: the observation key holding images (default ``"pixels"``, used when present):
            one image per step is the frame; a stack is the agent's view.
        raw_key: key of the raw RGB frame kept beside a preprocessed ``frames_key`` (default: the
            first of ``("raw", "pixels")``, ``"pixels_raw"``, ``"raw_pixels"`` in the rollout).
        frames: raw frames from elsewhere (instead of ``raw_key``): a list of ``env.render()`` images
            (``T`` of them, or ``T + 1`` with the reset frame first), an array/tensor ``[T, H, W, C]`` or
            ``[B, T, ...]``, or a callable that renders a ``[n]`` slice of the rollout (e.g.
            ``CartPoleEnv.render``, so only the frames that are kept are ever drawn).
        stack: frames per step in ``frames_key``, when the guess from the shape is wrong (``[3, 84, 84]``
            is taken as one RGB image: ``stack=3`` shows three grey frames).
        plot_key: the key plotted under reward and return (default: ``action``).
        max_frames: at most this many frames per panel (every k-th step is kept beyond it).
        max_frame_bytes: about this many compressed bytes of frames in total (default 30 MB; with two
            panels the agent's view gets a third).
        max_side: raw frames are downscaled to this longest side (pixels); the agent's view keeps its
            size up to 640.
        frame_format: ``"jpeg"`` (default) or ``"webp"``. quality: encoder quality.

    The widget says what it dropped ("showing every 4th frame at 300×200").

    Example:
        >>> from rlbench.envs import CartPoleEnv
        >>> env = CartPoleEnv(seed=0)
        >>> td = env.rollout(20, break_when_any_done=False)
        >>> w = RolloutInspector(td, frames=env.render, max_side=150)
        >>> w.meta["steps"], w.meta["frames"]["width"], w.meta["frames"]["height"]
        (20, 150, 100)
        >>> td["pixels"] = torch.rand(20, 4, 84, 84)  # a stack of 4 grey frames, as CatFrames writes
        >>> w = RolloutInspector(td, frames=env.render, max_side=150)
        >>> w.meta["agent_frames"]["layout"], w.meta["agent_frames"]["width"]
        ('4 stacked 84×84 grey frames', 170)
    """

    _view = "rollout_inspector"

    meta = traitlets.Dict().tag(sync=True)
    series = traitlets.List().tag(sync=True)
    frames = traitlets.Bytes(b"").tag(sync=True)
    frame_offsets = traitlets.Bytes(b"").tag(sync=True)
    agent_frames = traitlets.Bytes(b"").tag(sync=True)
    agent_frame_offsets = traitlets.Bytes(b"").tag(sync=True)
    step = traitlets.Int(0).tag(sync=True)
    env = traitlets.Int(0).tag(sync=True)

    def __init__(self, td: Any, *, frames_key: Any = "pixels", frames: Any = None, raw_key: Any = None,
                 stack: int | None = None, plot_key: Any = None, max_frames: int = 1000,
                 max_frame_bytes: int = 30_000_000, max_side: int = 640, frame_format: str = "jpeg",
                 quality: int = 80, title: str | None = None, **kwargs):
        payload = prepare_rollout(td, frames=frames, frames_key=frames_key, raw_key=raw_key, stack=stack,
                                  plot_key=plot_key, max_frames=max_frames, max_frame_bytes=max_frame_bytes,
                                  max_side=max_side, frame_format=frame_format, quality=quality)
        meta = payload["meta"]
        if title is None:
            envs = f"{meta['batch']} envs × " if meta["batch"] > 1 else ""
            title = f"Rollout: {envs}{meta['steps']} steps"
        super().__init__(title=title, meta=meta, series=payload["series"], frames=payload["frames"],
                         frame_offsets=payload["frame_offsets"], agent_frames=payload["agent_frames"],
                         agent_frame_offsets=payload["agent_frame_offsets"], **kwargs)

    @property
    def nbytes(self) -> int:
        """Bytes of data this inspector sends to the browser (series + both frame panels + offsets)."""
        return int(self.meta.get("bytes", 0))

    # ------------------------------------------------------------------ fallbacks
    def _summary_rows(self):
        m = self.meta
        rows = [("steps", m["steps"]), ("envs", m["batch"])]
        if m.get("frames"):
            f = m["frames"]
            note = f" ({f['note']})" if f["note"] else ""
            rows.append(("frames", f"{f['count']} at {f['width']}×{f['height']}{note}"))
        if m.get("agent_frames"):
            a = m["agent_frames"]
            rows.append(("agent's view",
                         f"{a['key']}: {a['layout']}, {a['count']} at {a['width']}×{a['height']}"))
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
