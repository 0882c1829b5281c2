"""Distributional (C51) Q-value heads (Bellemare et al. 2017, "A Distributional Perspective on RL").

The network outputs, per action, logits over a fixed ``support`` of ``n_atoms`` return values.
Layout (TorchRL's): ``"action_value"`` is ``[*B, n_atoms, n_actions]`` -- atoms before actions, so
an ``MLP(out_features=(n_atoms, n_actions))`` produces it directly, and so does
:class:`DistributionalDuelingHead` (Rainbow's dueling head over atoms).
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase, TensorDictSequential
from torch import nn

from .actors import QValueModule, _as_keys, _select_subsequence
from .networks import MLP

__all__ = ["DistributionalQValueModule", "DistributionalQValueActor", "DistributionalDuelingHead"]


def _support(support) -> torch.Tensor:
    support = torch.as_tensor(support, dtype=torch.get_default_dtype())
    if support.ndim != 1 or support.numel() < 2:
        raise ValueError(f"support must be a 1-d tensor of at least 2 atoms, got shape {tuple(support.shape)}")
    if not bool((support[1:] > support[:-1]).all()):
        raise ValueError("support must be strictly increasing (e.g. torch.linspace(v_min, v_max, n_atoms))")
    return support


class DistributionalDuelingHead(nn.Module):
    """Dueling over return atoms (Rainbow, Hessel et al. 2018): ``logits[z, a] = V[z] + A[z, a] - mean_a A[z, a]``.

    The C51 counterpart of :class:`~rlbench.modules.DuelingHead`: a value stream writes ``n_atoms``
    logits, an advantage stream ``n_atoms x out_features``, and the advantages are centred over the
    actions separately for each atom. The output is ``[*B, n_atoms, out_features]`` (atoms before
    actions), what :class:`DistributionalQValueActor` reads.

    Args:
        out_features: the number of actions.
        n_atoms: atoms of the return support.
        in_features: feature size (``None``: lazy).
        num_cells: hidden widths of each stream (default ``[64]``; ``[]``: one layer per stream).
        activation_class: the non-linearity of both streams.
        layer_class: the linear layer (:class:`~rlbench.modules.NoisyLinear` for Rainbow's noisy head; needs
            ``in_features``).
        device: where the parameters live.

    Example:
        >>> head = DistributionalDuelingHead(out_features=2, n_atoms=51, in_features=8, num_cells=[16])
        >>> head(torch.randn(5, 8)).shape
        torch.Size([5, 51, 2])
        >>> from rlbench.specs import Categorical
        >>> actor = DistributionalQValueActor(head, torch.linspace(0, 100, 51), spec=Categorical(2))
    """

    def __init__(self, out_features: int, n_atoms: int, in_features: int | None = None, num_cells=None,
                 activation_class=nn.ReLU, layer_class=nn.Linear, device=None):
        super().__init__()
        cells = [64] if num_cells is None else list(num_cells)
        kw = dict(in_features=in_features, num_cells=cells, activation_class=activation_class,
                  layer_class=layer_class, device=device)
        self.value = MLP(out_features=(n_atoms, 1), **kw)
        self.advantage = MLP(out_features=(n_atoms, out_features), **kw)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        adv = self.advantage(features)
        return self.value(features) + adv - adv.mean(-1, keepdim=True)


class DistributionalQValueModule(QValueModule):
    """Greedy action from return distributions over ``support`` atoms.

    Reads logits ``"action_value"`` ``[*B, n_atoms, n_actions]`` and writes back their log-softmax
    over the atoms (the log-probabilities the C51 loss needs), ``"action"`` = argmax of the expected
    return ``sum_i p_i(a) z_i``, and ``"chosen_action_value"`` ``[*B, 1]``, that expected return.

    Args:
        action_space: ``"one_hot"`` or ``"categorical"`` (taken from ``spec`` when omitted).
        support: the atoms ``z_i``, strictly increasing (e.g. ``torch.linspace(-10, 10, 51)``).
        spec: the action spec.
        action_value_key, action_key, chosen_action_value_key, action_mask_key: as :class:`QValueModule`.

    Example:
        >>> from tensordict import TensorDict
        >>> q = DistributionalQValueModule("categorical", support=torch.tensor([0.0, 1.0]))
        >>> logits = torch.tensor([[[0.0, 2.0], [0.0, -2.0]]])  # action 0: 50/50, action 1: mostly 0
        >>> td = q(TensorDict(action_value=logits, batch_size=[1]))
        >>> td["action"], td["chosen_action_value"]
        (tensor([0]), tensor([[0.5000]]))
    """

    def __init__(self, action_space: str | None = None, support=None, spec=None, **kwargs):
        super().__init__(action_space, spec, **kwargs)
        if support is None:
            raise ValueError("DistributionalQValueModule: support (the return atoms) is required")
        self.register_buffer("support", _support(support))
        self.out_keys = [self.action_key, self.action_value_key, self.chosen_action_value_key]

    def expected_value(self, log_probs: torch.Tensor) -> torch.Tensor:
        """``[*B, n_atoms, n_actions]`` log-probabilities to expected returns ``[*B, n_actions]``."""
        return (log_probs.exp() * self.support.to(log_probs)[:, None]).sum(-2)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        logits = tensordict.get(self.action_value_key)
        n_atoms = self.support.numel()
        if logits.ndim < 2 or logits.shape[-2] != n_atoms:
            raise ValueError(
                f"DistributionalQValueModule: expected {self.action_value_key!r} of shape [*B, n_atoms={n_atoms}, "
                f"n_actions], got {tuple(logits.shape)} (atoms go before actions)"
            )
        log_probs = torch.log_softmax(logits, -2)
        tensordict.set(self.action_value_key, log_probs)
        values = self.expected_value(log_probs)
        return self._write(tensordict, values, self._values_for_argmax(tensordict, values))


class DistributionalQValueActor(TensorDictSequential):
    """A network writing atom logits followed by :class:`DistributionalQValueModule`.

    Args:
        module: maps ``in_keys`` to logits ``[*B, n_atoms, n_actions]`` (e.g.
            ``MLP(out_features=(n_atoms, n_actions))``).
        support: the return atoms.
        in_keys: what the network reads (default ``["observation"]``).
        spec, action_space, action_value_key, action_mask_key: as :class:`QValueActor`.

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.modules import MLP
        >>> from rlbench.specs import Categorical
        >>> support = torch.linspace(-10, 10, 51)
        >>> actor = DistributionalQValueActor(MLP(out_features=(51, 2), num_cells=[16]), support, spec=Categorical(2))
        >>> td = actor(TensorDict(observation=torch.randn(3, 4), batch_size=[3]))
        >>> td["action_value"].shape, td["action"].shape
        (torch.Size([3, 51, 2]), torch.Size([3]))
    """

    def __init__(self, module: nn.Module, support, in_keys=None, spec=None, action_space: str | None = None, *,
                 action_value_key="action_value", action_mask_key=None):
        in_keys = _as_keys(in_keys, ["observation"])
        if not isinstance(module, TensorDictModuleBase):
            module = TensorDictModule(module, in_keys=in_keys, out_keys=[action_value_key])
        head = DistributionalQValueModule(action_space, support, spec, action_value_key=action_value_key,
                                          action_mask_key=action_mask_key)
        super().__init__(module, head)
        self.spec = spec
        self.action_space = head.action_space

    @property
    def support(self) -> torch.Tensor:
        return self.module[1].support

    def select_subsequence(self, in_keys=None, out_keys=None) -> TensorDictSequential:
        """The modules needed to go from ``in_keys`` to ``out_keys`` (a plain ``TensorDictSequential``)."""
        return _select_subsequence(self, in_keys, out_keys)
