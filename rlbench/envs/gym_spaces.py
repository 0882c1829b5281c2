"""Map gymnasium / legacy gym spaces to rlbench specs, and convert values between NumPy and torch.

The mapping (``space_to_spec``):

==================  ===========================================================================
gym space           rlbench spec
==================  ===========================================================================
``Box``             ``Bounded(low, high)``; ``Unbounded`` when every bound is infinite
``Discrete(n, s)``  ``Categorical(n)`` (``OneHot(n)`` for one-hot actions); values are shifted
                    by ``-s`` so the spec always counts from 0
``MultiDiscrete``   ``MultiCategorical(nvec)`` (start offsets shifted away as for ``Discrete``)
``MultiBinary``     ``Binary(n)`` (int8, as gym)
``Dict``            ``Composite`` with the same (nested) keys
``Tuple``           ``Composite`` with keys ``"0"``, ``"1"``, ...
==================  ===========================================================================

float64 ``Box`` spaces become **float32** specs: torch models run in float32 and a float64 observation
would silently promote every layer it touches. Values are cast on the way in, and actions are cast
back to the space's dtype on the way out.

Spaces are recognised by class name (``Box``, ``Discrete``, ...), so the same code serves
``gymnasium.spaces`` and the legacy ``gym.spaces`` without importing ``gym``.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from tensordict import TensorDict

from ..specs import Binary, Bounded, Categorical, Composite, MultiCategorical, MultiOneHot, OneHot, Spec, Unbounded

__all__ = ["space_to_spec", "numpy_to_torch", "torch_to_numpy", "SUPPORTED_SPACES"]

SUPPORTED_SPACES = ("Box", "Discrete", "MultiDiscrete", "MultiBinary", "Dict", "Tuple")


def space_kind(space) -> str | None:
    """The supported space class ``space`` is (or derives from), by name; None if unsupported."""
    for cls in type(space).__mro__:
        if cls.__name__ in SUPPORTED_SPACES and cls.__module__.split(".")[0] in ("gymnasium", "gym"):
            return cls.__name__
    return None


def _unsupported(space, where: str = "") -> TypeError:
    return TypeError(
        f"cannot map gym space {space!r} (type {type(space).__module__}.{type(space).__name__}){where} to an "
        f"rlbench spec; supported spaces are {', '.join(SUPPORTED_SPACES)} (Dict and Tuple may nest). "
        f"Wrap the env in a gymnasium ObservationWrapper/ActionWrapper that exposes one of these."
    )


def torch_dtype(np_dtype) -> torch.dtype:
    """The torch dtype a space of NumPy dtype ``np_dtype`` maps to (float64 becomes float32)."""
    np_dtype = np.dtype(np_dtype)
    if np_dtype == np.float64:
        return torch.float32
    try:
        return torch.from_numpy(np.zeros(0, dtype=np_dtype)).dtype
    except TypeError:
        raise TypeError(f"gym space dtype {np_dtype} has no torch equivalent") from None


_NP_DTYPES: dict = {}


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The NumPy dtype matching a torch dtype."""
    out = _NP_DTYPES.get(dtype)
    if out is None:
        out = _NP_DTYPES[dtype] = torch.zeros(0, dtype=dtype).numpy().dtype
    return out


def _start(space):
    """A Discrete/MultiDiscrete space's start offset, or None when it counts from 0."""
    start = getattr(space, "start", None)
    if start is None:
        return None
    start = np.asarray(start, dtype=np.int64)
    return None if not start.any() else (int(start) if start.ndim == 0 else start)


def space_to_spec(
    space,
    batch_size=(),
    device=None,
    categorical_action_encoding: bool = True,
):
    """The rlbench spec of a gym(nasium) space, with leading dims ``batch_size``.

    Args:
        space: a ``gymnasium.spaces`` (or legacy ``gym.spaces``) instance.
        batch_size: leading dims of the spec (an env's batch size).
        device: device of the spec.
        categorical_action_encoding: map ``Discrete`` to ``Categorical`` (integer index). When False,
            ``Discrete`` maps to ``OneHot`` and a 1-d ``MultiDiscrete`` to ``MultiOneHot`` (for
            actions of policies that output one-hot vectors).

    Raises:
        TypeError: for spaces with no spec equivalent (``Text``, ``Graph``, ``Sequence``, ...).

    Example:
        >>> from gymnasium import spaces
        >>> space_to_spec(spaces.Discrete(3, start=1))
        Categorical(shape=(), n=3, dtype=int64, device=cpu)
        >>> space_to_spec(spaces.Box(-1.0, 1.0, (2,), dtype=np.float64)).dtype
        torch.float32
    """
    batch = torch.Size(batch_size)
    kind = space_kind(space)
    if kind == "Box":
        dtype = torch_dtype(space.dtype)
        shape = (*batch, *space.shape)
        low, high = np.asarray(space.low), np.asarray(space.high)
        if dtype.is_floating_point and np.isneginf(low).all() and np.isposinf(high).all():
            return Unbounded(shape, dtype=dtype, device=device)
        low_t = torch.as_tensor(low.astype(np.float64))
        high_t = torch.as_tensor(high.astype(np.float64))
        return Bounded(low_t, high_t, shape, dtype=dtype, device=device)
    if kind == "Discrete":
        n = int(space.n)
        if categorical_action_encoding:
            return Categorical(n, batch, dtype=torch.int64, device=device)
        return OneHot(n, (*batch, n), device=device)
    if kind == "MultiDiscrete":
        nvec = np.asarray(space.nvec, dtype=np.int64)
        if nvec.ndim == 1:
            if categorical_action_encoding:
                return MultiCategorical(nvec, (*batch, *nvec.shape), device=device)
            return MultiOneHot(nvec, (*batch, int(nvec.sum())), device=device)
        if (nvec == nvec.flat[0]).all() and categorical_action_encoding:
            # a uniform N-d MultiDiscrete is an N-d Categorical
            return Categorical(int(nvec.flat[0]), (*batch, *nvec.shape), device=device)
        raise TypeError(
            f"cannot map {space!r}: a MultiDiscrete with a {nvec.ndim}-d nvec is only supported when all its "
            f"entries are equal (it then maps to Categorical); flatten the space with a gymnasium wrapper"
        )
    if kind == "MultiBinary":
        shape = tuple(np.atleast_1d(np.asarray(space.n)).tolist())
        return Binary(shape[-1], (*batch, *shape), dtype=torch.int8, device=device)
    if kind in ("Dict", "Tuple"):
        out = Composite(shape=batch, device=device)
        for key, sub in _children(space, kind):
            out[key] = space_to_spec(sub, batch, device, categorical_action_encoding)
        return out
    raise _unsupported(space)


def _children(space, kind: str):
    if kind == "Dict":
        return [(str(k), sub) for k, sub in space.spaces.items()]
    return [(str(i), sub) for i, sub in enumerate(space.spaces)]


# ------------------------------------------------------------------------ leaves
class Leaf(NamedTuple):
    """One array-valued entry of a (possibly nested) gym space, as the wrapper reads it.

    ``key`` is its TensorDict key, ``path`` the sequence of dict keys / tuple indices that reach it in
    a gym value, ``dtype`` the NumPy dtype of its spec, ``shape`` its event shape and ``offset`` the
    ``start`` to subtract (Discrete / MultiDiscrete), or None.
    """

    key: tuple
    path: tuple
    dtype: np.dtype
    shape: tuple
    offset: Any

    def get(self, value):
        for p in self.path:
            value = value[p]
        return value


def space_leaves(space, key: tuple = ()) -> list[Leaf]:
    """Flatten a space into its array-valued :class:`Leaf` entries (depth first, in key order)."""
    kind = space_kind(space)
    if kind in ("Dict", "Tuple"):
        out = []
        items = space.spaces.items() if kind == "Dict" else enumerate(space.spaces)
        for k, sub in items:
            for leaf in space_leaves(sub, key + (str(k),)):
                out.append(leaf._replace(path=(k, *leaf.path)))
        return out
    spec = space_to_spec(space)
    return [Leaf(key, (), numpy_dtype(spec.dtype), tuple(spec.shape), _start(space) if kind != "Box" else None)]


def leaf_array(leaf: Leaf, value) -> np.ndarray:
    """A fresh array of the leaf's spec dtype holding ``value`` (start offsets removed)."""
    arr = np.array(value, dtype=leaf.dtype)  # always a copy: gym envs may reuse their buffers
    if leaf.offset is not None:
        arr -= np.asarray(leaf.offset, dtype=leaf.dtype)
    return arr


class ObservationReader:
    """Reads gym observations into rlbench tensors: built once from the observation space, used every step.

    A ``Dict`` space keeps its (nested) keys; any other space is the ``"observation"`` entry (a ``Tuple``
    gives ``("observation", "0")``, ...). The same reader serves one env and a vector env's batch: the
    leading batch dim, when there is one, just passes through.

    Args:
        space: the (single) observation space; None for no observation at all (pixels only).

    Attributes:
        leaves: the :class:`Leaf` entries, with their TensorDict keys (a string when :attr:`flat`).
        flat: whether every key is one level deep (no nested TensorDict).
        simple: ``(key, numpy dtype)`` when the observation is one array with no start offset
            (CartPole & co): the case the NumPy fast paths handle; else None.

    Example:
        >>> from gymnasium import spaces
        >>> reader = ObservationReader(spaces.Box(-1.0, 1.0, (3,)))
        >>> reader.simple
        ('observation', dtype('float32'))
        >>> reader.read(np.zeros(3))["observation"].dtype
        torch.float32
        >>> nested = ObservationReader(spaces.Dict(pos=spaces.Box(0, 1, (2,)), inner=spaces.Dict(k=spaces.Discrete(3))))
        >>> nested.flat, sorted(nested.read({"pos": np.ones(2), "inner": {"k": 2}}))
        (False, ['inner', 'pos'])
    """

    def __init__(self, space=None):
        leaves = []
        if space is not None:
            prefix = () if space_kind(space) == "Dict" else ("observation",)
            leaves = [leaf._replace(key=prefix + leaf.key) for leaf in space_leaves(space)]
        self.flat = all(len(leaf.key) == 1 for leaf in leaves)
        self.simple = None
        if self.flat:
            if len(leaves) == 1 and not leaves[0].path and leaves[0].offset is None:
                self.simple = (leaves[0].key[0], leaves[0].dtype)
            leaves = [leaf._replace(key=leaf.key[0]) for leaf in leaves]
        self.leaves = leaves

    def read(self, obs) -> dict:
        """``{key: tensor}`` of a gym observation (nested dicts for nested keys); always fresh copies."""
        if self.simple is not None:  # the common case (one Box leaf): skip the generic leaf walk
            key, dtype = self.simple
            return {key: torch.from_numpy(np.array(obs, dtype=dtype))}  # copy: envs may reuse buffers
        if self.flat:
            return {leaf.key: torch.from_numpy(leaf_array(leaf, leaf.get(obs))) for leaf in self.leaves}
        data = {}
        for leaf in self.leaves:
            d = data
            for k in leaf.key[:-1]:
                d = d.setdefault(k, {})
            d[leaf.key[-1]] = torch.from_numpy(leaf_array(leaf, leaf.get(obs)))
        return data


# -------------------------------------------------------------------- conversion
def numpy_to_torch(value, spec, space=None):
    """Convert a gym value (array, scalar, dict or tuple of them) to tensors matching ``spec``.

    Leaves get the spec's dtype (float64 arrays become float32) and device; Dict and Tuple values
    become TensorDicts (Tuple entries under keys ``"0"``, ``"1"``, ...). Pass the gym ``space`` to
    subtract ``Discrete``/``MultiDiscrete`` start offsets.

    Example:
        >>> from gymnasium import spaces
        >>> space = spaces.Discrete(3, start=1)
        >>> numpy_to_torch(np.int64(3), space_to_spec(space), space)
        tensor(2)
        >>> numpy_to_torch(np.zeros(2), Unbounded((2,))).dtype
        torch.float32
    """
    if isinstance(spec, Composite):
        kind = space_kind(space) if space is not None else None
        data = {}
        for key, sub in spec.items():
            if isinstance(value, dict):
                item = value[key]
            else:
                item = value[int(key)]
            sub_space = None
            if kind == "Dict":
                sub_space = space.spaces[key]
            elif kind == "Tuple":
                sub_space = space.spaces[int(key)]
            data[key] = numpy_to_torch(item, sub, sub_space)
        return TensorDict(data, batch_size=spec.shape, device=spec.device)
    arr = np.array(value, dtype=numpy_dtype(spec.dtype))
    start = _start(space) if space is not None and space_kind(space) in ("Discrete", "MultiDiscrete") else None
    if start is not None:
        arr -= np.asarray(start, dtype=arr.dtype)
    return torch.from_numpy(arr).to(spec.device)


def torch_to_numpy(value, space, spec=None):
    """Convert tensors (or a TensorDict) to the value ``space`` expects, e.g. an action for ``env.step``.

    Casts to the space's dtype, adds ``start`` offsets back and turns one-hot vectors (when ``spec``
    is a ``OneHot``/``MultiOneHot``) into indices. Dict and Tuple spaces give dicts and tuples.

    Example:
        >>> from gymnasium import spaces
        >>> torch_to_numpy(torch.tensor(1), spaces.Discrete(3, start=1))
        2
        >>> torch_to_numpy(torch.tensor([0.0, 1.0, 0.0]), spaces.Discrete(3), OneHot(3, dtype=torch.float32))
        1
    """
    kind = space_kind(space)
    if kind in ("Dict", "Tuple"):
        items = {}
        for key, sub in _children(space, kind):
            items[key] = torch_to_numpy(value.get(key), sub, None if spec is None else spec[key])
        if kind == "Tuple":
            return tuple(items[str(i)] for i in range(len(items)))
        return {k: items[str(k)] for k in space.spaces}
    if kind is None:
        raise _unsupported(space)
    value = torch.as_tensor(value)
    if isinstance(spec, OneHot):
        value = value.to(torch.int64).argmax(-1)
    elif isinstance(spec, MultiOneHot):
        value = torch.stack([p.to(torch.int64).argmax(-1) for p in value.split(spec.nvec, -1)], -1)
    arr = value.detach().cpu().numpy()
    start = _start(space) if kind in ("Discrete", "MultiDiscrete") else None
    if kind == "Discrete" and arr.ndim == 0:
        return int(arr) + (start or 0)
    arr = arr.astype(space.dtype, copy=False)
    if start is not None:
        arr = arr + start
    return arr


def make_action_converter(space, spec: Spec, on_error: Callable[[torch.Tensor], None]) -> Callable:
    """A fast ``tensor -> gym action`` function specialised once for ``space`` and ``spec``.

    Integer actions are range-checked in NumPy / Python (cheap), calling ``on_error(action)``
    (which raises) when out of range; other kinds are left to the caller's spec check.
    ``spec`` includes the batch dims of a vector env.
    """
    kind = space_kind(space)
    start = _start(space) if kind in ("Discrete", "MultiDiscrete") else None
    if kind == "Discrete" and isinstance(spec, Categorical):
        n, offset = spec.n, start or 0
        if spec.ndim == 0:
            def convert(action):
                a = action.item()
                if not 0 <= a < n:
                    on_error(action)
                return a + offset
            return convert

        def convert_batch(action):
            try:
                a = action.numpy()  # the common case (CPU, no grad): half the cost of detach().cpu()
            except (RuntimeError, TypeError):
                a = action.detach().cpu().numpy()
            # one comparison instead of min() and max(): negatives wrap to huge values as unsigned
            if a.dtype == np.int64 and (a.view(np.uint64) >= n).any():
                on_error(action)
            elif a.dtype != np.int64 and a.size and (a.min() < 0 or a.max() >= n):
                on_error(action)
            return a + offset if offset else a
        return convert_batch
    if kind == "MultiDiscrete" and isinstance(spec, (MultiCategorical, Categorical)):
        nvec = np.asarray(space.nvec, dtype=np.int64)

        def convert_multi(action):
            a = action.detach().cpu().numpy()
            if (a < 0).any() or (a >= nvec).any():
                on_error(action)
            return a + start if start is not None else a
        return convert_multi
    if kind == "MultiBinary":
        def convert_binary(action):
            a = action.detach().cpu().numpy()
            if ((a != 0) & (a != 1)).any():
                on_error(action)
            return a.astype(space.dtype, copy=False)
        return convert_binary
    if kind == "Box":
        np_dtype = np.dtype(space.dtype)

        def convert_box(action):
            return action.detach().cpu().numpy().astype(np_dtype, copy=False)
        return convert_box
    if kind in ("Discrete", "MultiDiscrete"):  # one-hot encodings
        return lambda action: torch_to_numpy(action, space, spec)
    raise TypeError(
        f"gym action space {space!r} is not supported: actions must be one of Box, Discrete, MultiDiscrete, "
        f"MultiBinary (a Dict/Tuple action space needs a gymnasium ActionWrapper that flattens it)"
    )
