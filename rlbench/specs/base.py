"""``Spec``: the protocol every spec follows (leaf specs and ``Composite``), with the leaf machinery."""
from __future__ import annotations

import torch

from ._utils import _device, _insert_points, _size

__all__ = ["Spec"]


class Spec:
    """Base class of every spec, leaf (one tensor) or :class:`~rlbench.specs.Composite` (a TensorDict).

    So ``isinstance(x, Spec)`` holds for both.

    Every spec has ``shape`` (leading dims: the env's batch size), ``device`` and ``ndim``, and answers
    the same questions: :meth:`mismatch` / :meth:`is_in` (membership, and why not), :meth:`rand` and
    :meth:`zero` (members with extra leading dims), :meth:`project` (the closest member),
    :meth:`expand`, :meth:`to`, :meth:`clone` and ``==`` (by value). A leaf spec also has a ``dtype``
    and its members are tensors; a Composite's members are TensorDicts. Tell them apart with
    ``isinstance(spec, Composite)``.

    Specs compare by value but are mutable (a Composite takes new entries; bounds are tensors), so they
    are unhashable, as gymnasium's spaces are: a value hash would change under a dict that holds the
    spec, an identity hash would break ``a == b -> hash(a) == hash(b)``. Key caches by ``id(spec)``.

    The method bodies here are the leaf implementation, written once for every leaf class; a leaf
    subclass sets ``shape``, ``dtype`` and ``device`` and implements ``_values_bad(x, b)`` (range check
    of a tensor whose shape fits the spec, with extra dims inserted at position ``b``),
    ``_rand(shape, generator)``, ``_project(x)`` and ``_clone_with(shape, device)``. ``Composite``
    overrides the public methods instead.

    Example:
        >>> import torch
        >>> from rlbench.specs import Bounded, Composite, Spec
        >>> leaf = Bounded(-1.0, 1.0, shape=(3,))
        >>> group = Composite(observation=leaf)
        >>> isinstance(leaf, Spec), isinstance(group, Spec), isinstance(group, Composite)
        (True, True, True)
        >>> leaf.is_in(leaf.rand()), group.is_in(group.rand())
        (True, True)
        >>> leaf == Bounded(-1.0, 1.0, shape=(3,))
        True
    """

    shape: torch.Size
    dtype: torch.dtype
    device: torch.device
    # Trailing dims that extra (batch/time) dims may not be inserted after: 1 when the last dim is
    # an event dim (the categories of a one-hot vector), 0 when every dim could be a batch dim.
    _event_ndim: int = 0
    # True when the range differs between elements, so where extra dims sit changes the answer.
    _bounds_vary: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _insert_points(self, shape: torch.Size) -> list[int]:
        return _insert_points(shape, self.shape, self.ndim - self._event_ndim)

    def _shape_msg(self, got) -> str:
        where = "before the last dim" if self._event_ndim else "e.g. a time dim after the batch dims"
        return (
            f"expected shape {tuple(self.shape)} (optionally with extra dims inserted, {where}), "
            f"got {tuple(got)}"
        )

    # ----------------------------------------------------------------- membership
    def mismatch(self, x) -> str | None:
        """Explain why ``x`` is not in this spec, or return ``None`` if it is.

        Example:
            >>> import torch
            >>> from rlbench.specs import Categorical
            >>> Categorical(3).mismatch(torch.tensor(5))
            'values outside {0, ..., 2}, e.g. [5]'
        """
        if not isinstance(x, torch.Tensor):
            return f"expected a torch.Tensor, got {type(x).__name__}"
        if x.dtype != self.dtype:
            return f"expected dtype {self.dtype}, got {x.dtype}"
        if x.shape == self.shape:  # the common case (one env step): no search for extra dims
            return self._values_bad(x, self.ndim)
        points = self._insert_points(x.shape)
        if not points:
            return self._shape_msg(x.shape)
        first = None
        for b in points:
            why = self._values_bad(x, b)
            if why is None:
                return None
            first = first or why
            if not self._bounds_vary:  # every position gives the same answer
                break
        return first

    def is_in(self, x) -> bool:
        """True when ``x`` has this spec's dtype, a compatible shape and values in range."""
        return self.mismatch(x) is None

    def _values_bad(self, x: torch.Tensor, b: int) -> str | None:
        return None

    def _param_view(self, param: torch.Tensor, x: torch.Tensor, b: int) -> torch.Tensor:
        """Reshape a full-shape parameter (e.g. ``low``) so it broadcasts against ``x``."""
        extra = x.ndim - self.ndim
        if param.device != x.device:
            param = param.to(x.device)
        if not extra:
            return param
        return param.reshape(self.shape[:b] + (1,) * extra + self.shape[b:])

    # ---------------------------------------------------------------- generation
    def rand(self, shape=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random member of the spec, with extra leading dims ``shape``.

        Args:
            shape: extra leading dims of the sample.
            generator: a ``torch.Generator`` (on the spec's device) to draw from; torch's global
                RNG when None. Envs pass their own, seeded by ``set_seed``, so random actions are
                reproducible.
        """
        return self._rand(_size(shape) + self.shape, generator)

    def zero(self, shape=None) -> torch.Tensor:
        """An all-zero member of the spec (for one-hot specs, the first category)."""
        return torch.zeros(_size(shape) + self.shape, dtype=self.dtype, device=self.device)

    def project(self, x) -> torch.Tensor:
        """The member of the spec closest to ``x`` (same shape as ``x``, this spec's dtype).

        ``x`` may have any dtype and any values (NaN, +-inf, huge, negative); its shape must fit the
        spec as in :meth:`is_in`.
        """
        x = torch.as_tensor(x, device=self.device)
        if x.shape != self.shape and not self._insert_points(x.shape):
            raise ValueError(f"{type(self).__name__}.project: {self._shape_msg(x.shape)}")
        return self._project(x)

    def _b_of(self, x: torch.Tensor) -> int:
        """Where extra dims of ``x`` sit (the rightmost possible position)."""
        return self.ndim if x.shape == self.shape else self._insert_points(x.shape)[0]

    # ------------------------------------------------------------------ reshaping
    def expand(self, *shape) -> "Spec":
        """A copy with new leading dims: ``shape`` must end with this spec's shape.

        ``-1`` keeps the existing size of that dim.

        Example:
            >>> from rlbench.specs import Bounded
            >>> Bounded(-1.0, 1.0, shape=(3,)).expand(4, -1).shape
            torch.Size([4, 3])
        """
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        shape = [int(s) for s in shape]
        if len(shape) < self.ndim:
            raise ValueError(
                f"cannot expand {type(self).__name__} of shape {tuple(self.shape)} to {tuple(shape)}: the new "
                f"shape has fewer dims; it must end with {tuple(self.shape)}"
            )
        offset = len(shape) - self.ndim
        for i, s in enumerate(self.shape):
            if shape[offset + i] == -1:
                shape[offset + i] = s
            elif shape[offset + i] != s:
                raise ValueError(
                    f"cannot expand {type(self).__name__} of shape {tuple(self.shape)} to {tuple(shape)}: the "
                    f"trailing dims must equal the spec's shape (only new leading dims can be added)"
                )
        if any(s < 0 for s in shape):
            raise ValueError(
                f"cannot expand {type(self).__name__} of shape {tuple(self.shape)} to {tuple(shape)}: -1 is only "
                f"allowed over the spec's existing dims, new leading dims need a size >= 0"
            )
        return self._clone_with(torch.Size(shape), self.device)

    def unbatched(self, batch_ndim: int) -> "Spec":
        """A copy without the first ``batch_ndim`` dims: the spec of one element of the batch.

        An env's ``*_spec_unbatched`` properties are its specs without the env's batch dims. Every
        element of the batch must have the same spec (for a :class:`~rlbench.specs.Bounded`, the same
        bounds), or this raises ``ValueError``.

        Example:
            >>> from rlbench.specs import Bounded
            >>> Bounded(-1.0, 1.0, shape=(4, 3)).unbatched(1).shape
            torch.Size([3])
        """
        batch_ndim = int(batch_ndim)
        if not 0 <= batch_ndim <= self.ndim - self._event_ndim:
            raise ValueError(
                f"{type(self).__name__}.unbatched({batch_ndim}): the spec of shape {tuple(self.shape)} has "
                f"{self.ndim - self._event_ndim} dims that can be batch dims"
            )
        return self._unbatched(batch_ndim)

    def _unbatched(self, batch_ndim: int) -> "Spec":
        return self._clone_with(self.shape[batch_ndim:], self.device)

    def to(self, device) -> "Spec":
        """This spec on ``device`` (``self`` when it is already there)."""
        device = _device(device)
        if device == self.device:
            return self
        return self._clone_with(self.shape, device)

    def clone(self) -> "Spec":
        return self._clone_with(self.shape, self.device)

    def _clone_with(self, shape: torch.Size, device: torch.device) -> "Spec":  # pragma: no cover
        raise NotImplementedError

    def _eq_fields(self) -> tuple:
        return (type(self), self.shape, self.dtype, self.device)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Spec) or type(other) is not type(self):
            return False
        mine, theirs = self._eq_fields(), other._eq_fields()
        return all(
            torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b for a, b in zip(mine, theirs)
        )

    __hash__ = None  # unhashable: see the class docstring

    def _extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self._extra_repr()
        extra = f", {extra}" if extra else ""
        return (
            f"{type(self).__name__}(shape={tuple(self.shape)}{extra}, dtype={str(self.dtype)[6:]}, "
            f"device={self.device})"
        )
