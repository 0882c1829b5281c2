"""MultiSyncCollector / MultiAsyncCollector: batches from worker processes, weights, seeds, faults."""
from __future__ import annotations

import os
import signal
import sys
import time

import cloudpickle
import pytest
import torch
from tensordict.nn import TensorDictModule

from rlbench.collectors.multi import MultiAsyncCollector, MultiSyncCollector
from rlbench.envs import GymEnv
from rlbench.envs.workers import WorkerDiedError, WorkerError
from rlbench.testing import CountingEnv, SlowCountingEnv, ctrl_c_after, processes_gone

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # send this module's classes by value

class Threshold(torch.nn.Module):
    """Action 1 where ``weight * observation > 0``: its weight decides the actions, visibly."""

    def __init__(self, weight=-1.0):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([weight]))

    def forward(self, obs):
        return (obs * self.weight > 0).long().squeeze(-1)


def _policy(weight=-1.0):
    return TensorDictModule(Threshold(weight), in_keys=["observation"], out_keys=["action"])


class FailingEnv(CountingEnv):
    def __init__(self):
        super().__init__(max_steps=100)

    def _step(self, td):
        if int(self.count.max()) >= 3:
            raise RuntimeError("collector env broke at step 3")
        return super()._step(td)


class ListBuffer:
    def __init__(self):
        self.batches = []

    def extend(self, td):
        self.batches.append(td)


@pytest.mark.timeout(60)
def test_sync_batches_shapes_frames_and_unique_traj_ids():
    rb = ListBuffer()
    makers = [lambda: CountingEnv(max_steps=3), lambda: CountingEnv(max_steps=3)]
    with MultiSyncCollector(makers, frames_per_batch=8, total_frames=24, replay_buffer=rb) as collector:
        assert len(collector) == 3
        batches = list(collector)
        pids = collector.worker_pids
    assert [b.shape for b in batches] == [torch.Size([2, 4])] * 3
    assert collector.frames == 24 and len(rb.batches) == 3
    # the env state carries over from one batch to the next, in each worker
    obs = torch.cat([b["next", "observation"] for b in batches], 1)[0].squeeze(-1)
    assert obs.tolist() == [1, 2, 3] * 4
    ids = torch.cat([b["collector", "traj_ids"] for b in batches], 1)
    assert set(ids[0].tolist()).isdisjoint(ids[1].tolist())  # unique across workers
    assert (ids.diff(dim=1) >= 0).all()  # and growing in time
    assert processes_gone(pids)


@pytest.mark.timeout(60)
def test_sync_batched_envs_are_concatenated_and_split_trajs():
    makers = [lambda: CountingEnv(max_steps=2, batch_size=[2])] * 2
    with MultiSyncCollector(makers, frames_per_batch=16, total_frames=16, split_trajs=True) as collector:
        (batch,) = list(collector)
    # 4 sub-envs x 4 steps, episodes of 2 steps: 8 trajectories of length 2
    assert batch.shape == torch.Size([8, 2])
    assert batch["collector", "mask"].all()
    with MultiSyncCollector(makers, frames_per_batch=16, total_frames=16) as collector:
        assert collector.collect().shape == torch.Size([4, 4])


@pytest.mark.timeout(60)
def test_async_stops_at_total_frames_with_whole_worker_batches():
    makers = [lambda: CountingEnv(max_steps=4)] * 2
    with MultiAsyncCollector(makers, frames_per_batch=6, total_frames=30) as collector:
        batches = list(collector)
        assert collector.frames == 30
    assert [b.shape for b in batches] == [torch.Size([6])] * 5
    for b in batches:  # each batch is one worker's: traj ids are local id * n_workers + worker index
        assert len({int(i) % 2 for i in b["collector", "traj_ids"]}) == 1


@pytest.mark.timeout(60)
def test_async_yields_whichever_worker_is_ready_first():
    # worker 0 needs ~3 s per batch, worker 1 milliseconds: the first batches must all be worker 1's
    makers = [lambda: SlowCountingEnv(0.5, max_steps=4), CountingEnv]
    with MultiAsyncCollector(makers, frames_per_batch=6, total_frames=18) as collector:
        batches = list(collector)
    assert [{int(i) % 2 for i in b["collector", "traj_ids"]} for b in batches[:2]] == [{1}, {1}]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cls", [MultiSyncCollector, MultiAsyncCollector])
def test_update_policy_weights_changes_the_workers_actions(cls):
    policy = _policy(-1.0)
    makers = [lambda: CountingEnv(max_steps=100)] * 2
    with cls(makers, policy, frames_per_batch=8, total_frames=-1) as collector:
        it = iter(collector)
        assert (next(it)["action"] == 0).all()  # weight -1: never positive
        with torch.no_grad():
            policy.module.weight.fill_(1.0)
        collector.update_policy_weights_()
        # sync: the very next batch; async: at most the batches already in flight are stale
        for _ in range(1 if cls is MultiSyncCollector else 3):
            batch = next(it)
            if (batch["action"] == 1).any():
                break
        assert (batch["action"][batch["observation"].squeeze(-1) > 0] == 1).all()


@pytest.mark.timeout(60)
def test_seeded_runs_are_reproducible_and_workers_differ():
    def run():
        makers = [lambda: GymEnv("CartPole-v1")] * 2
        with MultiSyncCollector(makers, frames_per_batch=20, total_frames=20, seed=5) as collector:
            return next(iter(collector))

    a, b = run(), run()
    assert (a == b).all()
    assert not torch.equal(a["observation"][0], a["observation"][1])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cls", [MultiSyncCollector, MultiAsyncCollector])
def test_env_error_in_worker_raises_with_traceback(cls):
    collector = cls([CountingEnv, FailingEnv], frames_per_batch=4, total_frames=-1)
    pids = collector.worker_pids
    start = time.monotonic()
    with pytest.raises(WorkerError) as info:
        for _ in collector:
            pass
    assert time.monotonic() - start < 20  # "within seconds", with room for a loaded CI machine
    msg = str(info.value)
    assert "worker 1 raised RuntimeError: collector env broke at step 3" in msg
    assert "Traceback (most recent call last)" in msg and "_step" in msg
    assert processes_gone(pids)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cls", [MultiSyncCollector, MultiAsyncCollector])
def test_killed_worker_raises_instead_of_hanging(cls):
    collector = cls([CountingEnv, CountingEnv], frames_per_batch=4, total_frames=-1)
    pids = collector.worker_pids
    it = iter(collector)
    next(it)
    os.kill(pids[0], signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(WorkerDiedError, match=r"worker 0 .* killed by SIGKILL"):
        for _ in range(1000):
            next(it)
    assert time.monotonic() - start < 20  # "within seconds", with room for a loaded CI machine
    assert processes_gone(pids)


def _worker_of(batch, num_workers):
    """Which worker collected ``batch``: its trajectory ids are local id * num_workers + worker index."""
    return int(batch["collector", "traj_ids"].reshape(-1)[0]) % num_workers


@pytest.mark.timeout(60)
def test_async_serves_every_worker_when_the_consumer_is_slow():
    # the parent "trains" 20 ms between batches while a worker needs ~1 ms per batch: every worker
    # is ready each time the parent asks, and each must get its turn (before the fix: [29, 1, 0])
    with MultiAsyncCollector([CountingEnv] * 3, frames_per_batch=4, total_frames=-1) as collector:
        it = iter(collector)
        counts = [0, 0, 0]
        for _ in range(30):
            counts[_worker_of(next(it), 3)] += 1
            time.sleep(0.02)
        pids = collector.worker_pids
    assert sum(counts) == 30 and min(counts) >= 7, counts  # a fair share is 10 each
    assert processes_gone(pids)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("victim", [1, 2])
def test_async_reports_a_killed_worker_when_the_consumer_is_slow(victim):
    collector = MultiAsyncCollector([CountingEnv] * 3, frames_per_batch=4, total_frames=-1)
    pids = collector.worker_pids
    try:
        it = iter(collector)
        next(it)
        time.sleep(0.1)  # every worker has finished its batch: the killed one's answer may be waiting
        os.kill(pids[victim], signal.SIGKILL)
        start = time.monotonic()
        with pytest.raises(WorkerDiedError, match=rf"worker {victim} .* killed by SIGKILL"):
            for _ in range(100):  # 2 s of slow consumption; before the fix it never raised
                next(it)
                time.sleep(0.02)
        assert time.monotonic() - start < 10  # "within seconds", with room for a loaded CI machine
    finally:
        collector.shutdown()
    assert processes_gone(pids)


@pytest.mark.timeout(60)
def test_shutdown_and_garbage_collection_leave_no_process():
    collector = MultiAsyncCollector([CountingEnv] * 2, frames_per_batch=4, total_frames=-1)
    pids = collector.worker_pids
    next(iter(collector))  # leaves batches in flight
    collector.shutdown()
    collector.shutdown()
    assert processes_gone(pids)
    collector = MultiSyncCollector([CountingEnv] * 2, frames_per_batch=4, total_frames=8)
    pids = collector.worker_pids
    del collector
    assert processes_gone(pids)


@pytest.mark.timeout(60)
def test_bad_arguments_have_clear_errors():
    with pytest.raises(ValueError, match="multiple of the number of workers"):
        MultiSyncCollector([CountingEnv] * 2, frames_per_batch=5)
    with pytest.raises(TypeError, match="list of env makers"):
        MultiSyncCollector(CountingEnv, frames_per_batch=4)
    with pytest.raises(ValueError, match="total_frames must be positive or -1"):
        MultiAsyncCollector([CountingEnv], frames_per_batch=4, total_frames=0)
    with pytest.raises(TypeError, match="not an nn.Module"):
        with MultiSyncCollector([CountingEnv], frames_per_batch=4) as collector:
            collector.update_policy_weights_()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cls", [MultiSyncCollector, MultiAsyncCollector])
def test_keyboard_interrupt_in_the_loop_shuts_workers_down(cls):
    collector = cls([SlowCountingEnv, SlowCountingEnv], frames_per_batch=2, total_frames=-1)
    pids = collector.worker_pids

    with pytest.raises(KeyboardInterrupt), ctrl_c_after(0.3):
        for _ in collector:
            pass
    assert processes_gone(pids)


@pytest.mark.timeout(90)
def test_workers_can_run_a_parallel_env():
    from rlbench.envs.parallel import ParallelEnv

    makers = [lambda: ParallelEnv(2, lambda: CountingEnv(max_steps=2))] * 2
    with MultiSyncCollector(makers, frames_per_batch=8, total_frames=8) as collector:
        (batch,) = list(collector)
    assert batch.shape == torch.Size([4, 2])
    assert batch["next", "observation"].squeeze(-1).tolist() == [[1, 2]] * 4
