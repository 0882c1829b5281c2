"""ReplayBuffer behaviour: sampling, indexing, iteration, transforms, prefetch, prioritized glue, errors."""
import gc
import threading
import time

import pytest
import torch
from tensordict import TensorDict

from rlbench.buffers import (
    EmptyBufferError,
    LazyMemmapStorage,
    LazyTensorStorage,
    ListStorage,
    PrioritizedReplayBuffer,
    RandomSampler,
    ReplayBuffer,
    SamplerWithoutReplacement,
    TensorDictReplayBuffer,
)
from rlbench.envs.transforms import RewardScaling


def data(n, start=0):
    x = torch.arange(start, start + n, dtype=torch.float32)
    return TensorDict({"x": x, "reward": x.unsqueeze(-1) * 2, "next": {"x": x + 1}}, [n])


@pytest.fixture(params=["list", "tensor", "memmap"])
def storage(request, tmp_path):
    return {"list": lambda: ListStorage(20), "tensor": lambda: LazyTensorStorage(20),
            "memmap": lambda: LazyMemmapStorage(20, scratch_dir=tmp_path / "mm")}[request.param]()


def test_sample_reads_stored_items(storage):
    rb = ReplayBuffer(storage=storage, batch_size=16)
    rb.extend(data(25))  # wraps: items 5..24 remain
    batch, info = rb.sample(return_info=True)
    assert batch.shape == (16,) and info["index"].shape == (16,)
    assert ((batch["x"] >= 5) & (batch["x"] < 25)).all()
    assert torch.equal(batch["x"], rb[info["index"]]["x"])  # the index says where each item came from
    assert torch.equal(batch["next", "x"], batch["x"] + 1) and torch.equal(batch["reward"].squeeze(-1), batch["x"] * 2)
    assert rb.sample(3).shape == (3,)


def test_sample_errors():
    rb = ReplayBuffer(storage=LazyTensorStorage(10))
    with pytest.raises(EmptyBufferError, match="cannot sample from an empty ReplayBuffer"):
        rb.sample(4)
    rb.extend(data(3))
    with pytest.raises(ValueError, match=r"sample\(\) needs a batch size"):
        rb.sample()
    for bad in (0, -1, 2.0):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            rb.sample(bad)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        ReplayBuffer(batch_size=0)
    with pytest.raises(ValueError, match="prefetch must be an int >= 0"):
        ReplayBuffer(prefetch=-1)
    with pytest.raises(TypeError, match="storage must be an rlbench Storage"):
        ReplayBuffer(storage=[1, 2])


def test_indexing_valid_region_only():
    rb = ReplayBuffer(storage=LazyTensorStorage(10))
    rb.extend(data(4))
    assert rb[0]["x"].item() == 0 and rb[-1]["x"].item() == 3
    assert rb[:]["x"].tolist() == [0, 1, 2, 3] and rb[1:3]["x"].tolist() == [1, 2] and rb[::-2]["x"].tolist() == [3, 1]
    assert rb[torch.tensor([3, -4])]["x"].tolist() == [3, 0] and rb[[2, 2]]["x"].tolist() == [2, 2]
    assert rb[torch.tensor([True, False, False, True])]["x"].tolist() == [0, 3]
    for bad in (4, -5):
        with pytest.raises(IndexError, match=f"index {bad} is out of range for a .* holding 4 items"):
            rb[bad]
    with pytest.raises(IndexError, match="index 7 is out of range for a buffer holding 4 items"):
        rb[torch.tensor([0, 7])]
    with pytest.raises(IndexError, match=r"boolean index must have shape \[4\]"):
        rb[torch.ones(10, dtype=torch.bool)]
    with pytest.raises(TypeError, match="indexed by an int, a slice"):
        rb["x"]
    for empty in (ReplayBuffer(storage=LazyTensorStorage(3)), ReplayBuffer(storage=ListStorage(3))):
        with pytest.raises(IndexError, match="out of range for a storage holding 0 items"):
            empty[0]


def test_iter_is_one_epoch(storage):
    rb = ReplayBuffer(storage=storage, batch_size=6)
    rb.extend(data(15))
    batches = list(rb)
    assert [len(b) for b in batches] == [6, 6, 3]
    assert sorted(torch.cat([b["x"] for b in batches]).tolist()) == list(range(15))
    wo = ReplayBuffer(storage=LazyTensorStorage(20), sampler=SamplerWithoutReplacement(), batch_size=4)
    wo.extend(data(10))
    batches = list(wo)
    assert sorted(torch.cat([b["x"] for b in batches]).tolist()) == list(range(10)) and wo.sampler.ran_out
    with pytest.raises(ValueError, match="needs its batch_size"):
        list(ReplayBuffer(storage=LazyTensorStorage(3)))


def test_iter_follows_a_slice_sampler_epoch():
    from rlbench.buffers import SliceSamplerWithoutReplacement

    done = torch.zeros(40, 1, dtype=torch.bool)
    done[9::10] = True  # four episodes of 10 steps
    rb = ReplayBuffer(storage=LazyTensorStorage(40), sampler=SliceSamplerWithoutReplacement(slice_len=5),
                      batch_size=10)
    rb.extend(TensorDict({"t": torch.arange(40), "next": {"done": done}}, [40]))
    slices = torch.cat([b["t"] for b in rb]).reshape(-1, 5)
    assert len(slices) == 4 and sorted((slices[:, 0] // 10).tolist()) == [0, 1, 2, 3]  # one slice per episode
    assert ((slices[:, 1:] - slices[:, :-1]) == 1).all()


def test_transform_runs_on_samples_not_on_storage():
    rb = ReplayBuffer(storage=LazyTensorStorage(10), batch_size=5, transform=RewardScaling(loc=1.0, scale=10.0))
    rb.extend(data(10))
    batch = rb.sample()
    torch.testing.assert_close(batch["reward"].squeeze(-1), batch["x"] * 2 * 10 + 1)
    assert torch.equal(rb[:]["reward"].squeeze(-1), torch.arange(10.0) * 2)  # stored items untouched
    for b in rb:
        torch.testing.assert_close(b["reward"].squeeze(-1), b["x"] * 20 + 1)
    plain = ReplayBuffer(storage=LazyTensorStorage(10), batch_size=4, transform=lambda x: -x)
    plain.extend(torch.arange(1, 11))
    assert (plain.sample() < 0).all()


def test_pin_memory_is_a_no_op_without_cuda():
    rb = ReplayBuffer(storage=LazyTensorStorage(10), batch_size=4, pin_memory=True,
                      generator=torch.Generator().manual_seed(0))
    ref = ReplayBuffer(storage=LazyTensorStorage(10), batch_size=4, generator=torch.Generator().manual_seed(0))
    for b in (rb, ref):
        b.extend(data(10))
    batch = rb.sample()
    assert torch.equal(batch["x"], ref.sample()["x"])
    if torch.cuda.is_available():
        assert batch["x"].is_pinned()


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("rlbench-prefetch")]


def test_prefetch_samples_and_cleans_up():
    before = len(prefetch_threads())
    rb = ReplayBuffer(storage=LazyTensorStorage(100), sampler=RandomSampler(), batch_size=50, prefetch=3)
    rb.extend(data(100))
    counts = torch.zeros(100)
    for _ in range(40):
        batch, info = rb.sample(return_info=True)
        assert batch.shape == (50,) and torch.equal(batch["x"], info["index"].float())
        counts += torch.bincount(info["index"], minlength=100)
    # ThreadPoolExecutor starts a thread only when none is idle, so up to `prefetch` of them exist
    assert 1 <= len(prefetch_threads()) - before <= 3
    assert counts.min() > 0 and counts.max() < 60  # uniform: 20 expected each
    assert rb.sample(7).shape == (7,)  # another batch size drains the queue
    rb.empty()
    assert len(prefetch_threads()) == before
    with pytest.raises(EmptyBufferError):
        rb.sample()
    rb.extend(data(10))
    assert rb.sample().shape == (50,)  # the error was not left queued
    del rb
    gc.collect()
    deadline = time.monotonic() + 5
    while len(prefetch_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(prefetch_threads()) == before


def test_prefetch_reraises_thread_errors():
    before = len(prefetch_threads())

    def boom(batch):
        raise RuntimeError("transform failed in the thread")

    rb = ReplayBuffer(storage=LazyTensorStorage(10), batch_size=2, prefetch=2, transform=boom)
    rb.extend(data(4))
    with pytest.raises(RuntimeError, match="transform failed in the thread"):
        rb.sample()
    rb.close()
    assert len(prefetch_threads()) == before


def test_tensordict_buffer_writes_index():
    rb = TensorDictReplayBuffer(storage=LazyTensorStorage(10, ndim=2), batch_size=8)
    rb.extend(TensorDict({"x": torch.arange(12.0).reshape(6, 2)}, [6, 2]))
    batch = rb.sample()
    assert batch["index"].dtype == torch.int64 and torch.equal(batch["x"], rb[:]["x"][batch["index"]])
    with pytest.raises(TypeError, match="has no priorities"):
        rb.update_priority(batch["index"], torch.ones(8))
    with pytest.raises(KeyError, match="'index' entry"):
        rb.update_tensordict_priority(TensorDict({"td_error": torch.ones(2)}, [2]))


def test_prioritized_buffer_glue():
    rb = PrioritizedReplayBuffer(alpha=1.0, beta=1.0, eps=1e-6, storage=LazyTensorStorage(50), batch_size=64,
                                 generator=torch.Generator().manual_seed(0))
    rb.extend(data(50))
    batch, info = rb.sample(return_info=True)
    assert torch.equal(batch["index"], info["index"]) and torch.equal(batch["priority_weight"], info["priority_weight"])
    assert torch.allclose(batch["priority_weight"], torch.ones(64))  # all priorities equal at the start
    batch["td_error"] = (batch["index"] == 7).float().unsqueeze(-1) * 100.0  # [B, 1]: reduced per item
    rb.update_tensordict_priority(batch)
    if 7 not in batch["index"].tolist():
        rb.update_priority(torch.tensor([7]), torch.tensor([100.0]))
    others = torch.tensor([i for i in range(50) if i != 7])
    rb.update_priority(others, torch.zeros(len(others)))
    hits = torch.cat([rb.sample()["index"] for _ in range(5)])
    assert (hits == 7).float().mean() > 0.99
    w = rb.sample()["priority_weight"]
    assert w.max() <= 1.0 + 1e-6  # normalised by the largest weight
    for bad in (float("nan"), -1.0):
        with pytest.raises(ValueError, match="priorities must be finite and >= 0"):
            rb.update_priority(torch.tensor([3]), torch.tensor([bad]))
    with pytest.raises(KeyError, match="no priority at 'td_error'"):
        rb.update_tensordict_priority(TensorDict({"index": torch.tensor([1])}, [1]))
    with pytest.raises(TypeError, match="builds its own PrioritizedSampler"):
        PrioritizedReplayBuffer(alpha=1.0, beta=1.0, sampler=RandomSampler())
    assert (rb.alpha, rb.beta, rb.eps) == (1.0, 1.0, 1e-6)


def test_prioritized_plain_tensors_weights_in_info():
    rb = PrioritizedReplayBuffer(alpha=0.6, beta=0.4, storage=LazyTensorStorage(20), batch_size=4)
    rb.extend(torch.arange(20.0))
    batch, info = rb.sample(return_info=True)
    assert torch.equal(batch, info["index"].float()) and info["priority_weight"].shape == (4,)


def test_seeded_buffers_reproduce():
    def run(seed):
        torch.manual_seed(seed)  # the default generator is seeded from torch's global RNG
        rb = ReplayBuffer(storage=LazyTensorStorage(100), batch_size=10)
        rb.extend(data(100))
        return rb.sample()["x"]

    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))
    rb = ReplayBuffer(storage=LazyTensorStorage(100), batch_size=10)
    rb.extend(data(100))
    rb.set_seed(5)
    a = rb.sample()["x"]
    rb.set_seed(5)
    assert torch.equal(a, rb.sample()["x"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_storage_and_pinned_samples():
    rb = ReplayBuffer(storage=LazyTensorStorage(100, device="cuda"), batch_size=8)
    rb.extend(data(20))  # CPU data is copied to the storage's device
    batch = rb.sample()
    assert batch.device.type == "cuda" and torch.equal(batch["next", "x"], batch["x"] + 1)
    pinned = ReplayBuffer(storage=LazyTensorStorage(100), batch_size=8, pin_memory=True)
    pinned.extend(data(20))
    assert pinned.sample()["x"].is_pinned()


# ------------------------------------------------------------------ issue 13 item 16: items keep their batch dims
def trajectories(n, steps=10):
    """``n`` trajectories of ``steps`` steps; trajectory i, step t observes ``100 * i + t``."""
    obs = (100 * torch.arange(n).unsqueeze(-1) + torch.arange(steps)).float().unsqueeze(-1)
    return TensorDict({"observation": obs, "action": torch.zeros(n, steps, 2)}, [n, steps])


def test_stored_items_keep_their_batch_dims(storage):
    rb = ReplayBuffer(storage=storage, batch_size=4)
    rb.add(trajectories(1)[0])  # one [10] trajectory as one item
    rb.extend(trajectories(3))  # three more
    assert len(rb) == 4 and rb[0].shape == (10,) and rb[:].shape == (4, 10)
    batch = rb.sample()
    assert batch.shape == (4, 10) and batch["observation"].shape == (4, 10, 1) and batch["action"].shape == (4, 10, 2)
    steps = batch["observation"][..., 0] % 100
    assert torch.equal(steps, torch.arange(10.0).expand(4, 10))  # whole trajectories, in order


def test_items_with_batch_dims_in_a_multi_dim_storage_and_a_round_trip(tmp_path):
    rb = ReplayBuffer(storage=LazyMemmapStorage(12, scratch_dir=tmp_path / "mm", ndim=2), batch_size=5)
    rb.extend(TensorDict({"x": torch.arange(60.0).reshape(5, 3, 4)}, [5, 3, 4]))  # [T, n_envs] rows of [4] items
    assert rb.storage.shape == (4, 3) and rb.sample().shape == (5, 4) and rb[:].shape == (12, 4)
    rb.dumps(tmp_path / "saved")
    back = ReplayBuffer.loads(tmp_path / "saved")
    assert back[:].shape == (12, 4) and torch.equal(back[:]["x"], rb[:]["x"])
    plain = ReplayBuffer(storage=LazyTensorStorage(4))
    plain.extend(trajectories(2))
    other = ReplayBuffer(storage=LazyTensorStorage(4))
    other.load_state_dict(plain.state_dict())
    assert other[:].shape == (2, 10) and torch.equal(other[:]["observation"], plain[:]["observation"])


def test_buffer_side_catframes_sees_whole_trajectories(storage):
    from rlbench.envs.transforms import CatFrames

    rb = ReplayBuffer(storage=storage, batch_size=6)
    rb.extend(trajectories(5))
    rb.append_transform(CatFrames(3, dim=-1, in_keys=["observation"]))
    batch = rb.sample()
    assert batch.shape == (6, 10) and batch["observation"].shape == (6, 10, 3)
    # reference: step t stacks the frames of steps t-2, t-1, t of its own trajectory (step 0 repeats itself)
    base = batch["observation"][:, :1, -1:]  # step 0's frame: 100 * i of each sampled trajectory i
    steps = (torch.arange(10).unsqueeze(-1) + torch.arange(-2, 1)).clamp(min=0).float()
    torch.testing.assert_close(batch["observation"], base + steps)
    assert rb[:]["observation"].shape == (5, 10, 1)  # the stored items are untouched


def test_transform_list_and_append_transform_see_b_t():
    seen = []

    def record(name):
        def transform(td):
            seen.append((name, tuple(td.batch_size)))
            td["order"] = td.get("order", torch.zeros(td.shape)) * 10 + len(seen)
            return td
        return transform

    rb = ReplayBuffer(storage=LazyTensorStorage(10), batch_size=2, transform=[record("a"), record("b")])
    rb.append_transform(record("c"))
    rb.insert_transform(0, record("first"))
    rb.extend(trajectories(3))
    batch = rb.sample()
    assert seen == [("first", (2, 10)), ("a", (2, 10)), ("b", (2, 10)), ("c", (2, 10))]
    assert (batch["order"] == 1234).all() and len(rb.transform) == 4
    single = ReplayBuffer(storage=LazyTensorStorage(10), batch_size=2)
    single.append_transform(lambda td: td.exclude("action"))
    single.extend(trajectories(3))
    assert set(single.sample().keys()) == {"observation"}
    with pytest.raises(TypeError, match="transforms must be callables"):
        ReplayBuffer(transform=[lambda td: td, 3])


def test_collate_fn_is_applied_to_the_sampled_batch_before_the_transform():
    rb = ReplayBuffer(storage=ListStorage(10), batch_size=3, collate_fn=lambda items: torch.tensor(items),
                      transform=lambda x: x * 2, generator=torch.Generator().manual_seed(0))
    rb.extend([1, 2, 3, 4])
    batch, info = rb.sample(return_info=True)
    assert isinstance(batch, torch.Tensor) and torch.equal(batch, (info["index"] + 1) * 2)
    assert torch.equal(torch.cat([b for b in rb]).sort().values, torch.tensor([2, 4, 6, 8]))  # iteration too
    assert rb[0] == 1  # indexing reads stored items, without collate_fn


def test_prioritized_items_with_batch_dims_get_one_index_and_priority_each():
    rb = PrioritizedReplayBuffer(alpha=1.0, beta=1.0, eps=0.0, storage=LazyTensorStorage(10), batch_size=3,
                                 generator=torch.Generator().manual_seed(0))
    rb.extend(trajectories(4))
    batch = rb.sample()
    assert batch.shape == (3, 10) and batch["index"].shape == batch["priority_weight"].shape == (3, 10)
    assert (batch["index"] == batch["index"][:, :1]).all()  # one item index, repeated over its steps
    assert torch.equal(batch["observation"][:, 0, 0] // 100, batch["index"][:, 0].float())
    td_error = torch.zeros(3, 10)
    td_error[:, 4] = torch.tensor([1.0, 2.0, 3.0])
    batch["td_error"] = td_error
    rb.update_tensordict_priority(batch)
    got = rb.sampler.priorities(batch["index"][:, 0])
    # per-step errors reduce to one priority per item (max); a repeated item keeps its last value
    expected = {int(i): v for i, v in zip(batch["index"][:, 0], [1.0, 2.0, 3.0])}
    assert got.tolist() == [expected[int(i)] for i in batch["index"][:, 0]]
    flat = TensorDictReplayBuffer(storage=LazyTensorStorage(10), batch_size=4)
    flat.extend(data(10))
    sampled = flat.sample().reshape(2, 2)  # per-step indices that differ are kept as they are
    assert sampled["index"].shape == (2, 2)
