"""Pixel encoders of the standard benchmarks: ``[*B, C, H, W]`` frames to a feature vector ``[*B, features]``.

* :class:`NatureCNN`: the Atari network of the Nature DQN (Mnih et al. 2015, "Human-level control through
  deep reinforcement learning"): three convolutions (32 8x8 stride 4, 64 4x4 stride 2, 64 3x3 stride 1)
  and a 512-unit ReLU layer. Stable-Baselines3's ``CnnPolicy`` and the rl-zoo Atari settings use it for
  DQN, A2C and PPO alike.
* :class:`DMCEncoder`: the DeepMind Control pixel encoder of SAC-AE (Yarats et al. 2021, "Improving Sample
  Efficiency in Model-Free Reinforcement Learning from Images", arXiv:1910.01741), which DrQ (Kostrikov,
  Yarats & Fergus 2021, "Image Augmentation Is All You Need", arXiv:2004.13649) reuses: four 3x3
  convolutions of 32 channels (the first of stride 2), then a linear layer to 50 features, LayerNorm and
  tanh.

Both take ``uint8`` frames (scaled by 1/255 inside, so a replay buffer can keep the 4x smaller bytes)
or float frames already in ``[0, 1]`` (used as they are), with any number of leading dims.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .networks import ConvNet

__all__ = ["NatureCNN", "DMCEncoder", "scale_pixels"]


def scale_pixels(x: torch.Tensor) -> torch.Tensor:
    """``uint8`` frames to float in ``[0, 1]``; float frames unchanged.

    Example:
        >>> scale_pixels(torch.tensor([0, 255], dtype=torch.uint8))
        tensor([0., 1.])
    """
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    if not x.dtype.is_floating_point:
        raise TypeError(f"pixel encoders read uint8 or float frames, got {x.dtype}")
    return x


def _frame_shape(input_shape: Sequence[int], owner: str) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{owner}: input_shape must be (channels, height, width), got {tuple(input_shape)}")
    return shape


def _flat_features(conv: nn.Module, shape, owner: str, smallest: int) -> int:
    """The number of features ``conv`` makes of one ``shape`` frame (a frame too small for it is refused)."""
    try:
        with torch.no_grad():
            return int(conv(torch.zeros(1, *shape)).shape[-1])
    except RuntimeError as err:  # a kernel larger than the remaining feature map
        raise ValueError(f"{owner}: frames of {shape[1]}x{shape[2]} are too small for its convolutions (at least "
                         f"{smallest}x{smallest}): {err}") from None


class NatureCNN(nn.Module):
    """The Nature-DQN convolutional network (Mnih et al. 2015), ``[*B, C, H, W] -> [*B, out_features]``.

    Args:
        input_shape: ``(channels, height, width)`` of one frame stack, e.g. ``(4, 84, 84)``.
        out_features: width of the final ReLU layer (512 in the paper).

    Attributes:
        conv: the three convolutions (ReLU after each), flattened.
        fc: the linear layer to ``out_features`` (followed by ReLU).

    Example:
        >>> net = NatureCNN((4, 84, 84))
        >>> net(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape
        torch.Size([2, 512])
        >>> net.conv_features  # 64 maps of 7x7
        3136
    """

    def __init__(self, input_shape: Sequence[int], out_features: int = 512):
        super().__init__()
        shape = _frame_shape(input_shape, "NatureCNN")
        self.conv = ConvNet(in_features=shape[0], num_cells=[32, 64, 64], kernel_sizes=[8, 4, 3], strides=[4, 2, 1],
                            activation_class=nn.ReLU)
        self.conv_features = _flat_features(self.conv, shape, "NatureCNN", 36)
        self.fc = nn.Linear(self.conv_features, int(out_features))
        self.out_features = int(out_features)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(self.conv(scale_pixels(pixels))))


class DMCEncoder(nn.Module):
    """The SAC-AE / DrQ pixel encoder for DeepMind Control, ``[*B, C, H, W] -> [*B, out_features]``.

    Four 3x3 convolutions of ``num_filters`` channels with ReLU (stride 2 for the first, 1 after), flattened,
    then ``tanh(LayerNorm(Linear(., out_features)))``: the LayerNorm and tanh keep the features bounded, which
    SAC-AE found made the critic's updates of the encoder stable.

    Args:
        input_shape: ``(channels, height, width)``, e.g. ``(9, 84, 84)`` for three stacked RGB frames.
        out_features: feature dim (50 in SAC-AE and DrQ).
        num_filters: channels of every convolution (32).
        num_layers: number of convolutions (4).

    Example:
        >>> enc = DMCEncoder((9, 84, 84))
        >>> out = enc(torch.randint(0, 256, (3, 9, 84, 84), dtype=torch.uint8))
        >>> out.shape, bool(out.abs().max() <= 1)
        (torch.Size([3, 50]), True)
        >>> enc.conv_features  # 32 maps of 35x35
        39200
    """

    def __init__(self, input_shape: Sequence[int], out_features: int = 50, num_filters: int = 32,
                 num_layers: int = 4):
        super().__init__()
        shape = _frame_shape(input_shape, "DMCEncoder")
        if int(num_layers) < 1:
            raise ValueError(f"DMCEncoder: num_layers must be >= 1, got {num_layers}")
        n = int(num_layers)
        self.conv = ConvNet(in_features=shape[0], num_cells=[int(num_filters)] * n, kernel_sizes=3,
                            strides=[2] + [1] * (n - 1), activation_class=nn.ReLU)
        self.conv_features = _flat_features(self.conv, shape, "DMCEncoder", 4 * n - 1)
        self.fc = nn.Linear(self.conv_features, int(out_features))
        self.norm = nn.LayerNorm(int(out_features))
        self.out_features = int(out_features)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.norm(self.fc(self.conv(scale_pixels(pixels)))))
