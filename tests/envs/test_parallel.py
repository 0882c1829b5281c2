"""ParallelEnv and its worker machinery: same data as SerialEnv, and faults that never hang."""
from __future__ import annotations

import os
import re
import signal
import sys
import time

import cloudpickle
import pytest
import torch

from rlbench.envs import GymEnv, SerialEnv, check_env_specs
from rlbench.envs.parallel import ParallelEnv
from rlbench.envs.workers import WorkerDiedError, WorkerError, WorkerGroup
from rlbench.testing import ContinuousCountingEnv, CountingEnv, SlowCountingEnv, ctrl_c_after, processes_gone

# Classes and functions of this module travel to the workers by value, as a notebook cell's would
# (by reference the workers would have to import this test module).
cloudpickle.register_pickle_by_value(sys.modules[__name__])

class FailingEnv(CountingEnv):
    """Raises from ``_step`` once it has counted ``fail_at`` steps."""

    def __init__(self, fail_at=2, **kwargs):
        super().__init__(max_steps=100, **kwargs)
        self.fail_at = fail_at

    def _step(self, td):
        if int(self.count.max()) >= self.fail_at:
            raise RuntimeError(f"boom: the env broke after {self.fail_at} steps")
        return super()._step(td)


def _fixed_actions(T, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (T, n), generator=g)


def _run(env, actions):
    """Step ``env`` with the given actions (step_and_maybe_reset), returning the stacked steps."""
    td = env.reset()
    steps = []
    for a in actions:
        td["action"] = a.reshape(env.action_spec.shape)
        td, root = env.step_and_maybe_reset(td)
        steps.append(td)
        td = root
    return torch.stack(steps, -1)


@pytest.fixture(scope="module")
def counting():
    env = ParallelEnv(2, [lambda m=m: CountingEnv(max_steps=m) for m in (2, 3)])
    yield env
    env.close()


@pytest.mark.timeout(60)
def test_shapes_specs_and_check_env_specs(counting):
    assert counting.batch_size == torch.Size([2])
    assert counting.action_spec.shape == torch.Size([2])
    assert counting.observation_spec["observation"].shape == torch.Size([2, 1])
    assert check_env_specs(counting) == []
    td = counting.rollout(5, break_when_any_done=False)
    assert td.shape == torch.Size([2, 5])
    assert counting.action_spec.is_in(td["action"])
    assert "ParallelEnv" in repr(counting) and "num_workers=2" in repr(counting)


@pytest.mark.timeout(60)
def test_same_data_as_serial_env_counting(counting):
    serial = SerialEnv(2, [lambda m=m: CountingEnv(max_steps=m) for m in (2, 3)])
    actions = _fixed_actions(9, 2)
    ours, ref = _run(counting, actions), _run(serial, actions)
    assert (ours == ref).all()
    assert ours["observation"].squeeze(-1).tolist() == [[0, 1] * 4 + [0], [0, 1, 2] * 3]
    assert ours["next", "total"].sum() > 0  # the actions reached the workers
    torch.testing.assert_close(counting.rollout(7, break_when_any_done=False)["next", "observation"],
                               serial.rollout(7, break_when_any_done=False)["next", "observation"])


@pytest.mark.timeout(60)
def test_same_data_as_serial_env_gym_cartpole():
    serial = SerialEnv(2, lambda: GymEnv("CartPole-v1"))
    with ParallelEnv(2, lambda: GymEnv("CartPole-v1")) as env:
        actions = _fixed_actions(40, 2, seed=1)
        env.set_seed(7)
        serial.set_seed(7)
        ours, ref = _run(env, actions), _run(serial, actions)
        # seeded random rollouts match too: the parent draws the actions, as SerialEnv does
        env.set_seed(3)
        serial.set_seed(3)
        assert (env.rollout(30, break_when_any_done=False) == serial.rollout(30, break_when_any_done=False)).all()
    assert ours.shape == torch.Size([2, 40])
    assert (ours == ref).all()
    assert ours["next", "done"].any()  # episodes ended and restarted inside the window


@pytest.mark.timeout(60)
def test_batched_sub_envs_and_their_partial_resets():
    make = [lambda m=m: CountingEnv(max_steps=torch.tensor([2, 3, 4]) + m, batch_size=[3]) for m in (0, 1)]
    serial = SerialEnv(2, make)
    with ParallelEnv(2, make) as env:
        assert env.batch_size == torch.Size([2, 3])
        assert check_env_specs(env) == []
        ours = env.rollout(8, break_when_any_done=False)
    ref = serial.rollout(8, break_when_any_done=False)
    assert ours.shape == torch.Size([2, 3, 8])
    assert (ours["observation"] == ref["observation"]).all()
    assert (ours["next", "done"] == ref["next", "done"]).all()
    assert ours["observation"][0, 0].squeeze(-1).tolist() == [0, 1, 0, 1, 0, 1, 0, 1]


@pytest.mark.timeout(60)
def test_partial_reset_resets_only_masked_workers(counting):
    td = counting.reset()
    td["action"] = torch.tensor([1, 1])
    td = counting.step(td)["next"].clone()
    assert td["observation"].squeeze(-1).tolist() == [1, 1]
    td.set("_reset", torch.tensor([[True], [False]]))
    out = counting.reset(td)
    assert "_reset" not in out.keys()
    assert out["observation"].squeeze(-1).tolist() == [0, 1]
    assert out["total"].squeeze(-1).tolist() == [0, 1]
    # worker 1 really kept its state: its next step counts 2, worker 0's counts 1
    out["action"] = torch.tensor([0, 0])
    assert counting.step(out)["next", "observation"].squeeze(-1).tolist() == [1, 2]


@pytest.mark.timeout(60)
def test_step_and_maybe_reset_keeps_the_final_observation(counting):
    td = counting.reset()
    for _ in range(2):
        td["action"] = torch.tensor([0, 0])
        td, root = counting.step_and_maybe_reset(td)
        nxt, td = td["next"], root
    assert nxt["done"].squeeze(-1).tolist() == [True, False]
    assert nxt["observation"].squeeze(-1).tolist() == [2, 2]  # the true final observation
    assert td["observation"].squeeze(-1).tolist() == [0, 2]  # worker 0 restarted


@pytest.mark.timeout(60)
def test_lambdas_closures_and_local_classes():
    limit = 3  # captured by the closure, as in a notebook cell

    class LocalEnv(ContinuousCountingEnv):  # defined here: only cloudpickle can send it
        pass

    def make():
        return LocalEnv(max_steps=limit, action_dim=2)

    with ParallelEnv(2, make) as env:
        assert env.action_spec.shape == torch.Size([2, 2])
        td = env.rollout(4, break_when_any_done=False)
    assert td["next", "observation"][1].squeeze(-1).tolist() == [1, 2, 3, 1]


@pytest.mark.timeout(60)
def test_seeds_are_reproducible_and_differ_per_worker():
    with ParallelEnv(2, lambda: GymEnv("CartPole-v1")) as env:
        env.set_seed(3)
        a = env.reset()["observation"]
        env.set_seed(3)
        b = env.reset()["observation"]
        env.set_seed(4)
        c = env.reset()["observation"]
    torch.testing.assert_close(a, b)
    assert not torch.equal(a[0], a[1])  # worker 0 got seed 3, worker 1 seed 4
    torch.testing.assert_close(c[0], a[1])  # so seed 4 on worker 0 is what worker 1 had


@pytest.mark.timeout(60)
def test_readme_example_pendulum():
    env = ParallelEnv(4, lambda: GymEnv("Pendulum-v1"))
    try:
        td = env.rollout(max_steps=20)
        assert td.shape == torch.Size([4, 20])
        assert env.action_spec.is_in(td["action"])
        assert check_env_specs(env) == []
    finally:
        env.close()


@pytest.mark.timeout(60)
def test_close_context_manager_and_gc_leave_no_process():
    env = ParallelEnv(2, CountingEnv)
    pids = env.worker_pids
    env.close()
    env.close()  # twice is fine
    assert processes_gone(pids)
    with pytest.raises(RuntimeError, match="shut down"):
        env.reset()

    with ParallelEnv(2, CountingEnv) as env:
        pids = env.worker_pids
        env.rollout(3)
    assert processes_gone(pids)

    env = ParallelEnv(2, CountingEnv)
    pids = env.worker_pids
    del env
    assert processes_gone(pids)


@pytest.mark.timeout(60)
def test_env_error_in_worker_raises_with_traceback_and_shuts_down():
    env = ParallelEnv(2, [CountingEnv, lambda: FailingEnv(fail_at=2)])
    pids = env.worker_pids
    td = env.reset()
    td["action"] = torch.tensor([0, 0])
    env.step(td)
    start = time.monotonic()
    with pytest.raises(WorkerError) as info:
        env.step(td)
        env.step(td)
    assert time.monotonic() - start < 15  # "within seconds", with room for a loaded CI machine
    msg = str(info.value)
    assert "worker 1 raised RuntimeError: boom: the env broke after 2 steps" in msg
    assert "Traceback (most recent call last)" in msg and "in _step" in msg
    assert info.value.index == 1 and "_step" in info.value.remote_traceback
    assert processes_gone(pids)
    with pytest.raises(RuntimeError, match="shut down"):
        env.step(td)


@pytest.mark.timeout(60)
def test_error_while_building_the_env_raises_at_construction():
    def make():
        raise ValueError("no such simulator")

    with pytest.raises(WorkerError, match="no such simulator"):
        ParallelEnv(2, make)
    with pytest.raises(WorkerError, match="must return an rlbench EnvBase"):
        ParallelEnv(2, lambda: "not an env")


@pytest.mark.timeout(60)
def test_killed_worker_raises_instead_of_hanging():
    env = ParallelEnv(2, CountingEnv)
    pids = env.worker_pids
    td = env.reset()
    td["action"] = torch.tensor([0, 1])
    env.step(td)
    os.kill(pids[1], signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(WorkerDiedError, match=r"worker 1 .* killed by SIGKILL") as info:
        for _ in range(100):  # the death may be noticed at the send or at the wait
            env.step(td)
    assert time.monotonic() - start < 15  # "within seconds", with room for a loaded CI machine
    assert info.value.exitcode == -signal.SIGKILL
    assert processes_gone(pids)


@pytest.mark.timeout(60)
def test_stuck_worker_times_out():
    env = ParallelEnv(2, [CountingEnv, lambda: SlowCountingEnv(30.0)], timeout=30.0)
    pids = env.worker_pids
    td = env.rand_action(env.reset())
    env.timeout = 0.5  # only now: start-up and reset may be slow on a loaded machine
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"worker\(s\) \[1\] sent no answer within 0.5s"):
        env.step(td)
    assert time.monotonic() - start < 15  # "within seconds", with room for a loaded CI machine
    assert processes_gone(pids)


@pytest.mark.timeout(60)
def test_keyboard_interrupt_while_waiting_shuts_workers_down():
    env = ParallelEnv(2, lambda: SlowCountingEnv(30.0))
    pids = env.worker_pids
    td = env.rand_action(env.reset())

    with pytest.raises(KeyboardInterrupt), ctrl_c_after(0.3):
        env.step(td)
    assert processes_gone(pids)


@pytest.mark.timeout(60)
def test_bad_arguments_have_clear_errors():
    with pytest.raises(ValueError, match="num_workers must be >= 1"):
        ParallelEnv(0, CountingEnv)
    with pytest.raises(ValueError, match="got 1 make_env callables for num_workers=2"):
        ParallelEnv(2, [CountingEnv])
    with pytest.raises(TypeError, match="must be a callable"):
        ParallelEnv(2, CountingEnv())
    with pytest.raises(ValueError, match="worker 1's env has different specs"):
        ParallelEnv(2, [CountingEnv, ContinuousCountingEnv])


@pytest.mark.timeout(60)
def test_worker_group_spawn_context_and_request():
    def target(channel, index, offset):
        while True:
            msg = channel.recv()
            if msg[0] == "close":
                return
            channel.send(msg[1] + offset + index)

    with WorkerGroup(2, target, args=[(10,), (20,)], context="spawn", name="adder") as group:
        assert group.request(("add", 1), timeout=60) == [11, 22]
        assert group.recv_all is not None and len(group) == 2
        pids = group.pids
    assert group.closed and processes_gone(pids)


_OWNER_SCRIPT = """
import sys, time
from rlbench.envs.parallel import ParallelEnv
from rlbench.testing import CountingEnv
if __name__ == "__main__":
    env = ParallelEnv(2, CountingEnv)
    print(" ".join(map(str, env.worker_pids)), flush=True)
    if sys.argv[1] == "exit":
        sys.exit(0)  # never closed: the interpreter's exit must end the workers
    time.sleep(60)
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_workers_do_not_outlive_their_owner_process(tmp_path, how):
    import subprocess

    script = tmp_path / "owner.py"
    script.write_text(_OWNER_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), how], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2
        if how == "sigkill":  # the owner dies without any clean-up: workers see their pipe close
            os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) in (0, -signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert processes_gone(pids, within=20)


@pytest.mark.timeout(60)
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open file descriptors in /proc/self/fd")
def test_close_releases_the_shared_memory_without_the_garbage_collector():
    import gc

    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    ParallelEnv(1, CountingEnv).close()  # warm-up: the fork server and the fd-sharing thread start once
    gc.collect()
    gc.disable()  # what close() does not release stays until gc runs: count it
    try:
        before = open_fds()
        envs = []
        for _ in range(3):
            env = ParallelEnv(2, lambda: CountingEnv(batch_size=[2]))
            env.rollout(3)
            env.close()
            envs.append(env)  # still referenced (as in a notebook): close() itself must let go
        after = open_fds()
    finally:
        gc.enable()
    assert after - before < 3, f"{after - before} file descriptors left open by 3 closed ParallelEnvs"


_UNGUARDED_SCRIPT = """
import sys
from rlbench.envs.parallel import ParallelEnv
from rlbench.testing import CountingEnv

# no `if __name__ == "__main__":` guard: spawn and forkserver workers run this file again
env = ParallelEnv(2, CountingEnv, context=None if sys.argv[1] == "default" else sys.argv[1])
print("rollout", tuple(env.rollout(3).shape), flush=True)
env.close()
"""


def _run_script(path, *args):
    import subprocess

    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=100)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("context", ["default", "spawn"])
def test_a_script_without_main_guard_is_told_so(tmp_path, context):
    script = tmp_path / "unguarded.py"
    script.write_text(_UNGUARDED_SCRIPT)
    proc = _run_script(script, context)
    assert proc.returncode == 1 and "rollout" not in proc.stdout
    error = proc.stderr.strip().splitlines()[-1]  # the parent's exception, last in its traceback
    assert re.match(r"rlbench\.envs\.workers\.WorkerDiedError: ParallelEnv: worker [01] .* could not start", error)
    assert str(script) in error and 'if __name__ == "__main__":' in error and "re-imported" in error
    assert "OOM" not in proc.stderr


@pytest.mark.timeout(120)
def test_an_explicit_fork_start_method_runs_a_script_without_main_guard(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(_UNGUARDED_SCRIPT)
    proc = _run_script(script, "fork")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["rollout (2, 3)"]
    assert "starting workers with 'fork', as asked" in proc.stderr  # with the risks named, once
    assert proc.stderr.count("as asked") == 1


@pytest.mark.timeout(60)
def test_a_start_method_set_with_multiprocessing_is_honoured():
    import multiprocessing as mp

    from rlbench.envs.workers import default_context

    previous = mp.get_start_method(allow_none=True)
    mp.set_start_method("spawn", force=True)
    try:
        assert default_context().get_start_method() == "spawn"
    finally:
        mp.set_start_method(previous, force=True)
    # nobody chose one (or only the platform default was used implicitly): forkserver where it exists
    expected = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    if previous in (None, mp.get_all_start_methods()[0]):
        assert default_context().get_start_method() == expected


@pytest.mark.timeout(60)
def test_transformed_parallel_env_matches_serial(counting):
    from rlbench.envs import TransformedEnv
    from rlbench.envs.transforms import Compose, RewardSum, StepCounter

    makers = [lambda m=m: CountingEnv(max_steps=m) for m in (2, 3)]
    ours = TransformedEnv(counting, Compose(StepCounter(), RewardSum()))
    ref = TransformedEnv(SerialEnv(2, makers), Compose(StepCounter(), RewardSum()))
    assert check_env_specs(ours) == []
    a, b = ours.rollout(7, break_when_any_done=False), ref.rollout(7, break_when_any_done=False)
    for key in [("next", "step_count"), ("next", "episode_reward"), ("next", "observation"), ("next", "done")]:
        assert (a[key] == b[key]).all(), key


@pytest.mark.timeout(60)
def test_a_parallel_env_cannot_be_pickled(counting):
    import pickle

    with pytest.raises(TypeError, match="cannot be pickled.*lambda: ParallelEnv"):
        pickle.dumps(counting)


@pytest.mark.timeout(60)
def test_torchrl_create_env_fn_and_kwargs():
    """ParallelEnv(create_env_fn=, create_env_kwargs=) as TorchRL spells it; per-worker kwargs too."""
    from rlbench.envs.makers import EnvCreator

    with ParallelEnv(2, create_env_fn=CountingEnv, create_env_kwargs=[{"max_steps": 2}, {"max_steps": 3}]) as env:
        td = env.rollout(4, break_when_any_done=False)
    assert td["next", "observation"].squeeze(-1).tolist() == [[1.0, 2.0, 1.0, 2.0], [1.0, 2.0, 3.0, 1.0]]
    with ParallelEnv(2, EnvCreator(CountingEnv, {"max_steps": 2})) as env:
        assert env.rollout(3, break_when_any_done=False)["next", "done"].squeeze(-1)[:, 1].all()
    with pytest.raises(TypeError, match="not both"):
        ParallelEnv(2, CountingEnv, create_env_fn=CountingEnv)
    with pytest.raises(ValueError, match="got 3 create_env_kwargs dicts for num_workers=2"):
        ParallelEnv(2, create_env_fn=CountingEnv, create_env_kwargs=[{}, {}, {}])
    with pytest.raises(TypeError, match="missing the env maker"):
        ParallelEnv(2)
