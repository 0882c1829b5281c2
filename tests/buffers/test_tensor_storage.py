"""LazyTensorStorage (rlbench/buffers/storages/tensor.py): plain tensors, layout checks, memory errors."""

import pytest
import torch
from _buffer_data import transitions
from tensordict import TensorDict

from rlbench.buffers import (
    LazyTensorStorage,
    ReplayBuffer,
    StorageMismatchError,
)


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


def test_multi_dim_needs_enough_dims_and_room():
    with pytest.raises(ValueError, match=r"needs data with at least 2 batch dims"):
        LazyTensorStorage(10, ndim=2).prepare(TensorDict({"x": torch.zeros(3)}, [3]))
    with pytest.raises(ValueError, match="smaller than one row of 8 items"):
        LazyTensorStorage(4, ndim=2).prepare(TensorDict({"x": torch.zeros(3, 8)}, [3, 8]))


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
