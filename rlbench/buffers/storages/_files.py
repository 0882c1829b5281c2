"""Reading a storage's tensordict memory-mapped files without trusting them.

Tensor storages save their data in tensordict's memmap format: at each level a ``meta.json`` that
names every entry (a tensor with its dtype and shape, or a nested collection) and one
``<key>.memmap`` file per tensor. tensordict can also keep non-tensor entries there as pickles, and
its loader unpickles them (it only warns), so a directory from elsewhere could carry one that runs
code when it is loaded (issue 13). And mapping a file shorter than its metadata says extends it with
zeros, so a truncated file would load as zeros.

So :func:`load` first walks the ``meta.json`` files (JSON only, nothing is imported or unpickled)
and accepts nothing but plain TensorDicts of tensors, with exactly the keys, dtypes and shapes that
the storage's own metadata declares (:func:`schema`, saved in ``storage.json``), each file of the
size they imply; only then does tensordict read the directory, with ``allow_pickle=False``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import torch
from tensordict import TensorDict, TensorDictBase

from .base import StorageMismatchError, UnsafeCheckpointError

__all__ = ["schema", "nbytes", "check_size", "load", "write_json"]

_DTYPES = {str(d): d for d in vars(torch).values() if isinstance(d, torch.dtype)}
_PLAIN_CLASS = "tensordict:TensorDict"  # "_class" since tensordict's format version 1
_PLAIN_TYPE = "<class 'tensordict._td.TensorDict'>"  # "_type", the older name


def nbytes(shape, dtype) -> int:
    """Bytes of a dense tensor of ``shape`` and ``dtype`` (a ``torch.dtype`` or its ``str``)."""
    dtype = _DTYPES[dtype] if isinstance(dtype, str) else dtype
    n = 1
    for d in shape:
        n *= int(d)
    return n * torch.empty((), dtype=dtype).element_size()


def _name(key) -> str:
    return "/".join(key) if isinstance(key, tuple) else key


def schema(td: TensorDictBase) -> list[dict]:
    """What a storage declares about its data: every leaf's key (as a list), dtype, shape and size in bytes."""
    out = []
    for key, x in td.items(True, True):
        key = (key,) if isinstance(key, str) else tuple(key)
        out.append({"key": list(key), "dtype": str(x.dtype), "shape": list(x.shape),
                    "nbytes": nbytes(x.shape, x.dtype)})
    return out


def check_size(file: Path, expected: int, what: str) -> None:
    """Raise if ``file`` does not hold exactly ``expected`` bytes (``what`` says what it holds)."""
    actual = os.path.getsize(file)
    if actual == expected:
        return
    why = ("the file was truncated (disk full? an interrupted copy?); restore it from a complete copy"
           if actual < expected else "it does not match its metadata")
    raise ValueError(f"{file} is {actual} bytes, expected {expected} ({what}): {why}")


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (a reader sees the old file or the new one, never half)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


@dataclass
class _Leaf:
    key: tuple
    file: Path | None
    dtype: str
    shape: list


def _walk(directory: Path, prefix: tuple, allow_pickle: bool, leaves: list, others: list) -> None:
    meta_file = directory / "meta.json"
    try:
        meta = json.loads(meta_file.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{meta_file} is missing: {directory} is not a complete tensordict memmap "
                                "directory (an interrupted copy?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{meta_file} is not valid JSON ({err}): the file is damaged") from None
    if not isinstance(meta, dict):
        raise UnsafeCheckpointError(f"{meta_file} does not describe a TensorDict")
    what = f"the entry {_name(prefix)!r}" if prefix else "the data"
    cls, typ = meta.get("_class"), meta.get("_type")
    if not (cls == _PLAIN_CLASS or (cls is None and typ == _PLAIN_TYPE)):
        raise UnsafeCheckpointError(
            f"{directory}: {what} is saved as a {cls or typ}, not a plain TensorDict; rlbench storages write "
            "plain TensorDicts of tensors only, so these files were written by something else or changed")
    files, dirs = {}, {}
    for p in directory.iterdir():
        if p.is_dir():
            dirs[unquote(p.name)] = p
        elif p.name.endswith(".memmap"):
            files[unquote(p.name[: -len(".memmap")])] = p
    for name, entry in meta.items():
        if not isinstance(entry, dict):  # the batch size, device, class names...
            continue
        key = (*prefix, name)
        shown = _name(key)
        kind = entry.get("type")
        if kind is not None:
            if kind == "TensorDict":
                if name not in dirs:
                    raise FileNotFoundError(f"{directory / name} is missing: the entry {shown!r} that {meta_file} "
                                            "names is not there (an interrupted copy?)")
                _walk(dirs[name], key, allow_pickle, leaves, others)
            elif allow_pickle:
                others.append(key)  # trusted: tensordict loads it, the storage drops it (it holds tensors only)
            else:
                raise UnsafeCheckpointError(
                    f"{directory}: entry {shown!r} is a {kind} (a Python object, which tensordict stores as a "
                    "pickle), not a tensor the storage declares; loading it would unpickle it, which can run code "
                    "from the files. Nothing was loaded. Only if you trust the files, load with allow_pickle=True")
            continue
        if "dtype" not in entry or "shape" not in entry:
            continue  # not an entry (tensordict skips these too)
        if entry.get("is_nested"):
            raise UnsafeCheckpointError(f"{directory}: entry {shown!r} is a nested tensor, which rlbench storages "
                                        "never write")
        dtype, shape = entry["dtype"], entry["shape"]
        if dtype not in _DTYPES or not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise UnsafeCheckpointError(f"{directory}: entry {shown!r} has an invalid dtype {dtype!r} or shape "
                                        f"{shape!r}")
        file = files.get(name)
        if file is None and nbytes(shape, dtype):
            raise FileNotFoundError(f"{directory / (name + '.memmap')} is missing: the data of {shown!r} "
                                    f"({nbytes(shape, dtype)} bytes) is not there (an interrupted copy?)")
        leaves.append(_Leaf(key, file, dtype, shape))


def load(directory, leaves: list[dict] | None = None, *, allow_pickle: bool = False,
         mode: str | None = None) -> TensorDictBase:
    """Check the tensordict memmap ``directory`` against the declared ``leaves``, then load it.

    Args:
        directory: a directory written by ``TensorDict.memmap``.
        leaves: the storage's :func:`schema` (``None`` for files saved before it was recorded: then any
            plain tensors are accepted, still no other kind of entry).
        allow_pickle: let tensordict unpickle non-tensor entries (trusted files only); they are dropped
            from the result.
        mode: ``"r"`` maps the files copy-on-write (the files never change), ``None`` shared.

    Raises:
        UnsafeCheckpointError: an entry that is not a declared tensor (a pickle, an undeclared key,
            another dtype or shape than declared, another TensorDict class).
        ValueError: a file of another size than its metadata implies (named, with the expected size).
        StorageMismatchError: a declared key is missing.
    """
    directory = Path(directory)
    found: list[_Leaf] = []
    others: list[tuple] = []
    _walk(directory, (), allow_pickle, found, others)
    if leaves is not None:
        declared = {tuple(leaf["key"]): leaf for leaf in leaves}
        names = sorted(_name(k) for k in declared)
        for leaf in found:
            want = declared.get(leaf.key)
            shown = _name(leaf.key)
            if want is None:
                raise UnsafeCheckpointError(
                    f"{directory}: entry {shown!r} is not declared by the storage's metadata (storage.json declares "
                    f"{names}); the files were changed after they were written. Nothing was loaded")
            if leaf.dtype != want["dtype"]:
                raise UnsafeCheckpointError(f"{directory}: entry {shown!r} is stored as {leaf.dtype} but the storage "
                                            f"declares {want['dtype']}")
            if leaf.shape != list(want["shape"]):
                raise UnsafeCheckpointError(f"{directory}: entry {shown!r} has shape {leaf.shape} but the storage "
                                            f"declares {list(want['shape'])}")
        missing = sorted(_name(k) for k in declared.keys() - {leaf.key for leaf in found})
        if missing:
            raise StorageMismatchError(f"{directory}: the saved data has no key(s) {missing}, which its storage.json "
                                       "declares; the files are incomplete")
    for leaf in found:
        if leaf.file is not None:
            check_size(leaf.file, nbytes(leaf.shape, leaf.dtype),
                       f"{_name(leaf.key)!r} of shape {leaf.shape} and dtype {leaf.dtype}")
    kwargs = {"mode": mode} if mode is not None else {}
    td = TensorDict.load_memmap(directory, allow_pickle=allow_pickle, **kwargs)
    return td.exclude(*others) if others else td
