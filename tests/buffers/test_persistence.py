"""dumps/loads and state_dict round trips: contents, cursor, sampler state, priorities and RNG, every storage."""
import io
import json

import pytest
import torch
from tensordict import TensorDict

from rlbench.buffers import (
    LazyMemmapStorage,
    LazyTensorStorage,
    ListStorage,
    PrioritizedReplayBuffer,
    RandomSampler,
    ReplayBuffer,
    SamplerWithoutReplacement,
    TensorDictReplayBuffer,
)


def data(n, start=0):
    x = torch.arange(start, start + n, dtype=torch.float32)
    return TensorDict({"x": x, "action": (torch.arange(n) % 3).unsqueeze(-1),
                       "next": {"done": (torch.arange(n) % 5 == 4).unsqueeze(-1)}}, [n])


STORAGES = {
    "list": lambda d: ListStorage(30),
    "tensor": lambda d: LazyTensorStorage(30),
    "memmap": lambda d: LazyMemmapStorage(30, scratch_dir=d),
}
SAMPLERS = {"random": RandomSampler, "without_replacement": SamplerWithoutReplacement}


def make(kind, sampler, d, seed=0, cls=TensorDictReplayBuffer):
    return cls(storage=STORAGES[kind](d), sampler=SAMPLERS[sampler](), batch_size=7,
               generator=torch.Generator().manual_seed(seed))


def same(a, b):
    return (a == b).all() if isinstance(a, TensorDict) else torch.equal(a, b)


def filled(kind, sampler, d):
    rb = make(kind, sampler, d)
    rb.extend(data(25))
    rb.extend(data(12, start=100))  # wraps around: cursor 7
    for _ in range(2):
        rb.sample()  # advance the RNG and the epoch position
    return rb


@pytest.mark.parametrize("sampler", list(SAMPLERS))
@pytest.mark.parametrize("kind", list(STORAGES))
def test_dumps_loads_round_trip(kind, sampler, tmp_path):
    rb = filled(kind, sampler, tmp_path / "live")
    rb.dumps(tmp_path / "saved")
    meta = json.loads((tmp_path / "saved" / "buffer.json").read_text())
    assert meta["storage"]["class"] == type(rb.storage).__name__ and meta["batch_size"] == 7

    rebuilt = ReplayBuffer.loads(tmp_path / "saved")  # class-level: rebuilds every part
    into = make(kind, sampler, tmp_path / "other", seed=123)
    into.loads(tmp_path / "saved")  # instance-level: loads into matching parts
    assert type(rebuilt) is TensorDictReplayBuffer and type(rebuilt.sampler) is type(rb.sampler)
    expected = [rb.sample() for _ in range(6)]  # crosses the epoch end of the sampler without replacement
    for other in (rebuilt, into):
        assert len(other) == len(rb) == 30 and other.storage.write_cursor == rb.storage.write_cursor == 7
        assert same(other[:], rb[:])
        for batch in expected:
            assert same(other.sample(), batch)


@pytest.mark.parametrize("kind", list(STORAGES))
def test_state_dict_round_trip_through_safe_torch_load(kind, tmp_path):
    rb = filled(kind, "without_replacement", tmp_path / "live")
    buf = io.BytesIO()
    torch.save(rb.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)  # tensors and plain values only (TensorDicts load safely too)
    other = make(kind, "without_replacement", tmp_path / "other", seed=9)
    other.load_state_dict(state)
    assert len(other) == 30 and other.storage.write_cursor == 7 and same(other[:], rb[:])
    for _ in range(6):
        assert same(other.sample(), rb.sample())


def test_list_storage_of_objects_needs_allow_pickle(tmp_path):
    from fractions import Fraction  # outside torch's weights-only allow-list

    rb = ReplayBuffer(storage=ListStorage(5), batch_size=2, generator=torch.Generator().manual_seed(0))
    rb.extend([Fraction(1, 2), "text", Fraction(3, 4)])
    rb.dumps(tmp_path / "saved")
    with pytest.raises(Exception, match="allow_pickle=True"):
        ReplayBuffer.loads(tmp_path / "saved")
    back = ReplayBuffer.loads(tmp_path / "saved", allow_pickle=True)
    assert back[:] == rb[:] and back.sample() == rb.sample()


@pytest.mark.parametrize("kind", ["tensor", "memmap"])
def test_prioritized_round_trip(kind, tmp_path):
    rb = PrioritizedReplayBuffer(alpha=0.7, beta=0.4, eps=1e-3, storage=STORAGES[kind](tmp_path / "live"),
                                 batch_size=8, generator=torch.Generator().manual_seed(0))
    rb.extend(data(40))  # wraps
    for _ in range(3):
        batch = rb.sample()
        batch["td_error"] = batch["x"] / 10
        rb.update_tensordict_priority(batch)
    rb.dumps(tmp_path / "saved")
    back = ReplayBuffer.loads(tmp_path / "saved")
    assert type(back) is PrioritizedReplayBuffer and (back.alpha, back.beta, back.eps) == (0.7, 0.4, 1e-3)
    idx = torch.arange(30)
    assert torch.equal(back.sampler.priorities(idx), rb.sampler.priorities(idx))
    for _ in range(4):
        a, b = rb.sample(), back.sample()
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["priority_weight"], b["priority_weight"])


def test_multi_dim_round_trip(tmp_path):
    rb = ReplayBuffer(storage=LazyMemmapStorage(12, scratch_dir=tmp_path / "live", ndim=2), batch_size=5)
    rb.extend(TensorDict({"x": torch.arange(15.0).reshape(5, 3)}, [5, 3]))
    rb.dumps(tmp_path / "saved")
    back = ReplayBuffer.loads(tmp_path / "saved")
    assert back.storage.shape == (4, 3) and back.storage.write_cursor == 1
    assert torch.equal(back[:]["x"], rb[:]["x"]) and torch.equal(back.sample()["x"], rb.sample()["x"])
    into = ReplayBuffer(storage=LazyTensorStorage(12, ndim=2), batch_size=5)
    into.loads(tmp_path / "saved")  # memmap files -> in-memory storage
    assert torch.equal(into[:]["x"], rb[:]["x"]) and len(into) == 12


def test_memmap_loads_in_place_when_asked(tmp_path):
    # issue 13 item 5: a dump is copied by default (tests/buffers/test_safe_loading.py); in_place=True opts out
    rb = ReplayBuffer(storage=LazyMemmapStorage(10, scratch_dir=tmp_path / "live"), batch_size=2)
    rb.extend(data(4))
    rb.dumps(tmp_path / "saved")
    back = ReplayBuffer.loads(tmp_path / "saved", in_place=True)
    assert back.storage.scratch_dir == tmp_path / "saved" / "storage"  # files used where they are
    back.extend(data(1, start=50))
    assert ReplayBuffer.loads(tmp_path / "saved")[4]["x"].item() == 50.0
    rb.dumps(tmp_path / "live")  # dumps into its own scratch_dir: nothing to copy
    assert len(ReplayBuffer.loads(tmp_path / "live")) == 4


def test_loads_mismatch_is_clear(tmp_path):
    rb = ReplayBuffer(storage=LazyTensorStorage(10, ndim=2))
    rb.extend(TensorDict({"x": torch.zeros(2, 5)}, [2, 5]))
    rb.dumps(tmp_path / "s")
    with pytest.raises(ValueError, match="ndim=2, this one has ndim=1"):
        ReplayBuffer(storage=LazyTensorStorage(10)).loads(tmp_path / "s")
    with pytest.raises(ValueError, match=r"holds 10 items \(shape \[2, 5\]\), more than this storage's max_size=4"):
        ReplayBuffer(storage=LazyTensorStorage(4, ndim=2)).loads(tmp_path / "s")


def test_custom_sampler_needs_to_be_passed(tmp_path):
    from rlbench.buffers import Sampler

    class FirstItems(Sampler):
        def sample(self, storage, batch_size):
            return torch.arange(batch_size), {}

    rb = ReplayBuffer(storage=LazyTensorStorage(10), sampler=FirstItems(), batch_size=2)
    rb.extend(data(3))
    rb.dumps(tmp_path / "s")
    with pytest.raises(TypeError, match="not an rlbench sampler; pass sampler=... to loads"):
        ReplayBuffer.loads(tmp_path / "s")
    back = ReplayBuffer.loads(tmp_path / "s", sampler=FirstItems())
    assert back.sample()["x"].tolist() == [0.0, 1.0]


def test_bare_memmap_dir_as_prioritized_buffer(tmp_path):
    rb = ReplayBuffer(storage=LazyMemmapStorage(10, scratch_dir=tmp_path / "mm"))
    rb.extend(data(6))
    back = PrioritizedReplayBuffer.loads(tmp_path / "mm", alpha=0.5, beta=0.5, batch_size=4)
    assert len(back) == 6 and back.sample()["index"].max() < 6  # every stored item got a priority
    assert torch.equal(back.sampler.priorities(torch.arange(6)), torch.ones(6, dtype=torch.float64))
