"""CartPoleEnv (rlbench/envs/classic/cartpole.py) beyond the shared classic-control checks of test_classic.py."""
import gymnasium as gym
import pytest
import torch

from rlbench.envs.classic import CartPoleEnv


def test_cartpole_render_matches_gymnasium_picture():
    env = CartPoleEnv(batch_size=[2])
    states = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.15, 0.0]])
    frames = env.render(states)
    assert frames.shape == (2, 400, 600, 3) and frames.dtype == torch.uint8
    td = env.rollout(3)
    assert env.render(td).shape == (2, 3, 400, 600, 3)  # a whole rollout, from its "state" entries
    assert torch.equal(env.render(td[1, 2]), env.render(td["state"][1, 2]))
    pytest.importorskip("pygame")
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    g = gym.make("CartPole-v1", render_mode="rgb_array")
    g.reset(seed=0)
    for state, ours in zip(states, frames):
        g.unwrapped.state = state.double().numpy()
        ref = torch.from_numpy(g.render())
        drawn_ref, drawn = (ref != 255).any(-1), (ours != 255).any(-1)
        iou = (drawn_ref & drawn).sum() / (drawn_ref | drawn).sum()
        assert iou > 0.85  # pygame anti-aliases the edges; the shapes are the same
    g.close()
