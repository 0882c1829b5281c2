"""rlbench.recipes.replay: what the off-policy recipes store and how many updates a batch buys."""
import torch

from rlbench.recipes import OffPolicyConfig, make_env, transitions, updates_due


def test_updates_due_keeps_a_fractional_ratio_exact_over_the_run():
    cfg = OffPolicyConfig(init_random_frames=100, utd_ratio=0.3)
    done = 0
    for frames in range(50, 1050, 50):
        done += updates_due(frames, cfg, done)
    assert done == int(0.3 * (1000 - 100))  # 270 steps for the 900 trained-on frames
    assert updates_due(100, cfg, 0) == 0


def test_transitions_keep_only_what_a_one_step_target_reads():
    env = make_env("native:Pendulum", 2)
    rollout = env.rollout(5)
    rollout["loc"] = torch.zeros(2, 5, 1)
    flat = transitions(rollout)
    assert flat.batch_size == (10,)
    assert set(flat.keys(True, True)) == {"observation", "action", ("next", "observation"), ("next", "reward"),
                                          ("next", "done"), ("next", "terminated")}
    assert torch.equal(flat["next", "reward"], rollout["next", "reward"].reshape(10, 1))
