"""n-step returns for off-policy value learning (DQN, Rainbow), computed on collected batches.

``nstep_return(td, n, gamma)`` rewrites a rollout-shaped batch ``[*B, T]`` so that every transition
``t`` becomes an n-step transition:

* ``("next", "reward")`` := ``sum_{k < m} gamma**k * r_{t+k}`` (the one-step reward is kept as
  ``("next", "original_reward")``);
* everything else under ``"next"`` (observation, done, terminated, truncated...) is taken from step
  ``t + m - 1``: the state to bootstrap from and whether that is allowed;
* ``"steps_to_next_obs"`` ``[*B, T, 1]`` := ``m``, so the loss discounts the bootstrap by
  ``gamma ** m``.

``m = min(n, steps to the end of the episode, steps to the end of the batch)``: a window never
crosses an episode end (a terminated window does not bootstrap; a truncated one bootstraps from
the true final observation), and windows cut by the end of the batch are shorter but still
exact bootstrapped targets. Apply it to each collected batch *before* extending the replay buffer
(the buffer then stores ready-made n-step transitions). :class:`MultiStep` is the same as a
callable object holding ``n`` and ``gamma`` (``MultiStep(gamma=0.99, n_steps=3)`` in TorchRL's spelling).
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey

__all__ = ["nstep_return", "MultiStep"]


def _time_shift(x: torch.Tensor, k: int, tdim: int) -> torch.Tensor:
    """``x`` shifted ``k`` steps back in time (``out[t] = x[t + k]``), zero-padded at the end."""
    if k == 0:
        return x
    out = torch.zeros_like(x)
    t = x.shape[tdim]
    if k < t:
        out.narrow(tdim, 0, t - k).copy_(x.narrow(tdim, k, t - k))
    return out


def _gather_time(x: torch.Tensor, idx: torch.Tensor, tdim: int) -> torch.Tensor:
    """``x[..., idx[t], ...]`` along time, ``idx`` shaped like the batch ``[*B, T]``."""
    index = idx.reshape(*idx.shape, *([1] * (x.ndim - idx.ndim))).expand_as(x) if x.ndim > idx.ndim else idx
    return x.gather(tdim, index)


def nstep_return(td: TensorDictBase, n: int, gamma: float, *, reward_key: NestedKey = "reward",
                 done_key: NestedKey = "done", steps_key: NestedKey = "steps_to_next_obs",
                 time_dim: int = -1) -> TensorDictBase:
    """Turns the one-step transitions of ``td`` (``[*B, T]``) into n-step transitions, in place.

    Args:
        td: a rollout / collector batch with ``"next"`` (time along batch dim ``time_dim``).
        n: number of steps (``n=1`` leaves rewards unchanged and writes ``steps_to_next_obs=1``).
        gamma: discount used inside the window.
        reward_key: the reward, read under ``"next"``.
        done_key: the done flag, read under ``"next"``.
        steps_key: where ``m`` is written (at the root).
        time_dim: the batch dim that is time (default: the last).

    Returns:
        ``td``.

    Example:
        >>> from tensordict import TensorDict
        >>> td = TensorDict({"observation": torch.arange(4.0)[:, None], "next": {
        ...     "observation": torch.arange(1.0, 5.0)[:, None], "reward": torch.ones(4, 1),
        ...     "done": torch.tensor([[False], [True], [False], [False]])}}, batch_size=[4])
        >>> td = nstep_return(td, n=3, gamma=0.5)
        >>> td["next", "reward"].squeeze(-1), td["steps_to_next_obs"].squeeze(-1)
        (tensor([1.5000, 1.0000, 1.5000, 1.0000]), tensor([2, 1, 2, 1]))
        >>> td["next", "observation"].squeeze(-1)  # bootstrap states: end of episode / of batch
        tensor([2., 2., 4., 4.])
    """
    if int(n) < 1:
        raise ValueError(f"nstep_return: n must be >= 1, got {n}")
    n = int(n)
    if td.batch_dims == 0:
        raise ValueError("nstep_return: the TensorDict needs a time dimension (batch_size [*B, T]), got []")
    nxt = td.get("next", None)
    if nxt is None:
        raise KeyError("nstep_return: the TensorDict has no 'next' entry (a rollout/collector batch has one)")
    tdim = time_dim % td.batch_dims
    reward = nxt.get(reward_key, None)
    done = nxt.get(done_key, None)
    if reward is None or done is None:
        missing = reward_key if reward is None else done_key
        raise KeyError(f"nstep_return: no ('next', {missing!r}) entry; pass reward_key=/done_key= to name it")
    bshape = td.batch_size
    T = bshape[tdim]
    done_b = done.reshape(*bshape, -1).any(-1)  # [*B, T]
    r = reward.reshape(*bshape, -1)  # [*B, T, R]; R = 1 usually
    gamma = float(gamma)

    total = torch.zeros_like(r)
    m = torch.zeros(bshape, dtype=torch.int64, device=done.device)
    alive = torch.ones(bshape, dtype=torch.bool, device=done.device)
    steps = torch.arange(T, device=done.device).view(*([1] * tdim), T, *([1] * (len(bshape) - tdim - 1)))
    # a loop over the n window offsets (n is small), never over time
    for k in range(n):
        valid = alive & (steps + k < T)
        total += (gamma ** k) * _time_shift(r, k, tdim) * valid.unsqueeze(-1).to(r.dtype)
        m += valid.to(torch.int64)
        alive = valid & ~_time_shift(done_b, k, tdim)
    last = steps + m - 1  # index of the step whose "next" is the bootstrap state
    new_next = nxt.exclude(reward_key).apply(lambda x: _gather_time(x, last, tdim), batch_size=bshape)
    new_next.set(reward_key, total.reshape(reward.shape))
    new_next.set("original_reward", reward)
    td.set("next", new_next)
    td.set(steps_key, m.unsqueeze(-1))
    return td


def _number(x):
    """A 1-element tensor as a Python number (anything else as it is)."""
    return x.item() if isinstance(x, torch.Tensor) and x.numel() == 1 else x


def _is_steps(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and float(x).is_integer() and x >= 1


def _is_discount(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and 0.0 <= x <= 1.0


class MultiStep:
    """``nstep_return`` with fixed ``n`` and ``gamma``, to call on each collected batch.

    Args:
        n: number of steps (>= 1). ``n_steps`` is TorchRL's name for it; pass one of the two.
        gamma: discount inside the window, in ``[0, 1]``.
        n_steps: TorchRL's spelling of ``n``.
        **keys: ``reward_key``, ``done_key``, ``steps_key``, ``time_dim`` of :func:`nstep_return`.

    TorchRL's argument order, ``MultiStep(gamma, n_steps)``, works too: ``MultiStep(0.99, 3)`` and
    ``MultiStep(0.99, n_steps=3)`` are ``MultiStep(n=3, gamma=0.99)``. Two positional numbers are
    read in rlbench's order ``(n, gamma)`` unless only TorchRL's order makes sense (``n`` not a
    whole number >= 1 but a discount, ``gamma`` a whole number >= 1); the one pair that fits both
    orders, ``(1, 1)``, means the same in both.

    Example:
        >>> from tensordict import TensorDict
        >>> ms = MultiStep(n=2, gamma=0.9)
        >>> td = TensorDict({"next": {"reward": torch.ones(3, 1), "done": torch.zeros(3, 1, dtype=torch.bool)}},
        ...                 batch_size=[3])
        >>> ms(td)["next", "reward"].squeeze(-1)
        tensor([1.9000, 1.9000, 1.0000])
        >>> MultiStep(gamma=0.9, n_steps=2), MultiStep(0.9, 2)  # TorchRL's spellings
        (MultiStep(n=2, gamma=0.9), MultiStep(n=2, gamma=0.9))
    """

    def __init__(self, n: int | None = None, gamma: float | None = None, *, n_steps: int | None = None, **keys):
        n, gamma, n_steps = _number(n), _number(gamma), _number(n_steps)
        if n_steps is not None:
            if n is not None and gamma is not None:
                raise TypeError(f"MultiStep: got both n={n!r} and n_steps={n_steps!r} (n_steps is TorchRL's name "
                                f"for n): pass one")
            if n is not None:  # MultiStep(0.99, n_steps=3): TorchRL's first positional argument is gamma
                gamma = n
            n = n_steps
        elif _is_steps(gamma) and _is_discount(n) and not (_is_steps(n) and _is_discount(gamma)):
            n, gamma = gamma, n  # TorchRL's positional order MultiStep(gamma, n_steps)
        if n is None or gamma is None:
            raise TypeError("MultiStep: pass n (or n_steps) and gamma, e.g. MultiStep(n=3, gamma=0.99)")
        if not _is_steps(n):
            raise ValueError(f"MultiStep: n must be >= 1 (a whole number of steps), got {n}")
        if not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"MultiStep: gamma must be in [0, 1], got {gamma}")
        self.n, self.gamma, self.keys = int(n), float(gamma), keys

    @property
    def n_steps(self) -> int:
        """TorchRL's name for :attr:`n`."""
        return self.n

    def __call__(self, td: TensorDictBase) -> TensorDictBase:
        return nstep_return(td, self.n, self.gamma, **self.keys)

    def __repr__(self) -> str:
        return f"MultiStep(n={self.n}, gamma={self.gamma})"
