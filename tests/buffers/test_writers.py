"""Writers: exact ring-buffer cursor/length against a reference model; top-k writer against sorting."""
import random

import pytest
import torch
from tensordict import TensorDict

from rlbench.buffers import (
    LazyMemmapStorage,
    LazyTensorStorage,
    ListStorage,
    ReplayBuffer,
    RoundRobinWriter,
    Sampler,
    TensorDictMaxValueWriter,
)


class Recorder(Sampler):
    def __init__(self):
        self.seen = []

    def sample(self, storage, batch_size):
        return torch.zeros(batch_size, dtype=torch.long), {}

    def extend(self, index):
        self.seen.append(index.clone())


@pytest.mark.parametrize("make", [lambda: LazyTensorStorage(7), lambda: ListStorage(7)])
def test_round_robin_matches_reference_ring(make):
    rng = random.Random(0)
    rb = ReplayBuffer(storage=make(), sampler=Recorder(), writer=RoundRobinWriter())
    ring, cursor, total = [None] * 7, 0, 0
    for step in range(40):
        n = rng.choice([1, 2, 3, 6, 7, 9, 16])
        values = list(range(total, total + n))
        index = rb.extend(torch.tensor(values) if isinstance(rb.storage, LazyTensorStorage) else values)
        expected_rows = [(cursor + i) % 7 for i in range(n)][-7:]
        for i, v in enumerate(values):
            ring[(cursor + i) % 7] = v
        cursor, total = (cursor + n) % 7, total + n
        assert index.tolist() == expected_rows and rb.sampler.seen[-1].tolist() == expected_rows
        assert rb.storage.write_cursor == cursor and len(rb) == min(total, 7)
        stored = rb[:]
        stored = stored.tolist() if isinstance(stored, torch.Tensor) else [int(x) for x in stored]
        assert stored == ring[:len(rb)]


def test_add_returns_the_index():
    rb = ReplayBuffer(storage=LazyTensorStorage(3))
    assert [int(rb.add(torch.tensor(float(i)))) for i in range(5)] == [0, 1, 2, 0, 1]
    assert rb[:].tolist() == [3.0, 4.0, 2.0]


def ranked(values):
    values = torch.as_tensor(values, dtype=torch.float32)
    return TensorDict({"score": values.unsqueeze(-1), "id": torch.arange(len(values))}, [len(values)])


@pytest.mark.parametrize("cls", [LazyTensorStorage, LazyMemmapStorage])
def test_max_value_writer_keeps_top_k(cls, tmp_path):
    kwargs = {"scratch_dir": tmp_path} if cls is LazyMemmapStorage else {}
    rb = ReplayBuffer(storage=cls(5, **kwargs), writer=TensorDictMaxValueWriter(rank_key="score"))
    g = torch.Generator().manual_seed(0)
    seen = []
    for _ in range(12):
        values = torch.randn(int(torch.randint(1, 6, (1,), generator=g)), generator=g)
        seen.extend(values.tolist())
        rb.extend(ranked(values))
        expected = sorted(seen, reverse=True)[:5]
        assert sorted(rb[:]["score"].squeeze(-1).tolist(), reverse=True) == pytest.approx(expected)
    assert len(rb) == 5


def test_max_value_writer_fills_in_order_then_replaces_lowest():
    rb = ReplayBuffer(storage=LazyTensorStorage(3), writer=TensorDictMaxValueWriter(rank_key="score"))
    assert rb.extend(ranked([1.0, 2.0])).tolist() == [0, 1]
    # 0.5 takes the free row 2; then 3.0 competes and evicts the lowest stored item, that same 0.5
    assert rb.extend(ranked([0.5, 3.0])).tolist() == [2, 2]
    assert rb[:]["score"].squeeze(-1).tolist() == [1.0, 2.0, 3.0]
    assert rb.extend(ranked([0.1])).tolist() == []  # too low: nothing written
    assert sorted(rb.extend(ranked([5.0, 4.0])).tolist()) == [0, 1]  # rows of 1.0 and 2.0
    assert sorted(rb[:]["score"].squeeze(-1).tolist()) == [3.0, 4.0, 5.0]


@pytest.mark.parametrize("reduction,expected", [("sum", [3.0, 1.0]), ("max", [2.0, 1.0]), ("mean", [1.5, 0.5]),
                                                ("min", [1.0, 0.0])])
def test_max_value_writer_reductions(reduction, expected):
    w = TensorDictMaxValueWriter(rank_key=("next", "reward"), reduction=reduction)
    td = TensorDict({"next": {"reward": torch.tensor([[1.0, 2.0], [0.0, 1.0]])}}, [2])
    assert w._rank(td).tolist() == expected


def test_max_value_writer_errors():
    with pytest.raises(ValueError, match="reduction must be one of"):
        TensorDictMaxValueWriter(reduction="median")
    rb = ReplayBuffer(storage=LazyTensorStorage(3), writer=TensorDictMaxValueWriter(rank_key="score"))
    with pytest.raises(ValueError, match="NaN rank from 'score'"):
        rb.extend(ranked([1.0, float("nan")]))
    with pytest.raises(KeyError, match="rank_key 'score' is not in the data"):
        rb.extend(TensorDict({"other": torch.zeros(2)}, [2]))
    multi = ReplayBuffer(storage=LazyTensorStorage(6, ndim=2), writer=TensorDictMaxValueWriter(rank_key="score"))
    with pytest.raises(ValueError, match="ndim=1 only"):
        multi.extend(TensorDict({"score": torch.zeros(2, 2)}, [2, 2]))


def test_max_value_writer_ranks_survive_reload(tmp_path):
    rb = ReplayBuffer(storage=LazyTensorStorage(3), writer=TensorDictMaxValueWriter(rank_key="score"))
    rb.extend(ranked([1.0, 5.0, 3.0]))
    rb.dumps(tmp_path / "b")
    back = ReplayBuffer.loads(tmp_path / "b")
    assert isinstance(back.writer, TensorDictMaxValueWriter) and back.writer.rank_key == "score"
    back.writer._ranks = None  # e.g. a storage reopened without writer state: ranks come from the data
    back.extend(ranked([4.0]))
    assert sorted(back[:]["score"].squeeze(-1).tolist()) == [3.0, 4.0, 5.0]
