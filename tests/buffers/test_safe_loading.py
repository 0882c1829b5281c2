"""Loading saved buffers is safe: no pickle runs, only declared keys load, short files raise, dumps stay snapshots.

Issue 13, items 1, 4 and 5. The malicious payload is a real one: a pickled object whose ``__reduce__``
runs a shell command that creates a marker file, planted the way tensordict stores a non-tensor
entry (``{"type": "NonTensorData"}`` in ``meta.json`` plus a pickle file).
"""
import json
import os
import pickle

import pytest
import torch
from tensordict import TensorDict

from rlbench.buffers import (
    LazyMemmapStorage,
    LazyTensorStorage,
    ReplayBuffer,
    TensorDictReplayBuffer,
    UnsafeCheckpointError,
    UnsafeLoadError,
)


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant_pickle(data_dir, marker, key="evil"):
    """Add a pickled non-tensor entry to a tensordict memmap directory, as tensordict itself would."""
    meta = json.loads((data_dir / "meta.json").read_text())
    meta[key] = {"type": "NonTensorData"}
    (data_dir / "meta.json").write_text(json.dumps(meta))
    (data_dir / key).mkdir()
    (data_dir / key / "meta.json").write_text(json.dumps(
        {"_type": "<class 'tensordict.tensorclass.NonTensorData'>", "_metadata": None, "_is_non_tensor": True}))
    (data_dir / key / "other.pickle").write_bytes(pickle.dumps({"data": _Evil(marker)}))


def data(n, start=0):
    x = torch.arange(start, start + n, dtype=torch.float32)
    return TensorDict({"x": x, "next": {"reward": x.unsqueeze(-1) * 2}}, [n])


def dumped(tmp_path, kind):
    storage = LazyTensorStorage(10) if kind == "tensor" else LazyMemmapStorage(10, scratch_dir=tmp_path / "live")
    rb = TensorDictReplayBuffer(storage=storage, batch_size=2)
    rb.extend(data(6))
    rb.dumps(tmp_path / "saved")
    return rb, tmp_path / "saved"


# -------------------------------------------------------------------------- item 1: no code runs
@pytest.mark.parametrize("kind", ["tensor", "memmap"])
def test_pickled_entry_in_a_dump_is_refused_and_never_runs(kind, tmp_path):
    marker = tmp_path / "pwned"
    _, saved = dumped(tmp_path, kind)
    plant_pickle(saved / "storage" / "data", marker)
    with pytest.raises(UnsafeCheckpointError, match=r"'evil'.*NonTensorData.*not a tensor the storage declares"):
        ReplayBuffer.loads(saved)
    assert not marker.exists()
    into = TensorDictReplayBuffer(storage=LazyTensorStorage(10), batch_size=2)
    with pytest.raises(UnsafeCheckpointError):
        into.loads(saved)  # the instance-level load too
    assert not marker.exists() and len(into) == 0


def test_pickled_entry_in_a_scratch_dir_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    rb = ReplayBuffer(storage=LazyMemmapStorage(10, scratch_dir=tmp_path / "mm"))
    rb.extend(data(4))
    plant_pickle(tmp_path / "mm" / "data" / "next", marker, key="nested_evil")  # nested levels are checked too
    for load in (LazyMemmapStorage.load, ReplayBuffer.loads):
        with pytest.raises(UnsafeCheckpointError, match="next/nested_evil"):
            load(tmp_path / "mm")
        assert not marker.exists()


def test_undeclared_or_retyped_tensor_entries_are_refused(tmp_path):
    _, saved = dumped(tmp_path, "tensor")
    d = saved / "storage" / "data"
    meta = json.loads((d / "meta.json").read_text())
    # an extra plain tensor the storage never declared
    (d / "extra.memmap").write_bytes(torch.zeros(10).numpy().tobytes())
    meta["extra"] = dict(meta["x"])
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UnsafeCheckpointError, match=r"'extra'.*not declared"):
        ReplayBuffer.loads(saved)
    del meta["extra"]
    meta["x"]["dtype"] = "torch.float64"  # the same file read as another dtype
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UnsafeCheckpointError, match=r"'x'.*torch.float64.*declares torch.float32"):
        ReplayBuffer.loads(saved)
    meta["x"]["dtype"] = "torch.float32"
    meta["_class"] = "tensordict:LazyStackedTensorDict"
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UnsafeCheckpointError, match="LazyStackedTensorDict"):
        ReplayBuffer.loads(saved)


def test_allow_pickle_is_an_explicit_opt_in(tmp_path):
    from fractions import Fraction  # a harmless object outside every allow-list

    _, saved = dumped(tmp_path, "tensor")
    d = saved / "storage" / "data"
    meta = json.loads((d / "meta.json").read_text())
    meta["note"] = {"type": "NonTensorData"}
    (d / "meta.json").write_text(json.dumps(meta))
    (d / "note").mkdir()
    (d / "note" / "meta.json").write_text(json.dumps(
        {"_type": "<class 'tensordict.tensorclass.NonTensorData'>", "_metadata": None, "_is_non_tensor": True}))
    (d / "note" / "other.pickle").write_bytes(pickle.dumps({"data": Fraction(1, 3)}))
    with pytest.raises(UnsafeCheckpointError, match="allow_pickle=True"):
        ReplayBuffer.loads(saved)
    back = ReplayBuffer.loads(saved, allow_pickle=True)  # trusted: loads, the storage keeps its own keys
    assert back[:]["x"].tolist() == [0, 1, 2, 3, 4, 5] and "note" not in back[:].keys()


def test_unsafe_errors_share_one_class():
    assert issubclass(UnsafeLoadError, UnsafeCheckpointError) and issubclass(UnsafeLoadError, RuntimeError)
    assert issubclass(UnsafeCheckpointError, pickle.UnpicklingError)
    from rlbench.trainers import UnsafeCheckpointError as FromTrainers

    assert FromTrainers is UnsafeCheckpointError


# -------------------------------------------------------------------------- item 4: short files
@pytest.mark.parametrize("kind", ["tensor", "memmap"])
def test_truncated_data_file_raises_naming_it(kind, tmp_path):
    _, saved = dumped(tmp_path, kind)
    f = saved / "storage" / "data" / "next" / "reward.memmap"
    os.truncate(f, os.path.getsize(f) // 2)
    with pytest.raises(ValueError, match=r"reward.memmap is 20 bytes, expected 40 .*truncated"):
        ReplayBuffer.loads(saved)
    with pytest.raises(ValueError, match="expected 40"):
        TensorDictReplayBuffer(storage=LazyTensorStorage(10)).loads(saved)


def test_truncated_scratch_dir_and_counters_raise(tmp_path):
    rb = ReplayBuffer(storage=LazyMemmapStorage(10, scratch_dir=tmp_path / "mm"))
    rb.extend(data(4))
    f = tmp_path / "mm" / "data" / "x.memmap"
    os.truncate(f, 8)
    with pytest.raises(ValueError, match=r"x.memmap is 8 bytes, expected 40"):
        LazyMemmapStorage.load(tmp_path / "mm")
    os.truncate(f, 40)
    os.truncate(tmp_path / "mm" / "counters.memmap", 0)
    with pytest.raises(ValueError, match=r"counters.memmap is 0 bytes, expected"):
        LazyMemmapStorage.load(tmp_path / "mm")


def test_sizes_are_recorded_in_the_storage_metadata(tmp_path):
    _, saved = dumped(tmp_path, "memmap")
    meta = json.loads((saved / "storage" / "storage.json").read_text())
    leaves = {"/".join(leaf["key"]): leaf for leaf in meta["leaves"]}
    assert leaves["x"] == {"key": ["x"], "dtype": "torch.float32", "shape": [10], "nbytes": 40}
    assert leaves["next/reward"]["shape"] == [10, 1] and leaves["next/reward"]["nbytes"] == 40


# -------------------------------------------------------------------------- item 5: dumps are snapshots
def test_loaded_memmap_dump_is_a_copy(tmp_path):
    _, saved = dumped(tmp_path, "memmap")
    back = ReplayBuffer.loads(saved)
    assert back.storage.scratch_dir != saved / "storage"
    back.extend(data(3, start=50))
    back.empty()
    again = ReplayBuffer.loads(saved)
    assert len(again) == 6 and again[:]["x"].tolist() == [0, 1, 2, 3, 4, 5]  # the snapshot is unchanged
    chosen = ReplayBuffer.loads(saved, scratch_dir=tmp_path / "mine")
    assert chosen.storage.scratch_dir == tmp_path / "mine" and len(chosen) == 6
    with pytest.raises(FileExistsError, match="not empty"):
        ReplayBuffer.loads(saved, scratch_dir=tmp_path / "mine")  # never writes over existing files


def test_in_place_is_explicit(tmp_path):
    _, saved = dumped(tmp_path, "memmap")
    live = ReplayBuffer.loads(saved, in_place=True)
    assert live.storage.scratch_dir == saved / "storage"
    live.extend(data(1, start=50))
    assert ReplayBuffer.loads(saved)[6]["x"].item() == 50.0
