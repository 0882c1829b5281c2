"""Dreamer's networks (Hafner et al. 2020, "Dream to Control"): world model, actor and value.

The world model learns a latent state space from 64x64 pixels; the actor and the value learn inside it.

The model state is TorchRL's pair: ``"belief"`` (the deterministic GRU state ``h_t``) and
``"state"`` (the stochastic state ``s_t ~ N(mean, std)``). The parts:

- :class:`ObsEncoder`: pixels ``[*B, 3, 64, 64]`` -> embedding ``[*B, 1024]`` (4 conv 4x4 stride 2,
  depth 32, 64, 128, 256, ReLU).
- :class:`ObsDecoder`: ``(state, belief)`` -> reconstructed pixels (the transposed stack: 5x5, 5x5,
  6x6, 6x6 kernels, stride 2).
- :class:`RSSMPrior`: ``(state, belief, action)`` -> prior mean/std, a sampled next state, next belief:
  the transition ``p(s_{t+1} | h_{t+1})``, ``h_{t+1} = GRU(h_t, [s_t, a_t])``.
- :class:`RSSMPosterior`: ``(belief, embedding)`` -> posterior mean/std and a sampled state:
  ``q(s_t | h_t, e_t)``.
- :class:`RSSMRollout`: scans prior then posterior over a ``[B, T]`` sequence (a TensorDict module).
- :func:`dreamer_mlp` (reward and value heads) and :func:`dreamer_actor` (a Tanh-Normal
  :class:`~rlbench.modules.ProbabilisticActor`).
- :func:`dreamer_world_model`: encoder, RSSM scan, decoder and reward head as one
  ``TensorDictSequential``; :func:`dreamer_imagination_env`: a
  :class:`~rlbench.envs.WorldModelEnv` stepping the prior (for the actor's imagination), and
  :func:`imagine_with_policy`, the same imagination as a plain loop (what the actor loss runs).
- :class:`OneDnnLinear`: the ``nn.Linear`` of all these networks, whose CPU products run in oneDNN
  (see ``benchmarks/README.md``, Dreamer).

Keys (as TorchRL's Dreamer names them). A real sequence ``td`` of shape ``[B, T]`` holds
``"pixels"``, ``"action"`` and ``("next", "pixels")``, ``("next", "reward")``; optionally the initial
``"state"``/``"belief"`` (zeros when absent). The world model writes ``("next", "encoded_latents")``,
``("next", "prior_mean")``, ``("next", "prior_std")``, ``("next", "belief")``, ``("next",
"posterior_mean")``, ``("next", "posterior_std")``, ``("next", "state")``, ``("next",
"reco_pixels")``, ``("next", "reward")`` (the predicted reward: the loss reads the true one first),
and the root ``"state"``/``"belief"`` each step started from.

How to (a) get posterior states, reconstructions and predicted rewards for a real rollout::

    world_model = dreamer_world_model(encoder, rssm_rollout, decoder, reward_head)
    with torch.no_grad():
        out = world_model(real_rollout.copy())          # [B, T] (or [T]: add a batch dim first)
    out["next", "state"], out["next", "belief"]         # posterior latent of each observed frame
    out["next", "reco_pixels"]                          # its reconstruction, [B, T, 3, 64, 64]
    out["next", "reward"]                               # predicted reward (true one: real_rollout)

(b) imagine open-loop from a posterior state given actions (``actions`` ``[B, H, A]``)::

    prior = rssm_rollout.prior                          # the RSSMPrior inside the scan
    state, belief = out["next", "state"][:, t], out["next", "belief"][:, t]
    frames = []
    for k in range(H):
        _, _, state, belief = prior(state, belief, actions[:, k])
        frames.append(decoder(state, belief))           # imagined frame after action k
    imagined = torch.stack(frames, 1)                   # [B, H, 3, 64, 64]

(or with a policy: ``dreamer_imagination_env(...).rollout(H, policy, tensordict=start,
auto_reset=False)``, ``start`` a TensorDict of ``"state"``/``"belief"``). :func:`imagine` does (b).

Example:
    >>> import torch
    >>> from tensordict import TensorDict
    >>> enc, dec = ObsEncoder(), ObsDecoder(state_dim=30, belief_dim=200)
    >>> prior, post = RSSMPrior(action_dim=1), RSSMPosterior()
    >>> wm = dreamer_world_model(enc, RSSMRollout(prior, post), dec, dreamer_mlp(230, 1, depth=2))
    >>> td = TensorDict({"pixels": torch.rand(2, 5, 3, 64, 64), "action": torch.rand(2, 5, 1) * 2 - 1,
    ...                  "next": {"pixels": torch.rand(2, 5, 3, 64, 64)}}, [2, 5])
    >>> out = wm(td)
    >>> out["next", "reco_pixels"].shape, out["next", "state"].shape, out["next", "reward"].shape
    (torch.Size([2, 5, 3, 64, 64]), torch.Size([2, 5, 30]), torch.Size([2, 5, 1]))
"""
from __future__ import annotations

import math

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase, TensorDictSequential
from tensordict.utils import NestedKey
from torch import nn
from torch.nn import functional as F

from .actors import ProbabilisticActor
from .distributions import TanhNormal
from .networks import MLP

__all__ = [
    "ObsEncoder",
    "ObsDecoder",
    "OneDnnLinear",
    "RSSMPrior",
    "RSSMPosterior",
    "RSSMRollout",
    "DreamerActorParams",
    "dreamer_mlp",
    "dreamer_actor",
    "dreamer_world_model",
    "dreamer_imagination_env",
    "imagine",
    "imagine_with_policy",
]

_FRAME = 64  # the conv stacks are built for 64x64 frames (Hafner et al. 2020, appendix A)
_EMBED = 1024  # 256 channels x 2 x 2 after four stride-2 4x4 convs of a 64x64 frame


def _onednn_linear_op():
    """The dense fp32 linear of oneDNN (``mkldnn::_linear_pointwise``) when this build has it, else None."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        op = torch.ops.mkldnn._linear_pointwise
        x, w = torch.ones(2, 3), torch.ones(4, 3)
        if not torch.equal(op(x, w, None, "none", [], ""), torch.full((2, 4), 3.0)):
            return None
    except (AttributeError, RuntimeError):
        return None
    return op


_DNN = _onednn_linear_op()


def _dnn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return _DNN(x, weight, bias, "none", [], "")


class _OneDnnLinearFn(torch.autograd.Function):
    """``x @ weight.T + bias`` on 2-D CPU float32 tensors, forward and backward through oneDNN."""

    # forward(ctx, ...) rather than setup_context: Function.apply then skips an inspect.signature per call
    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _dnn(x, weight, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _dnn(grad, weight.t(), None)  # grad @ weight
        if ctx.needs_input_grad[1]:
            if weight.dim() == 2 and weight.stride(0) == 1 and weight.stride(1) == weight.shape[0] != 1:
                gw = _dnn(x.t(), grad.t(), None).t()  # a transposed view (ObsDecoder): x.T @ grad, laid out like it
            else:
                gw = _dnn(grad.t(), x.t(), None)  # grad.T @ x
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = grad.sum(0)
        return gx, gw, gb


def _wrapped(*xs: torch.Tensor) -> bool:
    """Inside a torch.func transform (vmap, grad): keep the ATen ops, which have their rules."""
    return torch._C._are_functorch_transforms_active()


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear`` through oneDNN where it applies (CPU float32, :attr:`OneDnnLinear.enabled`), else ``F.linear``."""
    if (_DNN is None or not OneDnnLinear.enabled or x.device.type != "cpu" or x.dtype != torch.float32
            or weight.dtype != torch.float32 or x.layout != torch.strided or x.dim() < 1 or _wrapped(x, weight)):
        return F.linear(x, weight, bias)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                    or (bias is not None and bias.requires_grad)):
        y = _OneDnnLinearFn.apply(x2, weight, bias)
    else:
        y = _dnn(x2, weight, bias)
    return y.reshape(*lead, weight.shape[0])


class OneDnnLinear(nn.Linear):
    """An ``nn.Linear`` whose CPU float32 products (forward and backward) run in oneDNN instead of the BLAS.

    Same parameters, state dict and math as ``nn.Linear``; only the matrix-product kernel differs (the
    results agree to float32 rounding, ~1e-6 relative). Why: PyTorch's CPU ``mm`` calls MKL, whose
    sgemm takes its AVX2 path on AMD CPUs, while oneDNN (already used for the convolutions) runs AVX-512
    there: about 2x faster on the Zen 5 machine of ``benchmarks/bench_dreamer.py``. On Intel CPUs the two
    are close. Other devices and dtypes, and builds without oneDNN, use ``F.linear``. Dreamer's dense
    layers (RSSM, decoder input, reward, value and actor MLPs) are built from it.

    ``OneDnnLinear.enabled = False`` sends every instance back to ``F.linear`` (e.g. to compare).

    Example:
        >>> lin = OneDnnLinear(4, 3)
        >>> x = torch.randn(2, 5, 4)
        >>> torch.testing.assert_close(lin(x), torch.nn.functional.linear(x, lin.weight, lin.bias))
        >>> lin(x).shape
        torch.Size([2, 5, 3])
    """

    enabled: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _linear(x, self.weight, self.bias)


def _subpixel_conv_transpose(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``conv_transpose2d(x, weight, bias, stride=2)`` for an even square kernel, as one conv and a pixel shuffle.

    Output pixel ``(2p + a, 2q + b)`` sums ``x[p - m, q - n] * weight[2m + a, 2n + b]``: for each of the
    four phases ``(a, b)`` an ordinary convolution with the flipped ``k/2 x k/2`` sub-kernel. Stacked as
    ``4 * out`` channels they are one ``conv2d`` (padding ``k/2 - 1``), interleaved by ``pixel_shuffle``.
    The same sums in another order (float32 rounding apart); for the decoder's last layer (3 output
    channels, where oneDNN's transposed kernel is slow) about half the time on CPU.
    """
    cin, cout, k = weight.shape[0], weight.shape[1], weight.shape[-1]
    h = k // 2
    sub = weight.reshape(cin, cout, h, 2, h, 2).permute(1, 3, 5, 0, 2, 4).flip(-2, -1).reshape(4 * cout, cin, h, h)
    y = F.pixel_shuffle(F.conv2d(x, sub, padding=h - 1), 2)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


class _ConvTranspose2dFn(torch.autograd.Function):
    """``conv_transpose2d(x, weight, bias, stride)`` (no padding) whose backward runs as ordinary convolutions.

    The input gradient of a transposed convolution is the convolution ``conv2d(grad, weight, stride)``
    and its weight gradient is that convolution's weight gradient with ``grad`` as the input: oneDNN's
    forward-convolution kernels give the same numbers (bit for bit, tests/modules/test_dreamer_modules.py)
    as PyTorch's transposed-convolution backward, in about 20-30% less time on CPU.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.has_bias = stride, bias is not None
        k = weight.shape[-1]
        if weight.shape[1] <= 8 and tuple(stride) == (2, 2) and weight.shape[-2] == k and k % 2 == 0:
            return _subpixel_conv_transpose(x, weight, bias)
        return F.conv_transpose2d(x, weight, bias, stride=stride)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = F.conv2d(grad, weight, None, stride=ctx.stride)
        if ctx.needs_input_grad[1]:
            gw = torch.ops.aten.convolution_backward(x, grad, weight, None, list(ctx.stride), [0, 0], [1, 1], False,
                                                     [0, 0], 1, [False, True, False])[1]
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = grad.sum((0, 2, 3))
        return gx, gw, gb, None


def _conv_transpose(layer: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` for the decoder's plain stride-2 layers; on CPU with :class:`_ConvTranspose2dFn`'s kernels."""
    if (x.device.type != "cpu" or not torch.backends.mkldnn.is_available() or x.dim() != 4
            or _wrapped(x, layer.weight) or layer.groups != 1 or tuple(layer.padding) != (0, 0)
            or tuple(layer.output_padding) != (0, 0) or tuple(layer.dilation) != (1, 1)):
        return layer(x)
    if not torch.is_grad_enabled():  # the same forward as with gradients, without the autograd node
        return _ConvTranspose2dFn.forward(_NoCtx(), x, layer.weight, layer.bias, layer.stride)
    return _ConvTranspose2dFn.apply(x, layer.weight, layer.bias, layer.stride)


class _NoCtx:
    """A stand-in autograd context for calling a Function's forward directly (nothing is saved)."""

    def save_for_backward(self, *tensors):
        pass


def _gru_cell(x: torch.Tensor, h: torch.Tensor, cell: nn.GRUCell) -> torch.Tensor:
    """``cell(x, h)`` with its two products through :func:`_linear` (the gates as ATen's ``gru_cell`` writes them)."""
    ir, iz, inew = _linear(x, cell.weight_ih, cell.bias_ih).chunk(3, -1)
    hr, hz, hnew = _linear(h, cell.weight_hh, cell.bias_hh).chunk(3, -1)
    reset = torch.sigmoid(hr + ir)
    update = torch.sigmoid(hz + iz)
    new = torch.tanh(inew + hnew * reset)
    return (h - new) * update + new


def _check_frames(x: torch.Tensor, key: NestedKey, owner: str, channels: int) -> None:
    """A clear error for frames that are not ``[*B, C, 64, 64]`` floats."""
    if x.ndim >= 3 and tuple(x.shape[-3:]) == (channels, _FRAME, _FRAME) and x.is_floating_point():
        return
    found = f"shape {tuple(x.shape)}, dtype {x.dtype}"
    if x.ndim >= 3 and x.shape[-1] == channels and x.shape[-3] != channels:
        fix = ("the frames are channels-last (H, W, C): add ToTensorImage() to the env (it also turns uint8 into "
               "floats in [0, 1])")
    elif not x.is_floating_point():
        fix = "add ToTensorImage() to the env (uint8 frames -> floats in [0, 1], channels first)"
    else:
        fix = f"add Resize({_FRAME}, {_FRAME}) to the env (after ToTensorImage())"
    raise ValueError(f"{owner}: {key!r} must hold float frames [*batch, {channels}, {_FRAME}, {_FRAME}] "
                     f"(the Dreamer conv stack is built for {_FRAME}x{_FRAME}), found {found}: {fix}")


class ObsEncoder(nn.Module):
    """Dreamer's pixel encoder: 4 conv layers 4x4 stride 2, depth ``channels * (1, 2, 4, 8)``, ReLU.

    Args:
        channels: depth of the first layer (32 in the paper).
        in_channels: channels of the frames (3 for RGB).
        key: the name of the input in error messages (the key its TensorDictModule reads).

    Frames ``[*B, C, 64, 64]`` (floats, e.g. ToTensorImage's ``[0, 1]``) give ``[*B, 8 * channels * 4]``
    (1024 for the default). Frames of another size raise a ``ValueError`` naming the key, the shape found
    and the fix (a ``Resize(64, 64)`` transform).

    Example:
        >>> ObsEncoder()(torch.rand(2, 7, 3, 64, 64)).shape
        torch.Size([2, 7, 1024])
    """

    def __init__(self, channels: int = 32, in_channels: int = 3, key: NestedKey = "pixels"):
        super().__init__()
        self.in_channels, self.key = in_channels, key
        depths = [in_channels] + [channels * m for m in (1, 2, 4, 8)]
        layers = []
        for i in range(4):
            layers += [nn.Conv2d(depths[i], depths[i + 1], 4, stride=2), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)
        self.out_features = depths[-1] * 2 * 2

    def check_spec(self, spec) -> None:
        """Refuse, before any training, an env whose frames this encoder cannot read.

        ``spec`` is the frames' spec (e.g. ``env.observation_spec["pixels"]``): its last three dims must
        be ``(C, 64, 64)`` and its dtype a float; otherwise the ``ValueError`` of :meth:`forward` (key,
        shape found, the transform that fixes it).

        Example:
            >>> from rlbench.specs import Unbounded
            >>> ObsEncoder().check_spec(Unbounded((8, 3, 64, 64)))
            >>> ObsEncoder().check_spec(Unbounded((3, 84, 84)))
            Traceback (most recent call last):
            ...
            ValueError: ObsEncoder: 'pixels' must hold float frames [*batch, 3, 64, 64] ... Resize(64, 64) ...
        """
        _check_frames(torch.empty(spec.shape, dtype=spec.dtype, device="meta"), self.key, type(self).__name__,
                      self.in_channels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        _check_frames(pixels, self.key, type(self).__name__, self.in_channels)
        lead = pixels.shape[:-3]
        # channels-last frames take oneDNN's faster conv kernels on CPU (the same numbers, another layout)
        x = pixels.reshape(-1, *pixels.shape[-3:]).contiguous(memory_format=torch.channels_last)
        return self.net(x).reshape(*lead, self.out_features)


class ObsDecoder(nn.Module):
    """Dreamer's pixel decoder: ``(state, belief)`` -> the mean of the frame, ``[*B, 3, 64, 64]``.

    A linear layer to ``32 * channels`` features seen as a 1x1 image, then transposed convs with
    kernels 5, 5, 6, 6, stride 2 and depths ``channels * (4, 2, 1)``, 3 (ReLU between): 1 -> 5 -> 13
    -> 30 -> 64 pixels.

    Args:
        state_dim, belief_dim: sizes of the stochastic and deterministic states.
        channels: the encoder's first depth (32 in the paper).
        out_channels: channels of the frames.

    Example:
        >>> ObsDecoder(state_dim=30, belief_dim=200)(torch.randn(4, 30), torch.randn(4, 200)).shape
        torch.Size([4, 3, 64, 64])
    """

    def __init__(self, state_dim: int = 30, belief_dim: int = 200, channels: int = 32, out_channels: int = 3):
        super().__init__()
        self.width = 32 * channels
        self.fc = OneDnnLinear(state_dim + belief_dim, self.width)
        depths = [self.width, channels * 4, channels * 2, channels, out_channels]
        layers = []
        for i, k in enumerate((5, 5, 6, 6)):
            layers.append(nn.ConvTranspose2d(depths[i], depths[i + 1], k, stride=2))
            if i < 3:
                layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers)

    def forward(self, state: torch.Tensor, belief: torch.Tensor) -> torch.Tensor:
        x = self.fc(torch.cat((state, belief), -1))
        lead = x.shape[:-1]
        x = x.reshape(-1, self.width)
        # The first transposed conv sees a 1x1 image: it is exactly a matrix product with its weight
        # [in, out, k, k] seen as [in, out * k * k]. Written so, it costs a few times less than
        # conv_transpose2d, which has no fast CPU kernel for this shape (benchmarks/bench_dreamer.py).
        first = self.net[0]
        out_ch, k = first.out_channels, first.kernel_size
        y = _linear(x, first.weight.reshape(self.width, -1).t()).view(-1, out_ch, *k)
        y = y + first.bias.view(1, -1, 1, 1)
        out = y.contiguous(memory_format=torch.channels_last)
        for layer in self.net[1:]:
            out = _conv_transpose(layer, out) if isinstance(layer, nn.ConvTranspose2d) else layer(out)
        return out.reshape(*lead, *out.shape[-3:])


def _gaussian(stats: torch.Tensor, scale_lb: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mean, std, a reparameterised sample)`` from the concatenated ``[mean, raw std]`` output."""
    mean, raw = stats.chunk(2, -1)
    std = F.softplus(raw) + scale_lb  # Hafner et al.: softplus plus a minimum std (0.1)
    return mean, std, mean + std * torch.randn_like(std)


class RSSMPrior(nn.Module):
    """The RSSM transition: ``h' = GRU(h, ELU(W [s, a]))``, ``p(s' | h') = N(mean, std)``.

    Args:
        action_dim: size of the action.
        hidden_dim: width of the hidden layers (200).
        belief_dim: size of the GRU state ``"belief"`` (200).
        state_dim: size of the stochastic ``"state"`` (30).
        scale_lb: the minimum std (0.1).

    ``forward(state, belief, action)`` returns ``(prior_mean, prior_std, next_state, next_belief)``;
    ``next_state`` is a reparameterised sample, so imagined trajectories are differentiable.
    As a TensorDictModule: ``in_keys=["state", "belief", "action"]``, ``out_keys=[("next",
    "prior_mean"), ("next", "prior_std"), ("next", "state"), ("next", "belief")]``.

    Example:
        >>> prior = RSSMPrior(action_dim=2)
        >>> m, s, state, belief = prior(torch.zeros(5, 30), torch.zeros(5, 200), torch.zeros(5, 2))
        >>> state.shape, belief.shape, bool((s >= 0.1).all())
        (torch.Size([5, 30]), torch.Size([5, 200]), True)
    """

    def __init__(self, action_dim: int, hidden_dim: int = 200, belief_dim: int = 200, state_dim: int = 30,
                 scale_lb: float = 0.1):
        super().__init__()
        self.action_dim, self.state_dim, self.belief_dim, self.scale_lb = action_dim, state_dim, belief_dim, scale_lb
        self.embed = nn.Sequential(OneDnnLinear(state_dim + action_dim, hidden_dim), nn.ELU())
        self.rnn = nn.GRUCell(hidden_dim, belief_dim)
        self.head = nn.Sequential(OneDnnLinear(belief_dim, hidden_dim), nn.ELU(),
                                  OneDnnLinear(hidden_dim, 2 * state_dim))

    def forward(self, state: torch.Tensor, belief: torch.Tensor, action: torch.Tensor):
        x = self.embed(torch.cat((state, action), -1))
        lead = x.shape[:-1]
        belief = _gru_cell(x.reshape(-1, x.shape[-1]), belief.reshape(-1, self.belief_dim), self.rnn).reshape(*lead, -1)
        mean, std, state = _gaussian(self.head(belief), self.scale_lb)
        return mean, std, state, belief


class RSSMPosterior(nn.Module):
    """The RSSM filter ``q(s | h, e) = N(mean, std)`` from the belief and the frame's embedding.

    Args:
        hidden_dim: width of the hidden layer (200).
        belief_dim: size of the belief (200).
        embed_dim: size of the encoder's output (1024).
        state_dim: size of the stochastic state (30).
        scale_lb: the minimum std (0.1).

    ``forward(belief, embedding)`` returns ``(posterior_mean, posterior_std, state)``. As a
    TensorDictModule: ``in_keys=[("next", "belief"), ("next", "encoded_latents")]``,
    ``out_keys=[("next", "posterior_mean"), ("next", "posterior_std"), ("next", "state")]``.

    Example:
        >>> m, s, state = RSSMPosterior()(torch.zeros(5, 200), torch.zeros(5, 1024))
        >>> state.shape
        torch.Size([5, 30])
    """

    def __init__(self, hidden_dim: int = 200, belief_dim: int = 200, embed_dim: int = _EMBED, state_dim: int = 30,
                 scale_lb: float = 0.1):
        super().__init__()
        self.state_dim, self.scale_lb = state_dim, scale_lb
        self.net = nn.Sequential(OneDnnLinear(belief_dim + embed_dim, hidden_dim), nn.ELU(),
                                 OneDnnLinear(hidden_dim, 2 * state_dim))

    def forward(self, belief: torch.Tensor, embedding: torch.Tensor):
        return _gaussian(self.net(torch.cat((belief, embedding), -1)), self.scale_lb)


def _unwrap(module: nn.Module, cls: type, name: str) -> nn.Module:
    inner = module.module if isinstance(module, TensorDictModule) else module
    if not isinstance(inner, nn.Module):
        raise TypeError(f"RSSMRollout: {name} must be an {cls.__name__} (or a TensorDictModule wrapping one), "
                        f"got {type(module).__name__}")
    return inner


class RSSMRollout(TensorDictModuleBase):
    """Scans the RSSM over a ``[B, T]`` sequence: prior step with the action, then posterior with the frame.

    For each ``t``: ``prior(state_t, belief_t, action_t)`` gives the prior of step ``t+1`` and
    ``belief_{t+1}``; ``posterior(belief_{t+1}, embedding_{t+1})`` gives ``state_{t+1}``, the start of the
    next step. The loop runs on plain tensors and writes every entry once, stacked over time (no
    TensorDict is built per step).

    Args:
        prior: an :class:`RSSMPrior` (or a TensorDictModule wrapping one).
        posterior: an :class:`RSSMPosterior` (or a TensorDictModule wrapping one).
        burn_in: the first ``burn_in`` steps only warm up the state (the losses skip them); a sequence
            must have more steps than this, or a ``ValueError`` says so.
        state_key, belief_key, action_key, embedding_key: the keys read (the embedding under ``"next"``).

    Reads ``"action"``, ``("next", "encoded_latents")`` and, if present, the initial ``"state"`` /
    ``"belief"`` at ``t = 0`` (zeros otherwise). Writes the root ``"state"``/``"belief"`` each step
    starts from and, under ``"next"``, ``prior_mean``, ``prior_std``, ``belief``, ``posterior_mean``,
    ``posterior_std``, ``state``. A ``[T]`` input is treated as one sequence.

    Example:
        >>> from tensordict import TensorDict
        >>> scan = RSSMRollout(RSSMPrior(action_dim=1), RSSMPosterior(), burn_in=2)
        >>> td = TensorDict({"action": torch.zeros(3, 4, 1), "next": {"encoded_latents": torch.zeros(3, 4, 1024)}},
        ...                 [3, 4])
        >>> scan(td)["next", "posterior_std"].shape
        torch.Size([3, 4, 30])
        >>> scan(td[:, :2])
        Traceback (most recent call last):
        ...
        ValueError: RSSMRollout: the sequence has T=2 steps, but the model's burn-in is 2 steps ...
    """

    def __init__(self, prior: nn.Module, posterior: nn.Module, *, burn_in: int = 0, state_key: NestedKey = "state",
                 belief_key: NestedKey = "belief", action_key: NestedKey = "action",
                 embedding_key: NestedKey = "encoded_latents"):
        super().__init__()
        self.prior = _unwrap(prior, RSSMPrior, "prior")
        self.posterior = _unwrap(posterior, RSSMPosterior, "posterior")
        if isinstance(burn_in, bool) or not isinstance(burn_in, int) or burn_in < 0:
            raise ValueError(f"RSSMRollout: burn_in must be an int >= 0, got {burn_in!r}")
        self.burn_in = burn_in
        self.state_key, self.belief_key, self.action_key = state_key, belief_key, action_key
        self.in_keys = [action_key, ("next", embedding_key), state_key, belief_key]
        self.out_keys = [state_key, belief_key] + [("next", k) for k in (
            "prior_mean", "prior_std", belief_key, "posterior_mean", "posterior_std", state_key)]

    def check_length(self, steps: int) -> None:
        """Raise a ``ValueError`` when a sequence of ``steps`` steps is too short for the burn-in."""
        if steps <= self.burn_in:
            raise ValueError(
                f"RSSMRollout: the sequence has T={steps} steps, but the model's burn-in is {self.burn_in} steps "
                f"(they only warm up the state): sequences need at least {self.burn_in + 1} steps. Sample longer "
                f"slices (SliceSampler(slice_len=...)) or build the model with a smaller burn_in")

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if tensordict.batch_dims < 1:
            raise ValueError("RSSMRollout: expected a [B, T] (or [T]) sequence, got a TensorDict without batch dims")
        td = tensordict if tensordict.batch_dims >= 2 else tensordict.unsqueeze(0)
        steps = td.shape[-1]
        self.check_length(steps)
        action = td.get(self.action_key)
        embed = td.get(("next", self.in_keys[1][1]))
        lead = td.shape[:-1]
        p = next(self.prior.parameters())
        state = td.get(self.state_key, None)
        belief = td.get(self.belief_key, None)
        state = action.new_zeros(*lead, self.prior.state_dim, dtype=p.dtype) if state is None else state[..., 0, :]
        belief = action.new_zeros(*lead, self.prior.belief_dim, dtype=p.dtype) if belief is None \
            else belief[..., 0, :]
        cols = [[] for _ in range(8)]
        for t in range(steps):
            cols[0].append(state)
            cols[1].append(belief)
            prior_mean, prior_std, _, belief = self.prior(state, belief, action[..., t, :])
            post_mean, post_std, state = self.posterior(belief, embed[..., t, :])
            for c, v in zip(cols[2:], (prior_mean, prior_std, belief, post_mean, post_std, state)):
                c.append(v)
        stacked = [torch.stack(c, -2) for c in cols]
        td.set(self.state_key, stacked[0])
        td.set(self.belief_key, stacked[1])
        for key, value in zip(self.out_keys[2:], stacked[2:]):
            td.set(key, value)
        return tensordict if td is tensordict else td.squeeze(0)


class DreamerActorParams(nn.Module):
    """Turns ``2 * A`` features into Dreamer's Tanh-Normal parameters ``(loc, scale)``.

    ``loc = 5 tanh(x / 5)`` and ``scale = softplus(y + log(e^5 - 1)) + min_std``: the std starts near 5
    before the tanh, a broad initial policy (Hafner et al. 2020, appendix A, ``init_std=5``).

    Example:
        >>> loc, scale = DreamerActorParams()(torch.zeros(3, 4))
        >>> loc.shape, round(float(scale[0, 0]), 3)
        (torch.Size([3, 2]), 5.0)
    """

    def __init__(self, init_std: float = 5.0, min_std: float = 1e-4, mean_scale: float = 5.0):
        super().__init__()
        self.raw_init = math.log(math.expm1(init_std))
        self.min_std, self.mean_scale = min_std, mean_scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = x.chunk(2, -1)
        return self.mean_scale * torch.tanh(mean / self.mean_scale), F.softplus(raw + self.raw_init) + self.min_std


def dreamer_mlp(in_features: int, out_features: int = 1, *, num_cells: int = 400, depth: int = 3) -> MLP:
    """Dreamer's dense heads: ``depth`` ELU layers of ``num_cells`` (reward: 2, value: 3, actor: 4).

    Example:
        >>> dreamer_mlp(230, depth=2)(torch.randn(4, 200), torch.randn(4, 30)).shape
        torch.Size([4, 1])
    """
    return MLP(in_features=in_features, out_features=out_features, num_cells=num_cells, depth=depth,
               activation_class=nn.ELU, layer_class=OneDnnLinear)


def dreamer_actor(action_dim: int, in_features: int, *, in_keys=("state", "belief"), num_cells: int = 400,
                  depth: int = 4, low=-1.0, high=1.0) -> ProbabilisticActor:
    """Dreamer's actor: an ELU MLP to :class:`DreamerActorParams`, sampled from a :class:`TanhNormal`.

    It reads ``in_keys`` (the latent state) and writes ``"loc"``, ``"scale"`` and ``"action"`` (in
    ``[low, high]``). Run it under ``set_exploration_type(ExplorationType.RANDOM)`` to sample (the
    actor loss does); otherwise it acts with the squashed mean.

    Example:
        >>> from tensordict import TensorDict
        >>> actor = dreamer_actor(2, 230)
        >>> td = actor(TensorDict(state=torch.zeros(5, 30), belief=torch.zeros(5, 200), batch_size=[5]))
        >>> td["action"].shape
        torch.Size([5, 2])
    """
    net = nn.Sequential(dreamer_mlp(in_features, 2 * action_dim, num_cells=num_cells, depth=depth),
                        DreamerActorParams())
    module = TensorDictModule(_Cat(net), in_keys=list(in_keys), out_keys=["loc", "scale"])
    return ProbabilisticActor(module, in_keys=["loc", "scale"], distribution_class=TanhNormal,
                              distribution_kwargs={"low": low, "high": high})


class _Cat(nn.Module):
    """Concatenates its inputs on the last dim before ``net`` (a TensorDictModule passes one per key)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *xs: torch.Tensor):
        return self.net(torch.cat(xs, -1))


def dreamer_world_model(encoder: nn.Module, rssm_rollout: RSSMRollout, decoder: nn.Module, reward: nn.Module, *,
                        pixels_key: NestedKey = "pixels") -> TensorDictSequential:
    """The world model on a real ``[B, T]`` sequence: encode the next frames, scan the RSSM, decode, predict reward.

    Returns ``TensorDictSequential(encoder, rssm_rollout, decoder, reward)`` with the keys of the
    module docstring: ``("next", pixels_key) -> ("next", "encoded_latents")``; the scan; ``("next",
    "state"), ("next", "belief") -> ("next", "reco_pixels")`` and ``-> ("next", "reward")``.
    ``reward`` is any module ``(state, belief) -> [*B, 1]`` (e.g. :func:`dreamer_mlp`).
    """
    latent = [("next", rssm_rollout.state_key), ("next", rssm_rollout.belief_key)]
    return TensorDictSequential(
        TensorDictModule(encoder, in_keys=[("next", pixels_key)], out_keys=[("next", "encoded_latents")]),
        rssm_rollout,
        TensorDictModule(decoder, in_keys=latent, out_keys=[("next", "reco_pixels")]),
        TensorDictModule(reward, in_keys=latent, out_keys=[("next", "reward")]),
    )


def dreamer_imagination_env(prior: RSSMPrior, reward: nn.Module, action_spec, *, device=None):
    """A :class:`~rlbench.envs.WorldModelEnv` whose step is the RSSM prior: imagination for the actor loss.

    Observations ``"state"`` and ``"belief"``; the reward is ``reward(state, belief)`` of the next
    latent. The env is unlocked: ``rollout(H, actor, tensordict=start, auto_reset=False)`` imagines
    from any batch of start latents (e.g. every posterior state of a replay batch).

    Args:
        prior: the world model's :class:`RSSMPrior` (``rssm_rollout.prior``).
        reward: the reward head ``(state, belief) -> [*B, 1]``.
        action_spec: the action spec of one step (unbatched; e.g. ``env.action_spec_unbatched``).
        device: the env's device.

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.specs import Bounded
        >>> prior = RSSMPrior(action_dim=1)
        >>> env = dreamer_imagination_env(prior, dreamer_mlp(230, depth=2), Bounded(-1.0, 1.0, (1,)))
        >>> start = TensorDict(state=torch.zeros(6, 30), belief=torch.zeros(6, 200), batch_size=[6])
        >>> with torch.no_grad():
        ...     dream = env.rollout(4, dreamer_actor(1, 230), tensordict=start, auto_reset=False)
        >>> dream.shape, dream["next", "reward"].shape
        (torch.Size([6, 4]), torch.Size([6, 4, 1]))
    """
    from ..envs.model_based import WorldModelEnv
    from ..specs import Composite, Unbounded

    prior = _unwrap(prior, RSSMPrior, "prior")
    step = TensorDictModule(prior, in_keys=["state", "belief", "action"],
                            out_keys=["prior_mean", "prior_std", "state", "belief"])
    obs = Composite(state=Unbounded((prior.state_dim,)), belief=Unbounded((prior.belief_dim,)), shape=())
    env = WorldModelEnv(step, TensorDictModule(reward, in_keys=["state", "belief"], out_keys=["reward"]),
                        batch_size=[], observation_spec=obs, action_spec=action_spec, device=device)
    # what DreamerActorLoss needs to imagine without the env's per-step machinery (imagine_with_policy)
    env.dreamer_latent = (prior, reward)
    return env


def imagine_with_policy(prior: RSSMPrior, reward: nn.Module, policy, start: TensorDictBase,
                        horizon: int) -> TensorDictBase:
    """A policy's imagined ``[N, horizon]`` trajectories: what ``dreamer_imagination_env(...).rollout`` returns.

    The same steps as ``env.rollout(horizon, policy, tensordict=start, auto_reset=False)`` on
    :func:`dreamer_imagination_env`'s env (the same random draws in the same order, so the same numbers
    under the same seed), written as a plain loop over the prior: per step one ``policy`` call on a
    ``("state", "belief")`` TensorDict and one :class:`RSSMPrior` step, then the reward head once on all
    the imagined latents. Differentiable (nothing is detached). :class:`~rlbench.objectives.DreamerActorLoss`
    uses it when its ``model_env`` comes from :func:`dreamer_imagination_env`.

    Args:
        prior: the RSSM prior that steps the latent.
        reward: the reward head ``(state, belief) -> [*B, 1]``.
        policy: a TensorDict module reading ``"state"``/``"belief"`` and writing ``"action"`` (and whatever
            else it writes, e.g. ``"loc"``/``"scale"``, kept at the root like a rollout keeps it).
        start: ``[N]`` start latents ``"state"``, ``"belief"``.
        horizon: imagined steps.

    Returns:
        A ``[N, horizon]`` TensorDict: root ``"state"``, ``"belief"`` and the policy's outputs; under
        ``"next"``: ``"state"``, ``"belief"``, ``"reward"`` and all-False ``"done"``, ``"terminated"``,
        ``"truncated"``.

    Example:
        >>> from tensordict import TensorDict
        >>> prior, reward = RSSMPrior(action_dim=1), dreamer_mlp(230, depth=2)
        >>> start = TensorDict(state=torch.zeros(6, 30), belief=torch.zeros(6, 200), batch_size=[6])
        >>> dream = imagine_with_policy(prior, reward, dreamer_actor(1, 230), start, 4)
        >>> dream.shape, dream["next", "reward"].shape, dream["action"].shape
        (torch.Size([6, 4]), torch.Size([6, 4, 1]), torch.Size([6, 4, 1]))
    """
    from tensordict import TensorDict

    prior = _unwrap(prior, RSSMPrior, "prior")
    if start.batch_dims != 1:
        raise ValueError(f"imagine_with_policy: start must be a [N] TensorDict of start latents, got batch_size "
                         f"{list(start.batch_size)}")
    state, belief = start.get("state"), start.get("belief")
    batch, device = start.batch_size, start.device
    steps, states, beliefs = [], [], []
    for k in range(horizon):
        out = policy(TensorDict({"state": state, "belief": belief}, batch_size=batch, device=device))
        action = out.get("action")
        if k == 0 and (action.shape[-1:] != (prior.action_dim,) or action.shape[:-1] != batch):
            raise ValueError(f"imagine_with_policy: the policy's 'action' has shape {tuple(action.shape)}, the prior "
                             f"expects {(*batch, prior.action_dim)}")
        _, _, state, belief = prior(state, belief, action)
        steps.append(out)
        states.append(state)
        beliefs.append(belief)
    dream = torch.stack(steps, 1)
    next_state, next_belief = torch.stack(states, 1), torch.stack(beliefs, 1)
    flag = torch.zeros(*dream.batch_size, 1, dtype=torch.bool, device=state.device)
    dream.set("next", TensorDict({"state": next_state, "belief": next_belief,
                                  "reward": reward(next_state, next_belief), "done": flag,
                                  "terminated": flag.clone(), "truncated": flag.clone()},
                                 batch_size=dream.batch_size, device=device))
    return dream


@torch.no_grad()
def imagine(prior: RSSMPrior, decoder: nn.Module, state: torch.Tensor, belief: torch.Tensor,
            actions: torch.Tensor, reward: nn.Module | None = None) -> dict:
    """Open-loop imagination: roll the prior from ``(state, belief)`` ``[B, *]`` through ``actions`` ``[B, H, A]``.

    Returns ``{"state", "belief", "reco_pixels"[, "reward"]}`` stacked ``[B, H, ...]``: the latent after
    each action and its decoded frame (and predicted reward), without gradients. Sampled states (the
    prior's noise) are used, as when the actor imagines.

    Example:
        >>> prior, dec = RSSMPrior(action_dim=1), ObsDecoder()
        >>> out = imagine(prior, dec, torch.zeros(2, 30), torch.zeros(2, 200), torch.zeros(2, 3, 1))
        >>> out["reco_pixels"].shape
        torch.Size([2, 3, 3, 64, 64])
    """
    prior = _unwrap(prior, RSSMPrior, "prior")
    states, beliefs = [], []
    for k in range(actions.shape[-2]):
        _, _, state, belief = prior(state, belief, actions[..., k, :])
        states.append(state)
        beliefs.append(belief)
    out = {"state": torch.stack(states, -2), "belief": torch.stack(beliefs, -2)}
    out["reco_pixels"] = decoder(out["state"], out["belief"])
    if reward is not None:
        out["reward"] = reward(out["state"], out["belief"])
    return out
