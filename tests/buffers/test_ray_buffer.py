"""RayReplayBuffer: the ReplayBuffer API served by a Ray actor, against a local buffer built the same way.

The cluster comes from tests/_ray_session.py (two raylets of one CPU each, on 127.0.0.1).
"""
import functools
import pickle

import pytest
import torch
from _buffer_data import transitions
from _ray_session import NODE_B, ray_cluster  # noqa: F401  (first: it sets Ray's loopback variable)

ray = pytest.importorskip("ray")

from tensordict import TensorDict  # noqa: E402

from rlbench.buffers import (  # noqa: E402
                             LazyTensorStorage,
                             PrioritizedReplayBuffer,
                             RayReplayBuffer,
                             ReplayBuffer,
                             SamplerWithoutReplacement,
                             TensorDictReplayBuffer,
)
from rlbench.collectors import RayCollector  # noqa: E402
from rlbench.testing import CountingEnv  # noqa: E402

pytestmark = [pytest.mark.usefixtures("ray_cluster"), pytest.mark.timeout(90)]


def test_same_samples_as_a_local_buffer_and_state_round_trip(tmp_path):
    parts = {"storage": LazyTensorStorage(50), "sampler": SamplerWithoutReplacement(), "batch_size": 8}
    local = TensorDictReplayBuffer(**parts)
    with RayReplayBuffer(TensorDictReplayBuffer, **parts) as rb:
        assert repr(rb.storage) == "RemoteStorage(LazyTensorStorage, max_size=50, ndim=1)" and rb.batch_size == 8
        data = transitions(30)
        torch.testing.assert_close(rb.extend(data), local.extend(data))
        assert int(rb.add(transitions(1, start=30)[0])) == int(local.add(transitions(1, start=30)[0])) == 30
        assert len(rb) == len(local) == 31
        rb.set_seed(7)
        local.set_seed(7)
        for _ in range(3):  # the same sampler, generator and seed on the actor: the same batches
            remote_batch, local_batch = rb.sample(), local.sample()
            torch.testing.assert_close(remote_batch["index"], local_batch["index"])
            torch.testing.assert_close(remote_batch["observation"], local_batch["observation"])
        batch, info = rb.sample(4, return_info=True)
        torch.testing.assert_close(batch["observation"][:, 0], info["index"].float())  # row i holds i
        torch.testing.assert_close(rb[3]["observation"], data[3]["observation"])

        state = rb.state_dict()
        expected = rb.sample()
        rb.dumps(tmp_path / "saved")
        rb.load_state_dict(state)
        torch.testing.assert_close(rb.sample()["index"], expected["index"])  # contents, cursor and RNG restored
        rb.empty()
        assert len(rb) == 0
        rb.loads(tmp_path / "saved")
        assert len(rb) == 31
        restored = ReplayBuffer.loads(tmp_path / "saved")  # the files the actor wrote load locally too
        expected_obs = torch.cat([data["observation"], transitions(1, start=30)["observation"]])
        torch.testing.assert_close(restored[:]["observation"], expected_obs)


def test_priorities_and_errors_cross_the_actor():
    with RayReplayBuffer(PrioritizedReplayBuffer, alpha=1.0, beta=1.0, storage=LazyTensorStorage(10),
                         batch_size=64) as rb:
        rb.extend(TensorDict({"obs": torch.arange(4.0)}, [4]))
        rb.update_priority(torch.arange(4), torch.tensor([0.0, 0.0, 0.0, 1.0]))
        batch = rb.sample()
        assert (batch["index"] == 3).all()  # only item 3 has weight left
        batch["td_error"] = torch.tensor([1.0] + [0.0] * 63)
        rb.update_tensordict_priority(batch)
        with pytest.raises(ValueError, match="finite and >= 0"):  # the actor's exception, same type, raised here
            rb.update_priority(torch.tensor([0]), torch.tensor([float("nan")]))
    with pytest.raises(TypeError, match="buffer_cls must be ReplayBuffer"):
        RayReplayBuffer(dict)
    with pytest.raises(ValueError, match="no node of the Ray cluster"):
        RayReplayBuffer(storage=LazyTensorStorage(10), remote_config={"resources": {"nowhere": 1}})
    with pytest.raises(TypeError, match="rb.set_seed"):
        RayReplayBuffer(storage=LazyTensorStorage(10), generator=torch.Generator())


def test_two_remote_collectors_write_and_the_learner_samples():
    """Two collector actors extend the same remote buffer (a pickled handle); the learner samples it."""
    with RayReplayBuffer(storage=LazyTensorStorage(100), batch_size=16,
                         remote_config={"resources": {NODE_B: 0.01}}) as rb:
        handle = pickle.loads(pickle.dumps(rb))  # what a remote process receives: the same actor
        assert handle.actor == rb.actor
        make = functools.partial(CountingEnv, max_steps=100)
        with RayCollector(make, None, num_collectors=2, frames_per_batch=10, total_frames=20,
                          collector_kwargs={"replay_buffer": rb}) as collector:
            batches = list(collector)
        assert len(handle) == 20 == sum(b.numel() for b in batches)  # every frame written once, by the actors
        stored = handle[:]["observation"].squeeze(-1)
        # each actor wrote 5 steps per batch: observations 0..4 then 5..9, from both actors
        assert sorted(stored.tolist()) == sorted(list(range(10)) * 2)
        assert rb.sample().shape == (16,)
        handle.shutdown()  # not the owner: the actor lives on
        assert len(rb) == 20
