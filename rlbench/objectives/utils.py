"""Target-network updaters and small helpers shared by the losses.

* :class:`SoftUpdate` -- Polyak averaging ``target <- (1 - tau) * target + tau * online`` after every
  optimizer step (DDPG, TD3, SAC).
* :class:`HardUpdate` -- copy online into target every ``value_network_update_interval`` steps (DQN).
* :func:`distance_loss` -- the element-wise regression losses used for critics.
* :func:`hold_out_params` -- run a network with its parameters frozen (gradients reach the inputs
  only), e.g. the critic inside an actor loss.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from tensordict import from_module
from torch import nn

__all__ = ["SoftUpdate", "HardUpdate", "TargetNetUpdater", "distance_loss", "hold_out_params"]


class TargetNetUpdater:
    """Common part of :class:`SoftUpdate` and :class:`HardUpdate`: pairs online and target params.

    Args:
        loss: a :class:`~rlbench.objectives.common.LossModule` with target parameters.
        networks: names of the networks to update (default: every network with a target).
    """

    def __init__(self, loss, networks: list[str] | None = None):
        names = list(loss.target_names) if networks is None else list(networks)
        if not names:
            raise ValueError(
                f"{type(self).__name__}: {type(loss).__name__} has no target parameters to update "
                "(was it built with delay_value=False / create_target_params=False?)"
            )
        self.loss = loss
        self.names = names
        self._pairs = []
        for n in names:
            online = loss.network_params(n)
            target = loss.network_params(n, target=True)
            self._pairs.append((online, target))
        self.initialized = False

    def init_(self) -> None:
        """Copies the online parameters into the targets (exactly), e.g. after loading weights."""
        with torch.no_grad():
            for online, target in self._pairs:
                target.data.update_(online.data)
        self.initialized = True

    def step(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class SoftUpdate(TargetNetUpdater):
    """Polyak averaging of target parameters: ``target <- (1 - tau) * target + tau * online``.

    Call :meth:`step` after each optimizer step. ``eps = 1 - tau`` may be given instead of ``tau``.

    Args:
        loss: a loss with target parameters.
        tau: the interpolation weight of the online parameters, in ``(0, 1]``.
        eps: ``1 - tau`` (TorchRL's name); give one of ``tau`` / ``eps``.
        networks: names of the networks to update (default: all with targets).

    Example:
        >>> from tensordict.nn import TensorDictModule
        >>> from rlbench.objectives import LossModule
        >>> net = TensorDictModule(torch.nn.Linear(4, 2), ["observation"], ["action_value"])
        >>> loss = LossModule()
        >>> loss.convert_to_functional(net, "value_network", create_target_params=True)
        >>> updater = SoftUpdate(loss, tau=0.5)
        >>> with torch.no_grad():
        ...     _ = net.module.bias.fill_(1.0)
        ...     _ = loss.target_value_network_params["module", "bias"].fill_(0.0)
        >>> updater.step()
        >>> loss.target_value_network_params["module", "bias"]
        tensor([0.5000, 0.5000])
    """

    def __init__(self, loss, tau: float | None = None, *, eps: float | None = None, networks=None):
        if (tau is None) == (eps is None):
            raise ValueError("SoftUpdate: give exactly one of tau (weight of the online params) or eps = 1 - tau")
        tau = 1.0 - eps if tau is None else tau
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"SoftUpdate: tau must be in (0, 1], got {tau}")
        super().__init__(loss, networks)
        self.tau = float(tau)

    @torch.no_grad()
    def step(self) -> None:
        """One Polyak step on every target (a fused ``lerp_`` over all leaves)."""
        for online, target in self._pairs:
            t_leaves = list(target.data.values(True, True))
            o_leaves = list(online.data.values(True, True))
            floats = [(t, o) for t, o in zip(t_leaves, o_leaves) if t.is_floating_point()]
            if floats:
                torch._foreach_lerp_([t for t, _ in floats], [o for _, o in floats], self.tau)
            for t, o in zip(t_leaves, o_leaves):  # integer buffers (counters) are copied
                if not t.is_floating_point():
                    t.copy_(o)


class HardUpdate(TargetNetUpdater):
    """Copies online parameters into the targets every ``value_network_update_interval`` calls.

    Args:
        loss: a loss with target parameters.
        value_network_update_interval: number of :meth:`step` calls between copies.
        networks: names of the networks to update (default: all with targets).

    Example:
        >>> from tensordict.nn import TensorDictModule
        >>> from rlbench.objectives import LossModule
        >>> net = TensorDictModule(torch.nn.Linear(4, 2), ["observation"], ["action_value"])
        >>> loss = LossModule()
        >>> loss.convert_to_functional(net, "value_network", create_target_params=True)
        >>> updater = HardUpdate(loss, value_network_update_interval=2)
        >>> with torch.no_grad():
        ...     _ = net.module.bias.fill_(3.0)
        >>> updater.step(); bool((loss.target_value_network_params["module", "bias"] == 3).all())
        False
        >>> updater.step(); bool((loss.target_value_network_params["module", "bias"] == 3).all())
        True
    """

    def __init__(self, loss, value_network_update_interval: int = 1000, *, networks=None):
        if int(value_network_update_interval) < 1:
            raise ValueError(
                f"HardUpdate: value_network_update_interval must be >= 1, got {value_network_update_interval}"
            )
        super().__init__(loss, networks)
        self.value_network_update_interval = int(value_network_update_interval)
        self.counter = 0

    def step(self) -> None:
        """Counts one optimizer step; copies the parameters when the interval is reached."""
        self.counter += 1
        if self.counter >= self.value_network_update_interval:
            self.counter = 0
            self.init_()


def distance_loss(a: torch.Tensor, b: torch.Tensor, loss_function: str = "l2") -> torch.Tensor:
    """Element-wise distance between ``a`` and ``b`` (no reduction).

    ``"l2"``: squared error ``(a - b)^2``; ``"l1"``: ``|a - b|``; ``"smooth_l1"``: Huber with
    ``beta = 1``.

    Example:
        >>> distance_loss(torch.tensor([0.0, 3.0]), torch.tensor([1.0, 0.0]), "smooth_l1")
        tensor([0.5000, 2.5000])
    """
    if a.shape != b.shape:
        # broadcasting silently here is the classic [B] vs [B, 1] -> [B, B] bug: refuse it
        raise ValueError(f"distance_loss: shapes differ ({tuple(a.shape)} vs {tuple(b.shape)}); expected equal shapes")
    if loss_function == "l2":
        return (a - b).pow(2)
    if loss_function == "l1":
        return (a - b).abs()
    if loss_function == "smooth_l1":
        return F.smooth_l1_loss(a, b, reduction="none")
    raise ValueError(f"distance_loss: unknown loss_function {loss_function!r}; expected 'l2', 'l1' or 'smooth_l1'")


@contextlib.contextmanager
def hold_out_params(network: nn.Module):
    """Within the block, ``network`` runs with detached copies of its parameters (views, no copy).

    Gradients still flow to the network's inputs but none reach its parameters: the critic in an
    actor loss (DDPG, SAC) is used this way.

    Example:
        >>> lin = torch.nn.Linear(2, 1)
        >>> x = torch.ones(1, 2, requires_grad=True)
        >>> with hold_out_params(lin):
        ...     lin(x).sum().backward()
        >>> lin.weight.grad is None, x.grad is not None
        (True, True)
    """
    params = from_module(network).detach()
    with params.to_module(network, preserve_module_state=False):
        yield network
