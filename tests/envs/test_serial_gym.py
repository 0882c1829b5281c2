"""SerialEnv's NumPy kernel for plain gym envs (rlbench/envs/serial_gym.py) against the generic path."""
import pytest
import torch

from rlbench.envs.batched import SerialEnv
from rlbench.envs.utils import step_mdp
from rlbench.testing import CountingEnv


def _gym_serial(n, generic: bool):
    from rlbench.envs import GymEnv

    env = SerialEnv(n, lambda: GymEnv("CartPole-v1", max_episode_steps=6))
    assert env._kernel is not None
    if generic:
        env._kernel = None  # the generic path: sub-env TensorDicts, stacked, and EnvBase's partial reset
    env.set_seed(5)
    return env


def test_serial_gym_kernel_matches_generic_path():
    """SerialEnv of single gym envs: the NumPy kernel gives the generic path's data, step for step."""
    fast, slow = _gym_serial(3, False), _gym_serial(3, True)
    td_f, td_g = fast.reset(), slow.reset()
    hidden = torch.ones(3, 2)  # a root key the env does not produce: carried over
    td_f["hidden"], td_g["hidden"] = hidden, hidden.clone()
    dones = 0
    for t in range(25):
        action = fast.action_spec.rand()
        td_f["action"], td_g["action"] = action, action.clone()
        if t % 5 == 4:  # plain step() + step_mdp + masked reset, as a user loop does it
            td_f, td_g = fast.step(td_f), slow.step(td_g)
            assert (td_f == td_g).all()
            td_f, td_g = step_mdp(td_f), step_mdp(td_g)
            td_f["_reset"], td_g["_reset"] = td_f["done"].clone(), td_g["done"].clone()
            td_f, td_g = fast.reset(td_f), slow.reset(td_g)
        else:
            cur_f, td_f = fast.step_and_maybe_reset(td_f)
            cur_g, td_g = slow.step_and_maybe_reset(td_g)
            assert set(cur_f.keys(True, True)) == set(cur_g.keys(True, True)) and (cur_f == cur_g).all()
            dones += int(cur_f["next", "done"].sum())
        assert set(td_f.keys(True, True)) == set(td_g.keys(True, True)) and (td_f == td_g).all()
        assert all(td_f[k].dtype == td_g[k].dtype for k in td_f.keys())
    assert dones >= 3
    roll_f, roll_g = fast.rollout(20, break_when_any_done=False), slow.rollout(20, break_when_any_done=False)
    assert (roll_f == roll_g).all()


def test_serial_gym_kernel_only_for_plain_gym_envs_and_checks_actions():
    assert SerialEnv(2, lambda: CountingEnv(max_steps=3))._kernel is None
    env = _gym_serial(2, False)
    td = env.reset()
    td["action"] = torch.tensor([0, 2])
    with pytest.raises(ValueError, match="SerialEnv.step: action under key 'action' does not match action_spec"):
        env.step_and_maybe_reset(td)
