"""How a replay buffer names its parts on disk so that ``ReplayBuffer.loads(path)`` can rebuild them.

Each part (storage, sampler, writer) is recorded as its class name plus the constructor arguments
read back from the object's attributes (``name`` or ``_name``), when they are JSON values. Classes
are looked up by name in rlbench's own modules only, so loading never imports arbitrary code.
"""
from __future__ import annotations

import inspect
import json
from typing import Any

import torch

_MISSING = object()


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def describe(obj, skip: tuple = ()) -> dict[str, Any]:
    """``{"class": name, "kwargs": {...} or None}``; kwargs is None when they cannot be read back."""
    kwargs: dict[str, Any] | None = {}
    for name, param in inspect.signature(type(obj).__init__).parameters.items():
        if name == "self" or name in skip or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        value = getattr(obj, name, getattr(obj, "_" + name, _MISSING))
        if isinstance(value, torch.device):
            value = str(value)
        if isinstance(value, tuple):
            value = {"__tuple__": list(value)}
        if value is _MISSING or not _jsonable(value):
            if param.default is not inspect.Parameter.empty:
                continue  # fall back to the default
            kwargs = None
            break
        kwargs[name] = value
    return {"class": type(obj).__name__, "kwargs": kwargs}


def _restore(value):
    if isinstance(value, dict) and set(value) == {"__tuple__"}:
        return tuple(value["__tuple__"])
    return value


def rebuild(desc: dict[str, Any], namespace: dict[str, Any], what: str):
    """Construct the part described by ``desc`` from the classes in ``namespace``."""
    cls = namespace.get(desc["class"])
    if cls is None:
        raise TypeError(f"cannot rebuild the {what} {desc['class']!r}: not an rlbench {what}; "
                        f"pass {what}=... to loads()")
    if desc.get("kwargs") is None:
        raise TypeError(f"cannot rebuild the {what} {desc['class']!r}: its constructor arguments were not saved; "
                        f"pass {what}=... to loads()")
    return cls(**{k: _restore(v) for k, v in desc["kwargs"].items()})
