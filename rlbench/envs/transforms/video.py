"""``VideoRecorder``: collect the frames an env shows and write them as videos through a logger.

The recorder changes no data and no spec: it reads an image key on every reset and step, keeps the
frames (as ``uint8 [H, W, 3]`` on the CPU) and hands them to ``logger.log_video(name, frames, step=...,
fps=...)`` when :meth:`VideoRecorder.dump` is called, when an episode ends, when ``max_frames`` frames
are waiting, and at :meth:`VideoRecorder.close`. The logger is duck-typed (anything with ``log_video``),
so this module imports nothing from :mod:`rlbench.trainers`; its loggers (``CSVLogger``: mp4 files,
``TensorboardLogger``, ``WandbLogger``, ``MultiLogger``) all have one.
"""
from __future__ import annotations

import math

import torch
from tensordict import TensorDictBase

from ...specs import Composite
from .base import Transform, reset_mask

__all__ = ["VideoRecorder"]

_LAST = (1, 3, 4)  # channels-last: gray, RGB, RGBA (alpha dropped) as renderers give them
_FIRST = (1, 3)  # channels-first: gray, RGB; 4 would be ambiguous with Atari's stack of 4 gray frames


def image_layout(shape, dtype: torch.dtype) -> str:
    """``"HWC"`` or ``"CHW"``: where the channels of an image of event shape ``shape`` are.

    Channels-last images have 1, 3 or 4 (RGBA) channels, channels-first ones 1 or 3 (a ``[4, 84, 84]``
    observation is a stack of four gray frames, not one image). When both ends could be channels (e.g.
    ``[3, 4, 3]``), a floating image is read as channels-first (what
    :class:`~rlbench.envs.transforms.ToTensorImage` produces) and an integer one as channels-last (what
    envs render).

    Example:
        >>> import torch
        >>> image_layout((64, 48, 3), torch.uint8), image_layout((3, 64, 48), torch.float32)
        ('HWC', 'CHW')
    """
    shape = tuple(shape)
    if len(shape) != 3:
        raise ValueError(f"an image has 3 dims, [H, W, C] (C in {list(_LAST)}) or [C, H, W] (C in {list(_FIRST)}); "
                         f"got event shape {list(shape)}")
    last, first = shape[-1] in _LAST, shape[0] in _FIRST
    if last and first:
        return "CHW" if dtype.is_floating_point else "HWC"
    if last:
        return "HWC"
    if first:
        return "CHW"
    raise ValueError(f"an image is [H, W, C] (C in {list(_LAST)}: gray, RGB, RGBA) or [C, H, W] (C in {list(_FIRST)}); "
                     f"got event shape {list(shape)}. A stack of frames (CatFrames) is not one image: put the "
                     f"VideoRecorder before the stacking transform.")


def to_rgb_uint8(images: torch.Tensor, layout: str) -> torch.Tensor:
    """``[N, *image]`` images in ``layout`` as ``uint8 [N, H, W, 3]`` (a new tensor on the CPU).

    Floating images are read in ``[0, 1]`` (clamped), integer images in ``[0, 255]``; one channel is
    repeated to three, a fourth (alpha, channels-last only) is dropped.
    """
    x = images.detach()
    if layout == "CHW":
        x = x.movedim(-3, -1)
    if x.shape[-1] == 1:
        x = x.expand(*x.shape[:-1], 3)
    elif x.shape[-1] == 4:
        x = x[..., :3]
    if x.dtype == torch.uint8:
        return x.to("cpu", copy=True).contiguous()  # a copy: envs may write their next frame in place
    if x.dtype.is_floating_point:
        return (x.clamp(0, 1) * 255).round().to(device="cpu", dtype=torch.uint8).contiguous()
    if x.dtype == torch.bool:
        return (x.to(torch.uint8) * 255).cpu().contiguous()
    return x.clamp(0, 255).to(device="cpu", dtype=torch.uint8).contiguous()


def tile_frames(frames: torch.Tensor) -> torch.Tensor:
    """``[N, H, W, 3]`` frames as one ``[rows * H, cols * W, 3]`` grid, row by row.

    ``cols = ceil(sqrt(N))``; the cells after the last frame are black.

    Example:
        >>> import torch
        >>> tile_frames(torch.ones(3, 2, 5, 3, dtype=torch.uint8)).shape  # 2 x 2 cells, the last one black
        torch.Size([4, 10, 3])
    """
    n, h, w, c = frames.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    if rows * cols > n:
        frames = torch.cat([frames, frames.new_zeros(rows * cols - n, h, w, c)])
    return frames.reshape(rows, cols, h, w, c).permute(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def _center_crop(frame: torch.Tensor, size) -> torch.Tensor:
    h, w = size
    top, left = max(0, (frame.shape[-3] - h) // 2), max(0, (frame.shape[-2] - w) // 2)
    return frame[..., top:top + h, left:left + w, :]


class VideoRecorder(Transform):
    """Record the frames of an image key and write them as videos through ``logger.log_video``.

    Put it in a :class:`~rlbench.envs.transforms.TransformedEnv` (best last, or at least after any
    transform that ends episodes, such as ``StepCounter(max_steps=...)``). It records the frame of every
    reset and every step (every ``skip``-th of them) and changes nothing in the data or the specs.

    A video is written (and the frames cleared) by :meth:`dump`, and automatically:

    - when the recorded episode ends (``"done"`` at a step), with ``dump_on_done`` (the default);
    - when an episode is cut short by a reset before its end (the frames so far make one video);
    - when ``max_frames`` frames are waiting (a long episode becomes several videos: memory stays bounded);
    - at :meth:`close`, which the env's ``close`` calls (``env.close()`` writes the last frames).

    No empty video is ever written, nor one of a reset alone: a reset's frame is kept once a step follows
    it (so the automatic reset after an evaluation's last episode leaves nothing behind).

    Each video is logged under ``tag`` (``f"{tag}_{suffix}"`` with :meth:`dump`'s ``suffix``) at the step
    given to :meth:`dump`, else :attr:`step` when set (e.g. the training frame count, set before an
    evaluation), else the number of videos dumped before.

    Images may be ``[H, W, C]`` (integer, as envs render: ``GymEnv(..., from_pixels=True)``,
    ``DMControlEnv(..., from_pixels=True)``) or ``[C, H, W]`` floats in ``[0, 1]`` (after
    :class:`~rlbench.envs.transforms.ToTensorImage`), with ``C`` 1 (gray), 3 (RGB) or, channels-last, 4 (alpha
    dropped);
    see :func:`image_layout` for shapes that could be either. Frames are kept as ``uint8 [H, W, 3]``.

    **Batched envs**: with ``make_grid=True`` (the default, as in TorchRL) each frame tiles every sub-env
    (row by row, ``ceil(sqrt(n))`` columns), and an episode "ends" once every sub-env has ended one since
    the last video; a partially reset sub-env shows its fresh frame while the others keep theirs. With
    ``make_grid=False`` only sub-env 0 is recorded, episode by episode.

    Outside an env (``recorder(td)`` on a replay sample) it records nothing and returns ``td`` as it is:
    log a stored rollout's frames with ``logger.log_video(name, td["pixels"], step)`` directly.

    Args:
        logger: anything with ``log_video(name, frames, step, fps)``; ``frames`` arrive as
            ``uint8 [T, H, W, 3]``. rlbench's :class:`~rlbench.trainers.CSVLogger` writes mp4 files.
        tag: the videos' name.
        in_keys: the one image key to record (default ``["pixels"]``).
        skip: record every ``skip``-th frame (1: all). The count restarts with each episode's video
            (not at a ``max_frames`` cut).
        center_crop: crop each frame to its central ``size`` (int) or ``(height, width)`` pixels.
        make_grid: for a batched env, tile all sub-envs (True) or record sub-env 0 only (False).
        fps: frames per second of the written videos.
        max_frames: dump once this many frames are waiting (``None``: no limit).
        step: the step the videos are logged at (see above); a plain attribute, settable any time.
        dump_on_done: dump at the end of each recorded episode.

    Attributes:
        frames: the frames waiting for the next dump (``uint8 [H, W, 3]`` tensors).
        iter: the number of videos dumped so far.

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import PixelCountingEnv
        >>> class VideoList:  # stands for CSVLogger & co.
        ...     def __init__(self):
        ...         self.videos = []
        ...     def log_video(self, name, frames, step, fps=30):
        ...         self.videos.append((name, tuple(frames.shape), step))
        >>> logger = VideoList()
        >>> env = TransformedEnv(PixelCountingEnv(max_steps=3, height=4, width=6), VideoRecorder(logger, "demo"))
        >>> _ = env.rollout(8, break_when_any_done=False)  # episodes of 3 steps: a reset frame + 3 each
        >>> logger.videos  # two whole episodes; the third one's first 3 frames are still waiting
        [('demo', (4, 4, 6, 3), 0), ('demo', (4, 4, 6, 3), 1)]
        >>> env.close()  # closes its transforms: the waiting frames become the last video
        >>> logger.videos[-1]
        ('demo', (3, 4, 6, 3), 2)
    """

    def __init__(self, logger, tag: str, in_keys=None, skip: int = 1, center_crop=None, make_grid: bool = True, *,
                 fps: float = 30, max_frames: int | None = None, step: int | None = None, dump_on_done: bool = True):
        super().__init__(["pixels"] if in_keys is None else in_keys)
        if len(self.in_keys) != 1:
            raise ValueError(f"VideoRecorder records one image key, got in_keys={self.in_keys}: use one "
                             f"VideoRecorder (and tag) per key")
        if not callable(getattr(logger, "log_video", None)):
            raise TypeError(
                f"VideoRecorder: the logger ({type(logger).__name__}) has no log_video(name, frames, step, fps). "
                f"rlbench.trainers' CSVLogger (mp4 files beside its CSV), TensorboardLogger, WandbLogger and "
                f"MultiLogger have one; so can your own logger."
            )
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"VideoRecorder: tag must be a non-empty string, got {tag!r}")
        if isinstance(skip, bool) or int(skip) != skip or skip < 1:
            raise ValueError(f"VideoRecorder: skip must be an integer >= 1 (1 records every frame), got {skip!r}")
        if not fps > 0:
            raise ValueError(f"VideoRecorder: fps must be > 0, got {fps!r}")
        if max_frames is not None and (isinstance(max_frames, bool) or int(max_frames) != max_frames
                                       or max_frames < 1):
            raise ValueError(f"VideoRecorder: max_frames must be None or an integer >= 1, got {max_frames!r}")
        if center_crop is not None:
            size = (center_crop, center_crop) if isinstance(center_crop, int) else tuple(center_crop)
            if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
                raise ValueError(f"VideoRecorder: center_crop is a size or (height, width), got {center_crop!r}")
            center_crop = (int(size[0]), int(size[1]))
        self.logger, self.tag = logger, tag
        self.skip, self.center_crop, self.make_grid = int(skip), center_crop, bool(make_grid)
        self.fps, self.max_frames = fps, None if max_frames is None else int(max_frames)
        self.step, self.dump_on_done = step, bool(dump_on_done)
        self.frames: list[torch.Tensor] = []
        self.iter = 0
        self._seen = 0  # frames seen since the last dump (for skip)
        self._layout: str | None = None
        self._last: torch.Tensor | None = None  # grid mode: the latest frame of every sub-env
        self._ended: torch.Tensor | None = None  # grid mode: sub-envs that ended an episode since the last dump
        self._reset_frame: torch.Tensor | None = None  # the last reset's frame, until a step follows it

    # ------------------------------------------------------------------ specs
    def transform_observation_spec(self, spec: Composite) -> Composite:
        """Check once, in the env, that the in_key holds images; the spec itself is unchanged."""
        key = self.in_keys[0]
        leaf = spec[key]
        event = leaf.shape[len(spec.shape):]
        try:
            self._layout = image_layout(event, leaf.dtype)
        except ValueError as err:
            raise ValueError(f"VideoRecorder: {key!r} (shape {list(leaf.shape)}, {leaf.dtype}, batch dims "
                             f"{list(spec.shape)}) is not an image: {err}") from None
        return spec

    # -------------------------------------------------------------- recording
    def _frames_of(self, td: TensorDictBase) -> torch.Tensor | None:
        """The in_key's images of ``td`` as ``uint8 [N, H, W, 3]`` (N sub-envs), or None if absent."""
        value = td.get(self.in_keys[0], None)
        if value is None:
            return None
        event = value.shape[td.batch_dims:]
        layout = self._layout or image_layout(event, value.dtype)
        frames = to_rgb_uint8(value.reshape(-1, *event), layout)
        if self.center_crop is not None:
            frames = _center_crop(frames, self.center_crop)
        return frames

    def _record(self, frames: torch.Tensor, mask: torch.Tensor | None = None, reset: bool = False) -> None:
        """Add one frame from the ``[N, H, W, 3]`` frames (``mask``: the sub-envs whose frame is new).

        A reset's frame waits for the step after it: a reset that no step follows adds nothing.
        """
        if self.make_grid and frames.shape[0] > 1:
            if self._last is not None and mask is not None and self._last.shape == frames.shape:
                frames = torch.where(mask.reshape(-1, 1, 1, 1), frames, self._last)
            self._last = frames
            frame = tile_frames(frames)
        else:
            frame = frames[0]
        if reset:
            self._reset_frame = frame  # a later reset before any step shows the newer state
            return
        if self._reset_frame is not None:
            first, self._reset_frame = self._reset_frame, None
            self._keep(first)
        self._keep(frame)

    def _keep(self, frame: torch.Tensor) -> None:
        self._seen += 1
        if (self._seen - 1) % self.skip == 0:
            self.frames.append(frame)
        if self.max_frames is not None and len(self.frames) >= self.max_frames:
            self._write(None, None)  # a chunk of a running episode: the skip count and episode ends go on

    def _reset(self, td, td_reset):
        frames = self._frames_of(td_reset)
        if frames is None:
            return td_reset
        mask = reset_mask(td, td_reset.batch_size)
        mask = None if mask is None else mask.reshape(-1).cpu()
        grid = self.make_grid and frames.shape[0] > 1
        if mask is None:  # a full reset: whatever was recorded belongs to an episode that is over
            self.dump()
            self._record(frames, reset=True)
        elif grid:
            if bool(mask.any()):
                self._record(frames, mask, reset=True)
        elif bool(mask[0]):  # the recorded sub-env starts an episode (its last one was dumped at its end)
            self.dump()
            self._record(frames, reset=True)
        return td_reset

    def _step(self, td, next_td):
        frames = self._frames_of(next_td)
        if frames is None:
            return next_td
        self._record(frames)
        done = next_td.get("done", None)
        if self.dump_on_done and done is not None:
            done = done.reshape(-1).cpu()
            if self.make_grid and frames.shape[0] > 1:
                ended = done if self._ended is None or self._ended.shape != done.shape else self._ended | done
                self._ended = ended
                if bool(ended.all()):
                    self.dump()
            elif bool(done[0]):
                self.dump()
        return next_td

    def _call(self, td: TensorDictBase) -> TensorDictBase:
        return td  # frames are recorded by the env hooks only

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        """Outside an env: ``td`` unchanged, nothing recorded (see the class docstring)."""
        return td

    # ------------------------------------------------------------------ output
    def dump(self, suffix: str | None = None, step: int | None = None):
        """Write the waiting frames as one video through the logger, then clear them.

        Args:
            suffix: the video is named ``f"{tag}_{suffix}"`` (default: ``tag``).
            step: the step it is logged at (default: :attr:`step` if set, else the number of videos
                dumped before).

        Returns:
            What the logger's ``log_video`` returns (the mp4 path for a ``CSVLogger``), or ``None`` when
            there was nothing to write (no video is written then). If the logger raises, the frames stay.
        """
        out = self._write(suffix, step)
        self._seen, self._ended, self._reset_frame = 0, None, None  # the next video starts afresh
        return out

    def _write(self, suffix, step):
        if not self.frames:
            return None
        video = torch.stack(self.frames)
        name = self.tag if suffix is None else f"{self.tag}_{suffix}"
        if step is None:
            step = self.iter if self.step is None else self.step
        out = self.logger.log_video(name, video, step=int(step), fps=self.fps)
        self.frames = []
        self.iter += 1
        return out

    def close(self) -> None:
        """Dump the frames still waiting (the end of recording)."""
        self.dump()

    def __deepcopy__(self, memo):
        memo[id(self.logger)] = self.logger  # a copy writes to the same logger (files, a wandb run)
        return super().__deepcopy__(memo)

    def extra_repr(self) -> str:
        extra = f", max_frames={self.max_frames}" if self.max_frames is not None else ""
        return (f"tag={self.tag!r}, in_keys={self.in_keys}, skip={self.skip}, fps={self.fps}, "
                f"make_grid={self.make_grid}{extra}, frames={len(self.frames)}")
