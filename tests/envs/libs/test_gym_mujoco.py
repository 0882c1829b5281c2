"""Gymnasium's MuJoCo envs through GymEnv: specs, a headless render, agreement with a plain gymnasium loop.

Without the ``mujoco`` extra (or, for the render, a headless GL) these tests skip, saying why, except
under CI=true, where the test command installs them and a missing one is a failure.
"""
from __future__ import annotations

import importlib.util
import os
import sys

import gymnasium
import numpy as np
import pytest
import torch

from rlbench.envs import GymEnv, check_env_specs, step_mdp
from rlbench.envs.libs import gym_mujoco, mujoco_gl


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"gymnasium MuJoCo tests cannot run under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    # MuJoCo writes its compiler warnings (HalfCheetah's deprecated settotalmass) to ./MUJOCO_LOG.TXT
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def extra():
    missing = [m for m in ("mujoco", "imageio") if importlib.util.find_spec(m) is None]
    if missing:
        _unavailable(f"the mujoco extra is not installed (missing {', '.join(missing)}): {gym_mujoco.MUJOCO_EXTRA}")


@pytest.mark.parametrize("name, obs_dim, act_dim", [("HalfCheetah-v5", 17, 6), ("Hopper-v5", 11, 3)])
def test_specs_from_states(extra, name, obs_dim, act_dim):
    env = GymEnv(name)
    try:
        assert env.observation_spec["observation"].shape == (obs_dim,)
        assert env.observation_spec["observation"].dtype == torch.float32
        assert env.action_spec.shape == (act_dim,)
        check_env_specs(env)
    finally:
        env.close()


def test_steps_match_a_plain_gymnasium_loop(extra):
    seed, steps = 3, 40
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(steps, 3)).astype(np.float32)

    ref = gymnasium.make("Hopper-v5")
    obs, _ = ref.reset(seed=seed)
    ref_obs, ref_next, ref_rew, ref_term, ref_trunc = [], [], [], [], []
    for a in actions:
        ref_obs.append(obs)
        nxt, r, term, trunc, _ = ref.step(a)
        ref_next.append(nxt), ref_rew.append(r), ref_term.append(term), ref_trunc.append(trunc)
        obs = ref.reset()[0] if term or trunc else nxt
    ref.close()

    env = GymEnv("Hopper-v5")
    env.set_seed(seed)
    td = env.reset()
    got = []
    for a in actions:
        td["action"] = torch.from_numpy(a)
        td = env.step(td)
        got.append(td.select("observation", "action", ("next", "observation"), ("next", "reward"),
                             ("next", "terminated"), ("next", "truncated")).clone())
        td = env.reset() if bool(td["next", "done"]) else step_mdp(td)
    env.close()
    got = torch.stack(got)
    assert bool(np.any(ref_term)), "the seed should give a terminated Hopper episode within the steps"
    np.testing.assert_allclose(got["observation"].numpy(), np.asarray(ref_obs, np.float32), rtol=0, atol=1e-6)
    np.testing.assert_allclose(got["next", "observation"].numpy(), np.asarray(ref_next, np.float32), atol=1e-6)
    np.testing.assert_allclose(got["next", "reward"].squeeze(-1).numpy(), np.asarray(ref_rew, np.float32),
                               rtol=1e-6)
    assert got["next", "terminated"].squeeze(-1).tolist() == ref_term
    assert got["next", "truncated"].squeeze(-1).tolist() == ref_trunc


def test_from_pixels_renders_headless(extra):
    try:
        env = GymEnv("HalfCheetah-v5", from_pixels=True, width=32, height=24)
    except RuntimeError as err:
        _unavailable(f"no headless rendering: {err}")
    try:
        assert os.environ.get("MUJOCO_GL") in ("egl", "osmesa", "glx")  # chosen before mujoco rendered
        td = env.rollout(3)
        pixels = td["pixels"]
        assert pixels.shape == (3, 24, 32, 3) and pixels.dtype == torch.uint8
        assert env.observation_spec["pixels"].shape == (24, 32, 3)
        assert pixels.float().std() > 5  # an image, not a constant (black) frame
        assert not torch.equal(td["pixels"][0], td["next", "pixels"][-1])  # the cheetah moved
    finally:
        env.close()


def test_is_gym_mujoco_reads_the_entry_point():
    assert gym_mujoco.is_gym_mujoco("Walker2d-v5") and gym_mujoco.is_gym_mujoco("Ant-v5")
    assert not gym_mujoco.is_gym_mujoco("Pendulum-v1") and not gym_mujoco.is_gym_mujoco("NoSuch-v0")


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio", None)  # find_spec then reports it missing
    with pytest.raises(ImportError, match=r'HalfCheetah-v5 .*imageio.*pip install "rlbench\[mujoco\]"'):
        GymEnv("HalfCheetah-v5")


def test_no_headless_gl_refuses_pixels_saying_what_to_install(extra, monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(mujoco_gl, "_has_library", lambda name: False)
    with pytest.raises(RuntimeError, match="libosmesa6"):
        gym_mujoco.prepare_gym_mujoco("HalfCheetah-v5", from_pixels=True)
