"""Tests of the gymnasium / legacy gym backend: GymWrapper/GymEnv, vector envs, fast rollout."""
from __future__ import annotations

import sys

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from rlbench.envs.common import EnvBase
from rlbench.envs.gym import GymEnv, GymWrapper
from rlbench.envs.utils import check_env_specs, step_mdp
from rlbench.specs import (
    Bounded,
    Categorical,
    Composite,
    OneHot,
)


# --------------------------------------------------------------------------- helper envs
class DictObsEnv(gymnasium.Env):
    """Nested Dict/Tuple observations of every leaf kind; MultiDiscrete action with start offsets."""

    def __init__(self, horizon: int = 4):
        self.observation_space = spaces.Dict({
            "pos": spaces.Box(-1.0, 1.0, (2,), np.float64),
            "inner": spaces.Dict({"k": spaces.Discrete(4, start=2), "m": spaces.MultiBinary(3)}),
            "tup": spaces.Tuple((spaces.Box(-np.inf, np.inf, (1,), np.float32), spaces.MultiDiscrete([2, 3]))),
        })
        self.action_space = spaces.MultiDiscrete([2, 3], start=[1, -1])
        self.horizon = horizon
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(int(self.np_random.integers(2**31)))
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action)), action
        self.t += 1
        reward = float(np.sum(action))
        return self.observation_space.sample(), reward, self.t >= self.horizon, False, {}


class OldApiEnv:
    """A gym < 0.26 style env: ``reset() -> obs``, ``step() -> (obs, reward, done, info)``, ``seed()``.

    The observation is ``[t, noise]``; the episode ends at ``horizon`` steps, as a time-limit
    truncation (``info["TimeLimit.truncated"]``) when ``time_limit`` is set, else as a termination.
    """

    observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = spaces.Discrete(2)

    def __init__(self, horizon: int = 3, time_limit: bool = True):
        self.horizon, self.time_limit = horizon, time_limit
        self.rng = np.random.default_rng()
        self.t = 0
        self.closed = False

    def seed(self, seed=None):
        self.rng = np.random.default_rng(seed)
        return [seed]

    def reset(self):
        self.t = 0
        return np.array([0.0, self.rng.normal()])

    def step(self, action):
        assert action in (0, 1)
        self.t += 1
        done = self.t >= self.horizon
        info = {"TimeLimit.truncated": True} if done and self.time_limit else {}
        return np.array([float(self.t), self.rng.normal()]), float(action), done, info

    def close(self):
        self.closed = True


def replay(actions):
    """A policy that writes the given actions one after another."""
    it = iter(actions)

    def policy(td):
        td.set("action", next(it).clone())
        return td

    return policy


def manual_rollout(env, actions):
    """Step ``env`` with ``actions`` by hand, resetting after each done step (independent of EnvBase.rollout)."""
    td, rows = env.reset(), []
    for action in actions:
        td.set("action", action.clone())
        td = env.step(td)
        rows.append(td.clone())
        td = env.reset() if td["next", "done"].item() else step_mdp(td)
    return torch.stack(rows)


def assert_same(a, b):
    assert set(a.keys(True, True)) == set(b.keys(True, True))
    assert a.shape == b.shape
    for key in a.keys(True, True):
        x, y = a.get(key), b.get(key)
        assert x.dtype == y.dtype and x.shape == y.shape, key
        assert torch.equal(x, y), key


# ----------------------------------------------------- spaces in the wrapper (the mapping itself: test_gym_spaces.py)
def test_unsupported_observation_space_in_wrapper():
    class TextEnv(gymnasium.Env):
        observation_space = spaces.Text(4)
        action_space = spaces.Discrete(2)

    with pytest.raises(TypeError, match="observation space.*Text"):
        GymWrapper(TextEnv())


# --------------------------------------------------------------------------- GymEnv basics
@pytest.mark.parametrize("name,action_type", [
    ("CartPole-v1", Categorical), ("Pendulum-v1", Bounded), ("MountainCar-v0", Categorical),
    ("FrozenLake-v1", Categorical), ("Blackjack-v1", Categorical),
])
def test_check_env_specs_gymnasium_envs(name, action_type):
    env = GymEnv(name)
    assert isinstance(env.action_spec, action_type)
    obs_spec = env.observation_spec["observation"]
    if name == "FrozenLake-v1":  # Discrete observation
        assert isinstance(obs_spec, Categorical) and obs_spec.n == 16
    elif name == "Blackjack-v1":  # Tuple observation
        assert isinstance(obs_spec, Composite) and list(obs_spec.keys()) == ["0", "1", "2"]
    else:
        assert obs_spec.dtype == torch.float32
    assert check_env_specs(env, seed=0) == []
    td = env.rollout(10, break_when_any_done=False)
    assert td["next", "reward"].shape == (10, 1) and td["next", "reward"].dtype == torch.float32
    for key in ("done", "terminated", "truncated"):
        assert td["next", key].shape == (10, 1) and td["next", key].dtype == torch.bool
    env.close()
    assert env.is_closed


def test_dict_obs_env_and_float64_cast():
    env = GymWrapper(DictObsEnv())
    assert check_env_specs(env, seed=0) == []
    td = env.rollout(10)
    assert td.shape == (4,) and bool(td["next", "terminated"][-1])
    assert td["pos"].dtype == torch.float32  # float64 Box -> float32
    assert ((td["inner", "k"] >= 0) & (td["inner", "k"] < 4)).all()  # Discrete(start=2) shifted to 0..3
    assert td["action"].shape == (4, 2)


def test_truncation_is_not_termination():
    env = GymEnv("CartPole-v1", max_episode_steps=5)
    env.set_seed(0)
    torch.manual_seed(1)
    td = env.rollout(50)
    assert td.shape == (5,)
    assert td["next", "truncated"][-1].item() and not td["next", "terminated"][-1].item()
    assert td["next", "done"][-1].item()


def test_one_hot_actions():
    env = GymEnv("CartPole-v1", categorical_action_encoding=False)
    assert isinstance(env.action_spec, OneHot)
    assert check_env_specs(env) == []
    td = env.reset()
    td["action"] = torch.tensor([True, True])
    with pytest.raises(ValueError, match="not one-hot"):
        env.step(td)


def test_seeding_is_deterministic():
    def run(seed):
        env = GymEnv("CartPole-v1")
        env.set_seed(seed)
        torch.manual_seed(3)
        return env.rollout(60, break_when_any_done=False)

    assert_same(run(0), run(0))
    assert not torch.equal(run(0)["observation"], run(1)["observation"])
    env = GymEnv("CartPole-v1")
    env.set_seed(5)
    first = env.reset()["observation"]
    env.set_seed(5)
    assert torch.equal(env.reset()["observation"], first)
    assert env.gym_env.action_space.sample() == (env.set_seed(5), env.gym_env.action_space.sample())[1]


def test_step_and_maybe_reset_loop():
    env = GymEnv("CartPole-v1", max_episode_steps=4)
    td = env.reset()
    for _ in range(9):
        td, root = env.step_and_maybe_reset(env.rand_action(td))
        td = root
        assert not td["done"].item()


def test_render_and_close_pass_through():
    env = GymEnv("CartPole-v1", render_mode="rgb_array")
    env.reset()
    assert env.render().shape == (400, 600, 3)
    gym_env = env.gym_env
    env.close()
    assert env.is_closed and gym_env.unwrapped.isopen is False


# --------------------------------------------------------------------------- pixels
def test_pixels():
    env = GymEnv("CartPole-v1", from_pixels=True)
    spec = env.observation_spec["pixels"]
    assert spec.shape == (400, 600, 3) and spec.dtype == torch.uint8
    td = env.rollout(3, break_when_any_done=False)
    assert td["pixels"].shape == (3, 400, 600, 3) and td["next", "pixels"].dtype == torch.uint8
    assert "observation" in td.keys() and td["next", "pixels"].float().std() > 0
    assert check_env_specs(env, steps=2) == []
    only = GymEnv("CartPole-v1", from_pixels=True, pixels_only=True)
    assert list(only.observation_spec.keys()) == ["pixels"]
    assert set(only.rollout(2).keys()) == {"pixels", "action", "done", "terminated", "truncated", "next"}


def test_pixels_need_rgb_array_render_mode():
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        GymWrapper(gymnasium.make("CartPole-v1"), from_pixels=True)
    with pytest.raises(ValueError, match="pixels_only=True needs from_pixels"):
        GymEnv("CartPole-v1", pixels_only=True)


def test_missing_pygame_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygame", None)
    with pytest.raises(ImportError, match=r"rlbench\[notebooks\]"):
        GymEnv("CartPole-v1", from_pixels=True)


# --------------------------------------------------------------------------- vector envs
def test_vector_env_specs_and_shapes():
    env = GymEnv("CartPole-v1", num_envs=3)
    assert env.batch_size == (3,) and env.action_spec.shape == (3,)
    assert env.observation_spec["observation"].shape == (3, 4)
    assert check_env_specs(env, seed=0) == []
    assert env.rollout(5, break_when_any_done=False).shape == (3, 5)
    dict_env = GymWrapper(gymnasium.vector.SyncVectorEnv([DictObsEnv] * 2, autoreset_mode=AutoresetMode.SAME_STEP))
    assert check_env_specs(dict_env, steps=9, seed=0) == []


@pytest.mark.parametrize("kind", ["CartPole", "DictObs"])
def test_vector_env_final_obs_matches_single_envs(kind):
    """Sub-env i of a vector env == a single env seeded seed+i fed the same actions, resets included."""
    n, steps = 2, 40
    if kind == "CartPole":
        vec = GymEnv("CartPole-v1", num_envs=n, max_episode_steps=12)
        make_single = lambda: GymEnv("CartPole-v1", max_episode_steps=12)  # noqa: E731
    else:
        vec = GymWrapper(gymnasium.vector.SyncVectorEnv([DictObsEnv] * n, autoreset_mode=AutoresetMode.SAME_STEP))
        make_single = lambda: GymWrapper(DictObsEnv())  # noqa: E731
    vec.set_seed(7)
    torch.manual_seed(0)
    out = vec.rollout(steps, break_when_any_done=False)
    assert out["next", "done"].sum() >= 4  # episodes ended and were reset in place
    for i in range(n):
        single = make_single()
        single.set_seed(7 + i)
        assert_same(out[i], manual_rollout(single, out["action"][i]))
    if kind == "CartPole":  # after a done step comes a fresh reset observation (|x| <= 0.05), never a final one
        done = out["next", "done"][..., :-1, 0]
        assert (out["observation"][:, 1:][done].abs() <= 0.05).all()


def test_vector_env_manual_partial_reset():
    env = GymEnv("CartPole-v1", num_envs=2)
    env.set_seed(0)
    td = env.reset()
    for _ in range(5):
        td = step_mdp(env.step(env.rand_action(td)))
    td["_reset"] = torch.tensor([[True], [False]])
    before = td["observation"].clone()
    out = env.reset(td)
    assert (out["observation"][0].abs() <= 0.05).all() and not torch.equal(out["observation"][0], before[0])
    assert torch.equal(out["observation"][1], before[1])
    assert env.step(env.rand_action(out))["next", "observation"].shape == (2, 4)


def test_wrap_existing_vector_env_needs_same_step():
    ok = gymnasium.make_vec("CartPole-v1", 2, vectorization_mode="sync",
                            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})
    assert GymWrapper(ok).batch_size == (2,)
    bad = gymnasium.make_vec("CartPole-v1", 2, vectorization_mode="sync")
    with pytest.raises(ValueError, match="SAME_STEP"):
        GymWrapper(bad)
    with pytest.raises(NotImplementedError, match="from_pixels"):
        GymEnv("CartPole-v1", num_envs=2, from_pixels=True)


# --------------------------------------------------------------------------- fast rollout path
@pytest.mark.parametrize("make", [
    lambda: GymEnv("CartPole-v1", max_episode_steps=15),
    lambda: GymEnv("Pendulum-v1", max_episode_steps=10),
    lambda: GymEnv("MountainCar-v0", categorical_action_encoding=False, max_episode_steps=10),
    lambda: GymWrapper(DictObsEnv()),
    lambda: GymWrapper(OldApiEnv(horizon=4)),
    lambda: GymEnv("Blackjack-v1"),
], ids=["CartPole", "Pendulum", "MountainCar-onehot", "DictObs", "OldApi", "Blackjack"])
@pytest.mark.parametrize("break_when_any_done", [True, False])
def test_fast_rollout_equals_generic_rollout(make, break_when_any_done):
    env = make()
    env.set_seed(3)
    fast = env.rollout(40, break_when_any_done=break_when_any_done)
    env.set_seed(3)
    generic = EnvBase.rollout(env, 40, policy=replay(fast["action"]), break_when_any_done=break_when_any_done)
    assert_same(fast, generic)
    assert fast.device == generic.device
    if not break_when_any_done:
        assert fast["next", "done"].any()  # resets happened inside the rollout
        assert not fast["done"].any()


def test_fast_rollout_equals_plain_gymnasium_loop():
    env = GymEnv("CartPole-v1")
    env.set_seed(11)
    td = env.rollout(300, break_when_any_done=False)
    plain = gymnasium.make("CartPole-v1")
    obs, _ = plain.reset(seed=11)
    for t, action in enumerate(td["action"].tolist()):
        np.testing.assert_array_equal(td["observation"][t].numpy(), obs)
        obs, reward, term, trunc, _ = plain.step(action)
        np.testing.assert_array_equal(td["next", "observation"][t].numpy(), obs)
        assert td["next", "reward"][t].item() == reward
        assert (td["next", "terminated"][t].item(), td["next", "truncated"][t].item()) == (term, trunc)
        if term or trunc:
            obs, _ = plain.reset()
    assert td["next", "done"].sum() > 5


def test_rollout_with_policy_uses_generic_path():
    env = GymEnv("CartPole-v1")
    td = env.rollout(5, policy=lambda td: td.set("action", torch.tensor(1)))
    assert (td["action"] == 1).all()


# --------------------------------------------------------------------------- legacy gym
def test_old_api_four_tuple_env():
    env = GymWrapper(OldApiEnv(horizon=3, time_limit=True))
    assert check_env_specs(env) == []
    td = EnvBase.rollout(env, 10)
    assert td.shape == (3,)
    assert td["next", "truncated"][-1].item() and not td["next", "terminated"][-1].item()
    term = GymWrapper(OldApiEnv(horizon=2, time_limit=False)).rollout(10)
    assert term["next", "terminated"][-1].item() and not term["next", "truncated"][-1].item()
    a, b = GymWrapper(OldApiEnv()), GymWrapper(OldApiEnv())
    a.set_seed(4)
    b.set_seed(4)  # old API: seeded through env.seed()
    assert torch.equal(a.reset()["observation"], b.reset()["observation"])
    a.close()
    assert a.gym_env.closed


def test_legacy_gym_026():
    gym = pytest.importorskip("gym")
    env = GymEnv("CartPole-v1", backend="gym")
    assert env.backend == "gym"
    assert check_env_specs(env, seed=0) == []
    td = env.rollout(100, break_when_any_done=False)
    assert td["next", "done"].any()
    # a gym.make env keeps gym 0.26's PassiveEnvChecker (np.bool8 crashes under NumPy 2): the wrapper drops it
    wrapped = GymWrapper(gym.make("CartPole-v1"))
    assert wrapped.backend == "gym"
    assert EnvBase.rollout(wrapped, 20, break_when_any_done=False).shape == (20,)
    limited = GymEnv("CartPole-v1", backend="gym", max_episode_steps=5).rollout(20)
    assert limited.shape == (5,) and limited["next", "truncated"][-1].item()


def test_missing_legacy_gym_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gym", None)
    with pytest.raises(ImportError, match=r"pip install rlbench\[gym\]"):
        GymEnv("CartPole-v1", backend="gym")


# --------------------------------------------------------------------------- bad input
def test_bad_actions_have_clear_errors():
    env = GymEnv("CartPole-v1")
    td = env.reset()
    with pytest.raises(KeyError, match="no action under key 'action'"):
        env.step(td)
    td["action"] = torch.tensor(0.5)
    with pytest.raises(ValueError, match=r"'action'.*expected dtype torch.int64, got torch.float32"):
        env.step(td)
    td["action"] = torch.tensor([1, 0])
    with pytest.raises(ValueError, match=r"'action'.*expected shape \(\), got \(2,\)"):
        env.step(td)
    td["action"] = torch.tensor(2)
    with pytest.raises(ValueError, match=r"'action'.*outside \{0, \.\.\., 1\}, e\.g\. \[2\]"):
        env.step(td)
    vec = GymEnv("CartPole-v1", num_envs=2)
    vtd = vec.reset()
    vtd["action"] = torch.tensor([0, -1])
    with pytest.raises(ValueError, match="outside"):
        vec.step(vtd)
    pend = GymEnv("Pendulum-v1")
    ptd = pend.reset()
    ptd["action"] = torch.tensor([5.0])
    with pytest.raises(ValueError, match=r"'action'.*outside \[-2, 2\]"):
        pend.step(ptd)


def test_bad_backend():
    with pytest.raises(ValueError, match="backend must be"):
        GymEnv("CartPole-v1", backend="gym3")


@pytest.mark.parametrize("kind", ["CartPole", "DictObs"])
def test_vector_fused_step_and_maybe_reset_matches_generic(kind):
    """GymWrapper's fused vector step_and_maybe_reset == EnvBase's step -> step_mdp -> partial reset."""
    def make():
        if kind == "CartPole":
            return GymEnv("CartPole-v1", num_envs=3, max_episode_steps=7)
        return GymWrapper(gymnasium.vector.SyncVectorEnv([DictObsEnv] * 3, autoreset_mode=AutoresetMode.SAME_STEP))

    fused, generic = make(), make()
    assert fused._fuse_vector == (kind == "CartPole")  # nested observations keep the generic path
    fused.set_seed(3)
    generic.set_seed(3)
    td_f, td_g = fused.reset(), generic.reset()
    hidden = torch.arange(3.0).unsqueeze(-1)  # a root key the env does not produce: carried over
    td_f["hidden"], td_g["hidden"] = hidden, hidden.clone()
    dones = 0
    for _ in range(30):
        action = fused.action_spec.rand()
        td_f["action"], td_g["action"] = action, action.clone()
        cur_f, td_f = fused.step_and_maybe_reset(td_f)
        cur_g, td_g = EnvBase.step_and_maybe_reset(generic, td_g)
        assert_same(cur_f, cur_g)
        assert_same(td_f, td_g)
        assert not td_f["done"].any()  # the next root is reset: no done flag left set
        dones += int(cur_f["next", "done"].sum())
    assert dones >= 3
    assert not fused._vector.pending.any() and fused._vector.stash is None
