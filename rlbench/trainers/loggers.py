"""Loggers: where a trainer's scalars (and videos) go.

Every logger here follows the :class:`rlbench.loggers.Logger` protocol -- ``log_scalar(name, value,
step)`` -- so a trainer takes any of them, a :class:`MultiLogger` of several, or the notebook
``rlbench.widgets.TrainingMonitor``. Extras they share: ``log_scalars(values, step)`` (several at one
step), ``log_hparams(dict)``, ``log_video(name, frames, step, fps=30)`` (what
:class:`~rlbench.envs.transforms.VideoRecorder` writes through), ``flush()`` and ``close()``.

:class:`CSVLogger` needs nothing beyond the standard library for scalars; its videos are mp4 files
(H.264, written with PyAV: ``import av``), read back with :func:`read_video`. :class:`TensorboardLogger`
and :class:`WandbLogger` import their package only when built, with an error naming the extra to install.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Mapping

from ..loggers import Logger, log_scalars

__all__ = ["Logger", "log_scalars", "CSVLogger", "TensorboardLogger", "WandbLogger", "MultiLogger", "read_csv_log",
           "video_frames", "write_mp4", "read_video"]

_CSV_NAME = "scalars.csv"
_HPARAMS_NAME = "hparams.json"


def _to_float(name: str, value) -> float:
    """A Python float from a number or a one-element tensor/array, with a clear error otherwise."""
    try:
        return float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"log_scalar({name!r}): expected a number or a one-element tensor, got {type(value).__name__} "
            f"{getattr(value, 'shape', '')}".rstrip()
        ) from None


def _run_dir(owner: str, where: tuple, exp_name, log_dir, default_log_dir: str) -> Path:
    """``log_dir / exp_name`` from rlbench's ``(log_dir, exp_name)`` or TorchRL's ``(exp_name, log_dir=...)``.

    Two positional arguments are rlbench's ``(log_dir, exp_name)``. One positional argument is TorchRL's
    ``exp_name`` when ``log_dir=`` is named, else rlbench's ``log_dir`` (``exp_name`` defaults to ``"run"``).
    ``exp_name=`` alone is TorchRL's form, under its default folder ``default_log_dir`` (relative to the
    working directory).
    """
    usage = f"{owner}(log_dir, exp_name) or {owner}(exp_name, log_dir=...)"
    if len(where) > 2:
        raise TypeError(f"{owner}: at most two positional arguments: {usage}")
    if len(where) == 2:
        if log_dir is not None or exp_name is not None:
            raise TypeError(f"{owner}: {'log_dir' if log_dir is not None else 'exp_name'} given twice: {usage}")
        log_dir, exp_name = where
    elif len(where) == 1 and log_dir is not None:
        if exp_name is not None:
            raise TypeError(f"{owner}: exp_name given twice ({where[0]!r} and exp_name={exp_name!r}) beside log_dir=: "
                            f"{usage}")
        exp_name = where[0]
    elif len(where) == 1:
        log_dir = where[0]
    elif log_dir is None and exp_name is not None:
        log_dir = default_log_dir
    elif log_dir is None:
        raise TypeError(f"{owner}: missing where to log: {usage}")
    exp_name = "run" if exp_name is None else exp_name
    if not exp_name or os.sep in str(exp_name) or str(exp_name) in (".", ".."):
        raise ValueError(f"{owner}: exp_name must be a plain directory name, got {exp_name!r}")
    return Path(log_dir) / str(exp_name)


def _plain(value):
    """Hyperparameters as JSON-friendly values (anything else becomes its ``repr``)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "numel", lambda: 2)() == 1:
        return value.item()
    return repr(value)


_VIDEO_DIR = "videos"
_SIZE_TAG = "rlbench-size="  # the true size of a video padded to even dims, in the mp4's "comment" tag
_LAST = (1, 3, 4)  # channels-last: gray, RGB, RGBA
_FIRST = (1, 3)  # channels-first: gray, RGB (4 would be a stack of 4 gray frames as often as RGBA)


def video_frames(name: str, frames):
    """``frames`` as a contiguous ``uint8 [T, H, W, 3]`` NumPy array, validated (what every ``log_video`` takes).

    Args:
        name: the video's name (for messages).
        frames: a torch tensor or NumPy array (or nested lists), ``[T, H, W, C]`` with ``C`` 1 (gray: repeated
            to RGB), 3 (RGB) or 4 (RGBA: alpha dropped), or ``[T, C, H, W]`` with ``C`` 1 or 3. When both dim 1
            and the last dim could be channels (``[T, 3, 4, 3]``), the frames are read as channels-last ``[T, H, W, C]``
            (the layout envs render and :class:`~rlbench.envs.transforms.VideoRecorder` writes). A leading
            batch of one video (``[1, T, C, H, W]``, TensorBoard's and TorchRL's layout) is accepted too.
            ``uint8`` values are used as they are, floats are read in ``[0, 1]`` (clamped) and other
            integers in ``[0, 255]`` (clamped).

    Raises:
        ValueError: naming the shape found and the shapes expected.

    Example:
        >>> import torch
        >>> video_frames("demo", torch.ones(5, 3, 4, 6)).shape  # float [T, C, H, W] in [0, 1]
        (5, 4, 6, 3)
        >>> int(video_frames("demo", torch.ones(5, 3, 4, 6)).max())
        255
    """
    import numpy as np
    import torch

    x = frames if isinstance(frames, torch.Tensor) else torch.as_tensor(np.asarray(frames))
    x = x.detach().cpu()
    found = list(x.shape)
    expected = "[T, H, W, C] (C = 1, 3 or 4) or [T, C, H, W] (C = 1 or 3)"
    if x.ndim == 5 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 4:
        raise ValueError(f"log_video({name!r}): frames must be {expected} (a 4-D tensor), got shape {found}")
    if x.shape[0] == 0:
        raise ValueError(f"log_video({name!r}): no frames (shape {found}); a video needs at least one")
    if x.shape[-1] not in _LAST:
        if x.shape[1] not in _FIRST:
            raise ValueError(f"log_video({name!r}): frames must be {expected}, got shape {found}: neither the "
                             f"last dim nor dim 1 is a channel count")
        x = x.permute(0, 2, 3, 1)
    if x.shape[-1] == 1:
        x = x.expand(*x.shape[:-1], 3)
    elif x.shape[-1] == 4:
        x = x[..., :3]
    if x.dtype == torch.bool:
        x = x.to(torch.uint8) * 255
    elif x.dtype.is_floating_point:
        x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
    elif x.dtype != torch.uint8:
        x = x.clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(x.numpy())


def _import_av(what: str):
    try:
        import av
    except ImportError as err:
        raise ImportError(f"{what} needs PyAV for mp4 (H.264) files: pip install av (it comes with "
                          f"rlbench[notebooks]). Import failed with: {err}") from err
    return av


def write_mp4(path: str | os.PathLike, frames, fps: float = 30) -> Path:
    """Write ``frames`` (see :func:`video_frames` for the layouts) as an H.264 mp4 file with PyAV.

    The pixel format is ``yuv420p`` (what every browser plays), which needs even sizes: an odd height or
    width is padded by repeating the last row or column, and the true size is kept in the file's
    ``comment`` tag so that :func:`read_video` crops it back. H.264 is lossy (``crf`` 18: close to
    visually lossless), so decoded pixels differ from the originals by a few levels.

    Example:
        >>> import os, tempfile, torch
        >>> path = write_mp4(os.path.join(tempfile.mkdtemp(), "demo.mp4"), torch.zeros(4, 7, 9, 3, dtype=torch.uint8))
        >>> read_video(path).shape
        torch.Size([4, 7, 9, 3])
    """
    from fractions import Fraction

    import numpy as np

    av = _import_av("write_mp4")
    arr = video_frames(str(path), frames)
    if not fps > 0:
        raise ValueError(f"write_mp4: fps must be > 0, got {fps!r}")
    _, height, width, _ = arr.shape
    if height % 2 or width % 2:
        arr = np.pad(arr, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    path = Path(path)
    codec = "libx264" if "libx264" in av.codecs_available else "h264"
    # faststart: the index goes first, so a browser starts playing before the whole file has loaded
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        container.metadata["comment"] = f"{_SIZE_TAG}{height}x{width}"
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = arr.shape[2], arr.shape[1], "yuv420p"
        stream.options = {"crf": "18"}
        for image in arr:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())  # flush the encoder's delayed frames
    return path


def read_video(path: str | os.PathLike):
    """Decode a video file (e.g. a :class:`CSVLogger` mp4) as a ``uint8`` tensor ``[T, H, W, 3]`` (RGB).

    A file written by :func:`write_mp4` comes back at its original size (its even-size padding removed).

    Example:
        >>> import os, tempfile, torch
        >>> frames = torch.full((3, 8, 8, 3), 128, dtype=torch.uint8)
        >>> back = read_video(write_mp4(os.path.join(tempfile.mkdtemp(), "grey.mp4"), frames))
        >>> back.shape, bool((back.int() - 128).abs().max() <= 3)
        (torch.Size([3, 8, 8, 3]), True)
    """
    import numpy as np
    import torch

    av = _import_av("read_video")
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"read_video: {path} has no video stream")
        images = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        comment = container.metadata.get("comment", "")
    if not images:
        raise ValueError(f"read_video: {path} holds no frames")
    video = torch.from_numpy(np.stack(images))
    if comment.startswith(_SIZE_TAG):
        height, width = (int(v) for v in comment[len(_SIZE_TAG):].split("x"))
        video = video[:, :height, :width].contiguous()
    return video


def _new_video_path(folder: Path, name: str, step: int) -> Path:
    """``folder/<name>_<step>.mp4`` with a file-safe name and a zero-padded step (files sort by step).

    An existing file is never overwritten: ``-1``, ``-2``, ... are appended instead.
    """
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)).strip(".") or "video"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{safe}_{int(step):09d}"
    path, n = folder / f"{stem}.mp4", 0
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.mp4"
    return path


class CSVLogger:
    """Write scalars to ``log_dir/exp_name/scalars.csv`` in long format: one ``step,name,value`` row each.

    Long rather than wide because metrics arrive at different steps (losses every update, eval
    returns every few thousand frames): a wide table would be mostly empty cells and would need a
    new column, i.e. a rewrite of the file, whenever a new metric first appears. Rows are appended
    as they come (line-buffered writes, flushed every ``flush_every`` rows and on :meth:`flush` /
    :meth:`close`) so a crashed run keeps its log. Read it back with :func:`read_csv_log`.
    Hyperparameters go to ``hparams.json`` beside it, videos (:meth:`log_video`) to mp4 files in
    ``videos/`` beside it.

    Args:
        log_dir: parent directory of the run's directory (created if missing).
        exp_name: the run's name: its directory under ``log_dir`` (default ``"run"``).
        flush_every: rows buffered before they are written to disk.

    TorchRL's spelling works too: ``CSVLogger(exp_name, log_dir=...)`` (with ``log_dir=`` named, the
    positional argument is the experiment's name) and ``CSVLogger(exp_name=...)`` (under ``./csv_logs``,
    TorchRL's default). Two positional arguments are read in rlbench's order ``(log_dir, exp_name)``.

    Example:
        >>> import tempfile
        >>> logger = CSVLogger(tempfile.mkdtemp(), "demo")
        >>> logger.log_scalar("loss", 0.5, step=10)
        >>> logger.log_scalars({"loss": 0.25, "return": 12.0}, step=20)
        >>> logger.log_hparams({"lr": 3e-4, "algo": "ppo"})
        >>> logger.close()
        >>> read_csv_log(logger.path)
        {'loss': [(10, 0.5), (20, 0.25)], 'return': [(20, 12.0)]}
        >>> sorted(p.name for p in logger.run_dir.iterdir())
        ['hparams.json', 'scalars.csv']
    """

    def __init__(self, *where: str | os.PathLike, log_dir: str | os.PathLike | None = None,
                 exp_name: str | None = None, flush_every: int = 100):
        # *where: rlbench's (log_dir, exp_name) or TorchRL's (exp_name,) -- one parameter cannot be both
        self.run_dir = _run_dir("CSVLogger", where, exp_name, log_dir, "csv_logs")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / _CSV_NAME
        self.flush_every = max(1, int(flush_every))
        new = not self.path.exists() or self.path.stat().st_size == 0
        # append: a resumed run (Trainer.load) continues the same file
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(("step", "name", "value"))
        self._pending = 0

    def log_scalar(self, name: str, value, step: int) -> None:
        """Append one ``step,name,value`` row."""
        if self._file is None:
            raise RuntimeError(f"CSVLogger({str(self.path)!r}) is closed")
        self._writer.writerow((int(step), str(name), repr(_to_float(name, value))))
        self._pending += 1
        if self._pending >= self.flush_every:
            self.flush()

    def log_scalars(self, values: Mapping[str, Any], step: int) -> None:
        """Append one row per entry of ``values``, all at ``step``."""
        for name, value in values.items():
            self.log_scalar(name, value, step)

    def log_hparams(self, hparams: Mapping[str, Any]) -> None:
        """Write ``hparams`` (merged with any written before) to ``hparams.json``."""
        path = self.run_dir / _HPARAMS_NAME
        old = json.loads(path.read_text()) if path.exists() else {}
        old.update(_plain(dict(hparams)))
        path.write_text(json.dumps(old, indent=1, sort_keys=True))

    def log_video(self, name: str, frames, step: int, fps: float = 30) -> Path:
        """Write ``frames`` as ``videos/<name>_<step>.mp4`` (H.264, PyAV) beside the CSV; returns its path.

        ``frames``: ``[T, H, W, C]`` or ``[T, C, H, W]``, uint8 or float in ``[0, 1]`` (see
        :func:`video_frames`; channels-last when ambiguous). The name is made file-safe (``"eval/video"``
        becomes ``eval_video``), the step zero-padded; an existing file is never overwritten (a second
        video at the same step gets ``-1``, ``-2``... appended). Read one back with :func:`read_video`.

        Example:
            >>> import tempfile, torch
            >>> logger = CSVLogger(tempfile.mkdtemp(), "demo")
            >>> path = logger.log_video("eval/video", torch.zeros(6, 3, 16, 16), step=500)
            >>> path.relative_to(logger.run_dir).as_posix(), read_video(path).shape
            ('videos/eval_video_000000500.mp4', torch.Size([6, 16, 16, 3]))
        """
        frames = video_frames(name, frames)  # validated before any file is made
        return write_mp4(_new_video_path(self.run_dir / _VIDEO_DIR, name, step), frames, fps=fps)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()
            self._pending = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __repr__(self) -> str:
        return f"CSVLogger(path={str(self.path)!r})"


def read_csv_log(path: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Read a :class:`CSVLogger` file (or its run directory) back as ``{name: [(step, value), ...]}``.

    Rows keep their file order (the order they were logged).
    """
    path = Path(path)
    if path.is_dir():
        path = path / _CSV_NAME
    out: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != ["step", "name", "value"]:
            raise ValueError(f"read_csv_log: {path} is not a CSVLogger file (header {header}, expected "
                             f"['step', 'name', 'value'])")
        for step, name, value in reader:
            out.setdefault(name, []).append((int(step), float(value)))
    return out


class TensorboardLogger:
    """Scalars to TensorBoard event files in ``log_dir/exp_name`` (needs the ``tensorboard`` package).

    Args:
        log_dir: parent directory of the run's event files.
        exp_name: the run's name: its directory under ``log_dir`` (default ``"run"``).

    As :class:`CSVLogger`, it also takes TorchRL's ``TensorboardLogger(exp_name, log_dir=...)``
    (``exp_name=`` alone: under ``./tb_logs``, TorchRL's default).

    Example:
        >>> import tempfile
        >>> try:
        ...     logger = TensorboardLogger(tempfile.mkdtemp(), "demo")
        ... except ImportError as err:  # tensorboard is optional
        ...     logger = None
        >>> if logger is not None:
        ...     logger.log_scalar("loss", 0.5, step=1); logger.close()
    """

    def __init__(self, *where: str | os.PathLike, log_dir: str | os.PathLike | None = None,
                 exp_name: str | None = None):
        run_dir = _run_dir("TensorboardLogger", where, exp_name, log_dir, "tb_logs")
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError(
                "TensorboardLogger needs the 'tensorboard' package: pip install rlbench[tensorboard] "
                f"(or pip install tensorboard). Import failed with: {err}"
            ) from err
        self.run_dir = run_dir
        self.writer = SummaryWriter(log_dir=str(self.run_dir))

    def log_scalar(self, name: str, value, step: int) -> None:
        self.writer.add_scalar(str(name), _to_float(name, value), global_step=int(step))

    def log_scalars(self, values: Mapping[str, Any], step: int) -> None:
        for name, value in values.items():
            self.log_scalar(name, value, step)

    def log_hparams(self, hparams: Mapping[str, Any]) -> None:
        """Record hyperparameters as a text summary (TensorBoard's hparams plugin wants final metrics too)."""
        self.writer.add_text("hparams", json.dumps(_plain(dict(hparams)), indent=1, sort_keys=True))

    def log_video(self, name: str, frames, step: int, fps: float = 30) -> None:
        """``SummaryWriter.add_video`` of ``frames`` (layouts as :func:`video_frames`; channels-last when ambiguous).

        TensorBoard encodes the clip itself (as an animated GIF, through the ``moviepy`` package, which it
        asks for when missing).
        """
        import torch

        video = torch.from_numpy(video_frames(name, frames)).permute(0, 3, 1, 2).unsqueeze(0)  # [1, T, C, H, W]
        self.writer.add_video(str(name), video, global_step=int(step), fps=fps)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """Scalars to Weights & Biases (needs the ``wandb`` package).

    Args:
        log_dir: where wandb keeps its local files.
        exp_name: the run's name.
        project: the wandb project.
        mode: ``"offline"`` (the default: nothing leaves the machine; ``wandb sync`` uploads later),
            ``"online"`` or ``"disabled"``.
        **init_kwargs: passed to ``wandb.init`` (``config=``, ``entity=``, ``tags=``...).

    Example:
        >>> import tempfile
        >>> try:
        ...     logger = WandbLogger(tempfile.mkdtemp(), "demo", mode="disabled")
        ... except ImportError:  # wandb is optional
        ...     logger = None
        >>> if logger is not None:
        ...     logger.log_scalar("loss", 0.5, step=1); logger.close()
    """

    def __init__(self, log_dir: str | os.PathLike, exp_name: str = "run", *, project: str = "rlbench",
                 mode: str = "offline", **init_kwargs):
        try:
            import wandb
        except ImportError as err:
            raise ImportError(
                "WandbLogger needs the 'wandb' package: pip install rlbench[wandb] (or pip install wandb). "
                f"Import failed with: {err}"
            ) from err
        if mode not in ("offline", "online", "disabled"):
            raise ValueError(f"WandbLogger: mode must be 'offline', 'online' or 'disabled', got {mode!r}")
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, name=str(exp_name), dir=str(log_dir), mode=mode, reinit=True,
                              **init_kwargs)

    def log_scalar(self, name: str, value, step: int) -> None:
        self.run.log({str(name): _to_float(name, value)}, step=int(step))

    def log_scalars(self, values: Mapping[str, Any], step: int) -> None:
        # one call per step: wandb wants every metric of a step in a single log()
        self.run.log({str(k): _to_float(k, v) for k, v in values.items()}, step=int(step))

    def log_hparams(self, hparams: Mapping[str, Any]) -> None:
        self.run.config.update(_plain(dict(hparams)), allow_val_change=True)

    def log_video(self, name: str, frames, step: int, fps: float = 30) -> Path:
        """Log ``frames`` as a ``wandb.Video`` under ``name`` (layouts as :func:`video_frames`).

        The mp4 is written by :func:`write_mp4` into ``log_dir/videos`` and handed to wandb as a file (a
        NumPy array would need ``moviepy`` to encode it); returns its path.
        """
        import wandb

        frames = video_frames(name, frames)
        path = write_mp4(_new_video_path(self.log_dir / _VIDEO_DIR, name, step), frames, fps=fps)
        self.run.log({str(name): wandb.Video(str(path), fps=max(1, round(fps)), format="mp4")}, step=int(step))
        return path

    def flush(self) -> None:
        pass  # wandb writes as it goes

    def close(self) -> None:
        self.run.finish()


class MultiLogger:
    """Send every call to several loggers (e.g. a CSV file and the notebook monitor).

    Loggers without an optional method (``log_hparams``, ``log_video``, ``flush``, ``close``) are skipped
    for it; :meth:`log_video` raises when none of them has one (the video would be lost).

    Example:
        >>> class ListLogger:
        ...     def __init__(self):
        ...         self.rows = []
        ...     def log_scalar(self, name, value, step):
        ...         self.rows.append((name, value, step))
        >>> a, b = ListLogger(), ListLogger()
        >>> both = MultiLogger(a, b)
        >>> both.log_scalars({"loss": 1.0}, step=5)
        >>> a.rows == b.rows == [("loss", 1.0, 5)]
        True
    """

    def __init__(self, *loggers: Logger):
        for i, lg in enumerate(loggers):
            if not callable(getattr(lg, "log_scalar", None)):
                raise TypeError(f"MultiLogger: logger #{i} ({type(lg).__name__}) has no log_scalar(name, value, step)")
        self.loggers = list(loggers)

    def log_scalar(self, name: str, value, step: int) -> None:
        for lg in self.loggers:
            lg.log_scalar(name, value, step)

    def log_scalars(self, values: Mapping[str, Any], step: int) -> None:
        for lg in self.loggers:
            log_scalars(lg, values, step)

    def _each(self, method: str, *args) -> None:
        for lg in self.loggers:
            fn = getattr(lg, method, None)
            if callable(fn):
                fn(*args)

    def log_hparams(self, hparams: Mapping[str, Any]) -> None:
        self._each("log_hparams", hparams)

    def log_video(self, name: str, frames, step: int, fps: float = 30) -> list:
        """``log_video`` on every logger that has one; returns their results (e.g. a CSVLogger's path)."""
        writers = [lg for lg in self.loggers if callable(getattr(lg, "log_video", None))]
        if not writers:
            raise TypeError(f"MultiLogger.log_video: none of its loggers "
                            f"({', '.join(type(lg).__name__ for lg in self.loggers)}) has log_video; add a CSVLogger "
                            f"(mp4 files), TensorboardLogger or WandbLogger")
        return [lg.log_video(name, frames, step=step, fps=fps) for lg in writers]

    def flush(self) -> None:
        self._each("flush")

    def close(self) -> None:
        self._each("close")
