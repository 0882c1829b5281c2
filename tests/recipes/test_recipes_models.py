"""rlbench.recipes.models: networks built from an env's specs."""
import pytest
import torch
from tensordict import TensorDict
from torch import nn

from rlbench.modules import MLP, NatureCNN
from rlbench.recipes import make_env
from rlbench.recipes.models import make_encoder, make_stochastic_actor, make_trunk, make_value_network
from rlbench.specs import Categorical, Composite, Unbounded


def test_models_follow_the_action_spec():
    cart = make_env("native:CartPole", 4)
    td = make_value_network(cart, (8,))(make_stochastic_actor(cart, (8,))(cart.reset()))
    assert td["action"].dtype == torch.int64 and td["logits"].shape == (4, 2)
    assert td["state_value"].shape == (4, 1) and td["sample_log_prob"].shape == (4,)
    pend = make_env("native:Pendulum", 4)
    td = make_stochastic_actor(pend, (8,))(pend.reset())
    assert td["action"].shape == (4, 1) and bool(pend.action_spec.is_in(td["action"]))


def test_models_refuse_unsupported_specs():
    class FakeEnv:
        batch_size = torch.Size([])
        observation_spec = Composite(observation=Unbounded((3,)))
        action_spec = Unbounded((2,))

    with pytest.raises(TypeError, match=r"no stochastic actor for action spec Unbounded: expected Categorical"):
        make_stochastic_actor(FakeEnv(), (8,))
    FakeEnv.observation_spec = Composite(other=Unbounded((3,)))
    with pytest.raises(ValueError, match=r"neither 'observation' nor 'pixels' \(keys: \['other'\]\)"):
        make_encoder(FakeEnv(), (8,), 2)


def test_pixel_observations_get_a_convnet():
    class PixelEnv:
        batch_size = torch.Size([])
        observation_spec = Composite(pixels=Unbounded((3, 64, 64)))
        action_spec = Categorical(3)

    actor = make_stochastic_actor(PixelEnv(), (16,))
    td = actor(TensorDict(pixels=torch.rand(5, 3, 64, 64), batch_size=[5]))
    assert td["logits"].shape == (5, 3) and td["action"].shape == (5,)


class FramesEnv:
    batch_size = torch.Size([])
    observation_spec = Composite(pixels=Unbounded((3, 64, 64)))
    action_spec = Categorical(3)


def test_make_trunk_is_one_relu_layer_for_vectors_and_the_nature_cnn_for_pixels():
    trunk, n = make_trunk(make_env("native:CartPole", 2), 32)
    assert isinstance(trunk, MLP) and n == 32
    assert [type(m) for m in trunk] == [nn.Linear, nn.ReLU] and trunk[0].in_features == 4  # the DQN trunk
    pixels, n_pixels = make_trunk(FramesEnv(), 32)
    # Nature-DQN convs on a 64x64 frame (64 maps of 4x4), then its fully connected ReLU layer, here 32 wide
    assert isinstance(pixels, NatureCNN) and pixels.conv_features == 64 * 4 * 4 and n_pixels == 32
    assert pixels(torch.zeros(5, 3, 64, 64)).shape == (5, 32)
    encoder = make_encoder(FramesEnv(), (16,), 4)
    assert isinstance(encoder[0], NatureCNN) and encoder(torch.zeros(5, 3, 64, 64)).shape == (5, 4)


def test_encoders_refuse_observations_of_other_ranks():
    class ImageWithoutChannels:
        batch_size = torch.Size([])
        observation_spec = Composite(pixels=Unbounded((64, 64)))

    with pytest.raises(ValueError, match=r"pixel observations must be \[C, H, W\] \(uint8 or float\), got shape "
                                         r"\(64, 64\)"):
        make_trunk(ImageWithoutChannels(), 8)
    ImageWithoutChannels.observation_spec = Composite(observation=Unbounded((4, 4)))
    with pytest.raises(ValueError, match=r"vector observations must be 1-d, got shape \(4, 4\).*FlattenObservation"):
        make_encoder(ImageWithoutChannels(), (8,), 2)
