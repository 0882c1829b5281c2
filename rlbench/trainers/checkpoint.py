"""Checkpoints: save and restore everything a training run needs to continue as if it never stopped.

``save_checkpoint(path, policy=..., optimizer=..., loss=..., buffer=..., collector=..., counters={...})``
writes one file at ``path`` (``torch.save`` of a dict of tensors and plain values) and, for replay
buffers, their own directories beside it (``<path>.buffers.<version>/<name>/``, written by the
buffer's ``dumps``: large storages are memory-mapped files, not one giant pickle). ``load_checkpoint(path,
**same_names)`` loads each component back in place.

**Atomic.** A save that is killed at any point leaves the complete old checkpoint or the complete
new one, never a mix (issue 13): the buffers go to a new directory named after a fresh version,
everything is synced to disk (``os.fsync``), the new file that points at that directory replaces
the old one in one ``os.replace``, and only then are the old buffer directories deleted (with any
left behind by an earlier killed save, and its ``.tmp`` file).

What is saved for each kind of component:

* ``nn.Module`` (models, losses -- a loss's state dict holds its target parameters and e.g. SAC's
  ``log_alpha``), optimizers, LR schedulers, target updaters and anything else with
  ``state_dict()/load_state_dict()`` (a :class:`~rlbench.collectors.Collector`: its in-flight env
  TensorDict, episode bookkeeping and env RNG): their state dict.
* replay buffers (anything with ``dumps``/``loads``): a directory beside the file.
* plain values (dicts of numbers, e.g. trainer counters): stored as they are, returned by
  :func:`load_checkpoint`.
* always: the global RNG states of torch (CPU and CUDA), NumPy and Python's ``random``, restored
  by :func:`load_checkpoint` unless ``restore_rng=False``.

Safety: the file is read with ``torch.load(weights_only=True)``, which only rebuilds tensors and
plain containers and refuses any other pickled object, and the buffers' directories are checked as
``ReplayBuffer.loads`` checks them (only the tensors their metadata declares, no pickled entries),
so opening a checkpoint from elsewhere cannot run code. A refused file raises
:class:`UnsafeCheckpointError` (the class of :mod:`rlbench.buffers`).
"""
from __future__ import annotations

import os
import pickle
import random
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch

from ..buffers import UnsafeCheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "UnsafeCheckpointError", "get_rng_state", "set_rng_state"]

_FORMAT = "rlbench-checkpoint"
_VERSION = 1


# ----------------------------------------------------------------------------------- RNG states
def get_rng_state() -> dict[str, Any]:
    """The global RNG states (torch CPU and CUDA, NumPy, Python ``random``) as tensors and plain values."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    version, internal, gauss = random.getstate()
    state["python"] = {"version": version, "internal": list(internal), "gauss": gauss}
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with torch in practice
        return state
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    # weights_only loading refuses NumPy arrays: the MT19937 key travels as an int64 tensor
    state["numpy"] = {"kind": kind, "keys": torch.from_numpy(keys.astype("int64")), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])
    py = state.get("python")
    if py is not None:
        random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    npst = state.get("numpy")
    if npst is not None:
        import numpy as np

        np.random.set_state((npst["kind"], npst["keys"].numpy().astype("uint32"), npst["pos"], npst["has_gauss"],
                             npst["cached_gaussian"]))


# ------------------------------------------------------------------------------- components
def _is_buffer(obj) -> bool:
    return callable(getattr(obj, "dumps", None)) and callable(getattr(obj, "loads", None))


def _has_state(obj) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))


def _buffer_dirs(path: Path) -> list[Path]:
    """The buffer directories of checkpoint ``path`` in its folder, never another checkpoint's.

    ``<name>.buffers.<version>`` and ``<name>.buffers`` (the layout before versions).
    """
    pattern = re.compile(re.escape(path.name) + r"\.buffers(\.[0-9a-f]{32})?")
    return [p for p in path.parent.iterdir() if p.is_dir() and pattern.fullmatch(p.name)]


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file, or a directory and everything in it) to disk."""
    if path.is_dir():
        for child in path.iterdir():
            _fsync(child)
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    else:
        flags = os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:  # directories cannot be opened on some systems (Windows): their entries are durable there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: str | os.PathLike, **components) -> Path:
    """Save ``components`` (by name) and the global RNG states to ``path``; returns the path.

    The save is atomic: killed at any point, it leaves the previous checkpoint at ``path`` whole (or
    the new one, once it is complete); see the module docstring.

    Args:
        path: the checkpoint file (its parent directory is created). Replay buffers go to
            ``<path>.buffers.<version>/<name>/``.
        **components: modules, optimizers, losses, replay buffers, collectors, target updaters, or
            plain values (numbers, strings, and dicts/lists of them). Load with the same names.

    Example:
        >>> import tempfile, os
        >>> net = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.Adam(net.parameters())
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
        >>> _ = save_checkpoint(path, net=net, optimizer=opt, counters={"frames": 128})
        >>> net2 = torch.nn.Linear(2, 1)
        >>> opt2 = torch.optim.Adam(net2.parameters())
        >>> load_checkpoint(path, net=net2, optimizer=opt2)["counters"]
        {'frames': 128}
        >>> torch.equal(net2.weight, net.weight)
        True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # left by a save that was killed
    buffers = path.with_name(f"{path.name}.buffers.{uuid.uuid4().hex}")  # a new version: the old one stays intact
    entries: dict[str, dict[str, Any]] = {}
    for name, obj in components.items():
        if _is_buffer(obj):
            obj.dumps(buffers / name)
            entries[name] = {"kind": "buffer", "dir": f"{buffers.name}/{name}"}
        elif _has_state(obj):
            entries[name] = {"kind": "state", "type": type(obj).__name__, "state": obj.state_dict()}
        elif obj is None or isinstance(obj, (bool, int, float, str, dict, list, tuple, torch.Tensor)):
            entries[name] = {"kind": "value", "value": obj}
        else:
            raise TypeError(
                f"save_checkpoint: cannot save {name}={type(obj).__name__}: expected an object with "
                "state_dict()/load_state_dict() (module, optimizer, loss, collector...), a replay buffer "
                "(dumps/loads), or a plain value (number, string, dict/list of them, tensor)"
            )
    payload = {"format": _FORMAT, "version": _VERSION, "components": entries, "rng": get_rng_state()}
    if buffers.exists():
        _fsync(buffers)  # the buffers are on disk before any file points at them
    torch.save(payload, tmp)
    _fsync(tmp)
    os.replace(tmp, path)  # the one step that switches from the old checkpoint to the new one
    _fsync(path.parent)
    for old in _buffer_dirs(path):
        if old != buffers:
            shutil.rmtree(old, ignore_errors=True)
    return path


def _read(path: Path, weights_only: bool) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"load_checkpoint: no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"load_checkpoint: {path} holds pickled objects that safe loading (torch.load(weights_only=True)) "
            f"refuses; it was not written by save_checkpoint or has been tampered with. Only if you trust the "
            f"file, pass weights_only=False. Details: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"load_checkpoint: {path} is not an rlbench checkpoint (written by save_checkpoint)")
    return payload


def load_checkpoint(path: str | os.PathLike, *, restore_rng: bool = True, weights_only: bool = True,
                    allow_pickle: bool = False, strict: bool = True, **components) -> dict[str, Any]:
    """Load the checkpoint at ``path`` into ``components`` (in place, matched by name).

    Args:
        path: a file written by :func:`save_checkpoint`.
        restore_rng: also restore the global RNG states saved with it.
        weights_only: safe loading (default). ``False`` unpickles arbitrary objects: only for files
            you trust.
        allow_pickle: let the replay buffers' files unpickle objects (``ReplayBuffer.loads``):
            only for files you trust. By default a buffer directory holding anything but the tensors
            its metadata declares raises :class:`UnsafeCheckpointError`.
        strict: every component passed must be in the checkpoint (an error lists those that are).
        **components: the objects to load into, by the names they were saved under.

    Returns:
        The plain values saved in the checkpoint (e.g. ``{"counters": {...}}``), by name.
    """
    path = Path(path)
    payload = _read(path, weights_only)
    entries = payload["components"]
    missing = [n for n in components if n not in entries]
    if missing and strict:
        raise KeyError(f"load_checkpoint: {path} has no component(s) {missing}; it holds {sorted(entries)}")
    for name, obj in components.items():
        entry = entries.get(name)
        if entry is None:
            continue
        kind = entry["kind"]
        if kind == "buffer":
            if not _is_buffer(obj):
                raise TypeError(f"load_checkpoint: {name!r} was saved from a replay buffer; got {type(obj).__name__}")
            where = Path(entry["dir"])
            if where.is_absolute() or ".." in where.parts:
                raise UnsafeCheckpointError(f"load_checkpoint: {path} points {name!r} at {where}, outside the "
                                            "checkpoint's folder; it was not written by save_checkpoint")
            if allow_pickle:
                obj.loads(path.parent / where, allow_pickle=True)
            else:
                obj.loads(path.parent / where)
        elif kind == "state":
            if not _has_state(obj):
                raise TypeError(
                    f"load_checkpoint: {name!r} was saved from a {entry['type']} (a state dict); "
                    f"{type(obj).__name__} has no load_state_dict()"
                )
            try:
                obj.load_state_dict(entry["state"])
            except (RuntimeError, KeyError, ValueError, TypeError) as err:
                raise type(err)(
                    f"load_checkpoint: cannot load {name!r} (saved from a {entry['type']}) into this "
                    f"{type(obj).__name__}; build it as the saved run did. {err}"
                ) from err
        elif obj is not None:
            raise TypeError(f"load_checkpoint: {name!r} is a plain value in the checkpoint; it is returned, "
                            f"not loaded into {type(obj).__name__} (pass {name}=None or leave it out)")
    if restore_rng:
        set_rng_state(payload["rng"])
    return {n: e["value"] for n, e in entries.items() if e["kind"] == "value"}
