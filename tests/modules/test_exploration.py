"""Exploration modules: frequencies, schedules, greedy under deterministic modes, OU statistics."""
import math

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictSequential

from rlbench.collectors import Collector
from rlbench.envs import CartPoleEnv, GymEnv, TransformedEnv
from rlbench.envs.transforms import InitTracker
from rlbench.modules import (
    MLP,
    Actor,
    AdditiveGaussianModule,
    EGreedyModule,
    ExplorationType,
    OrnsteinUhlenbeckProcessModule,
    QValueActor,
    set_exploration_type,
)
from rlbench.specs import Bounded, Categorical, Composite, OneHot, Unbounded

N = 20000


def _greedy(n=N, dtype=torch.long):
    return TensorDict(action=torch.zeros(n, dtype=dtype), batch_size=[n])


@pytest.mark.parametrize("eps", [0.0, 0.3, 1.0])
def test_egreedy_frequency_matches_eps(eps):
    mod = EGreedyModule(Categorical(5), eps_init=eps, eps_end=eps)
    with set_exploration_type(ExplorationType.RANDOM):
        a = mod(_greedy())["action"]
    # a random draw equals the greedy action 0 one time in 5: P(change) = eps * 4/5
    changed = (a != 0).float().mean().item()
    assert abs(changed - eps * 0.8) < 4 * math.sqrt(0.25 / N) + 1e-9
    if eps == 1.0:  # random actions are uniform over the spec
        freq = torch.bincount(a, minlength=5).float() / N
        torch.testing.assert_close(freq, torch.full((5,), 0.2), atol=0.015, rtol=0)


def test_egreedy_annealing_schedule():
    mod = EGreedyModule(Categorical(2), eps_init=1.0, eps_end=0.1, annealing_num_steps=100)
    expected = [1.0]
    for frames in [10, 10, 30, 100]:
        mod.step(frames)
        expected.append(max(0.1, expected[-1] - 0.9 / 100 * frames))
        assert float(mod.eps) == pytest.approx(expected[-1])
    assert float(mod.eps) == pytest.approx(0.1)
    sd = mod.state_dict()
    fresh = EGreedyModule(Categorical(2), annealing_num_steps=100)
    fresh.load_state_dict(sd)
    assert float(fresh.eps) == pytest.approx(0.1)


@pytest.mark.parametrize("kind", [ExplorationType.DETERMINISTIC, ExplorationType.MODE, ExplorationType.MEAN])
def test_exploration_modules_greedy_when_not_random(kind):
    td = _greedy(100)
    with set_exploration_type(kind):
        assert bool((EGreedyModule(Categorical(5), 1.0, 1.0)(td.clone())["action"] == 0).all())
        cont = TensorDict(action=torch.zeros(100, 2), batch_size=[100])
        spec = Bounded(-1.0, 1.0, shape=(2,))
        assert bool((AdditiveGaussianModule(spec, 1.0, 1.0)(cont.clone())["action"] == 0).all())
        out = OrnsteinUhlenbeckProcessModule(spec, sigma=1.0)(cont.clone())
        assert bool((out["action"] == 0).all()) and "_ou_prev_noise" not in out.keys()


def test_egreedy_one_hot_mask_and_spec_errors():
    spec = OneHot(4)
    mask = torch.tensor([[False, True, False, True]]).expand(N, 4)
    td = TensorDict(action=torch.nn.functional.one_hot(torch.zeros(N, dtype=torch.long), 4).bool(), mask=mask,
                    batch_size=[N])
    mod = EGreedyModule(spec, 1.0, 1.0, action_mask_key="mask")
    a = mod(td)["action"]
    assert a.dtype == torch.bool and bool((a.sum(-1) == 1).all())
    idx = a.long().argmax(-1)
    assert set(idx.unique().tolist()) == {1, 3}
    # Composite spec holding the action
    EGreedyModule(Composite(action=Categorical(2)))
    with pytest.raises(KeyError, match="no entry 'action'"):
        EGreedyModule(Composite(obs=Unbounded((2,))))
    with pytest.raises(ValueError, match=r"eps_init must be in \[0, 1\]"):
        EGreedyModule(Categorical(2), eps_init=1.5)
    with pytest.raises(ValueError, match="does not end with the spec's shape"):
        EGreedyModule(Categorical(2, shape=(3,)))(_greedy(5))


def test_additive_gaussian_statistics_and_projection():
    spec = Unbounded((1,))
    mod = AdditiveGaussianModule(spec, sigma_init=0.5, sigma_end=0.5, mean=1.0, std=2.0)
    a = mod(TensorDict(action=torch.zeros(N, 1), batch_size=[N]))["action"]
    # sigma * N(mean, std): mean 0.5, std 1.0
    assert abs(a.mean().item() - 0.5) < 0.05 and abs(a.std().item() - 1.0) < 0.05
    bounded = AdditiveGaussianModule(Bounded(-0.2, 0.2, shape=(1,)), 3.0, 3.0)
    b = bounded(TensorDict(action=torch.zeros(1000, 1), batch_size=[1000]))["action"]
    assert b.min() == -0.2 and b.max() == 0.2
    sched = AdditiveGaussianModule(spec, sigma_init=1.0, sigma_end=0.0, annealing_num_steps=4)
    sched.step(3)
    assert float(sched.sigma) == pytest.approx(0.25)
    with pytest.raises(TypeError, match="continuous"):
        AdditiveGaussianModule(Categorical(3))


def test_ou_process_statistics():
    theta, sigma, dt = 0.5, 0.3, 0.1
    mod = OrnsteinUhlenbeckProcessModule(Unbounded((1,)), eps_init=1.0, eps_end=1.0, theta=theta, sigma=sigma, dt=dt)
    td = TensorDict(action=torch.zeros(4000, 1), batch_size=[4000])
    noises = []
    for _ in range(400):
        td.set("action", torch.zeros(4000, 1))
        mod(td)
        noises.append(td["_ou_prev_noise"].clone())
    n = torch.stack(noises)  # [T, B, 1]
    # exact AR(1) form of the discretised process: n' = (1 - theta dt) n + sigma sqrt(dt) e
    a = 1 - theta * dt
    stat_var = sigma ** 2 * dt / (1 - a ** 2)
    tail = n[200:]
    assert abs(tail.mean().item()) < 0.01
    assert tail.var().item() == pytest.approx(stat_var, rel=0.05)
    lag1 = (tail[1:] * tail[:-1]).mean() / tail.var()
    assert lag1.item() == pytest.approx(a, abs=0.02)
    # the action is action + eps * noise (eps = 1 here)
    torch.testing.assert_close(td["action"], td["_ou_prev_noise"])


def test_ou_resets_at_is_init():
    mod = OrnsteinUhlenbeckProcessModule(Unbounded((1,)), sigma=1.0, x0=0.0)
    td = TensorDict(action=torch.zeros(2, 1), _ou_prev_noise=torch.full((2, 1), 100.0),
                    is_init=torch.tensor([[True], [False]]), batch_size=[2])
    noise = mod(td)["_ou_prev_noise"]
    assert abs(noise[0].item()) < 5 and noise[1].item() > 90


def test_exploration_in_collectors():
    env = CartPoleEnv(batch_size=[2])
    greedy = QValueActor(MLP(out_features=2, num_cells=[8]), spec=env.action_spec)
    explore = EGreedyModule(env.action_spec, eps_init=1.0, eps_end=1.0)
    policy = TensorDictSequential(greedy, explore)
    collector = Collector(env, policy, frames_per_batch=200, total_frames=200)
    (batch,) = list(collector)
    collector.shutdown()
    # with eps = 1 about half the actions differ from the greedy argmax
    differs = (batch["action"] != batch["action_value"].argmax(-1)).float().mean().item()
    assert 0.35 < differs < 0.65

    penv = TransformedEnv(GymEnv("Pendulum-v1"), InitTracker())
    spec = penv.action_spec
    actor = Actor(lambda obs: torch.zeros(*obs.shape[:-1], 1))  # always 0: the action is the noise
    # sigma = 0: the process decays deterministically n' = n + theta (0 - n) dt = n / 2 from x0 = 4,
    # which only happens if each step starts from the previous step's noise (carried in the root)
    ou = OrnsteinUhlenbeckProcessModule(spec, eps_init=1.0, eps_end=1.0, theta=0.5, sigma=0.0, dt=1.0, x0=4.0)
    collector = Collector(penv, TensorDictSequential(actor, ou), frames_per_batch=10, total_frames=10)
    (batch,) = list(collector)
    collector.shutdown()
    penv.close()
    assert spec.is_in(batch["action"])
    expected = 4.0 * 0.5 ** torch.arange(1, 11, dtype=torch.float32)
    torch.testing.assert_close(batch["_ou_prev_noise"].squeeze(-1), expected)
    torch.testing.assert_close(batch["action"].squeeze(-1), expected.clamp(max=2.0))
    assert batch["is_init"][0].item() and not batch["is_init"][1:].any()


def test_exploration_on_an_unbatched_env():
    """An unbatched env gives scalar actions (shape ``()``): the coin and the OU reset mask broadcast."""
    env = GymEnv("CartPole-v1")
    qnet = QValueActor(MLP(in_features=4, out_features=2, num_cells=[8]), in_keys=["observation"],
                       spec=env.action_spec)
    policy = TensorDictSequential(qnet, EGreedyModule(env.action_spec, eps_init=1.0, eps_end=1.0))
    td = env.reset()
    with set_exploration_type(ExplorationType.RANDOM):
        actions = torch.stack([policy(td.clone())["action"] for _ in range(200)])
    assert actions.shape == (200,) and set(actions.tolist()) == {0, 1}  # eps=1: both actions appear
    rollout = env.rollout(5, policy)
    assert rollout["action"].shape == rollout.batch_size

    pendulum = TransformedEnv(GymEnv("Pendulum-v1"), InitTracker())
    actor = Actor(MLP(in_features=3, out_features=1, num_cells=[8]), spec=pendulum.action_spec)
    noisy = TensorDictSequential(actor, OrnsteinUhlenbeckProcessModule(pendulum.action_spec))
    with set_exploration_type(ExplorationType.RANDOM):
        out = pendulum.rollout(4, noisy)
    assert out["action"].shape == (4, 1) and pendulum.action_spec.is_in(out["action"][0])
