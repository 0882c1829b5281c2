"""Plain ``nn.Module`` networks: MLP, ConvNet, dueling heads and noisy linear layers.

They take and return tensors (no TensorDict); wrap them in ``Actor``, ``ValueOperator``,
``QValueActor`` or a ``TensorDictModule`` to read and write named entries.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

__all__ = ["MLP", "ConvNet", "DuelingHead", "DuelingCnnDQNet", "NoisyLinear", "reset_noise"]


def _cells(num_cells, depth, default_width: int = 32, default_depth: int = 3) -> list[int]:
    if num_cells is None:
        return [default_width] * (default_depth if depth is None else depth)
    if isinstance(num_cells, int):
        return [num_cells] * (default_depth if depth is None else depth)
    cells = [int(c) for c in num_cells]
    if depth is not None and depth != len(cells):
        raise ValueError(f"num_cells has {len(cells)} entries but depth={depth}; give one or make them agree")
    return cells


def _out_shape(out_features) -> tuple[int, ...]:
    shape = (int(out_features),) if isinstance(out_features, int) else tuple(int(s) for s in out_features)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"out_features must be a positive int or a shape of positive ints, got {out_features!r}")
    return shape


class MLP(nn.Sequential):
    """A multi-layer perceptron ``[*B, in_features] -> [*B, *out_features]``.

    Several inputs are concatenated along their last dim (after broadcasting the leading dims), so
    ``MLP()(observation, action)`` is a Q-network.

    Args:
        in_features: input size; ``None`` infers it on the first call (``nn.LazyLinear``).
        out_features: output size, or a shape such as ``(n_actions, n_atoms)``.
        num_cells: hidden widths (a list) or one width repeated ``depth`` times. Default 32 x 3.
        depth: number of hidden layers when ``num_cells`` is an int.
        activation_class, activation_kwargs: the non-linearity (default ``nn.Tanh``).
        norm_class, norm_kwargs: optional normalisation after each hidden linear layer
            (e.g. ``nn.LayerNorm``; it receives the layer width as first argument).
        dropout: dropout probability after each hidden activation (None: no dropout).
        layer_class, layer_kwargs: the linear layer (``nn.Linear``, or :class:`NoisyLinear`).
        activate_last_layer: apply the activation after the output layer too.
        device: where the parameters live.

    Example:
        >>> mlp = MLP(out_features=(2, 5), num_cells=[16, 16])
        >>> mlp(torch.randn(7, 3, 4)).shape
        torch.Size([7, 3, 2, 5])
        >>> q = MLP(in_features=4, out_features=1, depth=1, num_cells=8)
        >>> q(torch.randn(6, 3), torch.randn(6, 1)).shape
        torch.Size([6, 1])
    """

    def __init__(self, in_features: int | None = None, out_features=None, num_cells=None, depth: int | None = None,
                 activation_class=nn.Tanh, activation_kwargs: dict | None = None, norm_class=None,
                 norm_kwargs: dict | None = None, dropout: float | None = None, layer_class=nn.Linear,
                 layer_kwargs: dict | None = None, activate_last_layer: bool = False, device=None):
        if out_features is None:
            raise ValueError("MLP: out_features is required (an int, or a shape such as (n_actions, n_atoms))")
        self.out_shape = _out_shape(out_features)
        self.in_features = in_features
        cells = _cells(num_cells, depth)
        widths = cells + [math.prod(self.out_shape)]
        layer_kwargs = dict(layer_kwargs or {})
        layers: list[nn.Module] = []
        prev = in_features
        for i, width in enumerate(widths):
            last = i == len(widths) - 1
            if prev is None:
                if layer_class is not nn.Linear:
                    raise ValueError(
                        f"MLP: in_features=None (lazy) only works with layer_class=nn.Linear; give in_features "
                        f"for {getattr(layer_class, '__name__', layer_class)}"
                    )
                layers.append(nn.LazyLinear(width, device=device, **layer_kwargs))
            else:
                layers.append(layer_class(prev, width, device=device, **layer_kwargs))
            if not last or activate_last_layer:
                if norm_class is not None and not last:
                    layers.append(norm_class(width, **(norm_kwargs or {})))
                layers.append(activation_class(**(activation_kwargs or {})))
                if dropout and not last:
                    layers.append(nn.Dropout(dropout))
            prev = width
        super().__init__(*layers)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) == 1:
            x = inputs[0]
        else:
            lead = torch.broadcast_shapes(*(t.shape[:-1] for t in inputs))
            x = torch.cat([t.expand(*lead, t.shape[-1]) for t in inputs], -1)
        out = super().forward(x)
        if len(self.out_shape) > 1:
            out = out.unflatten(-1, self.out_shape)
        return out


def _per_layer(value, n: int, name: str) -> list:
    if isinstance(value, (int, tuple)) and not isinstance(value, bool):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"ConvNet: {name} has {len(values)} entries but there are {n} conv layers")
    return values


class ConvNet(nn.Module):
    """A stack of 2-d convolutions ``[*B, C, H, W] -> [*B, features]`` for any number of leading dims.

    Leading dims (batch, time, ...) are flattened into one batch for the convolutions and restored
    afterwards, so the same network reads a ``[B, C, H, W]`` step and a ``[B, T, C, H, W]`` sequence.
    Inputs must be float (scale ``uint8`` pixels with a transform such as ``ToTensorImage``).

    Args:
        in_features: input channels; ``None`` infers them on the first call (``nn.LazyConv2d``).
        num_cells: output channels of each conv layer (default ``[32, 32, 32]``), or one channel
            count repeated ``depth`` times.
        depth: number of conv layers when ``num_cells`` is an int (TorchRL's argument; with a list
            it must agree with its length).
        kernel_sizes: one kernel size for all layers or one per layer.
        strides: one stride for all layers or one per layer.
        paddings: one padding for all layers or one per layer.
        activation_class: the non-linearity (default ``nn.ELU``).
        activation_kwargs: its keyword arguments.
        norm_class: optional normalisation after each conv (e.g. ``nn.BatchNorm2d``).
        norm_kwargs: its keyword arguments.
        squash_last_layer: apply the activation after the last conv too (default True).
        bias_last_layer: give the last conv a bias (default True).
        aggregator: module applied to the ``[N, C', H', W']`` feature maps; ``None`` flattens
            them to ``[N, C' * H' * W']``. ``"mean"`` averages over space (``[N, C']``).
        aggregator_class: TorchRL's spelling: a module class built as
            ``aggregator_class(**aggregator_kwargs)``; give it or ``aggregator``, not both.
        aggregator_kwargs: keyword arguments of ``aggregator_class``.
        squeeze_output: drop a last output dim of size 1 (``[*B, 1] -> [*B]``).
        device: where the parameters live.

    Example:
        >>> net = ConvNet(num_cells=[8, 8], kernel_sizes=[3, 3], strides=[2, 1])
        >>> net(torch.rand(4, 5, 3, 16, 16)).shape
        torch.Size([4, 5, 200])
        >>> pooled = ConvNet(num_cells=16, depth=2, aggregator_class=torch.nn.AdaptiveAvgPool2d,
        ...                  aggregator_kwargs={"output_size": 1}, squeeze_output=False)
        >>> pooled(torch.rand(2, 3, 12, 12)).shape
        torch.Size([2, 16, 1, 1])
    """

    def __init__(self, in_features: int | None = None, num_cells: Sequence[int] | int | None = None,
                 kernel_sizes=3, strides=1, paddings=0, activation_class=nn.ELU, activation_kwargs: dict | None = None,
                 norm_class=None, norm_kwargs: dict | None = None, squash_last_layer: bool = True,
                 aggregator=None, device=None, *, depth: int | None = None, bias_last_layer: bool = True,
                 aggregator_class=None, aggregator_kwargs: dict | None = None, squeeze_output: bool = False):
        super().__init__()
        cells = _cells(num_cells, depth)
        n = len(cells)
        if n == 0:
            raise ValueError("ConvNet: num_cells needs at least one conv layer")
        kernels = _per_layer(kernel_sizes, n, "kernel_sizes")
        strides = _per_layer(strides, n, "strides")
        pads = _per_layer(paddings, n, "paddings")
        layers: list[nn.Module] = []
        prev = in_features
        for i, (ch, k, s, p) in enumerate(zip(cells, kernels, strides, pads)):
            bias = bias_last_layer or i < n - 1
            if prev is None:
                layers.append(nn.LazyConv2d(ch, k, stride=s, padding=p, bias=bias, device=device))
            else:
                layers.append(nn.Conv2d(prev, ch, k, stride=s, padding=p, bias=bias, device=device))
            if norm_class is not None:
                layers.append(norm_class(ch, **(norm_kwargs or {})))
            if i < n - 1 or squash_last_layer:
                layers.append(activation_class(**(activation_kwargs or {})))
            prev = ch
        self.convs = nn.Sequential(*layers)
        if aggregator_class is not None:
            if aggregator is not None:
                raise ValueError("ConvNet: give aggregator (a module) or aggregator_class (+ aggregator_kwargs), "
                                 "not both")
            aggregator = aggregator_class(**(aggregator_kwargs or {}))
        elif aggregator_kwargs:
            raise ValueError("ConvNet: aggregator_kwargs needs aggregator_class")
        self.squeeze_output = squeeze_output
        if aggregator is None:
            aggregator = nn.Flatten(-3)
        elif aggregator == "mean":
            aggregator = _SpatialMean()
        self.aggregator = aggregator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 3:
            raise ValueError(f"ConvNet: expected input [*B, C, H, W] (or [C, H, W]), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(
                f"ConvNet: expected a float input, got {x.dtype}; "
                "convert pixels first (e.g. the ToTensorImage transform)"
            )
        lead = x.shape[:-3]
        y = self.aggregator(self.convs(x.reshape(-1, *x.shape[-3:])))
        y = y.reshape(*lead, *y.shape[1:])
        if self.squeeze_output and y.shape[-1] == 1:
            y = y.squeeze(-1)
        return y


class _SpatialMean(nn.Module):
    def forward(self, x):
        return x.mean((-2, -1))


class DuelingHead(nn.Module):
    """Dueling Q-values ``Q = V + A - mean(A)`` from features (Wang et al. 2016).

    Two MLPs read the same features: a value stream ``V(s)`` (1 output) and an advantage stream
    ``A(s, a)`` (``out_features`` outputs). Subtracting the mean advantage makes the split identifiable.

    Args:
        out_features: the number of actions.
        in_features: feature size (``None``: lazy).
        num_cells: hidden widths of each stream (default ``[64]``).
        activation_class: the non-linearity of both streams.
        layer_class: the linear layer (:class:`NoisyLinear` for a noisy dueling head; needs ``in_features``).
        device: where the parameters live.

    Example:
        >>> head = DuelingHead(out_features=3, num_cells=[8])
        >>> head(torch.randn(5, 6)).shape
        torch.Size([5, 3])
    """

    def __init__(self, out_features: int, in_features: int | None = None, num_cells=None,
                 activation_class=nn.ReLU, layer_class=nn.Linear, device=None):
        super().__init__()
        cells = [64] if num_cells is None else num_cells
        kw = dict(in_features=in_features, num_cells=cells, activation_class=activation_class,
                  layer_class=layer_class, device=device)
        self.value = MLP(out_features=1, **kw)
        self.advantage = MLP(out_features=out_features, **kw)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        adv = self.advantage(features)
        return self.value(features) + adv - adv.mean(-1, keepdim=True)


class DuelingCnnDQNet(nn.Module):
    """Pixels to dueling Q-values: a :class:`ConvNet` trunk and a :class:`DuelingHead`.

    Args:
        out_features: the number of actions.
        cnn_kwargs: arguments of the :class:`ConvNet` (default: the Nature-DQN trunk, 32-64-64
            channels, kernels 8-4-3, strides 4-2-1, ReLU).
        head_kwargs: arguments of the :class:`DuelingHead` (default one hidden layer of 512).

    Example:
        >>> net = DuelingCnnDQNet(4, cnn_kwargs=dict(num_cells=[8], kernel_sizes=4, strides=4),
        ...                       head_kwargs=dict(num_cells=[16]))
        >>> net(torch.rand(2, 3, 1, 32, 32)).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, out_features: int, cnn_kwargs: dict | None = None, head_kwargs: dict | None = None):
        super().__init__()
        cnn = dict(num_cells=[32, 64, 64], kernel_sizes=[8, 4, 3], strides=[4, 2, 1], activation_class=nn.ReLU)
        cnn.update(cnn_kwargs or {})
        head = dict(num_cells=[512])
        head.update(head_kwargs or {})
        self.features = ConvNet(**cnn)
        self.head = DuelingHead(out_features, **head)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(pixels))


class NoisyLinear(nn.Linear):
    """A linear layer with learned, factorised Gaussian noise on its weights (Fortunato et al. 2017).

    ``W = mu_W + sigma_W * (f(eps_out) f(eps_in)^T)`` and ``b = mu_b + sigma_b * f(eps_out)`` with
    ``f(x) = sign(x) sqrt(|x|)`` and ``eps ~ N(0, 1)``. The noise is redrawn by ``reset_noise()``
    (not on every call, so a whole batch sees the same network); in ``eval()`` mode the layer uses
    the means only, so evaluation is deterministic. ``weight``/``bias`` are the effective values.

    Args:
        in_features, out_features: as ``nn.Linear``.
        bias: learn a bias.
        std_init: ``sigma_0``; sigmas start at ``sigma_0 / sqrt(in_features)`` (the paper's 0.5).
        device, dtype: as ``nn.Linear``.

    Example:
        >>> layer = NoisyLinear(4, 2)
        >>> x = torch.randn(3, 4)
        >>> a = layer(x); layer.reset_noise(); b = layer(x)
        >>> bool((a != b).any())
        True
        >>> _ = layer.eval()
        >>> torch.equal(layer(x), x @ layer.weight_mu.T + layer.bias_mu)
        True
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, std_init: float = 0.5,
                 device=None, dtype=None):
        self.std_init = std_init
        nn.Module.__init__(self)
        kw = dict(device=device, dtype=dtype)
        self.in_features, self.out_features = in_features, out_features
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features, **kw))
        self.weight_sigma = nn.Parameter(torch.empty(out_features, in_features, **kw))
        self.register_buffer("weight_epsilon", torch.empty(out_features, in_features, **kw))
        if bias:
            self.bias_mu = nn.Parameter(torch.empty(out_features, **kw))
            self.bias_sigma = nn.Parameter(torch.empty(out_features, **kw))
            self.register_buffer("bias_epsilon", torch.empty(out_features, **kw))
        else:
            self.bias_mu = self.bias_sigma = self.bias_epsilon = None
        self.reset_parameters()
        self.reset_noise()

    def reset_parameters(self) -> None:
        if not hasattr(self, "weight_mu"):  # nn.Linear.__init__ would call this before our parameters exist
            return
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            self.weight_mu.uniform_(-bound, bound)
            self.weight_sigma.fill_(self.std_init * bound)
            if self.bias_mu is not None:
                self.bias_mu.uniform_(-bound, bound)
                self.bias_sigma.fill_(self.std_init * bound)

    @staticmethod
    def _f(x: torch.Tensor) -> torch.Tensor:
        return x.sign() * x.abs().sqrt()

    def reset_noise(self) -> None:
        """Draw fresh factorised noise (``in + out`` Gaussians, not ``in * out``)."""
        w = self.weight_mu
        eps_in = self._f(torch.randn(self.in_features, device=w.device, dtype=w.dtype))
        eps_out = self._f(torch.randn(self.out_features, device=w.device, dtype=w.dtype))
        self.weight_epsilon.copy_(torch.outer(eps_out, eps_in))
        if self.bias_epsilon is not None:
            self.bias_epsilon.copy_(eps_out)

    @property
    def weight(self) -> torch.Tensor:
        if self.training:
            return self.weight_mu + self.weight_sigma * self.weight_epsilon
        return self.weight_mu

    @property
    def bias(self) -> torch.Tensor | None:
        if self.bias_mu is None:
            return None
        if self.training:
            return self.bias_mu + self.bias_sigma * self.bias_epsilon
        return self.bias_mu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, std_init={self.std_init}"


def reset_noise(module: nn.Module) -> nn.Module:
    """Redraw the noise of every :class:`NoisyLinear` inside ``module`` (call once per training step).

    Example:
        >>> net = MLP(in_features=3, out_features=2, num_cells=[4], layer_class=NoisyLinear)
        >>> reset_noise(net) is net
        True
    """
    for m in module.modules():
        if isinstance(m, NoisyLinear):
            m.reset_noise()
    return module
