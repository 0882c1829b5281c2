"""set_seed makes random actions reproducible for every kind of env, independent of torch's global RNG."""
import pytest
import torch

from rlbench.envs import CartPoleEnv, GymEnv, PendulumEnv, TransformedEnv
from rlbench.envs.transforms import StepCounter
from rlbench.specs import Bounded, Categorical, Composite, MultiOneHot, Unbounded

MAKERS = {
    "gym-cartpole": lambda: GymEnv("CartPole-v1"),
    "gym-pendulum": lambda: GymEnv("Pendulum-v1"),
    "native-cartpole-batch": lambda: CartPoleEnv(batch_size=[3]),
    "native-pendulum": lambda: PendulumEnv(),
    "transformed": lambda: TransformedEnv(GymEnv("CartPole-v1"), StepCounter()),
}


@pytest.mark.parametrize("name", MAKERS)
def test_seeded_rollout_is_reproducible(name):
    def run(seed, global_seed):
        torch.manual_seed(global_seed)
        env = MAKERS[name]()
        env.set_seed(seed)
        return env.rollout(30, break_when_any_done=False)

    a, b, c = run(7, 0), run(7, 123), run(8, 0)
    assert (a == b).all(), "same env seed, different global RNG: rollouts must match"
    assert not (a["action"] == c["action"]).all(), "a different seed must give different actions"


def test_unseeded_env_uses_global_rng():
    env = CartPoleEnv()
    torch.manual_seed(0)
    first = env.rand_action()["action"]
    torch.manual_seed(0)
    assert env.rand_action()["action"] == first


@pytest.mark.parametrize("spec", [
    Bounded(-1.0, 1.0, (3,)), Unbounded((2,)), Categorical(5, (4,)), MultiOneHot([2, 3]),
    Composite(a=Categorical(3), b=Bounded(0.0, 2.0, (2,))),
])
def test_spec_rand_with_generator_is_reproducible(spec):
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x, y = spec.rand((6,), generator=g1), spec.rand((6,), generator=g2)
    assert (x == y).all()
    assert spec.is_in(x)
