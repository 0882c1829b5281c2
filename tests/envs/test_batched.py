"""SerialEnv: a batch of separately built envs behaves like one batched env."""
import pytest
import torch

from rlbench.envs import check_env_specs
from rlbench.envs.batched import SerialEnv
from rlbench.testing import ContinuousCountingEnv, CountingEnv


def test_serial_env_shapes_and_specs():
    env = SerialEnv(3, lambda: CountingEnv(max_steps=4))
    assert env.batch_size == torch.Size([3])
    assert env.action_spec.shape == torch.Size([3])
    assert env.observation_spec["observation"].shape == torch.Size([3, 1])
    assert check_env_specs(env) == []
    td = env.rollout(7, break_when_any_done=False)
    assert td.shape == torch.Size([3, 7])
    assert env.action_spec.is_in(td["action"])


def test_serial_env_of_batched_envs():
    env = SerialEnv(2, lambda: CountingEnv(max_steps=3, batch_size=[4]))
    assert env.batch_size == torch.Size([2, 4])
    assert check_env_specs(env) == []
    td = env.rollout(5, break_when_any_done=False)
    assert td.shape == torch.Size([2, 4, 5])
    assert td["next", "observation"][0, 0].squeeze(-1).tolist() == [1, 2, 3, 1, 2]


def test_serial_env_partial_reset_only_resets_done_sub_envs():
    env = SerialEnv(3, [lambda m=m: CountingEnv(max_steps=m) for m in (2, 3, 4)])
    td = env.rollout(6, break_when_any_done=False)
    # the root observation restarts at 0 only for the sub-env that was done on the previous step
    assert td["observation"].squeeze(-1).tolist() == [
        [0, 1, 0, 1, 0, 1],
        [0, 1, 2, 0, 1, 2],
        [0, 1, 2, 3, 0, 1],
    ]
    # ("next", "observation") at a done step is the true final observation
    assert td["next", "observation"].squeeze(-1)[2, 3].item() == 4
    assert td["next", "done"].squeeze(-1)[2].tolist() == [False, False, False, True, False, False]


def test_serial_env_breaks_at_first_done():
    env = SerialEnv(2, [lambda: CountingEnv(max_steps=2), lambda: CountingEnv(max_steps=5)])
    td = env.rollout(10)
    assert td.shape == torch.Size([2, 2])


def test_serial_env_routes_each_action_to_its_sub_env():
    env = SerialEnv(2, lambda: CountingEnv(max_steps=10))
    td = env.reset()
    td["action"] = torch.tensor([0, 1])
    td = env.step(td)
    assert td["next", "total"].squeeze(-1).tolist() == [0.0, 1.0]


def test_serial_env_continuous_actions():
    env = SerialEnv(2, lambda: ContinuousCountingEnv(action_dim=3))
    assert env.action_spec.shape == torch.Size([2, 3])
    assert check_env_specs(env) == []


def test_serial_env_rejects_mismatched_sub_envs():
    with pytest.raises(ValueError, match="sub-env 1 has different specs"):
        SerialEnv(2, [lambda: CountingEnv(), lambda: ContinuousCountingEnv()])


def test_serial_env_rejects_wrong_number_of_makers():
    with pytest.raises(ValueError, match="got 1 make_env callables for num_envs=2"):
        SerialEnv(2, [CountingEnv])


def test_serial_env_bad_action_names_the_key():
    env = SerialEnv(2, lambda: CountingEnv())
    td = env.reset()
    td["action"] = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"action under key 'action'.*expected shape \(2,\).*got \(2, 3\)"):
        env.step(td)


def test_serial_env_close_closes_sub_envs():
    with SerialEnv(2, lambda: CountingEnv()) as env:
        pass
    assert env.is_closed and all(e.is_closed for e in env.envs)


def test_serial_env_seeded_random_rollouts_repeat():
    def run(seed):
        env = SerialEnv(2, lambda: CountingEnv(max_steps=4))
        env.set_seed(seed)
        return env.rollout(12, break_when_any_done=False)

    torch.manual_seed(1)
    first = run(3)
    torch.manual_seed(2)  # the global RNG must not matter once the env is seeded
    assert (run(3)["action"] == first["action"]).all()
    assert not (run(4)["action"] == first["action"]).all()
