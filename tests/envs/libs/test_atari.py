"""Atari through ale-py: GymEnv("ALE/...") without registering anything, and make_env's preprocessing.

The preprocessing is checked against the same steps written with NumPy over a plain gymnasium ALE env.
Without ale-py (the ``atari`` extra) these tests skip, except under CI=true, where the test command
installs it and a missing ale-py is a failure.
"""
from __future__ import annotations

import os
import subprocess
import sys

import gymnasium
import numpy as np
import pytest
import torch

from rlbench.envs import AtariPreprocessing, GymEnv, check_env_specs
from rlbench.envs.gym_backend import ensure_ale_registered as _ensure_ale_registered
from rlbench.envs.transforms.atari import ale_lives
from rlbench.recipes.envs import make_env


@pytest.fixture(scope="module", autouse=True)
def _ale():
    try:
        import ale_py  # noqa: F401
    except ImportError as err:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Atari tests cannot run under CI=true: ale-py is missing ({err})")
        pytest.skip('ale-py is not installed: pip install "rlbench[atari]"')


def test_ale_id_works_without_importing_ale_py():
    code = ("import sys; from rlbench.envs import GymEnv; assert 'ale_py' not in sys.modules; "
            "env = GymEnv('ALE/Pong-v5'); print(tuple(env.observation_spec['observation'].shape), env.action_spec.n)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "(210, 160, 3) 6"


def test_gym_env_pong_specs_and_rollout():
    env = GymEnv("ALE/Pong-v5")
    check_env_specs(env)
    td = env.rollout(5)
    assert td["next", "observation"].shape == (5, 210, 160, 3) and td["next", "observation"].dtype == torch.uint8


def test_unknown_game_and_version_name_what_exists():
    with pytest.raises(ValueError, match=r"GymEnv\('ALE/NoSuchGame-v5'\).*no game \(or ROM\) 'NoSuchGame'.*Pong"):
        GymEnv("ALE/NoSuchGame-v5")
    with pytest.raises(ValueError, match=r"no such version of Pong: it registers ALE/Pong-v5"):
        GymEnv("ALE/Pong-v9")


def test_missing_ale_py_names_the_extra(monkeypatch):
    class EmptyGym:
        registry: dict = {}

    monkeypatch.setitem(sys.modules, "ale_py", None)  # `import ale_py` raises ImportError
    with pytest.raises(ImportError, match=r'pip install "rlbench\[atari\]"'):
        _ensure_ale_registered("ALE/Pong-v5", EmptyGym)


def test_make_env_preprocessing_shapes_and_specs():
    env = make_env("ALE/Pong-v5", seed=0)
    assert env.observation_spec["pixels"].shape == (4, 84, 84)
    check_env_specs(env)
    td = env.rollout(20)
    assert td["next", "pixels"].shape == (20, 4, 84, 84)
    assert set(td["next", "reward"].unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert td["next", "end_of_life"].dtype == torch.bool
    batched = make_env("ALE/Pong-v5", 2, seed=0)
    check_env_specs(batched)
    assert batched.rollout(3)["pixels"].shape == (2, 3, 4, 84, 84)
    raw = make_env("ALE/Pong-v5", atari=False)
    assert raw.observation_spec["observation"].shape == (210, 160, 3)


def _numpy_reference(actions, skip=4, stack=4):
    """Skip + max of the last two frames + gray + stack, by hand with NumPy over gymnasium's ALE env."""
    env = gymnasium.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.0)
    obs, _ = env.reset(seed=0)
    weights = np.array([0.299, 0.587, 0.114])
    gray = lambda frame: (frame.astype(np.float64) / 255.0) @ weights  # noqa: E731
    hist = [gray(obs)] * stack
    out, rewards = [], []
    for a in actions:
        frames, total = [obs], 0.0
        for _ in range(skip):
            obs, r, term, trunc, _ = env.step(a)
            frames.append(obs)
            total += r
        hist = hist[1:] + [gray(np.maximum(frames[-1], frames[-2]))]
        out.append(np.stack(hist))
        rewards.append(np.sign(total))
    return np.stack(out), np.array(rewards)


def test_preprocessing_matches_numpy_reference():
    prep = AtariPreprocessing(noop_max=0, screen_size=0, repeat_action_probability=0.0)
    env = make_env("ALE/Pong-v5", seed=0, atari=prep)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 6, size=30)
    env.reset()
    pixels, rewards = [], []
    td = env.reset()
    for a in actions:
        td.set("action", torch.tensor(int(a)))
        td = env.step(td)
        pixels.append(td["next", "pixels"])
        rewards.append(float(td["next", "reward"]))
        td = td["next"].exclude("reward", "done", "terminated", "truncated")
    ref, ref_rewards = _numpy_reference(actions)
    got = torch.stack(pixels).numpy()
    assert got.shape == (30, 4, 210, 160)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_array_equal(np.array(rewards), ref_rewards)
    assert not np.allclose(ref[-1, 0], ref[-1, -1])  # the frames do move: the check is not vacuous


def test_end_of_life_flags_each_lost_life_without_reset():
    env = make_env("ALE/Breakout-v5", seed=0, atari=AtariPreprocessing(noop_max=0, repeat_action_probability=0.0))
    torch.manual_seed(0)
    td = env.reset()
    lives_before = ale_lives(env)
    assert lives_before == 5
    flags, losses = [], []
    for _ in range(400):
        td = env.rand_action(td)
        td = env.step(td)
        lives_after = ale_lives(env)
        flags.append(bool(td["next", "end_of_life"]))
        losses.append(lives_after < lives_before or bool(td["next", "done"]))
        if bool(td["next", "done"]):
            break
        assert not bool(td["next", "terminated"]) or lives_after == 0
        lives_before = lives_after
        td = td["next"].exclude("reward", "done", "terminated", "truncated")
    assert flags == losses
    assert sum(flags) >= 1  # at least one life was lost, and the game went on after it
    assert flags.index(True) < len(flags) - 1
