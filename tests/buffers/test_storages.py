"""Behaviour every storage shares: lazy allocation, max_size checks, multi-dim rows, empty first writes."""

import pytest
import torch
from _buffer_data import transitions
from tensordict import TensorDict

from rlbench.buffers import (
    LazyMemmapStorage,
    LazyTensorStorage,
    ListStorage,
    ReplayBuffer,
    StorageMismatchError,
)


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


def test_first_extend_of_zero_rows(tmp_path):
    for storage in (LazyMemmapStorage(10, scratch_dir=tmp_path / "mm"), LazyTensorStorage(10), ListStorage(10)):
        rb = ReplayBuffer(storage=storage, batch_size=2)
        index = rb.extend(transitions(0))
        assert index.tolist() == [] and len(rb) == 0
        rb.extend(transitions(3))
        assert len(rb) == 3 and rb[:]["observation"][:, 0].tolist() == [0.0, 1.0, 2.0]
