"""ObservationNorm and VecNorm statistics against torch.mean / torch.std / torch.var of the same data."""
import pytest
import torch
from tensordict import TensorDict

from rlbench.envs import check_env_specs
from rlbench.envs.transforms import Compose, ObservationNorm, StepCounter, TransformedEnv, VecNorm
from rlbench.specs import Bounded, Composite
from rlbench.testing import ContinuousCountingEnv, CountingEnv


def _lengths():
    return torch.tensor([[3], [4], [6]])


def test_init_stats_matches_manual_mean_std_batched():
    env = TransformedEnv(CountingEnv(max_steps=_lengths(), batch_size=[3]), ObservationNorm(in_keys=["observation"]))
    env.transform[0].init_stats(num_iter=50)
    data = CountingEnv(max_steps=_lengths(), batch_size=[3]).rollout(50, break_when_any_done=False)["observation"]
    norm = env.transform[0]
    torch.testing.assert_close(norm.loc, data.mean((0, 1)))
    torch.testing.assert_close(norm.scale, data.std((0, 1)))
    out = env.rollout(50, break_when_any_done=False)["observation"]
    torch.testing.assert_close(out.mean((0, 1)), torch.zeros(1), atol=1e-5, rtol=0)
    check_env_specs(env)


def test_init_stats_reduce_dim_and_non_standard_normal():
    env = TransformedEnv(ContinuousCountingEnv(max_steps=5), ObservationNorm(in_keys=["total"],
                                                                            standard_normal=False))
    torch.manual_seed(1)
    env.transform[0].init_stats(num_iter=40, reduce_dim=0)
    torch.manual_seed(1)
    data = ContinuousCountingEnv(max_steps=5).rollout(40, break_when_any_done=False)["total"]
    mean, std = data.mean(0), data.std(0)
    norm = env.transform[0]
    torch.testing.assert_close(norm.loc, -mean / std)
    torch.testing.assert_close(norm.scale, 1 / std)
    x = torch.tensor([0.7])
    torch.testing.assert_close(norm._apply_transform(x), (x - mean) / std)


def test_observation_norm_needs_stats_and_a_parent():
    norm = ObservationNorm()
    with pytest.raises(RuntimeError, match="init_stats"):
        norm._apply_transform(torch.zeros(1))
    with pytest.raises(RuntimeError, match="put it in one first"):
        norm.init_stats(10)
    with pytest.raises(ValueError, match="both"):
        ObservationNorm(loc=0.0)


def test_observation_norm_bounded_spec_and_state_dict_into_fresh_instance():
    env = CountingEnv()
    env.observation_spec["observation"] = Bounded(0.0, 10.0, (1,))
    tenv = TransformedEnv(env, ObservationNorm(loc=5.0, scale=-5.0))
    spec = tenv.observation_spec["observation"]
    assert spec.low.item() == -1.0 and spec.high.item() == 1.0
    fresh = ObservationNorm()
    fresh.load_state_dict(tenv.transform[0].state_dict())
    assert fresh.loc.item() == 5.0 and fresh.scale.item() == -5.0


def test_vecnorm_stats_equal_mean_var_of_everything_seen():
    lengths = _lengths()
    env = TransformedEnv(CountingEnv(max_steps=lengths, batch_size=[3]),
                         VecNorm(in_keys=["observation"], out_keys=["normed"], decay=1.0))
    td = env.rollout(10, break_when_any_done=False)
    # what the transform saw: the first reset (all sub-envs), every step's next observation, and the
    # reset observation of each sub-env reset during the rollout
    seen = [td["observation"][:, 0], td["next", "observation"].reshape(-1, 1)]
    resets = td["next", "done"][:, :-1].squeeze(-1)
    seen.append(td["observation"][:, 1:][resets])
    data = torch.cat(seen).double()
    mean, var = env.transform[0].stats()
    torch.testing.assert_close(mean, data.mean(0))
    torch.testing.assert_close(var, data.var(0, unbiased=False))
    last = td[:, -1]
    torch.testing.assert_close(last["next", "normed"],
                               ((last["next", "observation"] - mean) / var.sqrt()).float())


def test_vecnorm_decay_recurrence_freeze_and_replay_without_update():
    vn = VecNorm(decay=0.5, in_keys=["x"])
    env_like = [torch.tensor([[1.0], [3.0]]), torch.tensor([[5.0], [9.0]])]
    s = q = n = 0.0
    for x in env_like:
        vn._step(None, TensorDict({"x": x}, [2]))
        xd = x.double()
        s, q, n = 0.5 * s + xd.sum(0), 0.5 * q + (xd * xd).sum(0), 0.5 * n + 2
    mean, var = vn.stats()
    torch.testing.assert_close(mean, s / n)
    torch.testing.assert_close(var, q / n - (s / n) ** 2)
    vn.freeze()
    vn._step(None, TensorDict({"x": torch.full((2, 1), 100.0)}, [2]))
    torch.testing.assert_close(vn.stats()[0], mean)
    vn.unfreeze()
    vn(TensorDict({"x": torch.full((2, 1), 100.0)}, [2]))  # forward on a sample: no update
    torch.testing.assert_close(vn.stats()[0], mean)


def test_vecnorm_state_dict_round_trip_into_fresh_instance():
    env = TransformedEnv(CountingEnv(max_steps=4), Compose(StepCounter(), VecNorm()))
    env.rollout(9, break_when_any_done=False)
    fresh = VecNorm()
    fresh.load_state_dict(env.transform[1].state_dict())
    td = TensorDict({"observation": torch.tensor([[2.0]])}, [1])
    torch.testing.assert_close(fresh(td.clone())["observation"], env.transform[1](td.clone())["observation"])


def test_vecnorm_partial_reset_updates_only_reset_sub_envs():
    vn = VecNorm(decay=1.0)
    root = TensorDict({"observation": torch.tensor([[1.0], [2.0]])}, [2])
    vn._reset(None, root.clone())
    mask = TensorDict({"_reset": torch.tensor([[True], [False]])}, [2])
    vn._reset(mask, TensorDict({"observation": torch.tensor([[7.0], [50.0]])}, [2]))
    torch.testing.assert_close(vn.stats()[0], torch.tensor([10.0 / 3], dtype=torch.float64))


def test_composite_obs_nested_key():
    env = CountingEnv()
    env.observation_spec = Composite(observation=env.observation_spec["observation"],
                                     total=env.observation_spec["total"])
    tenv = TransformedEnv(env, ObservationNorm(loc=1.0, scale=1.0, in_keys=["total"]))
    check_env_specs(tenv)
