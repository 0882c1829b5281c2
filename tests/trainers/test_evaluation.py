"""evaluate_policy: the episodes it counts, their order, the step cap, and sums that match a plain rollout."""
import pytest
import torch

from rlbench.envs import CartPoleEnv, PendulumEnv
from rlbench.testing import categorical_actor
from rlbench.trainers import evaluate_policy


def push_right(td):
    return td.set("action", torch.ones(td.batch_size, dtype=torch.long))


def lean_toward_pole(td):
    return td.set("action", (td["observation"][..., 2] > 0).long())


def episode_lengths(env, steps, policy=push_right):
    """Reference: a plain rollout of the same seeded env, cut at its done flags, per sub-env."""
    ref = env.rollout(steps, policy, break_when_any_done=False)
    done = ref["next", "done"].reshape(env.batch_size.numel(), -1)
    lengths = []
    for row in done:
        ends = row.nonzero().reshape(-1)
        lengths.append(torch.diff(torch.cat([torch.tensor([-1]), ends])).tolist())
    return lengths


def test_matches_a_reference_rollout():
    env = CartPoleEnv(seed=4)
    returns = evaluate_policy(env, push_right, episodes=3)
    env.set_seed(4)
    assert returns == [float(n) for n in episode_lengths(env, 1000)[0][:3]]


def test_each_sub_env_gives_an_equal_share_in_sub_env_order():
    env = CartPoleEnv(batch_size=[2], seed=0)
    returns = evaluate_policy(env, push_right, episodes=4)
    env.set_seed(0)
    ref = episode_lengths(env, 200)
    assert returns == [float(n) for n in ref[0][:2] + ref[1][:2]]


def test_an_uneven_split_keeps_the_episodes_that_ended_first():
    env = CartPoleEnv(batch_size=[2], seed=1)
    returns = evaluate_policy(env, push_right, episodes=3)  # each sub-env may give 2: the first 3 to end count
    env.set_seed(1)
    ref = episode_lengths(env, 200)
    ends = sorted((sum(ref[i][:k + 1]) - 1, i, k) for i in range(2) for k in range(2))[:3]
    expected = [float(ref[i][k]) for _, i, k in sorted(ends, key=lambda e: (e[1], e[2]))]
    assert returns == expected and len(returns) == 3


def test_the_step_cap_drops_or_counts_unfinished_episodes():
    env = CartPoleEnv(batch_size=[2], seed=0)
    assert evaluate_policy(env, push_right, episodes=2, max_steps=3) == []  # stopped before any episode ended
    assert evaluate_policy(env, push_right, episodes=2, max_steps=3, include_unfinished=True) == [3.0, 3.0]
    env.set_seed(0)
    first = episode_lengths(env, 200)[0][0]
    env.set_seed(0)
    # past the first end of sub-env 0, one cap later: sub-env 0's second episode is counted partly
    got = evaluate_policy(env, push_right, episodes=4, max_steps=first + 2, include_unfinished=True)
    assert got[0] == float(first) and got[1] == 2.0


def test_real_valued_returns_equal_the_float64_sum_of_a_rollout():
    env = PendulumEnv(batch_size=[3], seed=2)

    def half_torque(td):
        return td.set("action", torch.full((3, 1), 0.5))

    returns = evaluate_policy(env, half_torque, episodes=3)
    env.set_seed(2)
    ref = env.rollout(200, half_torque, break_when_any_done=False)
    assert bool(ref["next", "done"][:, -1].all())  # Pendulum's 200-step time limit ends every episode
    assert returns == ref["next", "reward"].reshape(3, -1).double().sum(-1).tolist()


def test_a_sampling_policy_acts_deterministically_and_errors_are_clear():
    torch.manual_seed(0)
    actor = categorical_actor(4, 2)  # samples its action outside an exploration-type context
    with torch.no_grad():
        actor[0].module.weight.copy_(torch.tensor([[0.0, 0.0, -5.0, 0.0], [0.0, 0.0, 5.0, 0.0]]))
        actor[0].module.bias.zero_()
    runs = [evaluate_policy(CartPoleEnv(batch_size=[4], seed=5), actor, 4) for _ in range(2)]
    pushed = evaluate_policy(CartPoleEnv(batch_size=[4], seed=5), lean_toward_pole, 4)
    assert runs[0] == runs[1] == pushed  # the mode of the logits: push toward the side the pole leans to
    with pytest.raises(ValueError, match="episodes must be >= 1, got 0"):
        evaluate_policy(CartPoleEnv(), push_right, 0)
