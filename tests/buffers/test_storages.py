"""Storages: lazy allocation, multi-dim rows, validation errors, memmap files shared across processes."""
import os
import subprocess
import sys

import pytest
import torch
from tensordict import TensorDict

from rlbench.buffers import (
    LazyMemmapStorage,
    LazyTensorStorage,
    ListStorage,
    ReplayBuffer,
    StorageMismatchError,
    UnsafeLoadError,
)


def transitions(n, start=0):
    obs = torch.arange(start, start + n, dtype=torch.float32).unsqueeze(-1).expand(n, 4).clone()
    return TensorDict({
        "observation": obs,
        "action": torch.arange(start, start + n).unsqueeze(-1) % 2,
        "next": {"observation": obs + 1, "reward": torch.ones(n, 1),
                 "done": torch.zeros(n, 1, dtype=torch.bool)},
    }, [n])


@pytest.mark.parametrize("make", [lambda: LazyTensorStorage(10), lambda: LazyMemmapStorage(10)])
def test_lazy_allocation_from_first_write(make, tmp_path):
    s = make()
    if isinstance(s, LazyMemmapStorage):
        s.scratch_dir = tmp_path
    assert not s.initialized and len(s) == 0
    data = transitions(3)
    s.prepare(data)
    assert s.initialized and s.shape == torch.Size([10])
    leaf = s._storage.get(("next", "observation"))
    assert leaf.shape == (10, 4) and leaf.dtype == torch.float32
    assert s._storage.get(("next", "done")).dtype == torch.bool
    s.set(slice(0, 3), data)
    s.set_counters(3, 3)
    assert len(s) == 3
    torch.testing.assert_close(s.get(torch.tensor([2, 0]))["observation"][:, 0], torch.tensor([2.0, 0.0]))
    assert (s.get(slice(None))["observation"][:, 0] == torch.arange(3.0)).all()


def test_memmap_files_and_bounded_ram(tmp_path):
    s = LazyMemmapStorage(1000, scratch_dir=tmp_path)
    s.prepare(transitions(2))
    assert (tmp_path / "data" / "observation.memmap").exists()
    assert (tmp_path / "counters.memmap").exists() and (tmp_path / "storage.json").exists()
    assert os.path.getsize(tmp_path / "data" / "observation.memmap") == 1000 * 4 * 4


def test_plain_tensors():
    s = LazyTensorStorage(5)
    rb = ReplayBuffer(storage=s)
    rb.extend(torch.arange(12.0).reshape(6, 2))  # wraps: the first row is overwritten
    assert rb[:].tolist() == [[10.0, 11.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0], [8.0, 9.0]]
    with pytest.raises(StorageMismatchError, match=r"expected items of shape \[2\] and dtype torch.float32.*\[3\]"):
        rb.extend(torch.zeros(2, 3))
    with pytest.raises(StorageMismatchError, match="expected a tensor"):
        rb.extend(transitions(2))


def test_mismatch_errors_name_the_key():
    rb = ReplayBuffer(storage=LazyTensorStorage(10))
    rb.extend(transitions(3))
    bad = transitions(2)
    bad["next", "reward"] = torch.ones(2, 2)
    with pytest.raises(StorageMismatchError, match=r"key 'next/reward': expected shape \[N, 1\].*got shape \[2, 2\]"):
        rb.extend(bad)
    bad = transitions(2)
    bad["action"] = bad["action"].float()
    with pytest.raises(StorageMismatchError, match=r"key 'action'.*dtype torch.int64.*dtype torch.float32"):
        rb.extend(bad)
    bad = transitions(2)
    del bad["next", "done"]
    with pytest.raises(StorageMismatchError, match="key 'next/done' is missing"):
        rb.extend(bad)
    bad = transitions(2)
    bad["extra"] = torch.zeros(2)
    with pytest.raises(StorageMismatchError, match=r"unexpected key\(s\) \['extra'\]"):
        rb.extend(bad)
    assert len(rb) == 3  # nothing was half-written


@pytest.mark.parametrize("bad", [0, -3, 2.5, None, True])
def test_bad_max_size(bad):
    with pytest.raises(ValueError, match="max_size must be a positive int"):
        LazyTensorStorage(bad)
    with pytest.raises(ValueError, match="max_size must be a positive int"):
        ListStorage(bad)


@pytest.mark.parametrize("cls", [LazyTensorStorage, LazyMemmapStorage])
def test_multi_dim_storage(cls, tmp_path):
    kwargs = {"scratch_dir": tmp_path} if cls is LazyMemmapStorage else {}
    s = cls(12, ndim=2, **kwargs)  # 12 items = 4 rows of 3 envs
    rb = ReplayBuffer(storage=s, batch_size=5)
    data = TensorDict({"x": torch.arange(15).reshape(5, 3)}, [5, 3])  # item (t, env) holds 3t + env
    idx = rb.extend(data)
    assert s.shape == torch.Size([4, 3]) and s.capacity == 4 and s.ndim == 2
    assert len(rb) == 12 and s.write_cursor == 1
    # row 0 was overwritten by t=4; flat index row * 3 + env
    assert idx.tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2]
    assert rb[:]["x"].tolist() == [12, 13, 14, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    batch, info = rb.sample(return_info=True)
    assert batch.shape == (5,)
    assert (batch["x"] == rb[:]["x"][info["index"]]).all()
    with pytest.raises(StorageMismatchError, match="key 'x'"):
        rb.extend(TensorDict({"x": torch.zeros(2, 4, dtype=torch.int64)}, [2, 4]))


def test_multi_dim_needs_enough_dims_and_room():
    with pytest.raises(ValueError, match=r"needs data with at least 2 batch dims"):
        LazyTensorStorage(10, ndim=2).prepare(TensorDict({"x": torch.zeros(3)}, [3]))
    with pytest.raises(ValueError, match="smaller than one row of 8 items"):
        LazyTensorStorage(4, ndim=2).prepare(TensorDict({"x": torch.zeros(3, 8)}, [3, 8]))


def test_list_storage_any_objects():
    rb = ReplayBuffer(storage=ListStorage(3), batch_size=2)
    rb.add("a")
    rb.extend([{"b": 1}, 3.5, None])
    assert len(rb) == 3 and rb[0] == None and rb[1] == {"b": 1} and rb[-1] == 3.5  # noqa: E711
    assert rb[torch.tensor([1, 2])] == [{"b": 1}, 3.5]
    tds = ReplayBuffer(storage=ListStorage(10), batch_size=4)
    tds.extend(transitions(5))
    batch = tds.sample()
    assert batch.shape == (4,) and set(batch.keys()) == {"observation", "action", "next"}


def test_list_storage_save_is_safe_by_default(tmp_path):
    s = ListStorage(5)
    ReplayBuffer(storage=s).extend([torch.ones(2), torch.zeros(2)])
    s.dumps(tmp_path / "t")
    back = ListStorage(5)
    back.loads(tmp_path / "t")  # tensors only: weights_only load works
    assert [x.tolist() for x in back.get(slice(None))] == [[1.0, 1.0], [0.0, 0.0]]

    from fractions import Fraction  # any class outside the weights-only allow-list

    s2 = ListStorage(5)
    ReplayBuffer(storage=s2).add(Fraction(1, 3))
    s2.dumps(tmp_path / "o")
    with pytest.raises(UnsafeLoadError, match="allow_pickle=True"):
        ListStorage(5).loads(tmp_path / "o")
    trusted = ListStorage(5)
    trusted.loads(tmp_path / "o", allow_pickle=True)
    assert trusted.get(0) == Fraction(1, 3) and len(trusted) == 1


CHILD = """
import os, pickle, sys, torch
from tensordict import TensorDict
from rlbench.buffers import ReplayBuffer, LazyMemmapStorage
# 1) a storage handed over by pickle: read the parent's data, write into the shared files
s = pickle.loads(bytes.fromhex(sys.argv[1]))
print(len(s), s.get(slice(None))["x"].sum().item(), flush=True)
s.set(slice(0, 1), TensorDict({"x": torch.tensor([-1.0])}, [1]))
# 2) fill a new memmap buffer, then die without any clean-up
rb = ReplayBuffer(storage=LazyMemmapStorage(8, scratch_dir=sys.argv[2]))
rb.extend(TensorDict({"x": torch.arange(11.0)}, [11]))
os._exit(1)
"""


def test_memmap_shared_with_another_process_and_survives_it(tmp_path):
    """One child process (they are slow to start): shared reads/writes, then a buffer left behind by a dead process."""
    import pickle
    s = LazyMemmapStorage(6, scratch_dir=tmp_path / "shared")
    rb = ReplayBuffer(storage=s)
    rb.extend(TensorDict({"x": torch.arange(4.0)}, [4]))
    blob = pickle.dumps(s)
    assert len(blob) < 2000  # only the directory travels, not the data
    d = tmp_path / "orphan"
    proc = subprocess.run([sys.executable, "-c", CHILD, blob.hex(), str(d)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.split() == ["4", "6.0"]
    assert rb[0]["x"].item() == -1.0  # the other process's write is visible here

    s = LazyMemmapStorage.load(d)
    assert len(s) == 8 and s.write_cursor == 3
    assert s.get(slice(None))["x"].tolist() == [8.0, 9.0, 10.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    rb = ReplayBuffer.loads(d)  # the same, as a buffer; writing goes on at the cursor
    rb.extend(TensorDict({"x": torch.tensor([100.0])}, [1]))
    assert rb[3]["x"].item() == 100.0 and rb.storage.write_cursor == 4


def test_memmap_rejects_accelerator_device():
    with pytest.raises(ValueError, match="files on the CPU"):
        LazyMemmapStorage(10, device="meta")


def test_load_missing_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="no storage.json"):
        LazyMemmapStorage.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no buffer.json"):
        ReplayBuffer.loads(tmp_path)


# ------------------------------------------------------------------ issue 13 item 10: fail early, say what is wrong
def test_list_storage_refuses_a_tensordict_of_another_layout_at_extend():
    from tensordict import TensorDict

    rb = ReplayBuffer(storage=ListStorage(10), batch_size=3)
    rb.add(TensorDict({"x": torch.zeros(3), "y": torch.zeros(2, dtype=torch.int64)}, []))
    cases = [
        (TensorDict({"x": torch.zeros(3)}, []), r"key 'y' is missing"),
        (TensorDict({"x": torch.zeros(3), "y": torch.zeros(2, dtype=torch.int64), "z": torch.zeros(1)}, []),
         r"unexpected key\(s\) \['z'\]"),
        (TensorDict({"x": torch.zeros(4), "y": torch.zeros(2, dtype=torch.int64)}, []),
         r"key 'x': expected shape \[3\] and dtype torch.float32, got shape \[4\] and dtype torch.float32"),
        (TensorDict({"x": torch.zeros(3), "y": torch.zeros(2)}, []), r"key 'y'.*torch.int64.*got.*torch.float32"),
        (TensorDict({"x": torch.zeros(2, 3), "y": torch.zeros(2, 2, dtype=torch.int64)}, [2]),
         r"batch size \[2\], the stored TensorDicts have \[\]"),
    ]
    for bad, message in cases:
        with pytest.raises(StorageMismatchError, match=message):
            rb.add(bad)
    assert len(rb) == 1 and rb.sample().shape == (3,)  # nothing was written; sampling works
    rb.extend([TensorDict({"x": torch.ones(3), "y": torch.ones(2, dtype=torch.int64)}, [])] * 2)
    with pytest.raises(StorageMismatchError, match="item 1 of the data written: key 'y' is missing"):
        rb.extend([TensorDict({"x": torch.ones(3), "y": torch.ones(2, dtype=torch.int64)}, []),
                   TensorDict({"x": torch.ones(3)}, [])])
    assert len(rb) == 3
    rb.empty()
    rb.add(TensorDict({"other": torch.zeros(1)}, []))  # an emptied storage takes a new layout
    mixed = ReplayBuffer(storage=ListStorage(10))
    mixed.extend([torch.zeros(2), torch.zeros(5), "text"])  # non-TensorDict items of any shape stay welcome
    assert len(mixed) == 3


def test_list_storage_layout_survives_a_reload(tmp_path):
    from tensordict import TensorDict

    s = ListStorage(5)
    ReplayBuffer(storage=s).add(TensorDict({"x": torch.zeros(3)}, []))
    s.dumps(tmp_path / "s")
    back = ListStorage(5)
    back.loads(tmp_path / "s", allow_pickle=True)
    with pytest.raises(StorageMismatchError, match="key 'x' is missing"):
        ReplayBuffer(storage=back).add(TensorDict({"y": torch.zeros(3)}, []))


def test_first_extend_of_zero_rows(tmp_path):
    for storage in (LazyMemmapStorage(10, scratch_dir=tmp_path / "mm"), LazyTensorStorage(10), ListStorage(10)):
        rb = ReplayBuffer(storage=storage, batch_size=2)
        index = rb.extend(transitions(0))
        assert index.tolist() == [] and len(rb) == 0
        rb.extend(transitions(3))
        assert len(rb) == 3 and rb[:]["observation"][:, 0].tolist() == [0.0, 1.0, 2.0]


def test_tensor_storage_larger_than_memory_says_how_much_and_what_to_use():
    from tensordict import TensorDict

    rb = ReplayBuffer(storage=LazyTensorStorage(10**9))
    frames = TensorDict({"pixels": torch.zeros(2, 84, 84, 3, dtype=torch.uint8), "action": torch.zeros(2, 1)}, [2])
    with pytest.raises(MemoryError) as err:
        rb.extend(frames)
    message = str(err.value)
    assert "21172000000000 bytes" in message and "'pixels': 21168000000000 bytes" in message
    assert "'action': 4000000000 bytes" in message and "LazyMemmapStorage" in message and "RAM" in message
    assert not rb.storage.initialized and len(rb) == 0


def test_tensor_storage_allocation_failure_is_explained(monkeypatch):
    from tensordict import TensorDict

    real_zeros = torch.zeros

    def failing_zeros(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 4000 bytes")

    monkeypatch.setattr(torch, "zeros", failing_zeros)
    rb = ReplayBuffer(storage=LazyTensorStorage(100))
    with pytest.raises(MemoryError, match=r"LazyTensorStorage\(max_size=100\) needs 4000 bytes.*'x': 4000 bytes"):
        rb.extend(TensorDict({"x": real_zeros(2, 10)}, [2]))
