"""Env makers (rlbench/envs/makers.py): EnvCreator."""
from rlbench.testing import CountingEnv


def test_env_creator_is_exported():
    from rlbench.envs import EnvCreator
    from rlbench.envs.makers import EnvCreator as Original

    assert EnvCreator is Original
    env = EnvCreator(CountingEnv, {"max_steps": 2})()
    assert env.rollout(5).shape == (2,)
