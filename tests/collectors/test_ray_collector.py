"""RayCollector on a real (simulated two-node) Ray cluster: batches, weights, seeds, state, faults, bad input.

The cluster comes from tests/_ray_session.py (two raylets of one CPU each, on 127.0.0.1). Env makers and
policies are built inside the tests or from rlbench itself: Ray's workers import rlbench, not this module.
"""
import functools
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch
from _ray_session import NODE_A, NODE_B, ray_cluster  # noqa: F401  (first: it sets Ray's loopback variable)

ray = pytest.importorskip("ray")

from tensordict import TensorDict  # noqa: E402
from tensordict.nn import TensorDictModule, TensorDictSequential  # noqa: E402

from rlbench.collectors import Collector, MultiSyncCollector, RayCollector  # noqa: E402
from rlbench.envs import CartPoleEnv, WorkerDiedError, WorkerError  # noqa: E402
from rlbench.testing import CountingEnv  # noqa: E402

pytestmark = [pytest.mark.usefixtures("ray_cluster"), pytest.mark.timeout(90)]

VERSION = ("collector", "policy_version")
TRAJ = ("collector", "traj_ids")


def argmax_policy(bias):
    """A deterministic policy over CountingEnv: action = argmax(0 * obs + bias), so the bias alone decides."""
    linear = torch.nn.Linear(1, 2)
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return TensorDictSequential(
        TensorDictModule(linear, in_keys=["observation"], out_keys=["logits"]),
        TensorDictModule(lambda logits: logits.argmax(-1), in_keys=["logits"], out_keys=["action"]),
    )


def test_sync_batches_from_two_nodes_match_local_collectors_and_follow_weights():
    make = functools.partial(CountingEnv, max_steps=3, batch_size=[2])
    policy = argmax_policy([1.0, 0.0])  # action 0
    pinned = [{"num_cpus": 1, "resources": {NODE_A: 1}}, {"num_cpus": 1, "resources": {NODE_B: 1}}]
    with RayCollector(make, policy, num_collectors=2, frames_per_batch=16, total_frames=40,
                      remote_config=pinned) as collector:
        assert len(set(collector.actor_nodes)) == 2  # one actor on each raylet
        addresses = {n["NodeManagerAddress"] for n in ray.nodes()}
        assert addresses == {"127.0.0.1"}, f"{addresses}: ray was imported before _ray_session set its variable"
        assert len(collector.actors) == 2 and len(collector) == 3
        batches = list(collector)
        assert collector.frames == 48 == sum(b.numel() for b in batches)  # 40 rounded up to whole batches
        assert collector.actor_frames == [24, 24]

        # new weights: put once in the object store, loaded by both actors before their next batch
        with torch.no_grad():
            policy[0].module.bias.copy_(torch.tensor([0.0, 1.0]))  # the learner's policy now picks action 1
        collector.update_policy_weights_()
        after = collector.collect()
        assert (after["action"] == 1).all() and (after[VERSION] == 1).all() and collector.policy_version == 1
        bad = dict(policy.state_dict())
        bad["module.0.module.weight"] = torch.zeros(3, 1)
        with pytest.raises(ValueError, match=r"'module.0.module.weight' has shape \(3, 1\), the policy's has \(2, 1\)"):
            collector.update_policy_weights_(bad)
        with pytest.raises(ValueError, match="missing"):
            collector.update_policy_weights_({"nope": torch.zeros(1)})
        wrong = TensorDict.from_module(policy).clone()
        wrong["module", "0", "module", "weight"] = torch.zeros(3, 1)
        with pytest.raises(ValueError, match=r"'module.0.module.weight' has shape \(3, 1\), the policy's has \(2, 1\)"):
            collector.update_policy_weights_(wrong)  # a TensorDict is checked the same way
        assert collector.policy_version == 1  # nothing was sent
        collector.update_policy_weights_(TensorDict.from_module(argmax_policy([1.0, 0.0])))  # a TensorDict too
        assert (collector.collect()["action"] == 0).all()
    assert not collector.actors

    reference = Collector(make(), argmax_policy([1.0, 0.0]), frames_per_batch=8, total_frames=24)
    for batch, ref in zip(batches, reference):
        assert batch.shape == (4, 4)  # [2 actors * 2 sub-envs, 4 steps]
        for half in (batch[:2], batch[2:]):  # each actor ran the same env and policy as the local collector
            torch.testing.assert_close(half["next", "observation"], ref["next", "observation"])
            torch.testing.assert_close(half["action"], ref["action"])
        ids = batch[TRAJ]
        torch.testing.assert_close(ids[:2], ref[TRAJ] * 2)  # actor 0: id * 2 + 0
        torch.testing.assert_close(ids[2:], ref[TRAJ] * 2 + 1)  # actor 1: id * 2 + 1
        assert (batch[VERSION] == 0).all()


def test_async_yields_ready_batches_with_policy_version_and_exact_frames():
    policy = argmax_policy([1.0, 0.0])
    with RayCollector([CountingEnv, CountingEnv], policy, frames_per_batch=5, total_frames=22,
                      sync=False) as collector:
        assert len(collector) == 5
        versions, sizes = [], []
        for i, batch in enumerate(collector):
            assert batch.shape == (5,)
            versions.append(int(batch[VERSION][0]))
            sizes.append(batch.numel())
            if i == 0:
                collector.update_policy_weights_()
        assert collector.frames == 25 == sum(sizes) == sum(collector.actor_frames)
        # the first batch and the two requested before the update ran the old weights, the two after it the new
        assert sorted(versions) == [0, 0, 0, 1, 1] and versions[0] == 0
        assert not collector._inflight  # nothing was requested beyond total_frames
        # per-actor counts, as the learner saw them: the two old-weight batches that arrived after the update
        # lag by one update, the others by none
        stats = collector.actor_stats()
        assert [s["actor"] for s in stats] == [0, 1] and [s["frames"] for s in stats] == collector.actor_frames
        assert sum(s["batches"] for s in stats) == 5 and all(s["fps"] > 0 and s["restarts"] == 0 for s in stats)
        assert sum(s["policy_lag_mean"] * s["batches"] for s in stats) == pytest.approx(2.0)
        assert max(s["policy_lag_max"] for s in stats) == 1
        assert {s["node"] for s in stats} <= {n[:8] for n in collector.actor_nodes}

        with pytest.raises(RuntimeError, match="total_frames reached"):
            collector.collect()


def test_seed_and_state_dict_round_trip():
    make = functools.partial(CartPoleEnv, batch_size=[2])
    kwargs = {"seed": 3}
    with RayCollector(make, None, num_collectors=2, frames_per_batch=20, total_frames=-1,
                      collector_kwargs=kwargs) as collector:
        a = collector.collect()
        # seed + i * 10_000: the actors' envs start from different states, and as a local seeded env
        local = make()
        local.set_seed(3)
        torch.testing.assert_close(a["observation"][:2, 0], local.reset()["observation"])
        assert not torch.equal(a["observation"][:2, 0], a["observation"][2:, 0])
        state = collector.state_dict()
        expected = collector.collect()
        collector.load_state_dict(state)
        again = collector.collect()
        # random actions are drawn on the actors (their own torch RNG): the env states continue exactly
        torch.testing.assert_close(again["observation"][:, 0], expected["observation"][:, 0])


def test_multi_sync_collector_inside_an_actor_and_split_trajs_by_the_learner():
    make = functools.partial(CountingEnv, max_steps=3)
    with RayCollector([[make, make]], None, frames_per_batch=10, total_frames=20, collector_class=MultiSyncCollector,
                      collector_kwargs={"split_trajs": True}) as collector:
        batches = list(collector)
    # one actor, two worker processes, 5 steps each per batch; episodes of 3 steps: per worker a trajectory
    # of 3 and one of 2, then (next batch) the 1 step left of it and a new one of 3
    assert collector.frames == 20
    assert [b["collector", "mask"].sum(-1).tolist() for b in batches] == [[3, 3, 2, 2], [1, 1, 3, 3, 1, 1]]
    # worker w's local id k is k * 2 + w (MultiSyncCollector), then id * 1 + 0 (one actor): a trajectory cut by
    # the batch boundary keeps its id
    assert [b[TRAJ][:, 0].tolist() for b in batches] == [[0, 1, 2, 3], [2, 3, 4, 5, 6, 7]]


def test_actor_exception_surfaces_with_remote_traceback():
    class BrokenEnv(CountingEnv):
        def _step(self, td):
            if self.count.max() >= 2:
                raise ValueError("the env broke on purpose")
            return super()._step(td)

    collector = RayCollector(BrokenEnv, None, num_collectors=2, frames_per_batch=8, total_frames=-1)
    start = time.monotonic()
    with pytest.raises(WorkerError, match="the env broke on purpose") as info:
        collector.collect()
    assert time.monotonic() - start < 30
    assert "_step" in info.value.remote_traceback  # the actor's own traceback
    assert not collector.actors  # every actor was shut down

    def bad_maker():
        raise RuntimeError("no env here")

    with pytest.raises(WorkerError, match="could not build its collector"):
        RayCollector(bad_maker, None, frames_per_batch=4, total_frames=8)


def test_killed_actor_restarts_with_latest_weights_and_no_frame_lost_or_raises():
    policy = argmax_policy([1.0, 0.0])
    with RayCollector(CountingEnv, policy, num_collectors=2, frames_per_batch=8, total_frames=40,
                      max_restarts=1) as collector:
        it = iter(collector)
        next(it)
        with torch.no_grad():
            policy[0].module.bias.copy_(torch.tensor([0.0, 1.0]))
        collector.update_policy_weights_()
        ray.kill(collector.actors[0], no_restart=False)  # Ray restarts it
        rest = list(it)
        assert collector.restarts == [1, 0]
        assert collector.frames == 40 == 8 + sum(b.numel() for b in rest)
        for batch in rest:  # the restarted actor loaded the latest weights, not the constructor's
            assert (batch["action"] == 1).all() and (batch[VERSION] == 1).all()

        # an actor killed for good (no_restart=True): a clear error within seconds, every actor shut down
        ray.kill(collector.actors[1])
        start = time.monotonic()
        with pytest.raises(WorkerDiedError, match=r"actor 1 died.*0 restarts \(max_restarts=1"):
            for _ in range(10):  # ray.kill is asynchronous: a batch may still come before it lands
                collector.collect()
        assert time.monotonic() - start < 30
        assert not collector.actors


def test_bad_input_fails_fast_with_clear_messages():
    start = time.monotonic()
    with pytest.raises(ValueError, match="no node of the Ray cluster has what actor 0 asks for"):
        RayCollector(CountingEnv, None, frames_per_batch=4, total_frames=8, remote_config={"num_gpus": 8})
    lock = threading.Lock()
    with pytest.raises(TypeError, match="the policy cannot be serialized"):
        RayCollector(CountingEnv, lambda td: lock, frames_per_batch=4, total_frames=8)
    with pytest.raises(TypeError, match=r"make_envs\[1\] cannot be serialized .*build locks, open files"):
        RayCollector([CountingEnv, lambda: lock], None, frames_per_batch=4, total_frames=8)
    with pytest.raises(ValueError, match=r"actor 0 asks for \(\{'CPU': 1.0, 'TPU': 1.0\}\); the nodes have"):
        RayCollector(CountingEnv, None, frames_per_batch=4, total_frames=8, remote_config={"resources": {"TPU": 1}})
    with pytest.raises(ValueError, match="multiple of the number of collectors"):
        RayCollector(CountingEnv, None, num_collectors=2, frames_per_batch=5, total_frames=10)
    with pytest.raises(ValueError, match="num_collectors=3 but make_envs has 2"):
        RayCollector([CountingEnv] * 2, None, num_collectors=3, frames_per_batch=6, total_frames=12)
    with pytest.raises(TypeError, match="must not set"):
        RayCollector(CountingEnv, None, frames_per_batch=4, total_frames=8, collector_kwargs={"total_frames": 3})
    assert time.monotonic() - start < 10


def test_weights_an_actor_cannot_load_raise_with_its_next_batch():
    """A policy that is no nn.Module cannot be checked by the learner: the actor's failed load surfaces."""
    with RayCollector(CountingEnv, None, frames_per_batch=4, total_frames=-1) as collector:
        collector.collect()
        start = time.monotonic()
        collector.update_policy_weights_({"weight": torch.zeros(2, 1)})  # random actions: nothing to load into
        with pytest.raises(WorkerError, match=r"actor 0 could not load the weights of update_policy_weights_ "
                                              r"\(TypeError: Collector: cannot load weights into a policy"):
            collector.collect()
        assert time.monotonic() - start < 10
        assert not collector.actors  # shut down on the error


@pytest.mark.timeout(120)
def test_starts_its_own_local_instance_on_loopback_and_stops_it(tmp_path):
    """In a fresh process (no Ray yet): a local instance bound to 127.0.0.1, dashboard off, stopped on shutdown."""
    script = textwrap.dedent("""
        import os, sys, time
        os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)  # the library sets it itself
        os.environ.pop("RAY_ADDRESS", None)
        from rlbench.collectors import RayCollector
        from rlbench.testing import CountingEnv
        assert "ray" not in sys.modules  # RayCollector imports it first, after setting the variable
        with RayCollector(CountingEnv, None, frames_per_batch=4, total_frames=8,
                          ray_init_config={"num_cpus": 1, "log_to_driver": False}) as c:
            import ray
            assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"], ray.nodes()
            assert sum(b.numel() for b in c) == 8
        assert not ray.is_initialized()  # it started Ray: shutdown() stopped it
        start = time.monotonic()
        try:
            RayCollector(CountingEnv, None, frames_per_batch=4, total_frames=4,
                         ray_init_config={"address": "127.0.0.1:1"})
        except ConnectionError as err:
            assert "127.0.0.1:1" in str(err) and "does not answer" in str(err), err
            assert time.monotonic() - start < 10
        else:
            raise AssertionError("an address that does not answer was accepted")
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=100, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
