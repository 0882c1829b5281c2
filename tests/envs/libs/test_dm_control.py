"""DMControlEnv / DMControlWrapper against plain dm_control: specs, data, episode ends, seeding, batching.

Without dm_control (the ``dm_control`` extra) or a headless GL these tests skip, saying why, except
under CI=true, where the test command installs both and a missing one is a failure.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rlbench.envs import DMControlEnv, DMControlWrapper, ParallelEnv, SerialEnv, check_env_specs, step_mdp
from rlbench.envs.libs import mujoco_gl

ROOT = Path(__file__).resolve().parents[3]
REPRESENTATIVE = [("cartpole", "swingup"), ("cheetah", "run"), ("walker", "walk"), ("reacher", "easy"),
                  ("finger", "spin"), ("ball_in_cup", "catch")]


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"dm_control tests cannot run under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def suite():
    from rlbench.envs.libs.dm_control import _import_suite

    try:
        return _import_suite()
    except ImportError as err:
        _unavailable(str(err))


@pytest.fixture(scope="module")
def can_render(suite):
    try:
        DMControlEnv("cartpole", "swingup", from_pixels=True, height=8, width=8).close()
    except RuntimeError as err:
        _unavailable(f"no headless rendering: {err}")


def _actions(spec, n, seed=0):
    """Fixed float32 actions inside ``spec`` (a dm_env BoundedArray)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(spec.minimum, spec.maximum, size=(n, *spec.shape)).astype(np.float32)


def _step_ours(env, actions):
    """Step ``env`` with ``actions`` (resetting when done): the stacked steps."""
    td = env.reset()
    steps = []
    for a in actions:
        td["action"] = torch.from_numpy(a).to(env.action_spec.dtype).reshape(env.action_spec.shape)
        td, root = env.step_and_maybe_reset(td)
        steps.append(td)
        td = root
    return torch.stack(steps)


# ----------------------------------------------------------------------- packaging
def test_import_is_lazy_and_a_missing_dm_control_names_the_extra():
    """One subprocess (importing torch costs seconds): nothing of dm_control at import, then a clear error."""
    code = (
        "import sys, rlbench, rlbench.envs\n"
        "from rlbench.envs import DMControlEnv, DMControlWrapper\n"
        "from rlbench.envs.libs import select_mujoco_gl\n"
        "loaded = [m for m in ('dm_control', 'mujoco', 'dm_env', 'OpenGL') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "sys.modules['dm_control'] = None  # as if it were not installed\n"
        "try:\n"
        "    DMControlEnv('cartpole', 'swingup')\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True).stdout
    assert 'pip install "rlbench[dm_control]"' in out, out
    assert "'dm_control' is not installed" in out, out


def test_extra_pins_mujoco_below_4():
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dm_control"]
    assert extra == ["dm_control>=1.0.50", "mujoco>=3.1,<4"]
    assert "dm-control" in (ROOT / "scripts" / "setup.sh").read_text()  # the test command installs it


# -------------------------------------------------------------------- MUJOCO_GL
@pytest.fixture
def fresh_gl(monkeypatch):
    """select_mujoco_gl as on a machine where dm_control was never imported and MUJOCO_GL is unset."""
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("DISABLE_RENDER_THREAD_OFFLOADING", raising=False)
    monkeypatch.delitem(sys.modules, "dm_control._render", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(mujoco_gl, "_CHOICE", [])
    return monkeypatch


@pytest.mark.parametrize("gpu, libs, expected", [
    (True, {"EGL", "OSMesa"}, "egl"),
    (False, {"EGL", "OSMesa"}, "osmesa"),
    (True, {"OSMesa"}, "osmesa"),  # a GPU but no libEGL
    (False, {"EGL"}, "egl"),  # Mesa's EGL renders in software
    (False, set(), None),
])
def test_select_mujoco_gl(fresh_gl, gpu, libs, expected):
    fresh_gl.setattr(mujoco_gl, "_gpu_visible", lambda: gpu)
    fresh_gl.setattr(mujoco_gl, "_has_library", lambda name: name in libs)
    assert mujoco_gl.select_mujoco_gl() == expected
    assert os.environ.get("MUJOCO_GL") == expected
    help_text = mujoco_gl.render_help()
    assert "apt-get install libosmesa6" in help_text and "MUJOCO_GL" in help_text
    if expected:
        assert f"MUJOCO_GL={expected} was chosen by rlbench" in help_text


@pytest.mark.parametrize("libs, offloading", [({"OSMesa"}, "1"), ({"EGL"}, None)])
def test_osmesa_renders_on_the_calling_thread(fresh_gl, libs, offloading):
    # dm_control's per-context render threads can deadlock when the GC frees an unclosed pixel env on one
    # of them; OSMesa (software) has no use for them
    fresh_gl.setattr(mujoco_gl, "_gpu_visible", lambda: False)
    fresh_gl.setattr(mujoco_gl, "_has_library", lambda name: name in libs)
    mujoco_gl.select_mujoco_gl()
    assert os.environ.get("DISABLE_RENDER_THREAD_OFFLOADING") == offloading


def test_osmesa_keeps_the_users_render_thread_setting(fresh_gl):
    fresh_gl.setenv("MUJOCO_GL", "osmesa")
    fresh_gl.setenv("DISABLE_RENDER_THREAD_OFFLOADING", "")
    mujoco_gl.select_mujoco_gl()
    assert os.environ["DISABLE_RENDER_THREAD_OFFLOADING"] == ""


def test_pixel_env_contexts_render_on_the_calling_thread_under_osmesa():
    """In a fresh process (dm_control reads the setting at its first import): no render thread per context."""
    code = (
        "import os\n"
        "from rlbench.envs import DMControlEnv\n"
        "env = DMControlEnv('cartpole', 'swingup', from_pixels=True, height=16, width=16)\n"
        "env.rollout(2)\n"
        "print(os.environ.get('MUJOCO_GL'), type(env._env.physics.contexts.gl._render_executor).__name__)\n"
        "env.close()\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISABLE_RENDER_THREAD_OFFLOADING")}
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True,
                         env=clean).stdout.split()
    if out[0] != "osmesa":
        pytest.skip(f"this machine renders with MUJOCO_GL={out[0]}, not OSMesa")
    assert out[1] == "PassthroughRenderExecutor"


def test_select_mujoco_gl_keeps_the_users_choice(fresh_gl):
    fresh_gl.setenv("MUJOCO_GL", "glfw")
    fresh_gl.setattr(mujoco_gl, "_gpu_visible", lambda: True)
    assert mujoco_gl.select_mujoco_gl() == "glfw"
    assert os.environ["MUJOCO_GL"] == "glfw"
    assert "MUJOCO_GL=glfw was chosen by you" in mujoco_gl.render_help()


def test_select_mujoco_gl_after_dm_control_was_imported(fresh_gl):
    fresh_gl.setitem(sys.modules, "dm_control._render", object())
    assert mujoco_gl.select_mujoco_gl() is None
    assert "MUJOCO_GL" not in os.environ


# ------------------------------------------------------------------------- specs
@pytest.mark.parametrize("domain, task", REPRESENTATIVE, ids=lambda x: x)
def test_check_env_specs_from_states(suite, domain, task):
    env = DMControlEnv(domain, task)
    assert check_env_specs(env, seed=0) == []
    env.close()


@pytest.mark.parametrize("domain, task", [("cartpole", "swingup"), ("walker", "walk")], ids=lambda x: x)
def test_specs_follow_the_dm_env_specs(suite, domain, task):
    env = DMControlEnv(domain, task)
    ref = suite.load(domain, task)
    obs_spec = ref.observation_spec()
    assert list(env.observation_spec.keys()) == list(obs_spec)  # dm_control's names and order
    td = env.reset()
    for key, arr in obs_spec.items():
        shape = arr.shape or (1,)  # scalars become [1]
        assert env.observation_spec[key].shape == shape, key
        assert env.observation_spec[key].dtype == torch.float32  # float64 -> float32
        assert td[key].shape == shape and td[key].dtype == torch.float32, key
    act = ref.action_spec()
    assert env.action_spec.shape == act.shape and env.action_spec.dtype == torch.float32
    torch.testing.assert_close(env.action_spec.low, torch.tensor(act.minimum, dtype=torch.float32))
    torch.testing.assert_close(env.action_spec.high, torch.tensor(act.maximum, dtype=torch.float32))
    assert env.reward_spec.shape == (1,) and env.reward_spec.dtype == torch.float32
    doubles = DMControlEnv(domain, task, double_to_float=False)
    assert all(doubles.observation_spec[k].dtype == torch.float64 for k in obs_spec)
    assert doubles.action_spec.dtype == torch.float64
    for e in (env, doubles):
        e.close()


def test_scalar_observations_get_shape_1(suite):
    env = DMControlEnv("walker", "walk")  # "height" is a scalar in dm_control
    assert suite.load("walker", "walk").observation_spec()["height"].shape == ()
    assert env.observation_spec["height"].shape == (1,)
    td = env.rollout(2)
    assert td["next", "height"].shape == (2, 1)
    env.close()


# ----------------------------------------------------------------- against dm_control
@pytest.mark.parametrize("domain, task", [("cartpole", "swingup"), ("cheetah", "run")], ids=lambda x: x)
def test_same_data_as_a_plain_dm_control_loop(suite, domain, task):
    seed, n = 3, 12
    ref = suite.load(domain, task, task_kwargs={"random": seed})
    actions = _actions(ref.action_spec(), n)
    env = DMControlEnv(domain, task, double_to_float=False)
    env.set_seed(seed)  # reseeds the task's RandomState as task_kwargs={"random": seed} seeds it
    ours = _step_ours(env, actions)
    ts = ref.reset()
    for t, a in enumerate(actions):
        for key, value in ts.observation.items():
            np.testing.assert_array_equal(ours[t][key].numpy(), np.asarray(value).reshape(-1), err_msg=key)
        ts = ref.step(a)
        assert ours[t]["next", "reward"].item() == np.float32(ts.reward)
        for key, value in ts.observation.items():
            np.testing.assert_array_equal(ours[t]["next", key].numpy(), np.asarray(value).reshape(-1), err_msg=key)
    assert not ours["next", "done"].any()
    # float32 (the default) is the same data, cast
    env32 = DMControlEnv(domain, task)
    env32.set_seed(seed)
    ours32 = _step_ours(env32, actions)
    for key in ref.observation_spec():
        torch.testing.assert_close(ours32["next", key], ours["next", key].float(), rtol=0, atol=0)
    torch.testing.assert_close(ours32["next", "reward"], ours["next", "reward"])
    for e in (env, env32):
        e.close()


def test_time_limit_is_truncated_not_terminated(suite):
    env = DMControlEnv("cartpole", "swingup", task_kwargs={"time_limit": 0.05})  # 5 control steps of 10 ms
    td = env.rollout(20)
    assert td.shape == (5,)
    assert td["next", "truncated"].squeeze(-1).tolist() == [False] * 4 + [True]
    assert not td["next", "terminated"].any()
    assert td["next", "done"].squeeze(-1).tolist() == [False] * 4 + [True]
    # the final observation is the true last one, the next step starts a fresh episode
    long = env.rollout(12, break_when_any_done=False)
    assert long["next", "done"].squeeze(-1).nonzero().squeeze(-1).tolist() == [4, 9]
    assert not torch.equal(long[4]["next", "position"], long[5]["position"])
    env.close()


def test_discount_zero_before_the_limit_is_terminated(suite):
    raw = suite.load("cartpole", "swingup", task_kwargs={"random": 0})
    # the task ends the episode with discount 0 after 3 steps, as a failing task does
    raw.task.get_termination = lambda physics: 0.0 if physics.data.time >= 0.03 - 1e-9 else None
    env = DMControlWrapper(raw)
    td = env.rollout(10)
    assert td.shape == (3,)
    assert td["next", "terminated"].squeeze(-1).tolist() == [False, False, True]
    assert not td["next", "truncated"].any()
    env.close()


def test_stepping_past_the_end_needs_a_reset(suite):
    env = DMControlEnv("cartpole", "swingup", task_kwargs={"time_limit": 0.02})
    td = env.rollout(5)
    assert td.shape == (2,)
    with pytest.raises(RuntimeError, match=r"call env.reset\(\) first"):
        env.step(env.rand_action(step_mdp(td[-1])))
    env.close()


def test_frame_skip_repeats_the_action_and_sums_rewards(suite):
    seed, n, k = 1, 4, 3
    ref = suite.load("cartpole", "swingup", task_kwargs={"random": seed})
    actions = _actions(ref.action_spec(), n, seed=5)
    env = DMControlEnv("cartpole", "swingup", frame_skip=k)
    env.set_seed(seed)
    ours = _step_ours(env, actions)
    ref.reset()
    for t, a in enumerate(actions):
        rewards = []
        for _ in range(k):
            ts = ref.step(a)
            rewards.append(ts.reward)
        assert ours[t]["next", "reward"].item() == np.float32(sum(rewards))
        final = ts.observation["position"].astype(np.float32)  # the observation after the last repeat
        np.testing.assert_array_equal(ours[t]["next", "position"].numpy(), final)
    # the repeats stop at the episode's end: 5 control steps in repeats of 2 give steps of 2, 2, 1
    short = DMControlEnv("cartpole", "swingup", frame_skip=2, task_kwargs={"time_limit": 0.05})
    td = short.rollout(10)
    assert td.shape == (3,) and bool(td["next", "truncated"][-1]) and not td["next", "terminated"].any()
    for e in (env, short):
        e.close()


# ---------------------------------------------------------------------- seeding
def test_set_seed_reproduces_and_seeds_differ(suite):
    env = DMControlEnv("walker", "walk")
    env.set_seed(11)
    first = env.rollout(6)
    env.set_seed(11)
    again = env.rollout(6)
    assert (first == again).all()
    env.set_seed(12)
    other = env.rollout(6)
    assert not torch.equal(first["orientations"][0], other["orientations"][0])  # another initial state
    assert not torch.equal(first["action"], other["action"])  # and other random actions
    with pytest.raises(ValueError, match=r"seed.*-1"):  # numpy's RandomState takes no negative seed
        env.set_seed(-1)
    env.set_seed(2**40)  # big seeds are folded, not refused
    env.close()


def test_fast_random_rollout_is_the_generic_path(suite):
    """rollout(policy=None) takes a NumPy path; a policy drawing the same random actions takes the generic one."""
    env = DMControlEnv("cartpole", "swingup", task_kwargs={"time_limit": 0.04}, frame_skip=1)
    for stop in (True, False):
        env.set_seed(5)
        fast = env.rollout(10, break_when_any_done=stop)
        env.set_seed(5)
        generic = env.rollout(10, policy=env.rand_action, break_when_any_done=stop)
        assert fast.shape == generic.shape == ((4,) if stop else (10,))
        assert set(fast.keys(True, True)) == set(generic.keys(True, True))
        assert (fast == generic).all()
    env.close()


def test_unseedable_dm_env_says_how_to_seed(suite):
    class NoTask:  # a dm_env that exposes no RandomState
        def __init__(self, env):
            self._env = env

        def __getattr__(self, name):
            if name == "task":
                raise AttributeError(name)
            return getattr(self._env, name)

    env = DMControlWrapper(NoTask(suite.load("cartpole", "swingup")))
    with pytest.raises(TypeError, match=r"task_kwargs=\{'random': seed\}"):
        env.set_seed(0)


# ----------------------------------------------------------------------- pixels
def test_pixels(suite, can_render):
    seed = 2
    env = DMControlEnv("cartpole", "swingup", from_pixels=True, height=32, width=24)
    assert check_env_specs(env, seed=seed) == []
    spec = env.observation_spec["pixels"]
    assert spec.shape == (32, 24, 3) and spec.dtype == torch.uint8
    assert {"position", "velocity", "pixels"} == set(env.observation_spec.keys())
    # the frames are dm_control's own renders of the same states
    ref = suite.load("cartpole", "swingup", task_kwargs={"random": seed})
    env.set_seed(seed)
    actions = _actions(ref.action_spec(), 2)
    ours = _step_ours(env, actions)
    ref.reset()
    np.testing.assert_array_equal(ours[0]["pixels"].numpy(), ref.physics.render(32, 24, camera_id=0))
    ref.step(actions[0])
    np.testing.assert_array_equal(ours[0]["next", "pixels"].numpy(), ref.physics.render(32, 24, camera_id=0))
    assert ours["pixels"].float().std() > 0  # not a blank frame
    only = DMControlEnv("cartpole", "swingup", from_pixels=True, pixels_only=True, height=16, width=16, camera_id=1)
    assert list(only.observation_spec.keys()) == ["pixels"]
    assert list(only.rollout(2)["next"].exclude("reward", "done", "terminated", "truncated").keys()) == ["pixels"]
    for e in (env, only):
        e.close()


def test_pixels_rollout_fast_path_matches_generic(suite, can_render):
    env = DMControlEnv("cartpole", "balance", from_pixels=True, pixels_only=True, height=16, width=16)
    env.set_seed(0)
    fast = env.rollout(3)
    env.set_seed(0)
    generic = env.rollout(3, policy=env.rand_action)
    assert (fast == generic).all()
    env.close()


def test_rendering_failure_says_what_to_install(suite, monkeypatch):
    raw = suite.load("cartpole", "swingup")

    def broken(*args, **kwargs):
        raise RuntimeError("No OpenGL rendering backend is available.")

    monkeypatch.setattr(type(raw.physics), "render", broken)
    with pytest.raises(RuntimeError) as info:
        DMControlWrapper(raw, from_pixels=True)
    message = str(info.value)
    assert "No OpenGL rendering backend" in message and "apt-get install libosmesa6" in message
    assert "MUJOCO_GL" in message


# ------------------------------------------------------------------- bad input
def test_unknown_domain_lists_the_valid_ones(suite):
    with pytest.raises(ValueError) as info:
        DMControlEnv("cartpol", "swingup")
    message = str(info.value)
    assert "unknown dm_control domain 'cartpol'" in message and "Did you mean 'cartpole'?" in message
    for domain in {d for d, _ in suite.ALL_TASKS}:
        assert domain in message
    assert "cheetah-run" in message  # the benchmarking set


def test_unknown_task_lists_the_domains_tasks(suite):
    with pytest.raises(ValueError) as info:
        DMControlEnv("cartpole", "swing_up")
    message = str(info.value)
    assert "domain 'cartpole' has no task 'swing_up'" in message and "Did you mean 'swingup'?" in message
    for _, task in [dt for dt in suite.ALL_TASKS if dt[0] == "cartpole"]:
        assert task in message


def test_bad_arguments(suite):
    with pytest.raises(ValueError, match="pixels_only=True needs from_pixels=True"):
        DMControlEnv("cartpole", "swingup", pixels_only=True)
    with pytest.raises(ValueError, match="frame_skip must be >= 1"):
        DMControlEnv("cartpole", "swingup", frame_skip=0)
    env = DMControlEnv("cartpole", "swingup")
    td = env.reset()
    with pytest.raises(ValueError, match="does not match action_spec"):
        env.step(td.set("action", torch.full((1,), 3.0)))  # outside [-1, 1]
    env.close()


# --------------------------------------------------------------------- batching
def _make_cartpole():
    return DMControlEnv("cartpole", "swingup", task_kwargs={"time_limit": 0.05})


def test_serial_env(suite):
    env = SerialEnv(2, _make_cartpole)
    assert check_env_specs(env, seed=0) == []
    td = env.rollout(7, break_when_any_done=False)
    assert td.shape == (2, 7) and td["next", "position"].shape == (2, 7, 3)
    assert td["next", "truncated"].squeeze(-1)[:, 4].all() and not td["next", "terminated"].any()
    assert not torch.equal(td[0]["position"][0], td[1]["position"][0])  # sub-envs seeded seed + i
    env.close()


@pytest.fixture(scope="module")
def parallel(suite):
    env = ParallelEnv(2, _make_cartpole)
    yield env
    env.close()


@pytest.mark.timeout(120)
def test_parallel_env_matches_serial(parallel):
    assert check_env_specs(parallel, seed=0) == []
    serial = SerialEnv(2, _make_cartpole)
    parallel.set_seed(4)
    serial.set_seed(4)
    actions = _actions(serial.envs[0].dm_env.action_spec(), 8)
    ours = _step_ours(parallel, np.stack([actions, actions[::-1]], 1))
    ref = _step_ours(serial, np.stack([actions, actions[::-1]], 1))
    assert (ours == ref).all()
    serial.close()


@pytest.mark.timeout(120)
def test_collector_over_parallel_env(parallel):
    from rlbench.collectors import Collector

    collector = Collector(parallel, frames_per_batch=12, total_frames=24)
    batches = list(collector)
    assert len(batches) == 2
    for batch in batches:
        assert batch.shape == (2, 6)
        assert batch["next", "reward"].shape == (2, 6, 1) and batch["next", "reward"].dtype == torch.float32
        assert parallel.action_spec.is_in(batch["action"])
    # 12 steps per sub-env with a 5-step limit: truncations at steps 5 and 10
    done = torch.cat([b["next", "truncated"] for b in batches], 1).squeeze(-1)
    assert done.sum(1).tolist() == [2, 2]
    collector.shutdown()
