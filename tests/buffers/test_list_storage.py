"""ListStorage (rlbench/buffers/storages/list.py): any objects, safe saving, TensorDict layout checks."""

import pytest
import torch
from _buffer_data import transitions
from tensordict import TensorDict

from rlbench.buffers import (
    ListStorage,
    ReplayBuffer,
    StorageMismatchError,
    UnsafeLoadError,
)


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


def test_list_storage_refuses_a_tensordict_of_another_layout_at_extend():

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

    s = ListStorage(5)
    ReplayBuffer(storage=s).add(TensorDict({"x": torch.zeros(3)}, []))
    s.dumps(tmp_path / "s")
    back = ListStorage(5)
    back.loads(tmp_path / "s", allow_pickle=True)
    with pytest.raises(StorageMismatchError, match="key 'x' is missing"):
        ReplayBuffer(storage=back).add(TensorDict({"y": torch.zeros(3)}, []))
