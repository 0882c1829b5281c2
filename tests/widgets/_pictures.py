"""Pictures shared by the frame and dream inspector tests (imported as ``_pictures``).

Like tests/buffers/_buffer_data.py: a tiny moving-square rollout, a deterministic fake world model,
and a canvas probe for the browser tests.
"""
from __future__ import annotations

import torch
from tensordict import TensorDict
from torch import nn

# mean, spread and distinct grey levels of a canvas's pixels (a blank or one-colour canvas has spread 0)
CANVAS_STATS = """(c) => {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sq = 0; const levels = new Set();
  for (let i = 0; i < d.length; i += 4) { const v = d[i]; sum += v; sq += v * v; levels.add(v); }
  const n = d.length / 4, mean = sum / n;
  return { mean, std: Math.sqrt(Math.max(0, sq / n - mean * mean)), levels: levels.size, w: c.width, h: c.height,
           url: c.toDataURL() };
}"""


EVIL = "<img src=x onerror=alert(1)>"
T, SIZE = 12, 16


def square_frames(positions) -> torch.Tensor:
    """[N, 3, SIZE, SIZE] float frames in [0, 1]: a bright 4x4 square at column ``p`` on a dim field."""
    frames = torch.full((len(positions), 3, SIZE, SIZE), 0.2)
    for i, p in enumerate(positions):
        frames[i, :, 6:10, int(p) % SIZE:int(p) % SIZE + 4] = 0.9
    return frames


def real_rollout() -> TensorDict:
    actions = torch.tensor([1, 1, 0, 2, 1, 0, 1, 1, 2, 0, 1, 1])  # the square moves right by the action
    positions = torch.cat([torch.zeros(1), actions.cumsum(0)[:-1].float()])
    return TensorDict({"pixels": square_frames(positions.tolist()), "action": actions[:, None].float(),
                       "next": {"reward": (actions == 2).float()[:, None]}}, [T])


class FakeWorldModel(nn.Module):
    """Reconstructs by a fixed affine map; imagines by shifting the last frame by action + drift."""

    def __init__(self, drift: int = 0):
        super().__init__()
        self.drift = drift
        self.gain = nn.Parameter(torch.tensor(0.95))

    def observe(self, rollout):
        reco = (rollout["pixels"] * self.gain + 0.01).clamp(0, 1)
        reward = 0.5 * rollout["action"][:, 0]  # predicts 1.0 for action 2: right there
        return TensorDict({"reconstruction": reco, "reward": reward, "frame": rollout["pixels"]}, rollout.batch_size)

    def imagine(self, state, actions):
        frame, frames, rewards = state["frame"], [], []
        for a in actions[:, 0]:
            frame = torch.roll(frame, int(a) + self.drift, dims=-1)
            frames.append(frame)
            rewards.append(0.5 * a)
        return TensorDict({"reconstruction": torch.stack(frames), "reward": torch.stack(rewards)}, [len(frames)])


