"""``Composite``: a nested dict of specs describing a whole TensorDict."""
from __future__ import annotations

from typing import Iterator

import torch
from tensordict import TensorDict, TensorDictBase

from ._utils import _device, _insert_points, _size
from .base import Spec

__all__ = ["Composite"]


def _key_tuple(key) -> tuple:
    if isinstance(key, str):
        return (key,)
    if isinstance(key, tuple) and key and all(isinstance(k, str) for k in key):
        return key
    raise KeyError(f"spec keys are strings or tuples of strings, got {key!r}")


def _key_str(key) -> str:
    key = _key_tuple(key)
    return repr(key[0]) if len(key) == 1 else repr(key)


class Composite(Spec):
    """A nested dict of specs describing a TensorDict, with a batch ``shape`` shared by all entries.

    A :class:`~rlbench.specs.Spec` like the leaf specs (same questions, TensorDicts for members), without a
    ``dtype``: each entry has its own.

    Keys may be nested: ``spec["next", "observation"]`` and ``spec[("next", "observation")]`` are the
    same. Every entry's shape must start with the composite's ``shape``.

    Example:
        >>> from rlbench.specs import Categorical, Composite, Unbounded
        >>> spec = Composite(observation=Unbounded((4,)), action=Categorical(2))
        >>> sorted(spec.keys())
        ['action', 'observation']
        >>> td = spec.rand()
        >>> spec.is_in(td)
        True
    """

    def __init__(self, specs: dict | None = None, shape=(), device=None, **kwargs):
        self.shape = _size(shape)
        self.device = _device(device)
        self._specs: dict[str, Spec] = {}
        for key, spec in {**(specs or {}), **kwargs}.items():
            self[key] = spec

    # ------------------------------------------------------------ dict interface
    def __setitem__(self, key, spec) -> None:
        key = _key_tuple(key)
        if len(key) > 1:
            sub = self._specs.get(key[0])
            if sub is None:
                sub = self._specs[key[0]] = Composite(shape=self.shape, device=self.device)
            elif not isinstance(sub, Composite):
                raise KeyError(f"cannot set {key!r}: {key[0]!r} holds a leaf spec, not a Composite")
            sub[key[1:]] = spec
            return
        if isinstance(spec, dict):
            spec = Composite(spec, shape=self.shape, device=self.device)
        if not isinstance(spec, Spec):
            raise TypeError(f"entry {key[0]!r} must be a Spec or Composite, got {type(spec).__name__}")
        if spec.shape[: self.ndim] != self.shape:
            raise ValueError(
                f"entry {key[0]!r} has shape {tuple(spec.shape)}, which does not start with the Composite's "
                f"batch shape {tuple(self.shape)}; expand it first, e.g. spec.expand({(*self.shape, *spec.shape)})"
            )
        self._specs[key[0]] = spec

    def __getitem__(self, key):
        key = _key_tuple(key)
        try:
            spec = self._specs[key[0]]
        except KeyError:
            raise KeyError(f"no spec under key {key[0]!r}; available keys: {sorted(self._specs)}") from None
        if len(key) == 1:
            return spec
        if not isinstance(spec, Composite):
            raise KeyError(f"{key[0]!r} is a leaf spec; it has no entry {key[1:]!r}")
        return spec[key[1:]]

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __delitem__(self, key) -> None:
        key = _key_tuple(key)
        if len(key) > 1:
            sub = self[key[:-1]]
            if not isinstance(sub, Composite):
                raise KeyError(f"cannot delete {key!r}: {key[:-1]!r} is a leaf spec, not a Composite")
            del sub[key[-1]]
            return
        if key[0] not in self._specs:
            raise KeyError(f"no spec under key {key[0]!r} to delete; available keys: {sorted(self._specs)}")
        del self._specs[key[0]]

    def __contains__(self, key) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def keys(self, include_nested: bool = False, leaves_only: bool = False) -> list:
        """Entry keys; with ``include_nested`` nested keys come as tuples."""
        out = []
        for k, spec in self._specs.items():
            is_comp = isinstance(spec, Composite)
            if not (leaves_only and is_comp):
                out.append(k)
            if include_nested and is_comp:
                out.extend((k, *_key_tuple(sub)) for sub in spec.keys(True, leaves_only))
        return out

    def items(self, include_nested: bool = False, leaves_only: bool = False):
        return [(k, self[k]) for k in self.keys(include_nested, leaves_only)]

    def values(self, include_nested: bool = False, leaves_only: bool = False):
        return [self[k] for k in self.keys(include_nested, leaves_only)]

    def update(self, other) -> "Composite":
        """Set every entry of ``other`` (a Composite or a dict) in place; returns ``self``."""
        for k, v in (other.items() if isinstance(other, Composite) else dict(other).items()):
            self[k] = v
        return self

    def select(self, *keys) -> "Composite":
        """A new Composite with only ``keys`` (nested keys allowed; entries are shared, not copied)."""
        out = Composite(shape=self.shape, device=self.device)
        for k in keys:
            out[k] = self[k]
        return out

    def exclude(self, *keys) -> "Composite":
        """A copy without ``keys`` (keys that are absent are ignored)."""
        out = self.clone()
        for k in keys:
            if k in out:
                del out[k]
        return out

    def empty(self) -> "Composite":
        return Composite(shape=self.shape, device=self.device)

    # ----------------------------------------------------------------- membership
    def mismatches(self, td, prefix: tuple = ()) -> list[str]:
        """Every way ``td`` differs from this spec, one readable line per key.

        Keys of ``td`` that the spec does not describe are allowed. ``td``'s batch size must be this
        spec's ``shape``, optionally with extra dims inserted (a ``[4, T]`` rollout of a ``[4]`` env).

        Example:
            >>> import torch
            >>> from tensordict import TensorDict
            >>> from rlbench.specs import Binary, Composite, Unbounded
            >>> spec = Composite(observation=Unbounded((3,)), done=Binary(1, dtype=torch.bool))
            >>> for line in spec.mismatches(TensorDict(observation=torch.zeros(3, dtype=torch.int64))):
            ...     print(line)
            key 'observation': expected dtype torch.float32, got torch.int64
            key 'done': missing from the data (expected Binary(shape=(1,), n=1, dtype=bool, device=cpu))
        """
        where = "the data" if not prefix else f"key {_key_str(prefix)}"
        if not isinstance(td, TensorDictBase):
            return [f"{where}: expected a TensorDict, got {type(td).__name__}"]
        batch = getattr(td, "batch_size", None)
        if batch is not None and len(batch) >= self.ndim and not _insert_points(batch, self.shape):
            return [
                f"{where}: expected batch size {tuple(self.shape)} (optionally with extra dims inserted), "
                f"got batch size {tuple(batch)}"
            ]
        out = []
        for k, spec in self._specs.items():
            key = prefix + (k,)
            name = _key_str(key)
            if k not in td.keys():
                out.append(f"key {name}: missing from the data (expected {spec!r})")
                continue
            value = td.get(k)
            if isinstance(spec, Composite):
                if not isinstance(value, TensorDictBase):
                    out.append(f"key {name}: expected a nested TensorDict, got {type(value).__name__}")
                else:
                    out.extend(spec.mismatches(value, key))
                continue
            why = spec.mismatch(value)
            if why:
                out.append(f"key {name}: {why}")
        return out

    def mismatch(self, td) -> str | None:
        """All of :meth:`mismatches` in one string, or ``None`` when ``td`` is in the spec."""
        found = self.mismatches(td)
        return "\n".join(found) if found else None

    def is_in(self, td) -> bool:
        return not self.mismatches(td)

    # ---------------------------------------------------------------- generation
    def _build(self, fn, shape) -> TensorDict:
        shape = _size(shape)
        data = {k: (s._build(fn, shape) if isinstance(s, Composite) else fn(s, shape)) for k, s in self._specs.items()}
        return TensorDict(data, batch_size=shape + self.shape, device=self.device)

    def rand(self, shape=None, generator: torch.Generator | None = None) -> TensorDict:
        """A random TensorDict drawn from every leaf spec (see :meth:`Spec.rand`)."""
        return self._build(lambda s, sh: s.rand(sh, generator), shape)

    def zero(self, shape=None) -> TensorDict:
        return self._build(lambda s, sh: s.zero(sh), shape)

    def project(self, td) -> TensorDict:
        """A shallow copy of ``td`` with every entry the spec describes projected into it."""
        out = td.copy()
        for k, spec in self._specs.items():
            if k in td.keys():
                out.set(k, spec.project(td.get(k)))
        return out

    # ------------------------------------------------------------------ reshaping
    def expand(self, *shape) -> "Composite":
        """A copy with new leading batch dims (``-1`` keeps an existing dim), applied to every entry.

        Example:
            >>> from rlbench.specs import Composite, Unbounded
            >>> Composite(observation=Unbounded((3,))).expand(4)["observation"].shape
            torch.Size([4, 3])
        """
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        shape = [int(s) for s in shape]
        offset = len(shape) - self.ndim
        if offset < 0 or any(shape[offset + i] not in (-1, s) for i, s in enumerate(self.shape)):
            raise ValueError(
                f"cannot expand a Composite of shape {tuple(self.shape)} to {tuple(shape)}: the new shape must "
                f"end with {tuple(self.shape)} (or -1 in those dims); only new leading dims can be added"
            )
        shape[offset:] = self.shape
        if any(s < 0 for s in shape):
            raise ValueError(
                f"cannot expand a Composite of shape {tuple(self.shape)} to {tuple(shape)}: -1 is only allowed "
                f"over existing dims, new leading dims need a size >= 0"
            )
        shape = torch.Size(shape)
        out = Composite(shape=shape, device=self.device)
        for k, spec in self._specs.items():
            out[k] = spec.expand(*shape, *spec.shape[self.ndim:])
        return out

    def unbatched(self, batch_ndim: int) -> "Composite":
        """A copy without the first ``batch_ndim`` batch dims, applied to every entry (see :meth:`Spec.unbatched`).

        Example:
            >>> from rlbench.specs import Composite, Unbounded
            >>> Composite(observation=Unbounded((4, 3)), shape=(4,)).unbatched(1)["observation"].shape
            torch.Size([3])
        """
        batch_ndim = int(batch_ndim)
        if not 0 <= batch_ndim <= self.ndim:
            raise ValueError(
                f"Composite.unbatched({batch_ndim}): the Composite has {self.ndim} batch dims "
                f"(shape {tuple(self.shape)})"
            )
        out = Composite(shape=self.shape[batch_ndim:], device=self.device)
        for k, spec in self._specs.items():
            out[k] = spec.unbatched(batch_ndim)
        return out

    def to(self, device) -> "Composite":
        device = _device(device)
        out = Composite(shape=self.shape, device=device)
        for k, spec in self._specs.items():
            out[k] = spec.to(device)
        return out

    def clone(self) -> "Composite":
        out = Composite(shape=self.shape, device=self.device)
        for k, spec in self._specs.items():
            out[k] = spec.clone()
        return out

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, Composite)
            and self.shape == other.shape
            and self.device == other.device
            and self._specs.keys() == other._specs.keys()
            and all(self._specs[k] == other._specs[k] for k in self._specs)
        )

    __hash__ = None  # unhashable, as every Spec (mutable, compared by value)

    def __repr__(self) -> str:
        lines = [f"Composite(shape={tuple(self.shape)}, device={self.device}"]
        for k, spec in self._specs.items():
            body = repr(spec).replace("\n", "\n    ")
            lines.append(f"    {k}: {body}")
        return "\n".join(lines) + ")"
