"""DreamInspector: what a world model sees, reconstructs and dreams, beside what really happened.

Three pictures per step, scrubbed together in the browser: the **real** frame, the model's
**reconstruction** of it from the posterior (it has seen the frame), and the **imagined** frame of an
open-loop rollout from a chosen start step (it has seen frames up to the start only, then it is fed the
real actions). Below them, the real reward against the posterior's prediction and the imagined one, and
the frame error of the reconstruction and of the dream, so compounding error shows as a curve.

Time convention (one for the arrays and for the world-model protocol), Dreamer's ``(frame, reward)`` pairs:

- ``real_frames[t]`` is a frame and ``real_reward[t]`` the reward that arrived with it. From an rlbench
  rollout that is ``("next", "pixels")[t]`` with ``("next", "reward")[t]``, what Dreamer's world model
  encodes (with ``"pixels"`` frames the reward of the step before is used, and step 0 has none);
- ``reconstructions[t]`` and ``predicted_reward[t]`` are the posterior's versions of those;
- an imagined rollout from start ``s`` has seen frames ``0..s`` and is then fed the actions taken after
  frame ``s``; its frame ``j`` and reward ``j`` predict ``real_frames[s + 1 + j]`` and ``real_reward[s + 1 + j]``.

Synced fields (``widgets/dream_inspector.js``): ``title``; ``meta`` (``steps``, ``starts`` as
``[{step, first, count}]`` into the dream frames, ``panels`` {real, reco, dream: frame-pack meta or null},
``series`` names present, ``notes``, ``bytes``); ``real`` / ``real_offsets``, ``reco`` / ``reco_offsets``,
``dream`` / ``dream_offsets`` (JPEG frames and Uint32 offsets; dream frames start after start); ``series``
(dict of packed float32 arrays: ``real_reward``, ``predicted_reward`` ``[T]``, ``imagined_reward``
``[S, H]``, ``reco_error`` ``[T]``, ``dream_error`` ``[S, H]``, NaN where there is no value); ``step`` and
``start`` (index into ``meta.starts``), Python -> view.
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
import traitlets

from ._encode import FramePack, encode_frames, image_layout, key_name, to_rgb_uint8
from .base import Inspector, pack_array

__all__ = ["DreamInspector", "DreamWorldModel", "DreamerAdapter", "prepare_dream", "dream_arrays"]


@runtime_checkable
class DreamWorldModel(Protocol):
    """What :class:`DreamInspector` asks of a world model (two methods, called under ``torch.no_grad()``).

    ``observe(rollout)``: ``rollout`` is a ``[T]`` TensorDict (one env's real steps: ``"pixels"``,
    ``"action"``, ``("next", "pixels")``, ``("next", "reward")``, ...). Returns a ``[T]`` TensorDict holding
    ``"reconstruction"`` (the decoded posterior of each frame the inspector shows, ``frames_key``: images
    ``[T, C, H, W]`` or ``[T, H, W, C]``), ``"reward"`` (the predicted reward that came with that frame,
    ``[T]`` or ``[T, 1]``) and the posterior state entries the model imagines from (e.g. ``"state"`` and
    ``"belief"``); ``posterior[s]`` is passed back to ``imagine``.

    ``imagine(state, actions)``: ``state`` is ``posterior[s]`` (batch size ``[]``), ``actions`` ``[H, ...]``
    the real actions taken after frame ``s`` (``rollout["action"][s + 1 : s + 1 + H]`` for
    ``("next", "pixels")`` frames, ``[s : s + H]`` for ``"pixels"`` frames). Returns an ``[H]`` TensorDict with
    ``"reconstruction"`` (the decoded prior states) and ``"reward"``: entry ``j`` predicts frame ``s + 1 + j``
    and the reward that came with it.

    Dreamer's world model (:func:`rlbench.modules.dreamer.dreamer_world_model`) has no such methods: the
    inspector wraps it in :class:`DreamerAdapter` by itself.
    """

    def observe(self, rollout): ...

    def imagine(self, state, actions): ...


# ---------------------------------------------------------------------------------------------- arrays

def _as_array(x: Any, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu").numpy()
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], (torch.Tensor, np.ndarray)):
        return np.stack([_as_array(f, what) for f in x])
    raise TypeError(f"DreamInspector: {what} should be an array or tensor of frames, got {type(x).__name__}")


class _Frames:
    """A stack of images ``[N, *image]`` as uint8 RGB ``[N, H, W, 3]``, plus ``[0, 1]`` floats for errors."""

    def __init__(self, x: Any, what: str, float_range: tuple[float, float]):
        arr = _as_array(x, what)
        if arr.ndim < 3:
            raise ValueError(f"DreamInspector: {what} has shape {list(arr.shape)}; expected frames [N, H, W, C] "
                             "or [N, C, H, W] (one image per step)")
        layout = image_layout(arr.shape[1:], what=f"DreamInspector: {what}")
        if layout.is_stack:
            raise ValueError(f"DreamInspector: {what} holds {layout.describe()} per step; expected one RGB or grey "
                             f"image per step, [N, H, W, C] or [N, C, H, W] (pass stack=1 frames, e.g. the last)")
        if arr.dtype.kind == "f":
            lo, hi = float_range
            arr = (arr.astype(np.float32) - lo) / (hi - lo)
        self.layout = layout
        self.rgb = np.stack([to_rgb_uint8(layout.frames_hwc(f))[0] for f in arr]) if len(arr) else \
            np.zeros((0, layout.height, layout.width, 3), np.uint8)

    def __len__(self) -> int:
        return len(self.rgb)

    @property
    def hw(self) -> tuple[int, int]:
        return self.layout.height, self.layout.width

    def unit(self, i: int | slice) -> np.ndarray:
        return self.rgb[i].astype(np.float32) / 255.0


def _rewards(x: Any, n: int, what: str) -> np.ndarray:
    arr = _as_array(x, what) if not isinstance(x, (list, tuple)) else np.asarray(x, dtype=np.float32)
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 2 and arr.shape[-1] == 1:
        arr = arr[:, 0]
    if arr.shape != (n,):
        raise ValueError(f"DreamInspector: {what} has shape {list(arr.shape)}; expected [{n}] (or [{n}, 1]), "
                         "one value per step")
    return arr


def _imagined_items(imagined: Any, start_steps: Sequence[int] | None) -> list[tuple[int, Any]]:
    """``imagined`` as ``[(start, frames)]`` sorted by start."""
    if isinstance(imagined, Mapping):
        if start_steps is not None:
            raise ValueError("DreamInspector: give start_steps only with an imagined array [S, H, ...]; a dict "
                             "{start_step: frames} already names its starts")
        items = list(imagined.items())
    else:
        arr = imagined if isinstance(imagined, (torch.Tensor, np.ndarray)) else None
        if arr is None:
            raise TypeError("DreamInspector: imagined should be a dict {start_step: frames [H, ...]} or an array "
                            f"[S, H, ...] with start_steps, got {type(imagined).__name__}")
        if start_steps is None or len(start_steps) != arr.shape[0]:
            got = "no start_steps" if start_steps is None else f"{len(start_steps)} start_steps"
            raise ValueError(f"DreamInspector: imagined has {arr.shape[0]} rollouts (shape {list(arr.shape)}) and "
                             f"{got}; pass start_steps=[...] with one step per imagined rollout")
        items = list(zip(start_steps, arr))
    out = []
    for s, frames in items:
        if isinstance(s, bool) or int(s) != s:
            raise TypeError(f"DreamInspector: start steps must be ints, got {s!r}")
        out.append((int(s), frames))
    starts = [s for s, _ in out]
    if len(set(starts)) != len(starts):
        raise ValueError(f"DreamInspector: start steps repeat: {sorted(starts)}")
    return sorted(out, key=lambda item: item[0])


def _encode_all(frames: np.ndarray, max_side: int, fmt: str, quality: int) -> FramePack:
    """Every frame of ``[N, H, W, 3]``, in order (no stride: each one is a different prediction)."""
    n = len(frames)
    return encode_frames(lambda b, steps: frames[list(steps)], 1, n, frames.shape[1:3], max_side=max_side,
                         min_side=min(max_side, max(frames.shape[1:3])), max_frames=max(1, n),
                         max_bytes=1 << 40, fmt=fmt, quality=quality)


def _mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)


def prepare_dream(real_frames: Any, reconstructions: Any = None, imagined: Any = None, *,
                  start_steps: Sequence[int] | None = None, real_reward: Any = None, predicted_reward: Any = None,
                  imagined_reward: Any = None, float_range: tuple[float, float] = (0.0, 1.0), max_side: int = 640,
                  frame_format: str = "jpeg", quality: int = 90) -> dict:
    """Validate and encode the arrays of a :class:`DreamInspector` (see :meth:`DreamInspector.from_arrays`).

    Returns ``{"meta", "real", "real_offsets", "reco", "reco_offsets", "dream", "dream_offsets", "series"}``.

    Example:
        >>> real = np.zeros((6, 8, 8, 3), np.uint8)
        >>> p = prepare_dream(real, np.zeros((6, 3, 8, 8)), {2: np.zeros((3, 3, 8, 8))},
        ...                   real_reward=np.arange(6.0), imagined_reward={2: [2.0, 3.0, 4.5]})
        >>> p["meta"]["steps"], p["meta"]["starts"], p["meta"]["series"]
        (6, [{'step': 2, 'first': 0, 'count': 3}], ['real_reward', 'imagined_reward', 'reco_error', 'dream_error'])
    """
    if float_range[1] <= float_range[0]:
        raise ValueError(f"DreamInspector: float_range must be (low, high) with low < high, got {float_range}")
    notes: list[str] = []
    real = _Frames(real_frames, "real_frames", float_range)
    T = len(real)
    if T == 0:
        raise ValueError("DreamInspector: real_frames is empty; nothing to show")
    reco = None
    if reconstructions is not None:
        reco = _Frames(reconstructions, "reconstructions", float_range)
        if len(reco) != T:
            raise ValueError(f"DreamInspector: reconstructions has {len(reco)} frames but real_frames has {T}; "
                             "expected one reconstruction per real frame")
    items = _imagined_items(imagined, start_steps) if imagined is not None else []
    dreams: list[tuple[int, _Frames]] = []
    for s, frames in items:
        if not 0 <= s <= T - 2:
            raise ValueError(f"DreamInspector: imagined start step {s} is outside the rollout: with {T} real frames "
                             f"a dream can start at steps 0..{T - 2} (its frame j predicts real frame s + 1 + j)")
        f = _Frames(frames, f"imagined[{s}]", float_range)
        if len(f) == 0:
            raise ValueError(f"DreamInspector: imagined[{s}] has no frames")
        if len(f) > T - 1 - s:
            raise ValueError(f"DreamInspector: imagined[{s}] has {len(f)} frames, but the rollout has real frames "
                             f"up to step {T - 1}: at most {T - 1 - s} from start {s} (frame j predicts real frame "
                             f"{s} + 1 + j); shorten the horizon")
        if dreams and f.hw != dreams[0][1].hw:
            raise ValueError(f"DreamInspector: imagined[{s}] frames are {f.hw[1]}×{f.hw[0]} but imagined"
                             f"[{dreams[0][0]}] frames are {dreams[0][1].hw[1]}×{dreams[0][1].hw[0]}; all imagined "
                             "frames must have one size")
        dreams.append((s, f))
    S = len(dreams)
    H = max((len(f) for _, f in dreams), default=0)

    series: dict[str, np.ndarray] = {}
    if real_reward is not None:
        series["real_reward"] = _rewards(real_reward, T, "real_reward")
    if predicted_reward is not None:
        series["predicted_reward"] = _rewards(predicted_reward, T, "predicted_reward")
    if imagined_reward is not None:
        if not dreams:
            raise ValueError("DreamInspector: imagined_reward given without imagined frames")
        if isinstance(imagined_reward, Mapping):
            if sorted(int(k) for k in imagined_reward) != [s for s, _ in dreams]:
                raise ValueError(f"DreamInspector: imagined_reward has start steps {sorted(imagined_reward)}, "
                                 f"imagined has {[s for s, _ in dreams]}; they must match")
            per_start = [imagined_reward[s] for s, _ in dreams]
        else:
            per_start = list(_as_array(imagined_reward, "imagined_reward"))
            if len(per_start) != S:
                raise ValueError(f"DreamInspector: imagined_reward has {len(per_start)} rows, imagined has {S} "
                                 "rollouts; expected one row per start step")
        arr = np.full((S, H), np.nan, np.float32)
        for i, ((s, f), r) in enumerate(zip(dreams, per_start)):
            arr[i, :len(f)] = _rewards(r, len(f), f"imagined_reward[{s}]")
        series["imagined_reward"] = arr
    if reco is not None:
        if reco.hw == real.hw:
            series["reco_error"] = _mse(reco.unit(slice(None)), real.unit(slice(None)))
        else:
            notes.append(f"reconstructions are {reco.hw[1]}×{reco.hw[0]}, real frames {real.hw[1]}×{real.hw[0]}: "
                         "no reconstruction error plotted")
    if dreams:
        if dreams[0][1].hw == real.hw:
            err = np.full((S, H), np.nan, np.float32)
            for i, (s, f) in enumerate(dreams):
                err[i, :len(f)] = _mse(f.unit(slice(None)), real.unit(slice(s + 1, s + 1 + len(f))))
            series["dream_error"] = err
        else:
            notes.append("imagined frames and real frames differ in size: no dream error plotted")

    real_pack = _encode_all(real.rgb, max_side, frame_format, quality)
    reco_pack = _encode_all(reco.rgb, max_side, frame_format, quality) if reco is not None else FramePack()
    all_dream = np.concatenate([f.rgb for _, f in dreams]) if dreams else None
    dream_pack = _encode_all(all_dream, max_side, frame_format, quality) if dreams else FramePack()
    starts, first = [], 0
    for s, f in dreams:
        starts.append({"step": s, "first": first, "count": len(f)})
        first += len(f)
    packs = {"real": real_pack, "reco": reco_pack, "dream": dream_pack}
    meta = {
        "steps": T, "starts": starts, "horizon": H,
        "panels": {k: (p.meta() if p.count else None) for k, p in packs.items()},
        "series": list(series), "notes": notes,
        "bytes": sum(len(p.data) + len(p.offsets) for p in packs.values()) + sum(a.nbytes for a in series.values()),
    }
    packed = {k: pack_array(torch.from_numpy(np.ascontiguousarray(v))) for k, v in series.items()}
    out = {"meta": meta, "series": packed}
    for k, p in packs.items():
        out[k], out[f"{k}_offsets"] = p.data, p.offsets
    return out


# ---------------------------------------------------------------------------------------------- world models

def _default_starts(T: int, count: int = 4) -> list[int]:
    last = T - 2
    if last < 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, last, min(count, last + 1))})


def _entry(td, key: str, what: str):
    if key not in td.keys(include_nested=True):
        raise KeyError(f"DreamInspector: world_model.{what} returned no {key!r} entry; its keys are "
                       f"{sorted(key_name(k) for k in td.keys(include_nested=True, leaves_only=True))} "
                       "(see DreamWorldModel)")
    return td.get(key)


def dream_arrays(world_model: Any, rollout: Any, *, starts: Sequence[int] | None = None, horizon: int = 15,
                 frames_key: Any = None, action_key: Any = "action", reward_key: Any = ("next", "reward"),
                 env: int = 0) -> dict:
    """Run the :class:`DreamWorldModel` protocol on a real rollout: the keyword arguments of ``from_arrays``.

    Example:
        >>> from tensordict import TensorDict
        >>> class Echo:  # a "world model" that reconstructs perfectly and dreams the last frame it saw
        ...     def observe(self, rollout):
        ...         return TensorDict({"reconstruction": rollout["pixels"], "reward": rollout["next", "reward"],
        ...                            "last": rollout["pixels"]}, rollout.batch_size)
        ...     def imagine(self, state, actions):
        ...         H = actions.shape[0]
        ...         return TensorDict({"reconstruction": state["last"].expand(H, *state["last"].shape),
        ...                            "reward": torch.zeros(H)}, [H])
        >>> td = TensorDict({"pixels": torch.rand(6, 3, 8, 8), "action": torch.zeros(6, 1),
        ...                  "next": {"reward": torch.ones(6, 1)}}, [6])
        >>> arrays = dream_arrays(Echo(), td, starts=[1], horizon=3)
        >>> sorted(arrays["imagined"]), arrays["imagined"][1].shape
        ([1], torch.Size([3, 3, 8, 8]))
    """
    from tensordict import TensorDictBase

    if not isinstance(world_model, DreamWorldModel) and DreamerAdapter.fits(world_model):
        world_model = DreamerAdapter(world_model)
    if not (callable(getattr(world_model, "observe", None)) and callable(getattr(world_model, "imagine", None))):
        raise TypeError(f"DreamInspector: the world model ({type(world_model).__name__}) needs observe(rollout) and "
                        "imagine(state, actions) methods (see rlbench.widgets.DreamWorldModel); for plain arrays "
                        "use DreamInspector.from_arrays(...)")
    if not isinstance(rollout, TensorDictBase):
        raise TypeError(f"DreamInspector: the real rollout should be a TensorDict [T] (or [B, T] with env=b), "
                        f"got {type(rollout).__name__}")
    if rollout.batch_dims == 2:
        rollout = rollout[env]
    if rollout.batch_dims != 1:
        raise ValueError(f"DreamInspector: the real rollout should have batch size [T] or [B, T], got "
                         f"{list(rollout.batch_size)}")
    T = rollout.batch_size[0]
    keys = rollout.keys(include_nested=True)
    if frames_key is None:
        frames_key = ("next", "pixels") if ("next", "pixels") in keys else "pixels"
    # ("next", "pixels")[t] is the frame after action t: the action taken after it is action t + 1
    shift = 1 if isinstance(frames_key, tuple) and len(frames_key) > 1 and frames_key[0] == "next" else 0
    for key, what in ((frames_key, "frames_key"), (action_key, "action_key")):
        if key not in rollout.keys(include_nested=True):
            raise KeyError(f"DreamInspector: {what}={key!r} is not in the rollout; its keys are "
                           f"{sorted(key_name(k) for k in rollout.keys(include_nested=True, leaves_only=True))}")
    starts = _default_starts(T) if starts is None else [int(s) for s in starts]
    horizon = int(horizon)
    if horizon < 1:
        raise ValueError(f"DreamInspector: horizon must be >= 1, got {horizon}")
    with torch.no_grad():
        posterior = world_model.observe(rollout)
        reco = _entry(posterior, "reconstruction", "observe(rollout)")
        predicted = _entry(posterior, "reward", "observe(rollout)")
        imagined, imagined_reward = {}, {}
        actions = rollout.get(action_key)
        for s in starts:
            if not 0 <= s <= T - 2:
                raise ValueError(f"DreamInspector: start step {s} is outside the rollout: with {T} steps a dream "
                                 f"can start at 0..{T - 2}")
            h = min(horizon, T - 1 - s)
            dream = world_model.imagine(posterior[s], actions[s + shift:s + shift + h])
            imagined[s] = _entry(dream, "reconstruction", "imagine(state, actions)")
            imagined_reward[s] = _entry(dream, "reward", "imagine(state, actions)")
    reward = None
    if reward_key is not None and reward_key in keys:
        reward = rollout.get(reward_key).reshape(T, -1)[:, 0].to(torch.float32)
        if not shift:  # "pixels"[t] came with the reward of step t - 1
            reward = torch.cat([reward.new_full((1,), float("nan")), reward[:-1]])
    return {"real_frames": rollout.get(frames_key), "reconstructions": reco, "imagined": imagined,
            "real_reward": reward, "predicted_reward": predicted, "imagined_reward": imagined_reward}


class DreamerAdapter:
    """:class:`DreamWorldModel` for Dreamer's world model (:func:`rlbench.modules.dreamer.dreamer_world_model`).

    ``observe`` runs the world model on the ``[T]`` rollout (it encodes ``("next", "pixels")``) and returns
    ``("next", "reco_pixels")``, ``("next", "reward")`` and the posterior ``("next", "state")`` /
    ``("next", "belief")``; ``imagine`` rolls the RSSM prior through the actions and decodes each latent
    (:func:`rlbench.modules.dreamer.imagine`, sampled prior states, as when the actor imagines). The prior,
    decoder and reward head are found inside the world model, or given.

    Args:
        world_model: the ``TensorDictSequential`` of ``dreamer_world_model``.
        prior: the :class:`~rlbench.modules.dreamer.RSSMPrior` (default: the scan's).
        decoder: ``(state, belief) -> frames`` (default: the module writing ``("next", "reco_pixels")``).
        reward: ``(state, belief) -> reward`` (default: the module writing ``("next", "reward")``).
    """

    def __init__(self, world_model: Any, *, prior: Any = None, decoder: Any = None, reward: Any = None):
        parts = self._parts(world_model)
        self.world_model = world_model
        self.prior = prior if prior is not None else parts.get("prior")
        self.decoder = decoder if decoder is not None else parts.get("decoder")
        self.reward = reward if reward is not None else parts.get("reward")
        missing = [name for name in ("prior", "decoder") if getattr(self, name) is None]
        if missing:
            raise TypeError(f"DreamerAdapter: no {' or '.join(missing)} found in {type(world_model).__name__}; "
                            "pass prior=rssm_rollout.prior / decoder=ObsDecoder(...) (see dreamer_world_model)")

    @staticmethod
    def _parts(world_model: Any) -> dict:
        from ..modules.dreamer import RSSMRollout

        parts = {}
        for module in getattr(world_model, "module", []) if hasattr(world_model, "module") else []:
            if isinstance(module, RSSMRollout):
                parts["prior"] = module.prior
            out_keys = [tuple(k) if isinstance(k, tuple) else (k,) for k in getattr(module, "out_keys", [])]
            if ("next", "reco_pixels") in out_keys:
                parts["decoder"] = module.module
            elif ("next", "reward") in out_keys:
                parts["reward"] = module.module
        return parts

    @classmethod
    def fits(cls, world_model: Any) -> bool:
        """True for a Dreamer world model (an RSSM scan and a ``reco_pixels`` decoder inside)."""
        try:
            parts = cls._parts(world_model)
        except ImportError:  # pragma: no cover - the modules are part of rlbench
            return False
        return "prior" in parts and "decoder" in parts

    def observe(self, rollout):
        from tensordict import TensorDict

        out = self.world_model(rollout.copy())
        nxt = out.get("next")
        return TensorDict({"reconstruction": nxt.get("reco_pixels"), "reward": nxt.get("reward"),
                           "state": nxt.get("state"), "belief": nxt.get("belief")}, rollout.batch_size)

    def imagine(self, state, actions):
        from tensordict import TensorDict

        from ..modules.dreamer import imagine

        out = imagine(self.prior, self.decoder, state["state"][None], state["belief"][None], actions[None],
                      reward=self.reward)
        H = actions.shape[0]
        reward = out["reward"][0] if "reward" in out else torch.full((H,), float("nan"))
        return TensorDict({"reconstruction": out["reco_pixels"][0], "reward": reward}, [H])


# ---------------------------------------------------------------------------------------------- widget

class DreamInspector(Inspector):
    """Real frames, posterior reconstructions and open-loop dreams side by side, rewards below.

    Two ways in:

    - ``DreamInspector(world_model, rollout, starts=None, horizon=15)``: Dreamer's world model
      (``dreamer_world_model(...)``, wrapped in :class:`DreamerAdapter` by itself) or any model following
      :class:`DreamWorldModel` (``observe(rollout)`` -> posterior with ``"reconstruction"`` and ``"reward"``;
      ``imagine(posterior[s], actions after frame s)`` -> ``"reconstruction"`` and ``"reward"``). The model
      is run once, here, under ``torch.no_grad()``; the browser only scrubs.
    - ``DreamInspector.from_arrays(real_frames, reconstructions, imagined, ...)``: the arrays directly.

    Pick the start of the dream in the view's drop-down (``start`` from Python); scrub with the slider,
    the arrow keys or play. Frames before the start show "observed"; the dream panel then follows the real
    actions open loop, and the error plot shows how fast it drifts away from the real frames.

    Args:
        world_model: a :class:`DreamWorldModel`.
        rollout: the real steps, a ``[T]`` TensorDict (or ``[B, T]``: ``env`` picks one).
        starts: start steps of the dreams (default: 4 spread over the rollout).
        horizon: imagined steps per dream (cut at the rollout's end).
        frames_key: the frames shown and reconstructed (default ``("next", "pixels")``, what Dreamer
            encodes, else ``"pixels"``).
        action_key, reward_key: keys of the rollout (``"action"``, ``("next", "reward")``).
        env: which env of a ``[B, T]`` rollout.
        float_range: the ``(low, high)`` of float frames (``(-0.5, 0.5)`` for decoders trained on
            centred pixels); uint8 frames are ``0..255``.
        max_side: frames are downscaled to this longest side. frame_format, quality: JPEG/WebP encoding.
        title: header text.

    Example:
        >>> T, H = 8, 3
        >>> real = torch.rand(T, 3, 16, 16)
        >>> w = DreamInspector.from_arrays(real, reconstructions=real, imagined={2: real[3:6], 4: real[5:8]},
        ...                                real_reward=torch.ones(T), predicted_reward=torch.ones(T))
        >>> w.meta["starts"], w.meta["panels"]["dream"]["count"]
        ([{'step': 2, 'first': 0, 'count': 3}, {'step': 4, 'first': 3, 'count': 3}], 6)
    """

    _view = "dream_inspector"

    meta = traitlets.Dict().tag(sync=True)
    series = traitlets.Dict().tag(sync=True)
    real = traitlets.Bytes(b"").tag(sync=True)
    real_offsets = traitlets.Bytes(b"").tag(sync=True)
    reco = traitlets.Bytes(b"").tag(sync=True)
    reco_offsets = traitlets.Bytes(b"").tag(sync=True)
    dream = traitlets.Bytes(b"").tag(sync=True)
    dream_offsets = traitlets.Bytes(b"").tag(sync=True)
    step = traitlets.Int(0).tag(sync=True)
    start = traitlets.Int(0).tag(sync=True)

    def __init__(self, world_model: Any = None, rollout: Any = None, *, starts: Sequence[int] | None = None,
                 horizon: int = 15, frames_key: Any = None, action_key: Any = "action",
                 reward_key: Any = ("next", "reward"), env: int = 0, float_range: tuple[float, float] = (0.0, 1.0),
                 max_side: int = 640, frame_format: str = "jpeg", quality: int = 90, title: str | None = None,
                 _payload: dict | None = None, **kwargs):
        if _payload is None:
            if world_model is None or rollout is None:
                raise TypeError("DreamInspector(world_model, rollout) needs both; for arrays use "
                                "DreamInspector.from_arrays(real_frames, reconstructions, imagined, ...)")
            arrays = dream_arrays(world_model, rollout, starts=starts, horizon=horizon, frames_key=frames_key,
                                  action_key=action_key, reward_key=reward_key, env=env)
            _payload = prepare_dream(**arrays, float_range=float_range, max_side=max_side,
                                     frame_format=frame_format, quality=quality)
        if title is None:
            title = "Dream"  # the view's subtitle says how many steps and dreams
        super().__init__(title=title, **_payload, **kwargs)

    @classmethod
    def from_arrays(cls, real_frames: Any, reconstructions: Any = None, imagined: Any = None, *,
                    start_steps: Sequence[int] | None = None, real_reward: Any = None, predicted_reward: Any = None,
                    imagined_reward: Any = None, float_range: tuple[float, float] = (0.0, 1.0), max_side: int = 640,
                    frame_format: str = "jpeg", quality: int = 90, title: str | None = None,
                    **kwargs) -> "DreamInspector":
        """The inspector from arrays (tensors or NumPy), validated with errors that name the array and shape.

        Args:
            real_frames: ``[T, H, W, C]`` or ``[T, C, H, W]`` (uint8, or floats in ``float_range``; C = 1 or 3).
            reconstructions: ``[T, ...]`` images, one per real frame (any size; the error plot needs the
                real frames' size).
            imagined: ``{start_step: frames [H_s, ...]}``, or an array ``[S, H, ...]`` with ``start_steps``.
                Frame ``j`` from start ``s`` predicts real frame ``s + 1 + j``, so ``H_s <= T - 1 - s``.
            start_steps: the start step of each row of an ``imagined`` array.
            real_reward: ``[T]`` (or ``[T, 1]``): the reward that came with each real frame.
            predicted_reward: ``[T]``, the posterior's prediction of ``real_reward``.
            imagined_reward: ``{start_step: [H_s]}`` or ``[S, H]``; value ``j`` predicts ``real_reward[s + 1 + j]``.
            float_range: the ``(low, high)`` of float frames.
            max_side: longest side of the sent frames.
            frame_format: ``"jpeg"`` or ``"webp"``.
            quality: encoder quality.
            title: header text (default: what is shown).
            **kwargs: widget traits (``step``, ``start``).
        """
        payload = prepare_dream(real_frames, reconstructions, imagined, start_steps=start_steps,
                                real_reward=real_reward, predicted_reward=predicted_reward,
                                imagined_reward=imagined_reward, float_range=float_range, max_side=max_side,
                                frame_format=frame_format, quality=quality)
        return cls(title=title, _payload=payload, **kwargs)

    @property
    def nbytes(self) -> int:
        """Bytes of data this inspector sends to the browser (frames, offsets and series)."""
        return int(self.meta.get("bytes", 0))

    def values(self, name: str) -> np.ndarray | None:
        """A series decoded from the synced buffers, or None when it was not given.

        Names: ``real_reward``, ``predicted_reward`` (``[T]``), ``imagined_reward`` (``[S, H]``), ``reco_error``
        (``[T]``), ``dream_error`` (``[S, H]``); NaN where there is no value.
        """
        packed = self.series.get(name)
        if packed is None:
            return None
        return np.frombuffer(packed["data"], dtype="<f4").reshape(packed["shape"])

    # ------------------------------------------------------------------ fallbacks
    def _summary_rows(self):
        m = self.meta
        rows = [("real steps", m["steps"])]
        p = m["panels"]
        for key, label in (("real", "real frames"), ("reco", "reconstructions"), ("dream", "imagined frames")):
            if p.get(key):
                rows.append((label, f"{p[key]['count']} at {p[key]['width']}×{p[key]['height']}"))
        if m["starts"]:
            rows.append(("dreams", ", ".join(f"from step {s['step']} ({s['count']} steps)" for s in m["starts"])))
        err = self.values("reco_error")
        if err is not None:
            rows.append(("reconstruction error (MSE)", f"{float(np.nanmean(err)):.4g} on average"))
        dream = self.values("dream_error")
        if dream is not None:
            rows.append(("dream error (MSE)", f"{float(np.nanmean(dream)):.4g} on average"))
        rows.extend(("note", n) for n in m.get("notes", []))
        return rows

    def _plot(self, fig) -> bool:
        real = self.values("real_reward")
        if real is None:
            return False
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(real, label="real reward", lw=1)
        predicted = self.values("predicted_reward")
        if predicted is not None:
            ax.plot(predicted, label="posterior prediction", lw=1)
        imagined = self.values("imagined_reward")
        if imagined is not None and self.meta["starts"]:
            first = self.meta["starts"][min(self.start, len(self.meta["starts"]) - 1)]
            row = imagined[self.meta["starts"].index(first)][:first["count"]]
            steps = np.arange(first["step"] + 1, first["step"] + 1 + len(row))  # reward j came with frame s + 1 + j
            ax.plot(steps, row, label=f"dream from {first['step']}", lw=1)
        ax.set_xlabel("step")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(self.title, fontsize=9)
        return True
