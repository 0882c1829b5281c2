"""Return and advantage estimators as plain tensor functions, vectorized over batch and time.

Shapes: every input is ``[*batch, T, 1]`` (the data contract's trailing reward/done dim; time is
``time_dim=-2``, the default) or, with ``time_dim=-1``, ``[*batch, T]``. A 1-D input is read as
``[T]``. All inputs must share one shape; ``gamma``/``lmbda`` are Python numbers, 1-element tensors
or tensors broadcastable to that shape (a per-step discount).

Episode ends (``done = terminated | truncated``):

* ``terminated``: the next state is terminal -- its value is 0, nothing is bootstrapped.
* truncated (``done & ~terminated``): the episode was cut (time limit): the target bootstraps from
  ``next_state_value``, which at a done step is the value of the true final observation.
* either way the recursion (lambda-return, GAE, Monte-Carlo sum) does **not** run across the end:
  the next step belongs to another episode. The last step of the data is treated like a truncation.

Every multi-step estimator is a backward linear recurrence ``x_t = a_t + c_t * x_{t+1}`` with
``x_T = 0``. :func:`reverse_linear_recurrence` solves it without a Python loop over ``T``; see its
docstring for how. (Speed, ``benchmarks/bench_value_estimators.py``, one thread: ~300x a
per-step loop at ``[8, 2048]``; at such sizes the cost is the fixed overhead of a few dozen tensor
ops, ~15-20x one ``torch.cumsum`` over the same data.)

**TorchRL's names.** TorchRL has a per-step and a vectorized (``vec_*``) form of each estimator;
rlbench has one form, already vectorized, so ``vec_generalized_advantage_estimate``,
``vec_td_lambda_return_estimate``, ``vec_td_lambda_advantage_estimate``,
``vec_td1_return_estimate``, ``vec_td1_advantage_estimate`` and the ``td1`` / ``td_lambda``
advantages are thin wrappers with TorchRL's positional order ``(gamma[, lmbda], [state_value,]
next_state_value, reward, done, terminated=None, ...)``; every function here takes ``done`` and
``terminated`` positionally in that order. A tensor ``gamma`` is applied step by step, the discount
of a step ``k`` ahead being the product of the gammas in between (TorchRL's ``rolling_gamma=True``,
its default); ``rolling_gamma=False`` with a per-step gamma is refused.

:func:`vtrace_advantage_estimate` is IMPALA's off-policy target (Espeholt et al., 2018), the same
kind of recurrence with per-step coefficients ``gamma * min(c_bar, pi / mu)``.
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "reverse_linear_recurrence",
    "td0_return_estimate",
    "td0_advantage_estimate",
    "td1_return_estimate",
    "td1_advantage_estimate",
    "td_lambda_return_estimate",
    "td_lambda_advantage_estimate",
    "generalized_advantage_estimate",
    "vec_td1_return_estimate",
    "vec_td1_advantage_estimate",
    "vec_td_lambda_return_estimate",
    "vec_td_lambda_advantage_estimate",
    "vec_generalized_advantage_estimate",
    "vtrace_advantage_estimate",
]

_CHUNK = 64  # time steps per block of the constant-coefficient solver
_GCHUNK = 8  # block size of the general solver (a loop over the L offsets of a block: ~2 L ops per level)


# --------------------------------------------------------------------------- recurrence solvers
_CACHE: dict = {}  # small constant tensors (geometric matrices, power tables) per kappa/size/dtype/device


def _cached(kind: str, kappa: float, length: int, dtype, device, build):
    key = (kind, kappa, length, dtype, str(device))
    val = _CACHE.get(key)
    if val is None:
        if len(_CACHE) > 256:  # many distinct gammas (e.g. a sweep): keep the cache bounded
            _CACHE.clear()
        val = _CACHE[key] = build()
    return val


def _geometric_matrix(kappa: float, length: int, dtype, device) -> torch.Tensor:
    """``K.T`` where ``K[i, j] = kappa ** (j - i)`` for ``j >= i``, else 0 (float64 powers, cached)."""

    def build():
        i = torch.arange(length, dtype=torch.float64, device=device)
        diff = i[None, :] - i[:, None]
        k = torch.where(diff >= 0, torch.tensor(kappa, dtype=torch.float64, device=device).pow(diff.clamp(min=0)), 0.0)
        return k.T.contiguous().to(dtype)

    return _cached("K", kappa, length, dtype, device, build)


def _powers(kappa: float, length: int, dtype, device) -> torch.Tensor:
    """``[kappa ** 0, ..., kappa ** length]`` (float64 powers, cached)."""

    def build():
        n = torch.arange(length + 1, dtype=torch.float64, device=device)
        return torch.tensor(kappa, dtype=torch.float64, device=device).pow(n).to(dtype)

    return _cached("P", kappa, length, dtype, device, build)


def _filter_const(a: torch.Tensor, kappa: float) -> torch.Tensor:
    """Solves ``x_t = a_t + kappa * x_{t+1}`` (``x_T = 0``) over the last dim of a 2-D ``a``.

    Blocks of ``L`` steps are solved at once by one matrix product with the geometric matrix
    ``K`` (``local = a @ K.T``); the value at each block start then obeys the same recurrence
    across blocks with coefficient ``kappa ** L``, solved recursively; each step finally adds
    ``kappa ** (L - i) * x(start of next block)``. Only powers of ``kappa`` are used (no
    divisions), so small or zero ``kappa`` is exact, and far contributions that underflow are
    truly negligible.
    """
    n, t = a.shape
    if t <= _CHUNK:
        return a @ _geometric_matrix(kappa, t, a.dtype, a.device)
    L = _CHUNK
    nc = -(-t // L)
    pad = nc * L - t
    if pad:
        a = torch.nn.functional.pad(a, (0, pad))
    local = (a.view(n * nc, L) @ _geometric_matrix(kappa, L, a.dtype, a.device)).view(n, nc, L)
    starts = _filter_const(local[:, :, 0], kappa ** L)  # x at each block start
    g = _cached("G", kappa, L, a.dtype, a.device, lambda: _powers(kappa, L, a.dtype, a.device).flip(0)[:L].clone())
    local = _add_carry(local, starts[:, 1:].unsqueeze(-1), g)
    out = local.reshape(n, nc * L)
    return out[:, :t] if pad else out


def _add_carry(local: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``local`` with ``x * y`` added to every block but the last (``[n, blocks, L]``).

    In place when no gradient is recorded (the fast path); otherwise out of place, since the block
    starts were computed from views of ``local`` that autograd saved (a differentiable estimator).
    """
    if not (torch.is_grad_enabled() and (local.requires_grad or x.requires_grad or y.requires_grad)):
        local[:, :-1].addcmul_(x, y)
        return local
    return torch.cat([torch.addcmul(local[:, :-1], x, y), local[:, -1:]], 1)


def _solve_const(a: torch.Tensor, kappa: float, cut: torch.Tensor | None) -> torch.Tensor:
    """``x_t = a_t + kappa * (1 - cut_t) * x_{t+1}`` for 2-D ``a`` and bool ``cut``.

    Cuts are turned into a sparse correction of the input, so that one more uncut solve gives
    the answer. With ``x_full`` the uncut solution, the part of ``x_full[t]`` that leaked across
    the first cut ``e >= t`` is ``kappa ** (e + 1 - t) * x_full[e + 1]``: the uncut solution of
    an impulse ``w_e = kappa * x_full[e + 1]`` placed at ``e``, cancelled before the previous cut
    ``p`` of the row by an impulse ``-kappa ** (e - p) * w_e`` at ``p``. So
    ``x = solve(a - D)`` with ``D`` holding those two impulses per cut: a handful of ops on the
    (few) cut positions instead of index arithmetic over every step.
    """
    if kappa == 0.0:
        return a.clone()
    full = _filter_const(a, kappa)
    if cut is None:
        return full
    n, t = a.shape
    idx = cut.reshape(-1).nonzero().squeeze(-1)  # flat indices of the cuts, in row-major order
    if idx.numel() == 0:
        return full
    flat = full.reshape(-1)
    row_start = idx - idx.remainder(t)
    after = idx + 1
    last = after - row_start == t  # a cut at the last step has nothing after it
    w = flat[after.clamp_(max=n * t - 1)].masked_fill_(last, 0.0).mul_(kappa)
    d = torch.zeros(n * t, dtype=a.dtype, device=a.device)
    d[idx] = w
    prev = torch.nn.functional.pad(idx[:-1], (1, 0), value=-1)
    same_row = prev >= row_start
    dist = (idx - prev).clamp_(max=t)
    cancel = _powers(kappa, t, a.dtype, a.device)[dist].mul_(w).masked_fill_(~same_row, 0.0)
    d.index_add_(0, prev.clamp_(min=0), cancel.neg_())  # masked entries add 0 at index 0
    return _filter_const(a - d.view(n, t), kappa)


def _solve_general(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``x_t = a_t + c_t * x_{t+1}`` for 2-D ``a``, ``c`` (any per-step coefficients).

    Blocks of ``L`` steps are solved side by side: a loop over the ``L`` offsets inside a block
    (never over ``T``) runs the recursion for every block at once, with a zero carry, and keeps
    ``g_i = prod_{m=i}^{L-1} c_m``, the weight of the value at the next block start. The block
    starts obey the same kind of recurrence (inputs: local values at offset 0, coefficients
    ``g_0``), solved recursively; one fused multiply-add adds each block's carry. Only products,
    no divisions, so zero or tiny coefficients are exact. Cost: about ``2 L log_L(T)`` ops.
    """
    n, t = a.shape
    L = _GCHUNK
    if t <= L:
        x = a[:, -1]
        outs = [x]
        for i in range(t - 2, -1, -1):
            x = torch.addcmul(a[:, i], c[:, i], x)
            outs.append(x)
        return torch.stack(outs[::-1], -1)
    nc = -(-t // L)
    pad = nc * L - t
    if pad:
        a = torch.nn.functional.pad(a, (0, pad))
        c = torch.nn.functional.pad(c, (0, pad))
    ab = a.view(n, nc, L)
    cb = c.view(n, nc, L)
    x, g = ab[..., L - 1], cb[..., L - 1]
    xs, gs = [x], [g]
    for i in range(L - 2, -1, -1):
        x = torch.addcmul(ab[..., i], cb[..., i], x)
        g = cb[..., i] * g
        xs.append(x)
        gs.append(g)
    local = torch.stack(xs[::-1], -1)  # [n, nc, L]
    carry_w = torch.stack(gs[::-1], -1)
    starts = _solve_general(local[..., 0], carry_w[..., 0])  # x at each block start
    local = _add_carry(local, carry_w[:, :-1], starts[:, 1:].unsqueeze(-1))
    out = local.reshape(n, nc * L)
    return out[:, :t] if pad else out


def _as_float(x) -> float | None:
    """A Python float if ``x`` is a number or a 1-element tensor, else ``None``."""
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return float(x.item())
    return None


def reverse_linear_recurrence(a: torch.Tensor, c, *, cut: torch.Tensor | None = None,
                              time_dim: int = -1) -> torch.Tensor:
    """Solves ``x_t = a_t + c_t * (1 - cut_t) * x_{t+1}`` backwards in time, ``x_T = 0``.

    Vectorized: no Python loop over time. A constant ``c`` (number or 1-element tensor) takes a
    blocked geometric-matrix solver (a few matmuls and elementwise passes; cuts become a sparse
    input correction); a per-step tensor ``c`` takes a blocked solver that loops over the offsets
    inside a block of 8 steps for all blocks at once, recursively over blocks. Neither divides by
    running products, so zero or tiny coefficients are exact.

    Args:
        a: inputs, time along ``time_dim``.
        c: coefficients: a number, a 1-element tensor, or a tensor broadcastable to ``a``.
        cut: optional bool tensor shaped like ``a``: where true, the recursion stops at that step.
        time_dim: the time dimension of ``a``.

    Example:
        >>> a = torch.tensor([1.0, 1.0, 1.0, 1.0])
        >>> reverse_linear_recurrence(a, 0.5)
        tensor([1.8750, 1.7500, 1.5000, 1.0000])
        >>> reverse_linear_recurrence(a, 0.5, cut=torch.tensor([False, True, False, False]))
        tensor([1.5000, 1.0000, 1.5000, 1.0000])
    """
    if a.ndim == 0:
        raise ValueError("reverse_linear_recurrence: `a` needs a time dimension, got a 0-d tensor")
    x = a.movedim(time_dim, -1)
    shape = x.shape
    flat = x.reshape(-1, shape[-1])
    if not flat.is_floating_point():
        raise TypeError(f"reverse_linear_recurrence: expected a floating-point tensor, got {a.dtype}")
    kappa = _as_float(c)
    fcut = None
    if cut is not None:
        fcut = cut.to(torch.bool).expand_as(a).movedim(time_dim, -1).reshape(-1, shape[-1])
    if kappa is not None and kappa >= 0.0 and math.isfinite(kappa):
        out = _solve_const(flat.contiguous(), kappa, fcut)
    else:
        cc = torch.as_tensor(c, dtype=a.dtype, device=a.device).expand_as(a).movedim(time_dim, -1)
        cc = cc.reshape(-1, shape[-1])
        if fcut is not None:
            cc = cc.masked_fill(fcut, 0.0)
        out = _solve_general(flat.contiguous(), cc.contiguous())
    return out.reshape(shape).movedim(-1, time_dim)


# --------------------------------------------------------------------------- input checking
def _prepare(name: str, time_dim: int, **tensors):
    """Checks shapes, turns flags into bools; returns the time_dim to use."""
    ref_name, ref = next((k, v) for k, v in tensors.items() if v is not None)
    for k, v in tensors.items():
        if v is not None and v.shape != ref.shape:
            raise ValueError(
                f"{name}: {k} has shape {tuple(v.shape)} but {ref_name} has {tuple(ref.shape)}; all inputs must "
                "share one shape ([*batch, T, 1] with time_dim=-2, or [*batch, T] with time_dim=-1)"
            )
    if ref.ndim == 0:
        raise ValueError(f"{name}: inputs need a time dimension, got 0-d tensors")
    if ref.ndim == 1:
        return -1
    if not -ref.ndim <= time_dim < ref.ndim:
        raise ValueError(f"{name}: time_dim={time_dim} is out of range for inputs of shape {tuple(ref.shape)}")
    return time_dim


def _flags(done, terminated, like):
    if done is None and terminated is None:
        z = torch.zeros(like.shape, dtype=torch.bool, device=like.device)
        return z, z
    if terminated is None:
        # without a terminated flag every end is a true termination (the cautious reading)
        terminated = done
    if done is None:
        done = terminated
    done = done.to(torch.bool)
    terminated = terminated.to(torch.bool)
    return done | terminated, terminated


def _last_step_mask(like: torch.Tensor, time_dim: int) -> torch.Tensor:
    """True at the last time step (the end of the data acts like a truncation)."""
    t = like.shape[time_dim]
    shape = [1] * like.ndim
    shape[time_dim] = t
    m = torch.zeros(t, dtype=torch.bool, device=like.device)
    m[-1] = True
    return m.view(shape)


# --------------------------------------------------------------------------- estimators
def td0_return_estimate(gamma, next_state_value: torch.Tensor, reward: torch.Tensor,
                        terminated: torch.Tensor | None = None, *, done: torch.Tensor | None = None) -> torch.Tensor:
    """One-step target ``r_t + gamma * (1 - terminated_t) * V(s_{t+1})`` (elementwise, any shape).

    Example:
        >>> td0_return_estimate(0.9, torch.tensor([[2.0], [2.0]]), torch.tensor([[1.0], [1.0]]),
        ...                     terminated=torch.tensor([[False], [True]]))
        tensor([[2.8000],
                [1.0000]])
    """
    _prepare("td0_return_estimate", -1, next_state_value=next_state_value, reward=reward,
             terminated=terminated, done=done)
    _, term = _flags(done, terminated, reward)
    return reward + gamma * (~term).to(reward.dtype) * next_state_value


def td0_advantage_estimate(gamma, state_value: torch.Tensor, next_state_value: torch.Tensor, reward: torch.Tensor,
                           done: torch.Tensor | None = None, terminated: torch.Tensor | None = None) -> torch.Tensor:
    """``td0_return_estimate(...) - state_value``, in TorchRL's argument order (``done``, then ``terminated``).

    ``terminated`` defaults to ``done`` (every end a true termination); only ``terminated`` matters
    to a one-step target.

    Example:
        >>> td0_advantage_estimate(0.5, torch.ones(2, 1), torch.full((2, 1), 4.0), torch.ones(2, 1),
        ...                        torch.tensor([[False], [True]]))
        tensor([[2.],
                [0.]])
    """
    return td0_return_estimate(gamma, next_state_value, reward, terminated, done=done) - state_value


def td_lambda_return_estimate(gamma, lmbda, next_state_value: torch.Tensor, reward: torch.Tensor,
                              done: torch.Tensor | None = None, terminated: torch.Tensor | None = None, *,
                              time_dim: int = -2) -> torch.Tensor:
    """The lambda-return ``G_t = r_t + gamma (1 - term_t) [(1 - lambda) V(s_{t+1}) + lambda G_{t+1}]``.

    The recursion stops at episode ends and at the last step, where
    ``G_t = r_t + gamma (1 - term_t) V(s_{t+1})``.

    Example:
        >>> r = torch.ones(3, 1); v = torch.zeros(3, 1)
        >>> td_lambda_return_estimate(0.5, 1.0, v, r)  # lambda = 1: discounted sum of rewards
        tensor([[1.7500],
                [1.5000],
                [1.0000]])
    """
    time_dim = _prepare("td_lambda_return_estimate", time_dim, next_state_value=next_state_value,
                        reward=reward, done=done, terminated=terminated)
    done, term = _flags(done, terminated, reward)
    dtype = reward.dtype
    boot = (~term).to(dtype)
    end = done | _last_step_mask(reward, time_dim)
    lam = (1.0 - end.to(dtype)) * lmbda  # lambda where the recursion continues, 0 at episode ends
    a = reward + gamma * boot * (1.0 - lam) * next_state_value
    g, lm = _as_float(gamma), _as_float(lmbda)
    if g is not None and lm is not None:
        return reverse_linear_recurrence(a, g * lm, cut=end, time_dim=time_dim)
    return reverse_linear_recurrence(a, gamma * boot * lam, time_dim=time_dim)


def td1_return_estimate(gamma, next_state_value: torch.Tensor, reward: torch.Tensor,
                        done: torch.Tensor | None = None, terminated: torch.Tensor | None = None, *,
                        time_dim: int = -2) -> torch.Tensor:
    """Discounted return to the episode end (bootstrapped at truncations and at the last step).

    Equal to :func:`td_lambda_return_estimate` with ``lmbda=1``.

    Example:
        >>> td1_return_estimate(0.5, torch.full((3, 1), 4.0), torch.ones(3, 1))
        tensor([[2.2500],
                [2.5000],
                [3.0000]])
    """
    return td_lambda_return_estimate(gamma, 1.0, next_state_value, reward, done=done, terminated=terminated,
                                     time_dim=time_dim)


def generalized_advantage_estimate(gamma, lmbda, state_value: torch.Tensor, next_state_value: torch.Tensor,
                                   reward: torch.Tensor, done: torch.Tensor | None = None,
                                   terminated: torch.Tensor | None = None, *, time_dim: int = -2):
    """GAE (Schulman et al., 2016): ``A_t = delta_t + gamma lambda (1 - done_t) A_{t+1}``.

    ``delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)``. Returns
    ``(advantage, value_target)`` with ``value_target = advantage + state_value``.

    Example:
        >>> v = torch.zeros(3, 1); r = torch.ones(3, 1)
        >>> adv, target = generalized_advantage_estimate(0.5, 1.0, v, v, r)
        >>> adv.squeeze(-1)
        tensor([1.7500, 1.5000, 1.0000])
    """
    time_dim = _prepare("generalized_advantage_estimate", time_dim, state_value=state_value,
                        next_state_value=next_state_value, reward=reward, done=done, terminated=terminated)
    done, term = _flags(done, terminated, reward)
    dtype = reward.dtype
    boot = (~term).to(dtype)
    if isinstance(gamma, (int, float)):  # one fused multiply-add: fewer passes over the data
        delta = torch.addcmul(reward - state_value, next_state_value, boot, value=gamma)
    else:
        delta = reward + gamma * boot * next_state_value - state_value
    g, lm = _as_float(gamma), _as_float(lmbda)
    if g is not None and lm is not None:
        adv = reverse_linear_recurrence(delta, g * lm, cut=done, time_dim=time_dim)
    else:
        adv = reverse_linear_recurrence(delta, gamma * lmbda * (~done).to(dtype), time_dim=time_dim)
    return adv, adv + state_value


# --------------------------------------------------------------------------- TorchRL's names (thin wrappers)
def _check_rolling(name: str, gamma, rolling_gamma) -> None:
    # rlbench's recurrence discounts step k ahead by gamma_t ... gamma_{t+k-1}: TorchRL's rolling_gamma=True.
    # rolling_gamma=False (the start's gamma held for its whole future) is not a linear recurrence.
    if rolling_gamma is False and _as_float(gamma) is None:
        raise ValueError(f"{name}: rolling_gamma=False with a per-step gamma is not supported: rlbench discounts by "
                         f"the product of the per-step gammas (rolling_gamma=True, TorchRL's default)")


def td1_advantage_estimate(gamma, state_value: torch.Tensor, next_state_value: torch.Tensor, reward: torch.Tensor,
                           done: torch.Tensor, terminated: torch.Tensor | None = None,
                           rolling_gamma: bool | None = None, time_dim: int = -2) -> torch.Tensor:
    """TD(1) advantage ``td1_return_estimate(...) - state_value``, in TorchRL's signature.

    Example:
        >>> v, r, d = torch.zeros(3, 1), torch.ones(3, 1), torch.zeros(3, 1, dtype=torch.bool)
        >>> td1_advantage_estimate(0.5, v, v, r, d).squeeze(-1)
        tensor([1.7500, 1.5000, 1.0000])
    """
    _check_rolling("td1_advantage_estimate", gamma, rolling_gamma)
    return td1_return_estimate(gamma, next_state_value, reward, done, terminated, time_dim=time_dim) - state_value


def td_lambda_advantage_estimate(gamma, lmbda, state_value: torch.Tensor, next_state_value: torch.Tensor,
                                 reward: torch.Tensor, done: torch.Tensor, terminated: torch.Tensor | None = None,
                                 rolling_gamma: bool | None = None, time_dim: int = -2) -> torch.Tensor:
    """TD(lambda) advantage ``td_lambda_return_estimate(...) - state_value``, in TorchRL's signature.

    Example:
        >>> v, r, d = torch.zeros(3, 1), torch.ones(3, 1), torch.zeros(3, 1, dtype=torch.bool)
        >>> td_lambda_advantage_estimate(0.5, 1.0, v, v, r, d).squeeze(-1)
        tensor([1.7500, 1.5000, 1.0000])
    """
    _check_rolling("td_lambda_advantage_estimate", gamma, rolling_gamma)
    ret = td_lambda_return_estimate(gamma, lmbda, next_state_value, reward, done, terminated, time_dim=time_dim)
    return ret - state_value


def vec_td1_return_estimate(gamma, next_state_value: torch.Tensor, reward: torch.Tensor, done: torch.Tensor,
                            terminated: torch.Tensor | None = None, rolling_gamma: bool | None = None,
                            time_dim: int = -2) -> torch.Tensor:
    """TorchRL's name and signature for :func:`td1_return_estimate` (already vectorized).

    Example:
        >>> r, d = torch.ones(3, 1), torch.zeros(3, 1, dtype=torch.bool)
        >>> vec_td1_return_estimate(0.5, torch.zeros(3, 1), r, d).squeeze(-1)
        tensor([1.7500, 1.5000, 1.0000])
    """
    _check_rolling("vec_td1_return_estimate", gamma, rolling_gamma)
    return td1_return_estimate(gamma, next_state_value, reward, done, terminated, time_dim=time_dim)


def vec_td1_advantage_estimate(gamma, state_value: torch.Tensor, next_state_value: torch.Tensor,
                               reward: torch.Tensor, done: torch.Tensor, terminated: torch.Tensor | None = None,
                               rolling_gamma: bool | None = None, time_dim: int = -2) -> torch.Tensor:
    """TorchRL's name and signature for :func:`td1_advantage_estimate`.

    Example:
        >>> v, r, d = torch.zeros(3, 1), torch.ones(3, 1), torch.zeros(3, 1, dtype=torch.bool)
        >>> vec_td1_advantage_estimate(0.5, v + 1.0, v, r, d).squeeze(-1)
        tensor([0.7500, 0.5000, 0.0000])
    """
    return td1_advantage_estimate(gamma, state_value, next_state_value, reward, done, terminated, rolling_gamma,
                                  time_dim)


def vec_td_lambda_return_estimate(gamma, lmbda, next_state_value: torch.Tensor, reward: torch.Tensor,
                                  done: torch.Tensor, terminated: torch.Tensor | None = None,
                                  rolling_gamma: bool | None = None, *, time_dim: int = -2) -> torch.Tensor:
    """TorchRL's name and signature for :func:`td_lambda_return_estimate` (already vectorized).

    Example:
        >>> r, d = torch.ones(3, 1), torch.zeros(3, 1, dtype=torch.bool)
        >>> vec_td_lambda_return_estimate(0.5, 1.0, torch.zeros(3, 1), r, d).squeeze(-1)
        tensor([1.7500, 1.5000, 1.0000])
    """
    _check_rolling("vec_td_lambda_return_estimate", gamma, rolling_gamma)
    return td_lambda_return_estimate(gamma, lmbda, next_state_value, reward, done, terminated, time_dim=time_dim)


def vec_td_lambda_advantage_estimate(gamma, lmbda, state_value: torch.Tensor, next_state_value: torch.Tensor,
                                     reward: torch.Tensor, done: torch.Tensor, terminated: torch.Tensor | None = None,
                                     rolling_gamma: bool | None = None, time_dim: int = -2) -> torch.Tensor:
    """TorchRL's name and signature for :func:`td_lambda_advantage_estimate`.

    Example:
        >>> v, r, d = torch.zeros(3, 1), torch.ones(3, 1), torch.zeros(3, 1, dtype=torch.bool)
        >>> vec_td_lambda_advantage_estimate(0.5, 0.0, v, v, r, d).squeeze(-1)  # lambda = 0: TD(0)
        tensor([1., 1., 1.])
    """
    return td_lambda_advantage_estimate(gamma, lmbda, state_value, next_state_value, reward, done, terminated,
                                        rolling_gamma, time_dim)


def vec_generalized_advantage_estimate(gamma, lmbda, state_value: torch.Tensor, next_state_value: torch.Tensor,
                                       reward: torch.Tensor, done: torch.Tensor,
                                       terminated: torch.Tensor | None = None, *,
                                       time_dim: int = -2) -> tuple[torch.Tensor, torch.Tensor]:
    """TorchRL's name and signature for :func:`generalized_advantage_estimate`: ``(advantage, value_target)``.

    Example:
        >>> v, r, d = torch.zeros(3, 1), torch.ones(3, 1), torch.zeros(3, 1, dtype=torch.bool)
        >>> adv, target = vec_generalized_advantage_estimate(0.5, 1.0, v, v, r, d)
        >>> adv.squeeze(-1)
        tensor([1.7500, 1.5000, 1.0000])
    """
    return generalized_advantage_estimate(gamma, lmbda, state_value, next_state_value, reward, done, terminated,
                                          time_dim=time_dim)


# --------------------------------------------------------------------------- off-policy: V-trace
def _clipped_ratio(log_ratio: torch.Tensor, thresh) -> torch.Tensor:
    """``min(thresh, exp(log_ratio))``, clipped in log space (no overflow for a large ratio under a finite cap)."""
    if isinstance(thresh, torch.Tensor):
        return torch.minimum(log_ratio.exp(), thresh.to(log_ratio))
    thresh = float(thresh)
    if thresh <= 0.0:
        raise ValueError(f"vtrace_advantage_estimate: the truncation levels must be > 0, got {thresh}")
    return log_ratio.clamp(max=math.log(thresh)).exp() if math.isfinite(thresh) else log_ratio.exp()


def vtrace_advantage_estimate(gamma, log_pi: torch.Tensor, log_mu: torch.Tensor, state_value: torch.Tensor,
                              next_state_value: torch.Tensor, reward: torch.Tensor, done: torch.Tensor,
                              terminated: torch.Tensor | None = None, rho_thresh=1.0, c_thresh=1.0,
                              time_dim: int = -2) -> tuple[torch.Tensor, torch.Tensor]:
    """V-trace targets and advantages (Espeholt et al. 2018, "IMPALA", sec. 4): ``(advantage, value_target)``.

    With ``rho_t = min(rho_bar, pi(a_t|x_t) / mu(a_t|x_t))``, ``c_t = min(c_bar, pi / mu)`` and
    ``delta_t = rho_t (r_t + gamma (1 - terminated_t) V(x_{t+1}) - V(x_t))``, the target is the
    recursive form of the paper's eq. (1)::

        v_t = V(x_t) + delta_t + gamma c_t (1 - done_t) (v_{t+1} - V(x_{t+1}))

    and the policy-gradient advantage (sec. 4.2) is
    ``rho_t (r_t + gamma (1 - terminated_t) v_{t+1} - V(x_t))``. The recursion stops at episode ends
    and at the last step, where ``v_{t+1}`` is ``next_state_value`` (the bootstrap value, of the true
    final observation at a truncation; zeroed by ``terminated``). With ``log_pi == log_mu`` and
    thresholds ``>= 1``, ``v_t`` is the TD(1) return bootstrapped at the data's end.

    Args:
        gamma: discount (a number, or a tensor broadcastable to the inputs: per-step discounts).
        log_pi: log-probability of the taken action under the policy being learnt (``pi``).
        log_mu: its log-probability under the behaviour policy that collected it (``mu``;
            the collector's ``"sample_log_prob"``).
        state_value: ``V(x_t)``.
        next_state_value: ``V(x_{t+1})``.
        reward: ``r_t``.
        done: episode ends (``terminated | truncated``).
        terminated: true terminations (default: ``done``).
        rho_thresh: ``rho_bar``, the truncation of the importance weights in ``delta_t`` and the
            advantage (1.0 in the paper).
        c_thresh: ``c_bar``, the truncation of the trace coefficients (1.0 in the paper).
        time_dim: the time dimension (``-2`` for ``[*B, T, 1]`` inputs).

    Example:
        >>> v, r, d = torch.zeros(3, 1), torch.ones(3, 1), torch.zeros(3, 1, dtype=torch.bool)
        >>> lp = torch.zeros(3, 1)
        >>> adv, vs = vtrace_advantage_estimate(0.5, lp, lp, v, v, r, d)  # on-policy: the discounted return
        >>> vs.squeeze(-1)
        tensor([1.7500, 1.5000, 1.0000])
        >>> log_mu = lp + torch.tensor(2.0).log()  # mu is twice as likely: rho = c = 0.5
        >>> adv, vs = vtrace_advantage_estimate(0.5, lp, log_mu, v, v, r, d)
        >>> vs.squeeze(-1)  # v_2 = 0.5, v_1 = 0.5 + 0.5 * 0.5 * v_2, v_0 = 0.5 + 0.5 * 0.5 * v_1
        tensor([0.6562, 0.6250, 0.5000])
    """
    time_dim = _prepare("vtrace_advantage_estimate", time_dim, log_pi=log_pi, log_mu=log_mu, state_value=state_value,
                        next_state_value=next_state_value, reward=reward, done=done, terminated=terminated)
    done, term = _flags(done, terminated, reward)
    dtype = state_value.dtype
    log_ratio = (log_pi - log_mu).to(dtype)
    rho = _clipped_ratio(log_ratio, rho_thresh)
    c = _clipped_ratio(log_ratio, c_thresh)
    discount = gamma * (~term).to(dtype)
    # delta_t = rho_t (r_t + gamma V(x_{t+1}) - V(x_t)); v_t - V(x_t) = delta_t + gamma c_t (v_{t+1} - V(x_{t+1}))
    delta = rho * (reward + discount * next_state_value - state_value)
    vs_minus_v = reverse_linear_recurrence(delta, gamma * c * (~done).to(dtype), time_dim=time_dim)
    vs = state_value + vs_minus_v
    # v_{t+1}: the next target inside an episode; the bootstrap value after an episode's end or the last step
    t = vs.shape[time_dim]
    shifted = torch.cat([vs.narrow(time_dim, 1, t - 1), next_state_value.narrow(time_dim, t - 1, 1)], time_dim)
    next_vs = torch.where(done, next_state_value, shifted)
    advantage = rho * (reward + discount * next_vs - state_value)
    return advantage, vs
