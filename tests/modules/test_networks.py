"""Networks: MLP / ConvNet shapes, dueling decomposition, NoisyLinear noise."""
import math

import pytest
import torch
from torch import nn

from rlbench.modules import (
    MLP,
    ConvNet,
    DuelingCnnDQNet,
    DuelingHead,
    NoisyLinear,
    reset_noise,
)


def test_mlp_lazy_and_explicit_shapes():
    lazy = MLP(out_features=3, num_cells=[8, 8])
    assert isinstance(lazy[0], nn.LazyLinear)
    assert lazy(torch.randn(2, 5, 7)).shape == (2, 5, 3)
    assert lazy[0].in_features == 7
    mlp = MLP(in_features=4, out_features=(2, 3), num_cells=16, depth=2)
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 16), (16, 16), (16, 6)]
    assert mlp(torch.randn(5, 4)).shape == (5, 2, 3)
    assert mlp(torch.randn(4)).shape == (2, 3)


def test_mlp_layers_and_options():
    mlp = MLP(in_features=2, out_features=1, num_cells=[4], activation_class=nn.ReLU, norm_class=nn.LayerNorm,
              dropout=0.5, activate_last_layer=True)
    kinds = [type(m) for m in mlp]
    assert kinds == [nn.Linear, nn.LayerNorm, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU]
    assert bool((mlp.eval()(torch.randn(10, 2)) >= 0).all())
    single = MLP(in_features=3, out_features=2, num_cells=[])
    assert [type(m) for m in single] == [nn.Linear]


def test_mlp_concatenates_inputs_with_broadcasting():
    mlp = MLP(in_features=5, out_features=1, num_cells=[4])
    obs, act = torch.randn(6, 3), torch.randn(6, 2)
    torch.testing.assert_close(mlp(obs, act), mlp(torch.cat([obs, act], -1)))
    # a [2] goal shared by all rows broadcasts against [6, 3]
    goal = torch.randn(2)
    torch.testing.assert_close(mlp(obs, goal), mlp(torch.cat([obs, goal.expand(6, 2)], -1)))


def test_mlp_errors():
    with pytest.raises(ValueError, match="out_features is required"):
        MLP(in_features=3)
    with pytest.raises(ValueError, match="positive"):
        MLP(out_features=(2, 0))
    with pytest.raises(ValueError, match="depth=3"):
        MLP(out_features=1, num_cells=[4, 4], depth=3)
    with pytest.raises(ValueError, match="lazy"):
        MLP(out_features=1, layer_class=NoisyLinear)


def test_convnet_arbitrary_leading_dims_match_per_step():
    net = ConvNet(num_cells=[4, 6], kernel_sizes=[3, 3], strides=[2, 1], paddings=[1, 0])
    x = torch.rand(2, 3, 1, 12, 12)  # [B, T, C, H, W]
    out = net(x)
    # 12 -> (12 + 2 - 3) // 2 + 1 = 6 -> 6 - 3 + 1 = 4: 6 channels * 4 * 4
    assert out.shape == (2, 3, 96)
    per_step = torch.stack([net(x[:, t]) for t in range(3)], 1)
    torch.testing.assert_close(out, per_step)
    assert net(x[0, 0]).shape == (96,)


def test_convnet_aggregator_and_errors():
    net = ConvNet(in_features=3, num_cells=[5], kernel_sizes=3, aggregator="mean", squash_last_layer=False)
    x = torch.rand(4, 3, 8, 8)
    torch.testing.assert_close(net(x), net.convs(x).mean((-2, -1)))
    with pytest.raises(TypeError, match="float"):
        net(torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="C, H, W"):
        net(torch.zeros(8, 8))
    with pytest.raises(ValueError, match="strides has 2 entries"):
        ConvNet(num_cells=[4], strides=[1, 2])


def test_convnet_torchrl_arguments():
    """depth, bias_last_layer, aggregator_class/kwargs and squeeze_output, as TorchRL spells them."""
    net = ConvNet(in_features=3, num_cells=4, depth=3, bias_last_layer=False)
    convs = [m for m in net.convs if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 4, 4]
    assert [c.bias is None for c in convs] == [False, False, True]
    pooled = ConvNet(in_features=3, num_cells=[1], aggregator_class=torch.nn.AdaptiveMaxPool2d,
                     aggregator_kwargs={"output_size": 1}, squeeze_output=True)
    x = torch.rand(2, 5, 3, 9, 9)
    expected = pooled.convs(x.reshape(10, 3, 9, 9)).amax((-2, -1), keepdim=True).reshape(2, 5, 1, 1, 1)
    torch.testing.assert_close(pooled(x), expected.squeeze(-1))  # [2, 5, 1, 1, 1] -> [2, 5, 1, 1]
    with pytest.raises(ValueError, match="num_cells has 2 entries but depth=3"):
        ConvNet(num_cells=[4, 4], depth=3)
    with pytest.raises(ValueError, match="not both"):
        ConvNet(aggregator="mean", aggregator_class=torch.nn.Flatten)
    with pytest.raises(ValueError, match="aggregator_kwargs needs aggregator_class"):
        ConvNet(aggregator_kwargs={"start_dim": 1})


def test_dueling_head_decomposition():
    head = DuelingHead(out_features=4, in_features=6, num_cells=[8])
    f = torch.randn(10, 6)
    q = head(f)
    # mean over actions of Q is the value stream; Q - mean(Q) is the centred advantage stream
    torch.testing.assert_close(q.mean(-1, keepdim=True), head.value(f))
    adv = head.advantage(f)
    torch.testing.assert_close(q - q.mean(-1, keepdim=True), adv - adv.mean(-1, keepdim=True))
    net = DuelingCnnDQNet(3, cnn_kwargs=dict(num_cells=[4], kernel_sizes=4, strides=4), head_kwargs=dict(num_cells=[8]))
    assert net(torch.rand(5, 1, 16, 16)).shape == (5, 3)


def test_noisy_linear_noise_statistics():
    layer = NoisyLinear(30, 20)
    eps = []
    for _ in range(300):
        layer.reset_noise()
        eps.append(layer.weight_epsilon.clone())
    eps = torch.stack(eps)
    # factorised noise f(a) f(b) with f(x) = sign(x) sqrt|x|: mean 0, variance E|a| E|b| = 2 / pi
    assert abs(float(eps.mean())) < 0.01
    assert abs(float(eps.var()) - 2 / math.pi) < 0.02
    # rank one per draw: eps = outer(f(eps_out), f(eps_in)) and the bias noise is f(eps_out)
    assert int(torch.linalg.matrix_rank(layer.weight_epsilon)) == 1
    ratio = layer.weight_epsilon / layer.bias_epsilon[:, None]
    torch.testing.assert_close(ratio, ratio[:1].expand_as(ratio))
    torch.testing.assert_close(layer.weight_sigma, torch.full((20, 30), 0.5 / math.sqrt(30)))


def test_noisy_linear_eval_is_deterministic_and_sigma_learns():
    layer = NoisyLinear(4, 3)
    x = torch.randn(8, 4)
    a = layer(x)
    layer.reset_noise()
    assert not torch.allclose(a, layer(x))
    layer.eval()
    y1 = layer(x)
    layer.reset_noise()
    torch.testing.assert_close(layer(x), y1)
    torch.testing.assert_close(y1, x @ layer.weight_mu.T + layer.bias_mu)
    layer.train()
    layer(x).sum().backward()
    assert layer.weight_sigma.grad is not None and layer.weight_sigma.grad.abs().sum() > 0
    net = MLP(in_features=4, out_features=2, num_cells=[5], layer_class=NoisyLinear)
    before = [m.weight_epsilon.clone() for m in net if isinstance(m, NoisyLinear)]
    reset_noise(net)
    after = [m.weight_epsilon for m in net if isinstance(m, NoisyLinear)]
    assert len(before) == 2 and all(not torch.equal(b, a) for b, a in zip(before, after))
