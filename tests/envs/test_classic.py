"""Torch-native classic-control envs: gymnasium parity, spec contract, resets, truncation, state-less stepping.

Parity with gymnasium is checked step by step from a re-synchronised state: before every step the
gymnasium env's ``unwrapped.state`` is set to ours, both take the same action, and observation, state,
reward and ``terminated`` are compared. Re-synchronising keeps the check tight on chaotic systems
(Acrobot, and CartPole once the pole falls) where float rounding differences grow exponentially; with
``dtype=torch.float64`` our arithmetic matches gymnasium's float64 to ~1e-12 per step (observations are
compared at float32 precision because gymnasium returns them as float32). A free-running comparison over
whole episodes covers the non-chaotic envs and the time limit.
"""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlbench.envs import check_env_specs
from rlbench.envs.classic import (
    AcrobotEnv,
    CartPoleEnv,
    MountainCarContinuousEnv,
    MountainCarEnv,
    PendulumEnv,
)

GYM_IDS = {
    CartPoleEnv: "CartPole-v1",
    PendulumEnv: "Pendulum-v1",
    MountainCarEnv: "MountainCar-v0",
    MountainCarContinuousEnv: "MountainCarContinuous-v0",
    AcrobotEnv: "Acrobot-v1",
}
ALL = list(GYM_IDS)
CONTINUOUS = (PendulumEnv, MountainCarContinuousEnv)

# Start states that reach the corner cases within a few steps (set through the state-less API):
# termination, the left wall, angle wrapping, velocity clipping.
SPECIAL_STATES = {
    CartPoleEnv: [[2.38, 1.5, 0.0, 0.0], [0.0, 0.0, 0.2, 1.0], [-2.39, -1.0, -0.2, -2.0]],
    PendulumEnv: [[5.0, 7.9], [-7.0, -7.95], [math.pi, 0.0]],
    MountainCarEnv: [[0.48, 0.05], [-1.19, -0.06], [-1.2, 0.0]],
    MountainCarContinuousEnv: [[0.43, 0.05], [-1.19, -0.06], [0.44, 0.069]],
    AcrobotEnv: [[1.9, 0.0, 2.0, 0.0], [3.0, 0.5, 5.0, 8.0], [-3.1, -3.0, -12.0, -28.0]],
}


def _actions(env, gen):
    """Random actions drawn from ``gen``; continuous ones exactly representable in float32 (gymnasium's dtype)."""
    spec = env.action_spec
    if spec.dtype.is_floating_point:
        u = torch.rand(spec.shape, generator=gen) * (spec.high - spec.low) + spec.low
        return u.to(torch.float32).to(spec.dtype)
    return torch.randint(0, spec.n, spec.shape, generator=gen)


def _gym_action(cls, a):
    return np.array([a.item()], dtype=np.float32) if cls in CONTINUOUS else int(a.item())


def _run_parity(cls, dtype, steps, atol_state, atol_obs, rtol=0.0, n_envs=8, seed=0):
    env = cls(batch_size=[n_envs], dtype=dtype, seed=seed)
    gyms = [gym.make(GYM_IDS[cls]).unwrapped for _ in range(n_envs)]
    for i, g in enumerate(gyms):
        g.reset(seed=seed + i)
    gen = torch.Generator().manual_seed(seed)
    td = env.reset()
    special = torch.tensor(SPECIAL_STATES[cls], dtype=dtype)
    state = td["state"].clone()
    state[: len(special)] = special
    td["state"] = state
    td["observation"] = env._observe(state)
    n_done = 0
    for t in range(steps):
        td["action"] = _actions(env, gen)
        start = td["state"].clone()
        td, root = env.step_and_maybe_reset(td)
        nxt = td["next"]
        for i, g in enumerate(gyms):
            g.state = start[i].double().numpy().copy()
            obs, reward, terminated, truncated, _ = g.step(_gym_action(cls, td["action"][i]))
            where = f"{cls.__name__} env {i} step {t} from state {start[i].tolist()}"
            np.testing.assert_allclose(nxt["state"][i].double().numpy(), np.asarray(g.state, dtype=np.float64),
                                       atol=atol_state, rtol=rtol, err_msg=where)
            np.testing.assert_allclose(nxt["observation"][i].double().numpy(), obs, atol=atol_obs, rtol=rtol,
                                       err_msg=where)
            assert abs(nxt["reward"][i].item() - float(reward)) <= atol_obs * 10, where
            assert nxt["terminated"][i].item() == bool(terminated), where
            if terminated:
                g.reset()  # our sub-env resets too (and gymnasium's CartPole pays 0 after a termination)
        n_done += int(nxt["done"].sum())
        td = root
    return n_done


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_parity_with_gymnasium_float64(cls):
    # gymnasium itself computes part of these two in float32 (Pendulum: the float32 torque enters
    # `3 / (m l^2) * u` and the cost as float32; MountainCarContinuous stores its state as float32)
    atol_state = 1e-6 if cls in CONTINUOUS else 1e-9
    n_done = _run_parity(cls, torch.float64, steps=120, atol_state=atol_state, atol_obs=2e-6)
    # the special states drive some sub-envs to a termination (Pendulum never terminates)
    assert n_done > 0 or cls is PendulumEnv


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_parity_with_gymnasium_float32(cls):
    # float32 state vs gymnasium's float64: relative error ~1e-7 per op, ~1e-5 after an RK4 step
    _run_parity(cls, torch.float32, steps=40, atol_state=1e-4, atol_obs=1e-4, rtol=1e-4, n_envs=4)


@pytest.mark.parametrize("cls", [CartPoleEnv, PendulumEnv, MountainCarEnv, MountainCarContinuousEnv],
                         ids=lambda c: c.__name__)
def test_free_running_episode_matches_gymnasium(cls):
    """Whole episodes without re-synchronising, through gymnasium's TimeLimit wrapper."""
    env = cls(dtype=torch.float64, seed=0)
    g = gym.make(GYM_IDS[cls])
    gen = torch.Generator().manual_seed(1)
    td = env.reset()
    g.reset(seed=0)
    g.unwrapped.state = td["state"].numpy().copy()
    for t in range(env.max_episode_steps):
        td["action"] = _actions(env, gen)
        td = env.step(td)
        obs, reward, terminated, truncated, _ = g.step(_gym_action(cls, td["action"]))
        np.testing.assert_allclose(td["next", "observation"].numpy(), obs, atol=1e-4, err_msg=f"step {t}")
        assert abs(td["next", "reward"].item() - float(reward)) < 1e-4
        assert td["next", "terminated"].item() == terminated
        assert td["next", "truncated"].item() == truncated, f"step {t}"
        if terminated or truncated:
            break
        td = td["next"].exclude("reward", "done", "terminated", "truncated")
    assert terminated or truncated


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("batch_size", [(), (3,), (2, 3)], ids=str)
def test_check_env_specs(cls, batch_size):
    env = cls(batch_size=batch_size, seed=0)
    assert check_env_specs(env, steps=5) == []
    td = env.reset()
    assert td["observation"].dtype == torch.float32 and td["step_count"].dtype == torch.int64
    assert env.observation_spec.is_in(td.select(*env.observation_spec.keys()))
    td64 = cls(batch_size=batch_size, dtype=torch.float64).rollout(3)
    assert td64["next", "observation"].dtype == td64["next", "reward"].dtype == torch.float64


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_partial_reset_keeps_unmasked_envs(cls):
    env = cls(batch_size=[2, 3], seed=0)
    td = env.rand_action(env.reset())
    td = env.step(td)
    root = td["next"].exclude("reward")
    mask = torch.tensor([[True, False, False], [False, False, True]]).unsqueeze(-1)
    root["_reset"] = mask
    out = env.reset(root)
    assert "_reset" not in out.keys()
    keep = ~mask.squeeze(-1)
    for key in ("observation", "state", "step_count"):
        assert torch.equal(out[key][keep], root[key][keep]), key
    assert (out["step_count"][mask.squeeze(-1)] == 0).all()
    assert not out["done"].any() and not out["terminated"].any() and not out["truncated"].any()
    low, high = env._reset_low, env._reset_low + env._reset_span
    fresh = out["state"][mask.squeeze(-1)]
    assert ((fresh >= low) & (fresh <= high)).all()
    assert torch.allclose(out["observation"], env._observe(out["state"]))


def test_auto_reset_in_rollout_final_and_fresh_observations():
    env = CartPoleEnv(batch_size=[4], seed=0)
    td = env.reset()
    td["state"][0] = torch.tensor([2.39, 2.0, 0.0, 0.0])  # sub-env 0 leaves the track at the first step
    td["observation"] = td["state"].clone()
    td["action"] = torch.ones(4, dtype=torch.int64)
    td, root = env.step_and_maybe_reset(td)
    assert td["next", "done"][:, 0].tolist() == [True, False, False, False]
    assert td["next", "observation"][0, 0] > 2.4  # the true final observation
    assert root["observation"][0].abs().max() <= 0.05 and root["step_count"][0].item() == 0  # fresh
    assert torch.equal(root["observation"][1:], td["next", "observation"][1:])
    assert root["step_count"][1:].squeeze(-1).tolist() == [1, 1, 1]

    data = env.rollout(200, break_when_any_done=False)
    done = data["next", "done"].squeeze(-1)
    assert done.any()
    b, t = done[:, :-1].nonzero(as_tuple=True)
    nxt_obs, new_obs = data["next", "observation"][b, t], data["observation"][b, t + 1]
    assert (nxt_obs[:, [0, 2]].abs() > torch.tensor([2.4, 0.2094])).any(-1).all()  # final, out of bounds
    assert new_obs.abs().max() <= 0.05 and (data["step_count"][b, t + 1] == 0).all()  # fresh resets
    nb, nt = (~done[:, :-1]).nonzero(as_tuple=True)
    assert torch.equal(data["next", "observation"][nb, nt], data["observation"][nb, nt + 1])
    assert torch.equal(data["next", "state"][nb, nt], data["state"][nb, nt + 1])


def test_truncation_at_max_episode_steps():
    env = CartPoleEnv(batch_size=[3], max_episode_steps=5, seed=0)
    td = env.reset()
    steps = []
    for _ in range(12):
        td["state"] = torch.zeros(3, 4)  # stays balanced: only the time limit can end an episode
        td["action"] = torch.tensor([0, 1, 0])
        td, root = env.step_and_maybe_reset(td)
        steps.append((td["next", "step_count"][0].item(), td["next", "truncated"][0].item()))
        assert not td["next", "terminated"].any()
        assert torch.equal(td["next", "done"], td["next", "truncated"])
        td = root
    assert steps[:6] == [(1, False), (2, False), (3, False), (4, False), (5, True), (1, False)]
    assert steps[9] == (5, True)
    defaults = {CartPoleEnv: 500, PendulumEnv: 200, MountainCarEnv: 200, MountainCarContinuousEnv: 999, AcrobotEnv: 500}
    for cls, limit in defaults.items():
        assert cls().max_episode_steps == limit == gym.spec(GYM_IDS[cls]).max_episode_steps
    data = PendulumEnv(batch_size=[2]).rollout(201, break_when_any_done=False)
    assert data["next", "truncated"][:, 199].all() and not data["next", "truncated"][:, :199].any()
    assert (data["step_count"][:, 200] == 0).all()
    assert not CartPoleEnv(max_episode_steps=None).step(
        CartPoleEnv().reset().update({"action": torch.tensor(0), "step_count": torch.tensor([10**6])})
    )["next", "truncated"].any()


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_stateless_step_from_user_state(cls):
    env = cls(batch_size=[2], dtype=torch.float64, seed=0)
    state = torch.tensor(SPECIAL_STATES[cls][:2], dtype=torch.float64)
    action = _actions(env, torch.Generator().manual_seed(0))
    from tensordict import TensorDict

    td = TensorDict({"state": state.clone(), "action": action}, [2])
    out1 = env.step(td.clone())["next"]
    env.rollout(7)  # stepping other data in between changes nothing: the env holds no state
    out2 = env.step(td.clone())["next"]
    assert (out1 == out2).all()
    assert out1["step_count"].squeeze(-1).tolist() == [1, 1]  # no step count given: a fresh episode
    assert torch.equal(td["state"], state)  # the input is not modified
    # the same transition as gymnasium from that state
    for i in range(2):
        g = gym.make(GYM_IDS[cls]).unwrapped
        g.reset(seed=0)
        g.state = state[i].numpy().copy()
        obs, *_ = g.step(_gym_action(cls, action[i]))
        np.testing.assert_allclose(out1["observation"][i].numpy(), obs, atol=1e-5)
    with pytest.raises(KeyError, match="state"):
        env.step(TensorDict({"action": action}, [2]))


def test_seeding_is_reproducible():
    a, b = CartPoleEnv(batch_size=[5], seed=3), CartPoleEnv(batch_size=[5])
    b.set_seed(3)
    assert torch.equal(a.reset()["state"], b.reset()["state"])
    assert not torch.equal(a.reset()["state"], CartPoleEnv(batch_size=[5], seed=4).reset()["state"])
    torch.manual_seed(0)
    x = AcrobotEnv(batch_size=[3]).reset()["state"]
    torch.manual_seed(0)
    assert torch.equal(x, AcrobotEnv(batch_size=[3]).reset()["state"])
    # partial resets draw from the env's own generator too
    envs = [MountainCarEnv(batch_size=[6], seed=1) for _ in range(2)]
    outs = []
    for env in envs:
        td = env.reset()
        td["_reset"] = torch.tensor([1, 0, 1, 0, 0, 1], dtype=torch.bool).unsqueeze(-1)
        outs.append(env.reset(td)["state"])
    assert torch.equal(*outs)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_reset_distribution(cls):
    state = cls(batch_size=[4000], seed=0).reset()["state"]
    low = torch.as_tensor(cls.RESET_LOW, dtype=torch.float32).expand(state.shape[-1:])
    high = torch.as_tensor(cls.RESET_HIGH, dtype=torch.float32).expand(state.shape[-1:])
    assert ((state >= low) & (state <= high)).all()
    span = high - low
    spread = state.max(0).values - state.min(0).values
    assert torch.allclose(spread, span, atol=0.01 * span.max().item())  # fills the box
    assert torch.allclose(state.mean(0), (low + high) / 2, atol=0.03 * span.max().item())


@pytest.mark.parametrize(
    "cls, bad",
    [
        (CartPoleEnv, torch.ones(3, 1, dtype=torch.int64)),  # shape
        (CartPoleEnv, torch.ones(3)),  # dtype
        (CartPoleEnv, torch.tensor([0, 2, 1])),  # out of range
        (AcrobotEnv, torch.tensor([0, -1, 1])),
        (MountainCarEnv, torch.tensor([3, 0, 1])),
        (PendulumEnv, torch.tensor([[0.0], [2.5], [1.0]])),
        (PendulumEnv, torch.zeros(3, 1, dtype=torch.float64)),
        (MountainCarContinuousEnv, torch.zeros(3)),
        (MountainCarContinuousEnv, torch.tensor([[0.0], [1.5], [1.0]])),
    ],
)
def test_bad_actions_are_rejected(cls, bad):
    env = cls(batch_size=[3])
    td = env.reset()
    td["action"] = bad
    with pytest.raises(ValueError, match="action"):
        env.step(td)


def test_constructor_arguments():
    with pytest.raises(TypeError, match="dtype"):
        CartPoleEnv(dtype=torch.int64)
    with pytest.raises(ValueError, match="max_episode_steps"):
        CartPoleEnv(max_episode_steps=0)
    env = CartPoleEnv(batch_size=[2], device="cpu")
    assert env.device == torch.device("cpu") and env.generator.device == torch.device("cpu")
    assert all(v.device == env.device for v in env.rollout(3).values(True, True))
    assert PendulumEnv(g=9.81).g == 9.81 and MountainCarEnv(goal_velocity=0.01).goal_velocity == 0.01


@pytest.mark.parametrize("cls", [CartPoleEnv, AcrobotEnv], ids=lambda c: c.__name__)
def test_fast_reset_paths_match_envbase(cls):
    """The overridden ``step_and_maybe_reset``/``reset`` give what ``EnvBase``'s generic code gives."""
    from rlbench.envs import EnvBase

    envs = [cls(batch_size=[64], seed=5) for _ in range(2)]
    tds = [env.reset() for env in envs]
    for td in tds:
        td["state"][:32] = torch.tensor(SPECIAL_STATES[cls][0])  # half of them end at the first step
        td["observation"] = envs[0]._observe(td["state"])
        td["action"] = torch.ones(64, dtype=torch.int64)
        td["hidden"] = torch.arange(64.0).unsqueeze(-1)  # a policy's key rides along
    fast = envs[0].step_and_maybe_reset(tds[0])
    generic = EnvBase.step_and_maybe_reset(envs[1], tds[1])
    assert fast[1]["done"].sum() == 0 and fast[0]["next", "done"].any()
    for a, b in zip(fast, generic):
        assert set(a.keys(True, True)) == set(b.keys(True, True))
        assert (a == b).all()
    # EnvBase.reset's generic merge (a full resample, then torch.where) agrees outside the reset rows
    root = fast[0]["next"].exclude("reward").set("hidden", torch.zeros(64, 1))
    root["_reset"] = root["done"].clone()
    ours, theirs = envs[0].reset(root.clone()), EnvBase.reset(envs[1], root.clone())
    assert set(ours.keys(True, True)) == set(theirs.keys(True, True))
    keep = ~root["done"].squeeze(-1)
    for key in ours.keys(True, True):
        assert torch.equal(ours[key][keep], theirs[key][keep]), key
    assert torch.equal(ours["step_count"], theirs["step_count"]) and not ours["done"].any()
