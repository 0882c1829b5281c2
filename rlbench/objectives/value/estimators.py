"""Value estimators on TensorDicts: ``TD0Estimator``, ``TD1Estimator``, ``TDLambdaEstimator``, ``GAE``, ``VTrace``.

Called on a rollout-shaped TensorDict ``[*B, T]`` (time is its last batch dim unless ``time_dim``
says otherwise), an estimator

1. runs its value network on the root and on ``"next"`` in **one batched call** (the two are
   stacked; separate calls only when different parameters are asked for each), under
   ``torch.no_grad()`` unless built with ``differentiable=True``, and writes ``"state_value"`` and
   ``("next", "state_value")``; without a value network it reads those entries as they are;
2. applies the vectorized estimator of :mod:`rlbench.objectives.value.functional` with the
   rollout's ``("next", "reward")``, ``("next", "done")`` and ``("next", "terminated")``;
3. writes ``"advantage"`` and ``"value_target"`` and returns the TensorDict.

Every key is configurable with ``set_keys`` (``reward``, ``done``, ``terminated``, ``value``,
``advantage``, ``value_target``); reward and flags are read under ``"next"``. :class:`VTrace` also
reads the taken ``action`` and the behaviour policy's ``sample_log_prob``, and runs its actor for
the current policy's log-probability.
"""
from __future__ import annotations

import contextlib

import torch
from tensordict import TensorDictBase
from torch import nn

from .. import functional as F
from .._keys import KeysMixin, keys_list
from ..functional import as_column
from .functional import (
    generalized_advantage_estimate,
    td0_return_estimate,
    td1_return_estimate,
    td_lambda_return_estimate,
    vtrace_advantage_estimate,
)

__all__ = ["ValueEstimatorBase", "TD0Estimator", "TD1Estimator", "TDLambdaEstimator", "GAE", "VTrace"]


def _hyper(name: str, value):
    """Numbers stay numbers (fast constant-coefficient path); tensors become float tensors."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.get_default_dtype()) if not value.is_floating_point() else value.detach()
    raise TypeError(f"{name} must be a number or a tensor, got {type(value).__name__}")


class ValueEstimatorBase(KeysMixin, nn.Module):
    """Shared machinery of the estimators (keys, value-network calls, shapes).

    Args:
        gamma: discount (number or tensor broadcastable to ``[*B, T, 1]``).
        value_network: module writing the ``value`` key from the observation keys (its
            ``in_keys``); ``None`` to read stored values.
        differentiable: keep the graph through the value network and the estimate.
        time_dim: the TensorDict batch dim that is time (default: the last one).
    """

    default_keys = {
        "reward": "reward",
        "done": "done",
        "terminated": "terminated",
        "value": "state_value",
        "advantage": "advantage",
        "value_target": "value_target",
    }

    def __init__(self, gamma, value_network: nn.Module | None = None, *, differentiable: bool = False,
                 time_dim: int | None = None):
        super().__init__()
        self._init_keys()
        self.gamma = _hyper("gamma", gamma)
        self.value_network = value_network
        self.differentiable = differentiable
        self.time_dim = time_dim

    # ------------------------------------------------------------------ plumbing
    def _tensor_time_dim(self, td: TensorDictBase) -> int:
        if td.batch_dims == 0:
            raise ValueError(
                f"{type(self).__name__}: the TensorDict needs a time dimension (batch_size [*B, T]), "
                f"got batch_size {list(td.batch_size)}"
            )
        td_dim = -1 if self.time_dim is None else self.time_dim
        if not -td.batch_dims <= td_dim < td.batch_dims:
            raise ValueError(f"{type(self).__name__}: time_dim={td_dim} is out of range for batch_size "
                             f"{list(td.batch_size)}")
        return td_dim % td.batch_dims

    def _get(self, td: TensorDictBase, key, what: str, *, in_next: bool = False) -> torch.Tensor:
        val = td.get(key, None)
        shown = repr(("next", *key) if isinstance(key, tuple) else ("next", key)) if in_next else repr(key)
        if val is None:
            raise KeyError(
                f"{type(self).__name__}: the TensorDict has no {what} entry {key!r} "
                f"(rename it with set_keys({what}=...)); looked for {shown}, where a rollout or collector batch has it"
            )
        # [*B, T] flags and rewards get their trailing dim; any other shape than [*B, T, 1] is refused by name
        return as_column(val, td.batch_size, f"{type(self).__name__}: {shown}")

    def _missing_inputs(self, td: TensorDictBase, nxt: TensorDictBase) -> KeyError | None:
        """The ``KeyError`` naming the value network's inputs absent from the root or from ``"next"``."""
        in_keys = getattr(self.value_network, "in_keys", None) or []
        missing = [repr(k) for k in in_keys if k not in td.keys(True)]
        missing += [repr(("next", *k) if isinstance(k, tuple) else ("next", k)) for k in in_keys
                    if k not in nxt.keys(True)]
        if not missing:
            return None
        return KeyError(f"{type(self).__name__}: the value network reads [{', '.join(missing)}], absent from the "
                        f"TensorDict: it needs them at the root (s_t) and under 'next' (s_t+1), as env.rollout and "
                        f"the collectors write them; found keys {keys_list(td)}")

    def _call_net(self, td: TensorDictBase, params):
        net = self.value_network
        if params is None:
            return net(td)
        with params.to_module(net):
            return net(td)

    def _values(self, td: TensorDictBase, params=None, target_params=None):
        """``(V(s_t), V(s_{t+1}))`` as ``[*B, T, 1]`` tensors (computed or read)."""
        vkey = self.tensor_keys.value
        nxt = self._next(td)
        if self.value_network is None:
            return self._get(td, vkey, "value"), self._get(nxt, vkey, "value", in_next=True)
        grad = torch.enable_grad() if self.differentiable else torch.no_grad()
        in_keys = getattr(self.value_network, "in_keys", None)
        try:
            value, next_value = self._call_values(td, nxt, in_keys, grad, params, target_params)
        except KeyError as err:
            missing = self._missing_inputs(td, nxt)
            if missing is None:
                raise
            raise missing from err
        if value.shape == td.batch_size:
            value, next_value = value.unsqueeze(-1), next_value.unsqueeze(-1)
        td.set(vkey, value)
        nxt.set(vkey, next_value)
        return value, next_value

    def _call_values(self, td, nxt, in_keys, grad, params, target_params):
        vkey = self.tensor_keys.value
        with grad:
            if params is not None and target_params is not None and params is not target_params:
                root = self._call_net(td.exclude("next") if in_keys is None else td.select(*in_keys), params)
                nout = self._call_net(nxt if in_keys is None else nxt.select(*in_keys), target_params)
                value, next_value = root.get(vkey), nout.get(vkey)
            else:
                p = params if params is not None else target_params
                src_root = td.exclude("next") if in_keys is None else td.select(*in_keys)
                src_next = nxt if in_keys is None else nxt.select(*in_keys)
                if in_keys is None:
                    common = set(src_root.keys(True, True)) & set(src_next.keys(True, True))
                    src_root, src_next = src_root.select(*common), src_next.select(*common)
                both = torch.stack([src_root, src_next], 0)  # one call for s_t and s_{t+1}
                out = self._call_net(both, p).get(vkey)
                value, next_value = out[0], out[1]
        return value, next_value

    def _next(self, td: TensorDictBase) -> TensorDictBase:
        nxt = td.get("next", None)
        if not isinstance(nxt, TensorDictBase):
            raise KeyError(f"{type(self).__name__}: the TensorDict has no 'next' entry "
                           f"(a rollout/collector batch has one)")
        return nxt

    def _inputs(self, td: TensorDictBase):
        nxt = self._next(td)
        reward = self._get(nxt, self.tensor_keys.reward, "reward", in_next=True)
        done = nxt.get(self.tensor_keys.done, None)
        term = nxt.get(self.tensor_keys.terminated, None)
        if done is None and term is None:
            raise KeyError(
                f"{type(self).__name__}: the TensorDict has neither ('next', {self.tensor_keys.done!r}) nor "
                f"('next', {self.tensor_keys.terminated!r}); rename them with set_keys(done=..., terminated=...)"
            )
        if done is not None:
            done = self._get(nxt, self.tensor_keys.done, "done", in_next=True)
        if term is not None:
            term = self._get(nxt, self.tensor_keys.terminated, "terminated", in_next=True)
        return reward, done, term

    def forward(self, td: TensorDictBase, *, params=None, target_params=None) -> TensorDictBase:
        """Writes ``advantage`` and ``value_target`` into ``td`` and returns it.

        Args:
            td: a ``[*B, T]`` TensorDict with ``"next"``.
            params: parameters to use for ``V(s_t)`` (swapped into the value network).
            target_params: parameters to use for ``V(s_{t+1})`` (e.g. a target network's).
        """
        tdim = self._tensor_time_dim(td) - td.batch_dims - 1  # negative dim on [*B, T, 1] tensors
        self._next(td)
        value, next_value = self._values(td, params, target_params)
        reward, done, term = self._inputs(td)
        ctx = contextlib.nullcontext() if self.differentiable else torch.no_grad()
        with ctx:
            adv, target = self._estimate(value, next_value, reward, done, term, tdim)
        td.set(self.tensor_keys.advantage, adv)
        td.set(self.tensor_keys.value_target, target)
        return td

    def _estimate(self, value, next_value, reward, done, term, tdim):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _on(h, like: torch.Tensor):
        """A hyperparameter as a number, or as a tensor on ``like``'s device and dtype."""
        return h if isinstance(h, float) else h.to(like)


class TD0Estimator(ValueEstimatorBase):
    """One-step TD target ``r + gamma (1 - terminated) V(s')``; advantage = target - V(s).

    Example:
        >>> from tensordict import TensorDict
        >>> td = TensorDict({"state_value": torch.zeros(3, 1), "next": {"state_value": torch.ones(3, 1),
        ...     "reward": torch.ones(3, 1), "done": torch.tensor([[False], [False], [True]]),
        ...     "terminated": torch.tensor([[False], [False], [True]])}}, batch_size=[3])
        >>> TD0Estimator(gamma=0.9)(td)["value_target"].squeeze(-1)
        tensor([1.9000, 1.9000, 1.0000])
    """

    def _estimate(self, value, next_value, reward, done, term, tdim):
        target = td0_return_estimate(self._on(self.gamma, reward), next_value, reward, terminated=term, done=done)
        return target - value, target


class TD1Estimator(ValueEstimatorBase):
    """Discounted return to the end of each episode (bootstrapped at truncations / end of data).

    Example:
        >>> from tensordict import TensorDict
        >>> td = TensorDict({"state_value": torch.zeros(3, 1), "next": {"state_value": torch.zeros(3, 1),
        ...     "reward": torch.ones(3, 1), "done": torch.zeros(3, 1, dtype=torch.bool)}}, batch_size=[3])
        >>> TD1Estimator(gamma=0.5)(td)["value_target"].squeeze(-1)
        tensor([1.7500, 1.5000, 1.0000])
    """

    def _estimate(self, value, next_value, reward, done, term, tdim):
        target = td1_return_estimate(self._on(self.gamma, reward), next_value, reward, done=done, terminated=term,
                                     time_dim=tdim)
        return target - value, target


class TDLambdaEstimator(ValueEstimatorBase):
    """TD(lambda) target (the lambda-return); advantage = target - V(s).

    Args:
        gamma: discount. lmbda: the lambda of the lambda-return.
        value_network, differentiable, time_dim: see :class:`ValueEstimatorBase`.

    Example:
        >>> from tensordict import TensorDict
        >>> td = TensorDict({"state_value": torch.zeros(3, 1), "next": {"state_value": torch.ones(3, 1),
        ...     "reward": torch.zeros(3, 1), "done": torch.zeros(3, 1, dtype=torch.bool)}}, batch_size=[3])
        >>> TDLambdaEstimator(gamma=1.0, lmbda=0.5)(td)["value_target"].squeeze(-1)
        tensor([1., 1., 1.])
    """

    def __init__(self, gamma, lmbda, value_network=None, *, differentiable=False, time_dim=None):
        super().__init__(gamma=gamma, value_network=value_network, differentiable=differentiable, time_dim=time_dim)
        self.lmbda = _hyper("lmbda", lmbda)

    def _estimate(self, value, next_value, reward, done, term, tdim):
        gamma, lmbda = self._on(self.gamma, reward), self._on(self.lmbda, reward)
        target = td_lambda_return_estimate(gamma, lmbda, next_value, reward, done=done, terminated=term, time_dim=tdim)
        return target - value, target


class GAE(ValueEstimatorBase):
    """Generalized advantage estimation (Schulman et al., 2016).

    Args:
        gamma: discount. lmbda: GAE's lambda.
        value_network: the critic (``None`` to read stored values).
        average_gae: standardise the advantage (zero mean, unit std over the whole batch).
        differentiable, time_dim: see :class:`ValueEstimatorBase`.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule
        >>> critic = TensorDictModule(torch.nn.Linear(4, 1), ["observation"], ["state_value"])
        >>> td = TensorDict({"observation": torch.randn(2, 5, 4), "next": {"observation": torch.randn(2, 5, 4),
        ...     "reward": torch.ones(2, 5, 1), "done": torch.zeros(2, 5, 1, dtype=torch.bool),
        ...     "terminated": torch.zeros(2, 5, 1, dtype=torch.bool)}}, batch_size=[2, 5])
        >>> td = GAE(gamma=0.99, lmbda=0.95, value_network=critic)(td)
        >>> td["advantage"].shape, td["value_target"].requires_grad
        (torch.Size([2, 5, 1]), False)
    """

    def __init__(self, gamma, lmbda, value_network=None, *, average_gae: bool = False, differentiable=False,
                 time_dim=None):
        super().__init__(gamma=gamma, value_network=value_network, differentiable=differentiable, time_dim=time_dim)
        self.lmbda = _hyper("lmbda", lmbda)
        self.average_gae = average_gae

    def _estimate(self, value, next_value, reward, done, term, tdim):
        adv, target = generalized_advantage_estimate(self._on(self.gamma, reward), self._on(self.lmbda, reward), value,
                                                     next_value, reward, done=done, terminated=term, time_dim=tdim)
        if self.average_gae:
            adv = (adv - adv.mean()) / adv.std().clamp_min(1e-8)
        return adv, target


class VTrace(ValueEstimatorBase):
    """V-trace (Espeholt et al. 2018, "IMPALA", sec. 4): off-policy targets for data a lagging policy collected.

    Writes ``"value_target"`` (the V-trace target ``v_s``) and ``"advantage"``
    (``rho_s (r_s + gamma v_{s+1} - V(x_s))``, the policy-gradient weight of sec. 4.2), from the
    behaviour log-probability stored at collection time (``"sample_log_prob"``: ``log mu``) and the
    log-probability of the stored ``"action"`` under ``actor_network`` now (``log pi``); see
    :func:`~rlbench.objectives.value.functional.vtrace_advantage_estimate`. Both networks run without
    gradient unless ``differentiable``.

    Args:
        gamma: discount.
        actor_network: the policy being learnt, a probabilistic actor (``get_dist(td)``).
        value_network: the critic (``None`` to read stored ``"state_value"`` entries).
        rho_thresh: ``rho_bar``, truncation of the importance weights (1.0).
        c_thresh: ``c_bar``, truncation of the trace coefficients (1.0).
        average_adv: standardise the advantage over the whole batch.
        differentiable, time_dim: see :class:`ValueEstimatorBase`.

    Keys (``set_keys``): those of :class:`ValueEstimatorBase`, plus ``action`` and ``sample_log_prob``.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule, ProbabilisticTensorDictModule as Prob
        >>> from tensordict.nn import ProbabilisticTensorDictSequential as Seq
        >>> actor = Seq(TensorDictModule(torch.nn.Linear(4, 2), ["observation"], ["logits"]),
        ...             Prob(["logits"], ["action"], distribution_class=torch.distributions.Categorical,
        ...                  return_log_prob=True, log_prob_key="sample_log_prob"))
        >>> critic = TensorDictModule(torch.nn.Linear(4, 1), ["observation"], ["state_value"])
        >>> td = actor(TensorDict(observation=torch.randn(2, 5, 4), batch_size=[2, 5]))
        >>> td["next"] = TensorDict(observation=torch.randn(2, 5, 4), reward=torch.ones(2, 5, 1),
        ...                         done=torch.zeros(2, 5, 1, dtype=torch.bool), batch_size=[2, 5])
        >>> td = VTrace(gamma=0.99, actor_network=actor, value_network=critic)(td)
        >>> td["advantage"].shape, td["value_target"].shape
        (torch.Size([2, 5, 1]), torch.Size([2, 5, 1]))
    """

    default_keys = {**ValueEstimatorBase.default_keys, "action": "action", "sample_log_prob": "sample_log_prob"}

    def __init__(self, gamma, actor_network: nn.Module, value_network: nn.Module | None = None, *,
                 rho_thresh: float = 1.0, c_thresh: float = 1.0, average_adv: bool = False,
                 differentiable: bool = False, time_dim: int | None = None):
        super().__init__(gamma=gamma, value_network=value_network, differentiable=differentiable, time_dim=time_dim)
        if not hasattr(actor_network, "get_dist"):
            raise TypeError(f"VTrace: actor_network must be a probabilistic actor with a get_dist(td) method "
                            f"(rlbench.modules.ProbabilisticActor), got {type(actor_network).__name__}")
        for name, thresh in (("rho_thresh", rho_thresh), ("c_thresh", c_thresh)):
            if not float(thresh) > 0:
                raise ValueError(f"VTrace: {name} must be > 0, got {thresh}")
        self.actor_network = actor_network
        self.rho_thresh, self.c_thresh = float(rho_thresh), float(c_thresh)
        self.average_adv = average_adv

    def forward(self, td: TensorDictBase, *, params=None, target_params=None) -> TensorDictBase:
        """Writes ``advantage`` and ``value_target`` into ``td`` and returns it.

        Args:
            td: a ``[*B, T]`` TensorDict with ``"next"``, the taken action and ``sample_log_prob``.
            params: parameters to use for ``V(x_t)`` (swapped into the value network).
            target_params: parameters to use for ``V(x_{t+1})``.
        """
        tdim = self._tensor_time_dim(td) - td.batch_dims - 1
        self._next(td)
        value, next_value = self._values(td, params, target_params)
        reward, done, term = self._inputs(td)
        log_pi, log_mu = self._log_probs(td)
        ctx = contextlib.nullcontext() if self.differentiable else torch.no_grad()
        with ctx:
            adv, target = vtrace_advantage_estimate(self._on(self.gamma, reward), log_pi, log_mu, value, next_value,
                                                    reward, done, term, self.rho_thresh, self.c_thresh, tdim)
            if self.average_adv:
                adv = F.normalize(adv)
        td.set(self.tensor_keys.advantage, adv)
        td.set(self.tensor_keys.value_target, target)
        return td

    def _log_probs(self, td: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log pi(a|x), log mu(a|x))`` of the stored actions, each ``[*B, T, 1]``."""
        keys, nb = self.tensor_keys, td.batch_dims
        log_mu = td.get(keys.sample_log_prob, None)
        if log_mu is None:
            raise KeyError(f"VTrace: the TensorDict has no behaviour log-probability {keys.sample_log_prob!r} (build "
                           f"the collecting actor with return_log_prob=True, or rename it with "
                           f"set_keys(sample_log_prob=...)); found keys {keys_list(td)}")
        action = td.get(keys.action, None)
        if action is None:
            raise KeyError(f"VTrace: the TensorDict has no action entry {keys.action!r} (the action taken at each "
                           f"step, which a rollout or a collector batch holds; rename it with set_keys(action=...)); "
                           f"found keys {keys_list(td)}")
        in_keys = list(getattr(self.actor_network, "in_keys", None) or [])
        missing = [k for k in in_keys if k not in td.keys(True)]
        if missing:
            raise KeyError(f"VTrace: the actor reads {missing}, absent from the TensorDict; found keys {keys_list(td)}")
        grad = torch.enable_grad() if self.differentiable else torch.no_grad()
        with grad:
            dist = self.actor_network.get_dist(td.select(*in_keys) if in_keys else td)
            if F.takes_indices(dist):
                F.check_index(action, f"VTrace: {keys.action!r}")
            log_pi = F.log_prob(dist, action, nb)
        return log_pi, F.per_sample(log_mu, nb)
