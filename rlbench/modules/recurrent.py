"""LSTM / GRU modules that keep their hidden state in the TensorDict, and the env transform that seeds it.

At each step the module reads the state at the root (``"recurrent_state_h"`` ...; zeros where the
TensorDict has none or where ``"is_init"`` marks an episode start) and writes the updated state under
``("next", ...)``. ``step_mdp`` then moves it to the root for the following step, so a rollout
stores, for every step, the state the policy started from and the state it ended with.

Put the transform from ``make_tensordict_primer()`` (and an ``InitTracker``) on the env: it declares
the state keys in the observation spec, zeroes them at reset and hands the policy's ``("next", ...)``
state through ``env.step`` (which rebuilds ``"next"`` from the env's output).

Two modes: a step ``[*B, F]`` (collection), and a sequence ``[*B, T, F]`` (training on stored
trajectories), which starts from the stored state of the first step and restarts from zeros
wherever ``is_init`` is True inside the sequence. Choose the sequence mode for a block of code with
the context manager ``with set_recurrent_mode(True): ...`` (as in TorchRL), or for one module with
its method ``module.set_recurrent_mode(True)`` (a copy sharing the parameters).
"""
from __future__ import annotations

import contextvars
import copy

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torch import nn

from ..envs.transforms import EnvSpecs, Transform
from ..specs import Unbounded

__all__ = ["LSTMModule", "GRUModule", "RecurrentStatePrimer", "set_recurrent_mode", "recurrent_mode"]

# None: each module's own mode; True/False: the mode chosen by an enclosing ``set_recurrent_mode`` block
_MODE: contextvars.ContextVar[bool | None] = contextvars.ContextVar("rlbench_recurrent_mode", default=None)


class set_recurrent_mode:  # lower case: a context manager named as TorchRL users call it
    """Context manager (or decorator): every recurrent module inside reads sequences (True) or steps (False).

    It overrides each module's own mode (its ``recurrent_mode`` attribute) for the duration of the
    block, in the current thread or task only; blocks nest.

    Args:
        mode: True for sequences ``[*B, T, F]``, False for single steps ``[*B, F]``.

    Example:
        >>> from tensordict import TensorDict
        >>> gru = GRUModule(3, 8)
        >>> with set_recurrent_mode(True):
        ...     td = gru(TensorDict(observation=torch.randn(2, 5, 3), batch_size=[2, 5]))
        >>> td["features"].shape, recurrent_mode()
        (torch.Size([2, 5, 8]), None)
    """

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)
        self._tokens: list = []

    def __enter__(self) -> "set_recurrent_mode":
        self._tokens.append(_MODE.set(self.mode))
        return self

    def __exit__(self, *exc) -> None:
        _MODE.reset(self._tokens.pop())

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_recurrent_mode(self.mode):
                return fn(*args, **kwargs)
        return wrapper


def recurrent_mode() -> bool | None:
    """The mode an enclosing :class:`set_recurrent_mode` block chose, or None outside any block."""
    return _MODE.get()


def _keys_from_lists(owner: str, in_keys, out_keys, n_states: int):
    """TorchRL's ``in_keys=[x, *states]``, ``out_keys=[y, *("next", state)]`` -> (x, y, states)."""
    in_keys, out_keys = list(in_keys), list(out_keys)
    if len(in_keys) != 1 + n_states or len(out_keys) != 1 + n_states:
        raise ValueError(f"{owner}: in_keys needs the input and {n_states} state key(s), and out_keys the output "
                         f"and the same state key(s) under 'next'; got in_keys={in_keys}, out_keys={out_keys}")
    states = in_keys[1:]
    expected = [("next", *((k,) if isinstance(k, str) else tuple(k))) for k in states]
    got = [(k,) if isinstance(k, str) else tuple(k) for k in out_keys[1:]]
    if got != expected:
        raise ValueError(f"{owner}: out_keys[1:] must be the state keys under 'next' {expected}, got {out_keys[1:]}")
    return in_keys[0], out_keys[0], states


class _RecurrentModule(TensorDictModuleBase):
    """Shared plumbing of :class:`LSTMModule` and :class:`GRUModule` (``rnn`` and ``state_keys`` set by them)."""

    def __init__(self, rnn: nn.RNNBase, in_key, out_key, state_keys: list, is_init_key):
        super().__init__()
        if not rnn.batch_first:
            raise ValueError(f"{type(self).__name__}: the rnn must be built with batch_first=True")
        if rnn.bidirectional:
            raise ValueError(
                f"{type(self).__name__}: a policy cannot look ahead in time: bidirectional is not supported")
        self.rnn = rnn
        self.in_key, self.out_key, self.is_init_key = in_key, out_key, is_init_key
        self.state_keys = list(state_keys)
        self.in_keys = [in_key, *self.state_keys, is_init_key]
        self.out_keys = [out_key, *[("next", k) for k in self.state_keys]]
        self.recurrent_mode = False

    # -------------------------------------------------------------- helpers
    @property
    def state_shape(self) -> tuple[int, int]:
        """Shape of one stored state entry (after the batch dims): ``(num_layers, hidden_size)``."""
        return (self.rnn.num_layers, self.rnn.hidden_size)

    def set_recurrent_mode(self, mode: bool = True) -> "_RecurrentModule":
        """A copy (sharing parameters) that reads ``[*B, T, F]`` sequences when ``mode`` is True."""
        new = copy.copy(self)
        new.__dict__["_modules"] = dict(self._modules)
        new.recurrent_mode = bool(mode)
        return new

    def make_tensordict_primer(self) -> "RecurrentStatePrimer":
        """The env transform that declares, zeroes at reset and carries this module's state keys.

        Example:
            >>> from rlbench.modules import GRUModule
            >>> GRUModule(3, 8).make_tensordict_primer().primers
            {'recurrent_state': (1, 8)}
        """
        return RecurrentStatePrimer({k: self.state_shape for k in self.state_keys})

    def _initial(self, td: TensorDictBase, key, lead: torch.Size, x: torch.Tensor) -> torch.Tensor:
        state = td.get(key, None)
        if state is None:
            return x.new_zeros(*lead, *self.state_shape)
        return state

    def _step_rnn(self, x: torch.Tensor, states: list) -> tuple[torch.Tensor, list]:
        """One step: ``x [N, F]``, states ``[N, L, H]`` -> output ``[N, H]``, new states."""
        hx = [s.transpose(0, 1).contiguous() for s in states]  # torch wants [L, N, H]
        y, new = self.rnn(x.unsqueeze(1), hx[0] if len(hx) == 1 else tuple(hx))
        new = [new] if isinstance(new, torch.Tensor) else list(new)
        return y.squeeze(1), [s.transpose(0, 1) for s in new]

    def _reset_mask(self, is_init: torch.Tensor | None, shape: torch.Size) -> torch.Tensor | None:
        if is_init is None:
            return None
        return is_init.reshape(*shape, -1).any(-1)

    # -------------------------------------------------------------- forward
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        x = tensordict.get(self.in_key)
        mode = _MODE.get()
        if self.recurrent_mode if mode is None else mode:
            return self._forward_sequence(tensordict, x)
        lead = x.shape[:-1]
        states = [self._initial(tensordict, k, lead, x) for k in self.state_keys]
        start = self._reset_mask(tensordict.get(self.is_init_key, None), lead)
        if start is not None:
            m = start.reshape(*lead, 1, 1)
            states = [torch.where(m, torch.zeros_like(s), s) for s in states]
        n = lead.numel()
        y, new = self._step_rnn(x.reshape(n, x.shape[-1]), [s.reshape(n, *self.state_shape) for s in states])
        tensordict.set(self.out_key, y.reshape(*lead, -1))
        for key, s in zip(self.state_keys, new):
            tensordict.set(("next", key), s.reshape(*lead, *self.state_shape))
        return tensordict

    def _forward_sequence(self, td: TensorDictBase, x: torch.Tensor) -> TensorDictBase:
        if td.batch_dims < 1:
            raise ValueError(
                f"{type(self).__name__} in recurrent mode needs a TensorDict with a time dim (batch_size [*B, T]), "
                f"got batch_size {tuple(td.batch_size)}"
            )
        lead = td.batch_size  # [*B, T]
        T = lead[-1]
        n = lead[:-1].numel()
        xs = x.reshape(n, T, x.shape[-1])
        states = []
        for k in self.state_keys:
            s = td.get(k, None)
            states.append(x.new_zeros(n, *self.state_shape) if s is None else s.reshape(n, T, *self.state_shape)[:, 0])
        start = self._reset_mask(td.get(self.is_init_key, None), lead)
        start = None if start is None else start.reshape(n, T)
        if start is not None:
            states = [torch.where(start[:, 0, None, None], torch.zeros_like(s), s) for s in states]
        no_restart = start is None or not bool(start[:, 1:].any())
        if isinstance(self.rnn, nn.GRU) and self.rnn.num_layers == 1 and no_restart:
            # a one-layer GRU's state after step t is its output at t: one fused call over time is exact
            y, _ = self.rnn(xs, states[0].transpose(0, 1).contiguous())
            td.set(self.out_key, y.reshape(*lead, -1))
            td.set(("next", self.state_keys[0]), y.unsqueeze(-2).reshape(*lead, *self.state_shape))
            return td
        # A per-step loop (T calls) keeps every intermediate state exact: torch's fused RNN returns only
        # the final one, and ("next", state) at each step is what a loss needs to evaluate next steps.
        # States stay in torch's [L, N, H] layout inside the loop (one transpose each way, not T).
        hx = [st.transpose(0, 1).contiguous() for st in states]
        keep = None if start is None else ~start.t()[:, None, :, None]  # [T, 1, N, 1]
        outs, per_step = [], [[] for _ in self.state_keys]
        for t in range(T):
            if keep is not None and t > 0:
                hx = [torch.where(keep[t], h, 0.0) for h in hx]
            y, new = self.rnn(xs[:, t : t + 1], hx[0] if len(hx) == 1 else tuple(hx))
            hx = [new] if isinstance(new, torch.Tensor) else list(new)
            outs.append(y)
            for lst, h in zip(per_step, hx):
                lst.append(h)
        td.set(self.out_key, torch.cat(outs, 1).reshape(*lead, -1))
        for key, lst in zip(self.state_keys, per_step):
            # T x [L, N, H] -> [N, T, L, H]
            td.set(("next", key), torch.stack(lst, 2).permute(1, 2, 0, 3).reshape(*lead, *self.state_shape))
        return td


class LSTMModule(_RecurrentModule):
    """An ``nn.LSTM`` reading ``in_key`` and carrying ``(h, c)`` in the TensorDict.

    Reads ``in_key`` ``[*B, F]``, ``"recurrent_state_h"``/``"recurrent_state_c"``
    ``[*B, num_layers, hidden_size]`` (zeros when absent) and ``"is_init"``; writes ``out_key``
    ``[*B, hidden_size]`` and ``("next", "recurrent_state_h"/"_c")``.

    Args:
        input_size, hidden_size, num_layers, dropout: as ``nn.LSTM`` (or pass ``lstm=`` a built
            ``nn.LSTM(batch_first=True)``).
        in_key, out_key: the input features and the output.
        recurrent_state_keys: the two state keys (h, c).
        is_init_key: the episode-start flag (from ``InitTracker``).
        in_keys, out_keys: TorchRL's spelling of the keys, instead of ``in_key``/``out_key``/
            ``recurrent_state_keys``: ``in_keys=[x, h, c]``, ``out_keys=[y, ("next", h), ("next", c)]``.

    Example:
        >>> from tensordict import TensorDict
        >>> lstm = LSTMModule(3, 8, in_key="observation", out_key="features")
        >>> td = lstm(TensorDict(observation=torch.randn(4, 3), batch_size=[4]))
        >>> td["features"].shape, td["next", "recurrent_state_c"].shape
        (torch.Size([4, 8]), torch.Size([4, 1, 8]))
    """

    def __init__(self, input_size: int | None = None, hidden_size: int | None = None, num_layers: int = 1,
                 in_key="observation", out_key="features", *, dropout: float = 0.0, lstm: nn.LSTM | None = None,
                 recurrent_state_keys=("recurrent_state_h", "recurrent_state_c"), is_init_key="is_init",
                 device=None, in_keys=None, out_keys=None):
        if in_keys is not None or out_keys is not None:
            in_key, out_key, recurrent_state_keys = _keys_from_lists("LSTMModule", in_keys or [], out_keys or [], 2)
        if lstm is None:
            if input_size is None or hidden_size is None:
                raise ValueError("LSTMModule: give input_size and hidden_size (or a built lstm=nn.LSTM(...))")
            lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout, device=device)
        if len(recurrent_state_keys) != 2:
            raise ValueError(f"LSTMModule: recurrent_state_keys needs two keys (h, c), got {recurrent_state_keys!r}")
        super().__init__(lstm, in_key, out_key, list(recurrent_state_keys), is_init_key)


class GRUModule(_RecurrentModule):
    """An ``nn.GRU`` reading ``in_key`` and carrying its state ``"recurrent_state"`` in the TensorDict.

    Same contract as :class:`LSTMModule` with a single state key (TorchRL's ``in_keys=[x, h]``,
    ``out_keys=[y, ("next", h)]`` are accepted too).

    Example:
        >>> from tensordict import TensorDict
        >>> gru = GRUModule(3, 8).set_recurrent_mode(True)
        >>> td = gru(TensorDict(observation=torch.randn(2, 5, 3), batch_size=[2, 5]))
        >>> td["features"].shape, td["next", "recurrent_state"].shape
        (torch.Size([2, 5, 8]), torch.Size([2, 5, 1, 8]))
    """

    def __init__(self, input_size: int | None = None, hidden_size: int | None = None, num_layers: int = 1,
                 in_key="observation", out_key="features", *, dropout: float = 0.0, gru: nn.GRU | None = None,
                 recurrent_state_key="recurrent_state", is_init_key="is_init", device=None, in_keys=None,
                 out_keys=None):
        if in_keys is not None or out_keys is not None:
            in_key, out_key, (recurrent_state_key,) = _keys_from_lists("GRUModule", in_keys or [], out_keys or [], 1)
        if gru is None:
            if input_size is None or hidden_size is None:
                raise ValueError("GRUModule: give input_size and hidden_size (or a built gru=nn.GRU(...))")
            gru = nn.GRU(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout, device=device)
        super().__init__(gru, in_key, out_key, [recurrent_state_key], is_init_key)


class RecurrentStatePrimer(Transform):
    """Env transform for recurrent policies: declares the state keys, zeroes them at reset, carries them.

    ``primers`` maps each state key to its shape after the batch dims. The keys join the observation
    spec (``Unbounded`` float), are zero after every reset (only for the sub-envs being reset), and on
    each step the policy's ``("next", key)`` output becomes the env's ``("next", key)`` (the env
    itself rebuilds ``"next"``); a step whose policy wrote none keeps the previous state.

    Put it on the outermost env, e.g. ``TransformedEnv(SerialEnv(n, make_env), Compose(InitTracker(),
    primer))``: a batched env hands its sub-envs the actions only, so a primer inside each sub-env
    never sees the policy's state (it would restart from zeros at every step).

    Example:
        >>> from rlbench.envs import CartPoleEnv, TransformedEnv
        >>> env = TransformedEnv(CartPoleEnv(), RecurrentStatePrimer({"recurrent_state": (1, 8)}))
        >>> env.reset()["recurrent_state"].shape
        torch.Size([1, 8])
    """

    _STASH = "_primer_next"

    def __init__(self, primers: dict, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.primers = {k: tuple(int(s) for s in shape) for k, shape in primers.items()}
        self.dtype = dtype

    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        for key, shape in self.primers.items():
            if key in specs.observation:
                raise ValueError(f"RecurrentStatePrimer: the env already has an observation {key!r}")
            specs.observation[key] = Unbounded((*specs.batch_size, *shape), dtype=self.dtype, device=specs.device)
        return specs

    def _zeros(self, td: TensorDictBase, shape) -> torch.Tensor:
        return torch.zeros(*td.batch_size, *shape, dtype=self.dtype, device=td.device)

    def _reset(self, td, td_reset):
        for key, shape in self.primers.items():
            td_reset.set(key, self._zeros(td_reset, shape))
        return td_reset

    @property
    def has_inverse(self) -> bool:
        return True

    def _inv_call(self, td):
        # runs on the step's private copy before the env rebuilds "next": keep the policy's new state
        nxt = td.get("next", None)
        if nxt is not None:
            for key in self.primers:
                value = nxt.get(key, None)
                if value is not None:
                    td.set((self._STASH, key), value)
        return td

    def _step(self, td, next_td):
        stash = td.get(self._STASH, None)
        for key, shape in self.primers.items():
            value = None if stash is None else stash.get(key, None)
            if value is None:
                value = td.get(key, None)
            next_td.set(key, self._zeros(next_td, shape) if value is None else value)
        return next_td

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        # outside an env (e.g. a replay sample) fill in missing state keys with zeros
        for key, shape in self.primers.items():
            if td.get(key, None) is None:
                td.set(key, self._zeros(td, shape))
        return td

    def extra_repr(self) -> str:
        return f"primers={self.primers}"
