"""PendulumEnv (rlbench/envs/classic/pendulum.py) beyond the shared classic-control checks of test_classic.py."""
import pytest
import torch

from rlbench.envs.classic import PendulumEnv


def test_out_of_range_continuous_actions_are_clipped_without_validation():
    env = PendulumEnv(batch_size=[2], dtype=torch.float64, validate_actions=False)
    td = env.reset()
    td["action"] = torch.tensor([[5.0], [2.0]], dtype=torch.float64)
    td["state"] = torch.zeros(2, 2, dtype=torch.float64)
    out = env.step(td)["next"]
    assert torch.equal(out["state"][0], out["state"][1])  # 5.0 is clipped to the max torque 2.0
    assert out["reward"][0].item() == pytest.approx(-0.001 * 4.0)  # gymnasium's cost uses the clipped torque
