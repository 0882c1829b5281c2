"""rlbench.modules.encoders: the Nature-DQN and SAC-AE/DrQ pixel encoders (shapes, scaling, layers, errors)."""
import pytest
import torch
from torch import nn

from rlbench.modules import DMCEncoder, NatureCNN, scale_pixels


def conv_layers(net):
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)]


def test_nature_cnn_layers_and_shapes():
    net = NatureCNN((4, 84, 84))
    convs = conv_layers(net)
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, (8, 8), (4, 4)), (64, (4, 4), (2, 2)), (64, (3, 3), (1, 1))]
    # 84 -> 20 -> 9 -> 7 (the paper's 7x7x64 = 3136 features), then fc 512
    assert net.conv_features == 7 * 7 * 64 and net.fc.out_features == 512
    out = net(torch.rand(5, 3, 4, 84, 84))  # leading (time, batch) dims are kept
    assert out.shape == (5, 3, 512) and bool((out >= 0).all())  # ReLU output


def test_dmc_encoder_layers_and_shapes():
    enc = DMCEncoder((9, 84, 84))
    convs = conv_layers(enc)
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(32, (3, 3), (2, 2))] + [
        (32, (3, 3), (1, 1))] * 3
    assert enc.conv_features == 32 * 35 * 35  # 84 -> 41 -> 39 -> 37 -> 35
    out = enc(torch.randint(0, 256, (2, 7, 9, 84, 84), dtype=torch.uint8))
    assert out.shape == (2, 7, 50) and bool(out.abs().max() < 1)  # tanh-bounded
    small = DMCEncoder((3, 32, 32), out_features=8)
    assert small(torch.zeros(3, 32, 32)).shape == (8,)


@pytest.mark.parametrize("cls", [NatureCNN, DMCEncoder])
def test_uint8_frames_equal_float_frames_divided_by_255(cls):
    torch.manual_seed(0)
    net = cls((3, 40, 40))
    frames = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)
    torch.testing.assert_close(net(frames), net(frames.double().div(255).float()))


def test_scale_pixels():
    assert scale_pixels(torch.tensor([51], dtype=torch.uint8)).item() == pytest.approx(0.2)
    x = torch.rand(3)
    assert scale_pixels(x) is x
    with pytest.raises(TypeError, match="uint8 or float frames, got torch.int64"):
        scale_pixels(torch.zeros(3, dtype=torch.long))


def test_bad_shapes_are_refused_with_the_smallest_size():
    with pytest.raises(ValueError, match=r"NatureCNN: frames of 32x32 are too small .*at least 36x36"):
        NatureCNN((4, 32, 32))
    with pytest.raises(ValueError, match=r"DMCEncoder: frames of 14x14 are too small .*at least 15x15"):
        DMCEncoder((3, 14, 14))
    with pytest.raises(ValueError, match=r"input_shape must be \(channels, height, width\), got \(84, 84\)"):
        DMCEncoder((84, 84))
