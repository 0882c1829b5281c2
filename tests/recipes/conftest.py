"""Fixtures the recipe tests share.

A test file names the recipe it covers with a module-level ``ALGO``; the ``algo`` fixture reads it, and a
test parametrized over ``algo`` (see test_recipes_shared.py) overrides it. ``small`` then builds that
recipe's Config with a budget of a few hundred frames.
"""
import pytest
import torch

from rlbench.recipes import get_recipe
from rlbench.testing import ListLogger

PENDULUM = dict(env="native:Pendulum", frames=300, frames_per_batch=50, init_random_frames=100, batch_size=32,
                hidden_sizes=(16, 16), eval_episodes=2)
SMALL = {
    "ppo": dict(env="native:CartPole", frames=512, num_envs=4, steps_per_env=32, epochs=2, minibatch_size=64,
                eval_episodes=3),
    "a2c": dict(env="native:CartPole", frames=512, num_envs=8, steps_per_env=8, eval_episodes=3),
    "ddpg": PENDULUM,
    "td3": PENDULUM,
    "sac": PENDULUM,
    "redq": PENDULUM | dict(frames=200, num_qvalue_nets=4, sub_sample_len=2),
}
"""Per algorithm: a few hundred frames and tiny networks, enough to prove the wiring in about a second."""


@pytest.fixture(autouse=True)
def one_thread():
    # train() sets config.torch_threads (1 by default); the other tests run tiny batches, where a second
    # intra-op thread only adds wake-up latency on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def pendulum_worst():
    """Pendulum's lowest reward per step times its 200-step limit: every return lies in [this, 0]."""
    return -16.2736044 * 200


@pytest.fixture
def logger():
    return ListLogger()


@pytest.fixture
def algo(request):
    """The recipe a test file covers (its module-level ``ALGO``)."""
    return request.module.ALGO


@pytest.fixture
def recipe(algo):
    return get_recipe(algo)


@pytest.fixture
def small(algo, recipe):
    """``small(**overrides)``: the recipe's Config with the small budget of :data:`SMALL`."""
    return lambda **kw: recipe.Config(**(SMALL[algo] | kw))
