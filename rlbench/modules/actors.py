"""TensorDict wrappers that turn a network into a policy or a critic.

All of them are tensordict modules (``TensorDictModule``, ``TensorDictSequential``,
``ProbabilisticTensorDictSequential``): they read named entries of a TensorDict and write named
entries back, with the key vocabulary shared by estimators and losses (``"action"``,
``"state_value"``, ``"action_value"``, ``"chosen_action_value"``, ``"sample_log_prob"``).
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import (
    InteractionType,
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModule,
    TensorDictModuleBase,
    TensorDictSequential,
)
from tensordict.nn.distributions import Delta
from torch import nn

from ..specs import Categorical, Composite, OneHot, Spec

__all__ = [
    "Actor",
    "ProbabilisticActor",
    "ValueOperator",
    "QValueModule",
    "QValueActor",
    "ActorValueOperator",
    "ActorCriticWrapper",
    "SAMPLE_LOG_PROB_KEY",
]

# tensordict >= 0.10 names the log-prob "<sample key>_log_prob"; rlbench's vocabulary (DESIGN.md,
# shared with TorchRL) says "sample_log_prob", so every actor here writes that unless told otherwise.
SAMPLE_LOG_PROB_KEY = "sample_log_prob"


def _as_keys(keys, default=None) -> list:
    if keys is None:
        return list(default) if default is not None else []
    if isinstance(keys, (str, tuple)):
        return [keys]
    return list(keys)


def _projectors(spec, keys, owner: str) -> list:
    """``[(key, leaf spec)]`` for the outputs ``spec`` describes (a leaf spec is the first key's)."""
    if spec is None:
        return []
    if isinstance(spec, Spec) and not isinstance(spec, Composite):
        return [(keys[0], spec)]
    if isinstance(spec, Composite):
        return [(k, spec[k]) for k in keys if k in spec]
    raise TypeError(f"{owner}: spec must be an rlbench Spec or Composite (e.g. env.action_spec), "
                    f"got {type(spec).__name__}")


def _spec_on(spec, device: torch.device, cache: dict):
    """``spec`` on ``device``, copied once per device and kept in ``cache``.

    Projecting a CUDA action with a CPU spec would move it to the CPU.
    """
    if spec.device == device:
        return spec
    moved = cache.get((id(spec), device))
    if moved is None:
        moved = cache[(id(spec), device)] = spec.to(device)
    return moved


def _project(td: TensorDictBase, projectors, cache: dict) -> TensorDictBase:
    for key, spec in projectors:
        value = td.get(key, None)
        if value is not None:
            td.set(key, _spec_on(spec, value.device, cache).project(value))
    return td


def _select_subsequence(seq, in_keys, out_keys, base=TensorDictSequential):
    """Select on a plain sequence copy.

    Tensordict's ``select_subsequence`` rebuilds ``type(self)(*modules)``, which our constructors
    (taking networks and keyword options, not a module list) do not accept.
    """
    return base(*seq.module).select_subsequence(in_keys=in_keys, out_keys=out_keys)


class Actor(TensorDictModule):
    """A deterministic policy: ``module(*in_keys) -> out_keys`` (``["action"]`` by default).

    Args:
        module: the network (any callable ``nn.Module``).
        in_keys: what it reads (default ``["observation"]``).
        out_keys: what it writes (default ``["action"]``).
        spec: the action spec (a leaf spec for the first out key, or a ``Composite`` keyed by out keys).
        safe: project the outputs into ``spec`` (``spec.project``: clamp, round, argmax) after each call.

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.modules import MLP
        >>> from rlbench.specs import Bounded
        >>> actor = Actor(MLP(out_features=1, num_cells=[8]), spec=Bounded(-1.0, 1.0, shape=(1,)), safe=True)
        >>> td = actor(TensorDict(observation=torch.randn(4, 3) * 100, batch_size=[4]))
        >>> td["action"].shape, bool(td["action"].abs().max() <= 1)
        (torch.Size([4, 1]), True)
    """

    def __init__(self, module: nn.Module, in_keys=None, out_keys=None, *, spec=None, safe: bool = False):
        in_keys = _as_keys(in_keys, ["observation"])
        out_keys = _as_keys(out_keys, ["action"])
        if safe and spec is None:
            raise ValueError("Actor: safe=True needs a spec to project the outputs into (e.g. spec=env.action_spec)")
        super().__init__(module, in_keys=in_keys, out_keys=out_keys)
        self.spec = spec
        self.safe = safe
        self._proj = _projectors(spec, out_keys, "Actor") if safe else []
        self._spec_cache = {}

    def forward(self, tensordict: TensorDictBase, *args, **kwargs) -> TensorDictBase:
        out = super().forward(tensordict, *args, **kwargs)
        return _project(out, self._proj, self._spec_cache) if self._proj else out


class ProbabilisticActor(ProbabilisticTensorDictSequential):
    """A stochastic policy: ``module`` writes distribution parameters, a distribution samples the action.

    The action is sampled under ``ExplorationType.RANDOM`` and is the distribution's
    ``deterministic_sample`` / ``mode`` / ``mean`` under the other exploration types (see
    ``set_exploration_type``; outside any, ``default_interaction_type`` decides). ``get_dist(td)``
    returns the distribution (losses use it), ``select_subsequence`` comes from tensordict.

    Args:
        module: a tensordict module writing the distribution parameters (e.g. ``"loc"``, ``"scale"``).
        in_keys: the keys of the distribution parameters: a list (the names are the distribution's
            argument names) or a dict ``{argument name: key}``.
        out_keys: where the sample goes (default ``["action"]``).
        distribution_class: e.g. ``TanhNormal``, ``torch.distributions.Normal``, ``OneHotCategorical``.
        distribution_kwargs: extra constructor arguments (e.g. ``{"low": -2.0, "high": 2.0}``).
        spec: the action spec; with ``safe=True`` samples are projected into it.
        safe: project out-of-spec samples with ``spec.project``. ``sample_log_prob`` stays the
            log-probability of the unprojected sample (pick a distribution whose support is the spec,
            such as ``TanhNormal`` with the spec's bounds, so projection never changes anything).
        return_log_prob: also write the sample's log-probability under ``log_prob_key``.
        default_interaction_type: how to pick the action outside ``set_exploration_type``.
        log_prob_key: where the log-probability goes (default ``"sample_log_prob"``).
        cache_dist, n_empirical_estimate: passed to tensordict's ``ProbabilisticTensorDictModule``.

    Example:
        >>> from torch import nn
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import NormalParamExtractor, TensorDictModule
        >>> from rlbench.modules import MLP, TanhNormal
        >>> net = TensorDictModule(nn.Sequential(MLP(out_features=2, num_cells=[8]), NormalParamExtractor()),
        ...                        in_keys=["observation"], out_keys=["loc", "scale"])
        >>> actor = ProbabilisticActor(net, in_keys=["loc", "scale"], distribution_class=TanhNormal,
        ...                            distribution_kwargs={"low": -2.0, "high": 2.0}, return_log_prob=True)
        >>> td = actor(TensorDict(observation=torch.randn(5, 3), batch_size=[5]))
        >>> td["action"].shape, td["sample_log_prob"].shape
        (torch.Size([5, 1]), torch.Size([5]))
    """

    def __init__(self, module: TensorDictModuleBase, in_keys, out_keys=None, *, spec=None, safe: bool = False,
                 distribution_class=Delta, distribution_kwargs: dict | None = None, return_log_prob: bool = False,
                 default_interaction_type: InteractionType = InteractionType.DETERMINISTIC,
                 log_prob_key=SAMPLE_LOG_PROB_KEY, cache_dist: bool = False, n_empirical_estimate: int = 1000):
        if not isinstance(module, TensorDictModuleBase):
            raise TypeError(
                f"ProbabilisticActor: module must be a tensordict module writing the distribution parameters "
                f"(wrap your network: TensorDictModule(net, in_keys=['observation'], out_keys=['loc', 'scale'])), "
                f"got {type(module).__name__}"
            )
        if isinstance(in_keys, dict):
            dist_keys = dict(in_keys)
        else:
            dist_keys = _as_keys(in_keys)
        out_keys = _as_keys(out_keys, ["action"])
        if safe and spec is None:
            raise ValueError("ProbabilisticActor: safe=True needs a spec (e.g. spec=env.action_spec)")
        # remembered so ActorValueOperator can build the same head on top of a shared trunk
        self._head_kwargs = dict(
            in_keys=dist_keys, out_keys=out_keys, spec=spec, safe=safe, distribution_class=distribution_class,
            distribution_kwargs=distribution_kwargs, return_log_prob=return_log_prob,
            default_interaction_type=default_interaction_type, log_prob_key=log_prob_key,
            cache_dist=cache_dist, n_empirical_estimate=n_empirical_estimate,
        )
        head = ProbabilisticTensorDictModule(
            in_keys=dist_keys, out_keys=out_keys, default_interaction_type=default_interaction_type,
            distribution_class=distribution_class, distribution_kwargs=distribution_kwargs,
            return_log_prob=return_log_prob, log_prob_key=log_prob_key, cache_dist=cache_dist,
            n_empirical_estimate=n_empirical_estimate,
        )
        super().__init__(module, head)
        self.spec = spec
        self.safe = safe
        self._proj = _projectors(spec, out_keys, "ProbabilisticActor") if safe else []
        self._spec_cache = {}

    def forward(self, tensordict: TensorDictBase, tensordict_out=None, **kwargs) -> TensorDictBase:
        out = super().forward(tensordict, tensordict_out, **kwargs)
        return _project(out, self._proj, self._spec_cache) if self._proj else out

    def _with_trunk(self, trunk: TensorDictModuleBase) -> "ProbabilisticActor":
        return ProbabilisticActor(TensorDictSequential(trunk, self.module[0]), **self._head_kwargs)

    def select_subsequence(self, in_keys=None, out_keys=None) -> TensorDictSequential:
        """The modules needed to go from ``in_keys`` to ``out_keys`` (a plain ``TensorDictSequential``)."""
        return _select_subsequence(self, in_keys, out_keys)


class ValueOperator(TensorDictModule):
    """A critic: ``module(*in_keys) -> "state_value"`` (or ``"state_action_value"`` when it reads ``"action"``).

    Args:
        module: the network, called with one tensor per in key (:class:`MLP` concatenates them).
        in_keys: what it reads (default ``["observation"]``).
        out_keys: what it writes (default ``["state_value"]``, or ``["state_action_value"]`` when
            ``"action"`` is among ``in_keys``).

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.modules import MLP
        >>> critic = ValueOperator(MLP(out_features=1, num_cells=[8]), in_keys=["observation", "action"])
        >>> critic.out_keys
        ['state_action_value']
        >>> td = TensorDict(observation=torch.randn(4, 3), action=torch.randn(4, 1), batch_size=[4])
        >>> critic(td)["state_action_value"].shape
        torch.Size([4, 1])
    """

    def __init__(self, module: nn.Module, in_keys=None, out_keys=None):
        in_keys = _as_keys(in_keys, ["observation"])
        if out_keys is None:
            out_keys = ["state_action_value"] if "action" in in_keys else ["state_value"]
        out_keys = _as_keys(out_keys)
        super().__init__(module, in_keys=in_keys, out_keys=out_keys)


def _action_space(spec, action_space, owner: str) -> str:
    if action_space is not None:
        name = str(action_space).lower().replace("-", "_")
        if name in ("one_hot", "onehot"):
            return "one_hot"
        if name in ("categorical", "discrete", "index"):
            return "categorical"
        raise ValueError(f"{owner}: action_space must be 'one_hot' or 'categorical', got {action_space!r}")
    if isinstance(spec, Composite) and "action" in spec:
        spec = spec["action"]
    if isinstance(spec, OneHot):
        return "one_hot"
    if isinstance(spec, Categorical):
        return "categorical"
    raise ValueError(
        f"{owner}: cannot tell the action space from spec={spec!r}; pass a OneHot or Categorical action spec "
        f"or action_space='one_hot' / 'categorical'"
    )


def _leaf(spec):
    if isinstance(spec, Composite):
        return spec["action"] if "action" in spec else None
    return spec


class QValueModule(TensorDictModuleBase):
    """Greedy action from Q-values.

    Reads ``"action_value"`` ``[*B, n]``, writes ``"action"`` and ``"chosen_action_value"``.

    ``"action"`` is the argmax, one-hot (``action_space="one_hot"`` or a ``OneHot`` spec, in the
    spec's dtype) or an index ``[*B]`` (``Categorical``). ``"chosen_action_value"`` ``[*B, 1]`` is
    the Q-value of that action. With ``action_mask_key``, actions whose mask entry is False are
    never chosen.

    Args:
        action_space: ``"one_hot"`` or ``"categorical"`` (taken from ``spec`` when omitted).
        spec: the action spec.
        action_value_key, action_key, chosen_action_value_key: the keys (renamable).
        action_mask_key: optional bool mask ``[*B, n]`` of allowed actions.

    Example:
        >>> from tensordict import TensorDict
        >>> q = QValueModule(spec=Categorical(3))
        >>> td = q(TensorDict(action_value=torch.tensor([[1.0, 5.0, 2.0]]), batch_size=[1]))
        >>> td["action"], td["chosen_action_value"]
        (tensor([1]), tensor([[5.]]))
    """

    def __init__(self, action_space: str | None = None, spec=None, *, action_value_key="action_value",
                 action_key="action", chosen_action_value_key="chosen_action_value", action_mask_key=None):
        super().__init__()
        self.action_space = _action_space(spec, action_space, "QValueModule")
        self.spec = spec
        self.action_value_key = action_value_key
        self.action_key = action_key
        self.chosen_action_value_key = chosen_action_value_key
        self.action_mask_key = action_mask_key
        self.in_keys = [action_value_key] + ([action_mask_key] if action_mask_key is not None else [])
        # action_value is read, not written (the distributional subclass adds it: it rewrites it)
        self.out_keys = [action_key, chosen_action_value_key]
        leaf = _leaf(spec)
        default_dtype = torch.bool if self.action_space == "one_hot" else torch.int64
        self._dtype = leaf.dtype if leaf is not None else default_dtype

    def _values_for_argmax(self, td: TensorDictBase, values: torch.Tensor) -> torch.Tensor:
        if self.action_mask_key is None:
            return values
        mask = td.get(self.action_mask_key)
        return values.masked_fill(~mask.bool(), -torch.inf)

    def _write(self, td: TensorDictBase, values: torch.Tensor, scores: torch.Tensor) -> TensorDictBase:
        idx = scores.argmax(-1)
        chosen = values.gather(-1, idx.unsqueeze(-1))
        if self.action_space == "one_hot":
            action = nn.functional.one_hot(idx, values.shape[-1]).to(self._dtype)
        else:
            action = idx.to(self._dtype)
        td.set(self.action_key, action)
        td.set(self.chosen_action_value_key, chosen)
        return td

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        values = tensordict.get(self.action_value_key)
        return self._write(tensordict, values, self._values_for_argmax(tensordict, values))


class QValueActor(TensorDictSequential):
    """A Q-network followed by :class:`QValueModule`: ``observation -> action_value -> action``.

    Args:
        module: the network mapping ``in_keys`` to Q-values ``[*B, n_actions]``.
        in_keys: what it reads (default ``["observation"]``).
        spec: the action spec (``OneHot`` or ``Categorical``).
        action_space: ``"one_hot"`` / ``"categorical"`` when there is no spec.
        action_value_key, action_mask_key: as in :class:`QValueModule`.

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.modules import MLP
        >>> actor = QValueActor(MLP(out_features=2, num_cells=[8]), spec=OneHot(2))
        >>> td = actor(TensorDict(observation=torch.randn(4, 3), batch_size=[4]))
        >>> td["action"].shape, td["action"].dtype, td["action_value"].shape
        (torch.Size([4, 2]), torch.bool, torch.Size([4, 2]))
    """

    def __init__(self, module: nn.Module, in_keys=None, spec=None, action_space: str | None = None, *,
                 action_value_key="action_value", action_mask_key=None):
        in_keys = _as_keys(in_keys, ["observation"])
        if not isinstance(module, TensorDictModuleBase):
            module = TensorDictModule(module, in_keys=in_keys, out_keys=[action_value_key])
        qvalue = QValueModule(action_space, spec, action_value_key=action_value_key,
                              action_mask_key=action_mask_key)
        super().__init__(module, qvalue)
        self.spec = spec
        self.action_space = qvalue.action_space

    def select_subsequence(self, in_keys=None, out_keys=None) -> TensorDictSequential:
        """The modules needed to go from ``in_keys`` to ``out_keys`` (a plain ``TensorDictSequential``)."""
        return _select_subsequence(self, in_keys, out_keys)


class ActorValueOperator(TensorDictSequential):
    """A shared trunk feeding a policy head and a value head: ``common -> (policy, value)``.

    Calling it runs all three. ``get_policy_operator()`` is ``common + policy`` (a
    ``ProbabilisticActor`` again when the policy is one, so ``get_dist`` works) and
    ``get_value_operator()`` is ``common + value``; both share the trunk's parameters.

    Args:
        common_operator: the trunk (a tensordict module writing e.g. ``"hidden"``).
        policy_operator: the policy head, reading the trunk's outputs.
        value_operator: the value head, reading the trunk's outputs.

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.modules import MLP
        >>> from tensordict.nn import TensorDictModule
        >>> common = TensorDictModule(MLP(out_features=8, num_cells=[]), ["observation"], ["hidden"])
        >>> policy = Actor(MLP(out_features=1, num_cells=[]), in_keys=["hidden"])
        >>> value = ValueOperator(MLP(out_features=1, num_cells=[]), in_keys=["hidden"])
        >>> op = ActorValueOperator(common, policy, value)
        >>> td = op(TensorDict(observation=torch.randn(2, 3), batch_size=[2]))
        >>> sorted(td.keys())
        ['action', 'hidden', 'observation', 'state_value']
        >>> op.get_value_operator()(TensorDict(observation=torch.randn(2, 3), batch_size=[2]))["state_value"].shape
        torch.Size([2, 1])
    """

    def __init__(self, common_operator: TensorDictModuleBase, policy_operator: TensorDictModuleBase,
                 value_operator: TensorDictModuleBase):
        super().__init__(common_operator, policy_operator, value_operator)

    def get_policy_operator(self) -> TensorDictSequential:
        common, policy = self.module[0], self.module[1]
        if isinstance(policy, ProbabilisticActor):
            return policy._with_trunk(common)
        if isinstance(policy, ProbabilisticTensorDictSequential):
            return ProbabilisticTensorDictSequential(common, *policy.module)
        return TensorDictSequential(common, policy)

    def get_value_operator(self) -> TensorDictSequential:
        return TensorDictSequential(self.module[0], self.module[2])

    def get_policy_head(self) -> TensorDictModuleBase:
        return self.module[1]

    def get_value_head(self) -> TensorDictModuleBase:
        return self.module[2]

    def select_subsequence(self, in_keys=None, out_keys=None) -> TensorDictSequential:
        """The modules needed to go from ``in_keys`` to ``out_keys`` (a plain ``TensorDictSequential``)."""
        return _select_subsequence(self, in_keys, out_keys)


class ActorCriticWrapper(TensorDictSequential):
    """A policy and a value network with no shared trunk, run together.

    Same interface as :class:`ActorValueOperator`: ``get_policy_operator()`` and
    ``get_value_operator()`` return the two modules themselves.

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.modules import MLP
        >>> policy = Actor(MLP(out_features=1, num_cells=[4]))
        >>> value = ValueOperator(MLP(out_features=1, num_cells=[4]))
        >>> ac = ActorCriticWrapper(policy, value)
        >>> td = ac(TensorDict(observation=torch.randn(2, 3), batch_size=[2]))
        >>> ac.get_policy_operator() is policy, td["state_value"].shape
        (True, torch.Size([2, 1]))
    """

    def __init__(self, policy_operator: TensorDictModuleBase, value_operator: TensorDictModuleBase):
        super().__init__(policy_operator, value_operator)

    def get_policy_operator(self) -> TensorDictModuleBase:
        return self.module[0]

    def get_value_operator(self) -> TensorDictModuleBase:
        return self.module[1]

    get_policy_head = get_policy_operator
    get_value_head = get_value_operator

    def select_subsequence(self, in_keys=None, out_keys=None) -> TensorDictSequential:
        """The modules needed to go from ``in_keys`` to ``out_keys`` (a plain ``TensorDictSequential``)."""
        return _select_subsequence(self, in_keys, out_keys)
