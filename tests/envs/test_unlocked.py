"""Envs whose batch size comes from the input TensorDict (``batch_locked = False``; issue 13 item 15).

``ParamPendulum`` is written the way TorchRL's pendulum tutorial writes its env: state-less, with
the physical parameters travelling in the TensorDict under ``"params"`` (``gen_params``), unbatched
specs, and a batch of any size given by the TensorDict passed to ``reset``.
"""
from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict

from rlbench.envs import EnvBase, TransformedEnv, check_env_specs
from rlbench.envs.transforms import CatTensors, Transform, UnsqueezeTransform
from rlbench.specs import Bounded, Composite, Unbounded

PARAM_NAMES = ("max_speed", "max_torque", "dt", "g", "m", "l")


def angle_normalize(x):
    return ((x + math.pi) % (2 * math.pi)) - math.pi


class ParamPendulum(EnvBase):
    """A state-less pendulum whose parameters (gravity, torque limit, ...) are in the TensorDict."""

    batch_locked = False

    def __init__(self, seed: int = 0):
        super().__init__(batch_size=[])
        scalar = Unbounded(())
        self.observation_spec = Composite(
            th=Unbounded(()), thdot=Bounded(-8.0, 8.0, ()),
            params=Composite({name: scalar.clone() for name in PARAM_NAMES}),
        )
        self.state_spec = self.observation_spec.clone()
        self.action_spec = Bounded(-2.0, 2.0, (1,))
        self.rng = torch.Generator()
        self.set_seed(seed)

    @staticmethod
    def gen_params(g: float = 10.0, batch_size=None) -> TensorDict:
        values = dict(max_speed=8.0, max_torque=2.0, dt=0.05, g=g, m=1.0, l=1.0)
        td = TensorDict(params=TensorDict({k: torch.tensor(v) for k, v in values.items()}, []))
        if batch_size:
            td = td.expand(batch_size).contiguous()
        return td

    def _set_seed(self, seed):
        self.rng.manual_seed(0 if seed is None else seed)

    def _reset(self, td):
        if td is None or td.is_empty() or "params" not in td.keys():
            td = self.gen_params(batch_size=self.batch_size if td is None else td.batch_size)
        shape = td.batch_size
        th = (torch.rand(shape, generator=self.rng) * 2 - 1) * math.pi
        thdot = torch.rand(shape, generator=self.rng) * 2 - 1
        return TensorDict(th=th, thdot=thdot, params=td.get("params"), batch_size=shape)

    def _step(self, td):
        th, thdot, p = td.get("th"), td.get("thdot"), td.get("params")
        u = td.get("action").squeeze(-1)
        u = torch.maximum(torch.minimum(u, p["max_torque"]), -p["max_torque"])
        cost = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
        new_thdot = thdot + (3 * p["g"] / (2 * p["l"]) * th.sin() + 3.0 / (p["m"] * p["l"] ** 2) * u) * p["dt"]
        new_thdot = torch.maximum(torch.minimum(new_thdot, p["max_speed"]), -p["max_speed"])
        new_th = th + new_thdot * p["dt"]
        reward = -cost.unsqueeze(-1)
        return TensorDict(th=new_th, thdot=new_thdot, params=p, reward=reward,
                          done=torch.zeros_like(reward, dtype=torch.bool), batch_size=td.batch_size)


def reference_trajectory(th, thdot, g, actions):
    """The same physics in plain Python floats, for one env: the list of (th, thdot, reward) per step."""
    out = []
    for u in actions:
        u = min(max(u, -2.0), 2.0)
        cost = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
        thdot = min(max(thdot + (3 * g / 2 * math.sin(th) + 3.0 * u) * 0.05, -8.0), 8.0)
        th = th + thdot * 0.05
        out.append((th, thdot, -cost))
    return out


def test_default_batch_runs_and_checks():
    env = ParamPendulum()
    assert env.batch_locked is False
    assert check_env_specs(env) == []
    td = env.rollout(4)
    assert td.shape == (4,) and td["next", "reward"].shape == (4, 1)


def test_reset_takes_its_batch_from_the_tensordict():
    env = ParamPendulum()
    td = env.reset(env.gen_params(batch_size=[10]))
    assert td.batch_size == (10,)
    assert td["th"].shape == (10,) and td["params", "g"].shape == (10,)
    assert td["done"].shape == (10, 1) and td["done"].dtype == torch.bool
    td = env.rand_step(td)
    assert td["action"].shape == (10, 1) and env.action_spec.is_in(td["action"][0])
    assert td["next", "th"].shape == (10,) and td["next", "reward"].shape == (10, 1)
    assert td["next", "terminated"].shape == (10, 1)


def test_batch_of_ten_with_different_params_matches_the_physics():
    env = ParamPendulum(seed=3)
    params = env.gen_params(batch_size=[10])
    g = torch.linspace(2.0, 20.0, 10)
    params["params", "g"] = g
    start = env.reset(params)
    roll = env.rollout(6, auto_reset=False, tensordict=start)
    assert roll.shape == (10, 6)
    assert torch.equal(roll["params", "g"][:, 0], g)  # every step kept its own parameters
    for i in range(10):
        ref = reference_trajectory(float(start["th"][i]), float(start["thdot"][i]), float(g[i]),
                                   roll["action"][i, :, 0].tolist())
        th, thdot, reward = map(torch.tensor, zip(*ref))
        torch.testing.assert_close(roll["next", "th"][i], th.float(), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(roll["next", "thdot"][i], thdot.float(), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(roll["next", "reward"][i, :, 0], reward.float(), rtol=1e-5, atol=1e-5)
    # different gravity, different trajectories (one env with default parameters would repeat itself)
    assert len({round(float(x), 4) for x in roll["next", "thdot"][:, -1]}) == 10


def test_rollout_with_auto_reset_passes_the_tensordict_to_reset():
    env = ParamPendulum()
    roll = env.rollout(3, tensordict=env.gen_params(g=4.0, batch_size=[5]))
    assert roll.shape == (5, 3)
    assert bool((roll["params", "g"] == 4.0).all())


class DoneAfter(ParamPendulum):
    """Sub-env 2 of a batch is done at every step (the others never are)."""

    def _step(self, td):
        out = super()._step(td)
        out.set("done", (torch.arange(td.shape[0]) == 2).unsqueeze(-1))
        return out


def test_rollout_with_a_policy_and_break_when_done():
    env = DoneAfter()
    policy = lambda td: td.set("action", torch.zeros(*td.batch_size, 1))  # noqa: E731
    roll = env.rollout(5, policy, tensordict=env.gen_params(batch_size=[4]))
    assert roll.shape == (4, 1)  # sub-env 2 is done at the first step
    roll = env.rollout(5, policy, break_when_any_done=False, tensordict=env.gen_params(batch_size=[4]))
    assert roll.shape == (4, 5)
    assert bool(roll["next", "done"][2].all()) and not bool(roll["next", "done"][[0, 1, 3]].any())


def test_step_checks_the_action_against_the_input_batch():
    env = ParamPendulum()
    td = env.reset(env.gen_params(batch_size=[3]))
    with pytest.raises(ValueError, match=r"expected shape \(3, 1\)"):
        env.step(td.set("action", torch.zeros(3)))
    with pytest.raises(ValueError, match="outside"):
        env.step(td.set("action", torch.full((3, 1), 5.0)))


def test_locked_envs_still_refuse_other_batch_sizes():
    from rlbench.testing import CountingEnv

    env = CountingEnv(batch_size=[2])
    assert env.batch_locked is True
    td = env.reset()
    with pytest.raises(ValueError, match="batch"):
        env.step(td.expand(3, 2).contiguous().set("action", torch.zeros(3, 2, dtype=torch.int64)))


class SinCos(Transform):
    """The tutorial's sin/cos features of the angle, written as one transform."""

    def _call(self, td):
        th = td.get("th", None)
        if th is not None:
            td.set("sin", th.sin())
            td.set("cos", th.cos())
        return td

    def transform_observation_spec(self, spec):
        spec["sin"] = Bounded(-1.0, 1.0, (*spec.shape, 1))
        spec["cos"] = Bounded(-1.0, 1.0, (*spec.shape, 1))
        return spec


def make_transformed():
    env = TransformedEnv(ParamPendulum(), UnsqueezeTransform(-1, in_keys=["th", "thdot"], in_keys_inv=["th", "thdot"]))
    env.append_transform(SinCos())
    env.append_transform(CatTensors(["sin", "cos", "thdot"], out_key="observation", del_keys=False))
    return env


def test_transformed_env_reset_passes_the_tensordict_through():
    env = make_transformed()
    assert env.batch_locked is False
    assert check_env_specs(env) == []
    params = env.gen_params(g=3.0, batch_size=[10])  # gen_params: the base env's, through the wrapper
    _ = env.set_seed(0)
    td = env.reset(params)
    assert td.batch_size == (10,)
    assert td["th"].shape == (10, 1) and td["observation"].shape == (10, 3)
    assert bool((td["params", "g"] == 3.0).all())
    zero = lambda t: t.set("action", torch.zeros(*t.batch_size, 1))  # noqa: E731
    roll = env.rollout(4, zero, auto_reset=False, tensordict=td)
    assert roll.shape == (10, 4)
    assert roll["next", "observation"].shape == (10, 4, 3)
    assert bool((roll["params", "g"] == 3.0).all())
    # the transforms passed the caller's parameters on: the same physics as the bare env with g=3
    base = ParamPendulum()
    _ = base.set_seed(0)
    raw = base.rollout(4, zero, auto_reset=False, tensordict=base.reset(params))
    torch.testing.assert_close(roll["next", "th"].squeeze(-1), raw["next", "th"])
    torch.testing.assert_close(roll["next", "observation"][..., 0], raw["next", "th"].sin())


def test_transformed_unlocked_env_resets_done_sub_envs_with_their_params():
    env = TransformedEnv(DoneAfter(), UnsqueezeTransform(-1, in_keys=["th", "thdot"], in_keys_inv=["th", "thdot"]))
    params = env.gen_params(batch_size=[4])
    params["params", "g"] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    roll = env.rollout(6, lambda t: t.set("action", torch.zeros(4, 1)), break_when_any_done=False,
                       tensordict=params)
    assert roll.shape == (4, 6) and roll["th"].shape == (4, 6, 1)
    assert torch.equal(roll["params", "g"][:, -1], torch.tensor([1.0, 2.0, 3.0, 4.0]))
    # sub-env 2 restarts every step: its start angles are fresh draws; sub-env 0 continues its swing
    th = roll["th"].squeeze(-1)
    torch.testing.assert_close(th[0, 1:], roll["next", "th"][0, :-1].squeeze(-1))
    assert not torch.allclose(th[2, 1:], roll["next", "th"][2, :-1].squeeze(-1))


def test_transformed_env_full_reset_of_a_locked_env_gets_the_tensordict():
    from rlbench.testing import CountingEnv

    seen = []

    class Recording(CountingEnv):
        def _reset(self, td):
            seen.append(None if td is None else sorted(td.keys()))
            return super()._reset(td)

    env = TransformedEnv(Recording(), UnsqueezeTransform(-1, in_keys=["observation"]))
    env.reset(TensorDict(hint=torch.ones(())))
    assert seen[-1] == ["hint"]
    env.reset()
    assert seen[-1] is None
