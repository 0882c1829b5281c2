"""``LossModule``: the plumbing every loss shares, so each loss's ``forward`` can read like its paper.

A loss is built from the networks it trains (``DQNLoss(value_network)``,
``SACLoss(actor_network, qvalue_network)``) and is called on a TensorDict of transitions. It
returns a TensorDict whose ``loss_*`` entries are the terms to minimise -- **the total loss is the
sum of the** ``loss_*`` **entries** (:func:`total_loss`) -- plus detached diagnostics under other
names (``"td_error"``, ``"entropy"``, ``"alpha"``, ...), which a logger can record as they are.

The base class handles three things:

* **Networks and targets.** :meth:`LossModule.convert_to_functional` registers a network under a
  name and, on request, a frozen copy of its parameters as ``target_<name>_params`` (a
  ``TensorDictParams`` of buffers: never returned by ``parameters()``, so no optimizer steps them
  and no gradient reaches them). :meth:`LossModule.target_params` swaps such parameters into the
  network for the duration of a ``with`` block (``tensordict``'s ``to_module``), and
  :meth:`LossModule.call_network` runs a network with its online or target parameters -- over a
  whole ensemble at once when it was registered with ``expand_dim`` (a loop over the copies, or one
  ``torch.vmap`` call for many tiny networks: :attr:`LossModule.ensemble_mode`).
  :class:`~rlbench.objectives.utils.SoftUpdate` / :class:`~rlbench.objectives.utils.HardUpdate`
  move targets towards the online parameters.
* **Keys.** Each loss names the entries it reads and writes in ``default_keys`` (a dict of
  *name -> tensordict key*, using the shared vocabulary: ``"reward"``, ``"done"``,
  ``"state_value"`` ...). ``loss.set_keys(name=new_key)`` renames them; ``loss.tensor_keys.name``
  reads them. Reward and done flags are read under ``"next"`` (``td["next", tensor_keys.reward]``),
  as in every rollout.
* **Value estimation.** ``loss.make_value_estimator("gae", gamma=0.99, lmbda=0.95)`` builds one of
  the :class:`ValueEstimators` for the loss's value network; ``loss.value_estimator`` holds it
  (built with the loss's defaults on first use). Keys that the loss and the estimator share are
  kept in sync by ``set_keys``. Losses that bootstrap one step inside ``forward`` (DQN, DDPG, TD3,
  SAC, REDQ) set ``one_step_target``: their ``make_value_estimator`` only sets ``gamma``.

It also gives ``forward`` methods to read the batch (:meth:`LossModule.next_of`,
:meth:`~LossModule.entry`, :meth:`~LossModule.stored_action`, :meth:`~LossModule.reward_and_terminated`,
:meth:`~LossModule.column`, :meth:`~LossModule.advantage`, :meth:`~LossModule.value_target`) and to
run its networks on it (:meth:`~LossModule.network_output`, :meth:`~LossModule.action_dist`,
:meth:`~LossModule.actor_action`, :meth:`~LossModule.state_value`). The math itself is in
:mod:`rlbench.objectives.functional`: plain functions of tensors. A batch goes one way -- the loss's
``forward``, these methods, those functions -- and nothing below calls back up.

**Bad batches are refused by these readers, by name** (so every loss that reads through them
refuses them the same way):

* a missing entry (the action, ``("next", "observation")``, the reward...) raises a ``KeyError``
  that names the key, says where it was looked for (the root or ``"next"``) and how to fix it
  (``set_keys``, or a batch as ``env.rollout()`` / a ``Collector`` / a replay sample gives);
* a per-transition entry of another shape than ``[*B, 1]`` (or ``[*B]``) raises a ``ValueError``
  giving the shape expected -- never a silent broadcast;
* an **empty batch raises** a ``ValueError``: a loss over no transitions is a mean over nothing
  (NaN), and the cause is upstream (a collector or a replay buffer that gave no data);
* a **non-finite reward raises** a ``ValueError`` naming the entry, how many values and the first
  batch index (and so does a non-finite advantage brought by the data). Raising rather than warning:
  one optimizer step on a NaN loss makes every parameter NaN, so the run is lost either way, and a
  warning scrolls by while it continues uselessly. The cost is one finiteness check per batch, a
  ``sum()`` and an ``item()`` (~1.5 us on a CPU at batch 256, under 1% of the smallest loss step; on
  CUDA the ``item()`` waits for the device), on the reward of the off-policy losses and on the
  advantage of the on-policy ones, whose inputs are inspected only when it fails. A non-finite loss
  from finite data (a diverged network) is returned as computed: that is not a data error;
* a float action where a class index is expected (DQN, C51, discrete SAC, a ``Categorical`` policy)
  raises a ``TypeError`` naming the dtype expected instead of being truncated.
"""
from __future__ import annotations

import contextlib
import copy
import enum
import math
from typing import ClassVar

import torch
from tensordict import TensorDictBase, TensorDictParams, from_module
from tensordict.utils import NestedKey
from torch import nn

from . import functional as F
from ._keys import KeysMixin, keys_list

__all__ = ["LossModule", "ValueEstimators", "total_loss", "parse_action_space", "torchrl_alias"]


#: where a loss's batch comes from, for the errors that find something missing in it
_SOURCE = ("a loss reads transitions as env.rollout(), a Collector or a replay-buffer sample gives them: "
           "the observation and the action taken at the root, the step's results (next observation, reward, done, "
           "terminated) under 'next'")


def _shown(key: NestedKey, in_next: bool) -> str:
    """How an error names an entry: ``'action'``, or ``('next', 'observation')`` when it was looked for under next."""
    if not in_next:
        return repr(key)
    return repr(("next", *key) if isinstance(key, tuple) else ("next", key))


def _all_finite(x: torch.Tensor) -> bool:
    """No NaN or inf in ``x`` (``True`` for non-float tensors), cheaply: one sum and one ``item()``.

    ``isfinite().all()`` costs three ops, ~4x the sum on a batch of 256; a NaN or inf anywhere makes the
    sum non-finite (a finite sum overflowing to inf is told apart by the caller's exact check).
    """
    return not x.is_floating_point() or math.isfinite(x.sum().item())


def _lazy_message(owner: str, name: str, network: nn.Module, lazy: list) -> str:
    # Why refuse instead of sizing the layers: a loss has no observation spec to build a fake input from,
    # and building the targets / ensemble copies later (on the first batch) would create parameters after
    # the training loop built its optimizer from loss.parameters() -- an ensemble of critics would then
    # never be trained, and the state_dict keys would change after the first batch.
    in_keys = getattr(network, "in_keys", None)
    reads = f", holding every key it reads ({list(in_keys)})" if in_keys else ""
    return (f"{owner}: {name} has uninitialized lazy layers (parameters {lazy[:3]}): the loss copies parameters "
            f"(targets, ensembles) at construction and has no spec to size them from: run it once on a batch of data "
            f"first, before building the loss: `{name}(env.fake_tensordict())` (a zero-filled step of the env"
            f"{reads}; env.reset() will do for networks that read only observations), or give its layers their "
            f"input sizes (MLP(in_features=...))")


def parse_action_space(action_space, owner: str) -> tuple[str | None, int | None]:
    """``(name, n)`` of a discrete action space given as a string or as a spec (TorchRL's ``action_space=<spec>``).

    ``"categorical"`` (class indices) or ``"one_hot"`` (``"one-hot"`` too), or a ``Categorical`` /
    ``OneHot`` spec (also inside a ``Composite``, under ``"action"``), which gives the number of
    actions as well. ``None`` gives ``(None, None)``: decided later (from the network or the data).

    Example:
        >>> from rlbench.specs import OneHot
        >>> parse_action_space(OneHot(4), "DQNLoss"), parse_action_space("categorical", "DQNLoss")
        (('one_hot', 4), ('categorical', None))
    """
    if action_space is None:
        return None, None
    if isinstance(action_space, str):
        name = action_space.lower().replace("-", "_")
        if name in ("one_hot", "categorical"):
            return name, None
        raise ValueError(f"{owner}: action_space must be 'one_hot' or 'categorical' (or a OneHot / Categorical "
                         f"spec), got {action_space!r}")
    from ..specs import Categorical, Composite, OneHot

    spec = action_space
    if isinstance(spec, Composite) and "action" in spec.keys():
        spec = spec["action"]
    if isinstance(spec, OneHot):
        return "one_hot", int(spec.n)
    if isinstance(spec, Categorical):
        return "categorical", int(spec.n)
    raise ValueError(f"{owner}: action_space must be 'one_hot', 'categorical' or a OneHot / Categorical spec (one "
                     f"discrete action), got {type(action_space).__name__}: {action_space!r}")


def torchrl_alias(owner: str, name: str, value, alias: str, alias_value, default):
    """One hyperparameter spelled two ways (rlbench's ``entropy_coef``, TorchRL's ``entropy_coeff``): either, not both.

    Example:
        >>> torchrl_alias("A2CLoss", "entropy_coef", None, "entropy_coeff", 0.1, 0.01)
        0.1
    """
    if value is not None and alias_value is not None:
        raise TypeError(f"{owner}: got both {name}={value!r} and {alias}={alias_value!r}; they are the same "
                        f"hyperparameter ({alias} is TorchRL's spelling): pass one")
    if value is not None:
        return value
    return default if alias_value is None else alias_value


class ValueEstimators(enum.Enum):
    """The value estimators a loss can build with :meth:`LossModule.make_value_estimator`.

    ``TD0``: one-step bootstrapped return; ``TD1``: discounted return to the end of the data
    (Monte-Carlo, bootstrapped only at a truncation or at the end); ``TDLambda``: the
    lambda-return; ``GAE``: generalized advantage estimation (Schulman et al., 2016); ``VTrace``:
    off-policy targets and advantages for data a lagging policy collected (Espeholt et al., 2018; its
    estimator also needs the loss's actor: :class:`~rlbench.objectives.IMPALALoss` passes it).

    Example:
        >>> ValueEstimators.parse("td_lambda")
        <ValueEstimators.TDLambda: 'td_lambda'>
        >>> ValueEstimators.parse(ValueEstimators.GAE).value
        'gae'
        >>> ValueEstimators.parse("v-trace")
        <ValueEstimators.VTrace: 'vtrace'>
    """

    TD0 = "td0"
    TD1 = "td1"
    TDLambda = "td_lambda"
    GAE = "gae"
    VTrace = "vtrace"

    @classmethod
    def parse(cls, kind: "str | ValueEstimators") -> "ValueEstimators":
        """The member named by ``kind`` (a member, its value like ``"gae"``, or its name; ``-``/``_`` ignored)."""
        if isinstance(kind, cls):
            return kind
        if isinstance(kind, str):
            low = kind.lower().replace("-", "").replace("_", "")
            for member in cls:
                if low in (member.value.replace("_", ""), member.name.lower()):
                    return member
        choices = ", ".join(repr(m.value) for m in cls)
        raise ValueError(f"unknown value estimator {kind!r}: expected one of {choices} or a ValueEstimators member")

    @property
    def estimator_class(self) -> type:
        """The estimator class (imported lazily: estimators are an optional part of a loss)."""
        from .value import estimators

        return {
            ValueEstimators.TD0: estimators.TD0Estimator,
            ValueEstimators.TD1: estimators.TD1Estimator,
            ValueEstimators.TDLambda: estimators.TDLambdaEstimator,
            ValueEstimators.GAE: estimators.GAE,
            ValueEstimators.VTrace: estimators.VTrace,
        }[self]


def total_loss(loss_td: TensorDictBase) -> torch.Tensor:
    """The sum of the ``loss_*`` entries of a loss's output (the quantity to minimise).

    Example:
        >>> from tensordict import TensorDict
        >>> out = TensorDict(loss_actor=torch.tensor(1.0), loss_critic=torch.tensor(2.0),
        ...                  entropy=torch.tensor(5.0))
        >>> total_loss(out)
        tensor(3.)
    """
    terms = [v for k, v in loss_td.items() if isinstance(k, str) and k.startswith("loss_")]
    if not terms:
        raise KeyError(f"total_loss: no 'loss_*' entry in the loss output (keys: {list(loss_td.keys())})")
    return torch.stack([t.sum() if t.ndim else t for t in terms]).sum()


class LossModule(KeysMixin, nn.Module):
    """Base class of rlbench losses: network/target registration, key names, value estimators.

    Subclasses set ``default_keys`` (and, if they use one, ``default_value_estimator`` and
    ``_estimator_network()``; or ``one_step_target``), register their networks in ``__init__`` with
    :meth:`convert_to_functional`, and implement ``forward(td) -> TensorDict`` of ``loss_*`` terms,
    reading the batch with the methods below and computing with :mod:`rlbench.objectives.functional`.

    Args:
        functional: if ``False``, networks are used exactly as given (their own parameters are
            trained; no ``<name>_params`` entry, no targets, no ensembles). Useful for modules
            whose parameters cannot be swapped. Default ``True``.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule
        >>> class MSELoss(LossModule):
        ...     default_keys = {"value": "state_value", "target": "value_target"}
        ...     def __init__(self, value_network):
        ...         super().__init__()
        ...         self.convert_to_functional(value_network, "value_network", create_target_params=True)
        ...     def forward(self, td):
        ...         pred = self.value_network(td.copy())[self.tensor_keys.value]
        ...         with torch.no_grad():
        ...             tgt = self.call_network("value_network", td.copy(), target=True)[self.tensor_keys.value]
        ...         return TensorDict(loss_value=(pred - tgt).pow(2).mean())
        >>> net = TensorDictModule(torch.nn.Linear(3, 1), ["obs"], ["state_value"])
        >>> loss = MSELoss(net)
        >>> out = loss(TensorDict(obs=torch.randn(4, 3), batch_size=[4]))
        >>> out["loss_value"].item()  # the target starts as an exact copy
        0.0
        >>> sorted(n for n, _ in loss.named_buffers())[:1]
        ['target_value_network_params.module.bias']
    """

    default_value_estimator: ClassVar[ValueEstimators] = ValueEstimators.TD0
    #: hyperparameters used by ``make_value_estimator`` when none are given, per estimator kind
    default_value_kwargs: ClassVar[dict] = {"gamma": 0.99, "lmbda": 0.95}
    #: the loss bootstraps a one-step (or n-step) target inside ``forward`` from ``self.gamma``, on
    #: transitions sampled one at a time: ``make_value_estimator`` then only accepts ``"td0"`` and sets ``gamma``
    one_step_target: ClassVar[bool] = False

    def __init__(self, *, functional: bool = True):
        super().__init__()
        self._init_keys()
        self.functional = functional
        self._value_estimator = None
        self._network_names: list[str] = []
        self._expanded: dict[str, int] = {}

    # ------------------------------------------------------------------ networks and targets
    def convert_to_functional(
        self,
        network: nn.Module,
        name: str,
        *,
        create_target_params: bool = False,
        expand_dim: int | None = None,
    ) -> None:
        """Registers ``network`` as ``self.<name>``, its parameters, and optionally a frozen target.

        After the call, ``self.<name>_params`` is a ``TensorDictParams`` of the trainable
        parameters (for a plain network these are the network's own ``nn.Parameter`` objects, so
        ``self.<name>(td)`` trains them too). With ``create_target_params``, a detached copy is kept
        as buffers in ``self.target_<name>_params``.

        Args:
            network: the module (usually a ``TensorDictModule``).
            name: attribute name, e.g. ``"value_network"``.
            create_target_params: also keep a frozen copy of the parameters as the target.
            expand_dim: build an ensemble of this many independent copies (stacked parameters of
                leading size ``expand_dim``; copy 0 keeps the network's values, the others are
                re-initialised with each submodule's ``reset_parameters()``). Call it with
                :meth:`call_network`, which runs every copy (a loop, or ``torch.vmap``: :attr:`ensemble_mode`).
        """
        if not isinstance(network, nn.Module):
            raise TypeError(f"convert_to_functional: {name!r} must be an nn.Module, got {type(network).__name__}")
        # the parameters are copied here (targets, ensembles): a lazy layer has no shape yet, and the
        # failure would otherwise come later, far from its cause
        lazy = [n for n, p in network.named_parameters() if nn.parameter.is_lazy(p)]
        if lazy:
            raise ValueError(_lazy_message(self._get_name(), name, network, lazy))
        if hasattr(self, name) and name in self._network_names:
            raise ValueError(f"convert_to_functional: a network named {name!r} is already registered")
        if not self.functional:
            if create_target_params or expand_dim:
                raise ValueError(
                    f"{self._get_name()}(functional=False) cannot keep target parameters or an ensemble "
                    f"for {name!r}: pass functional=True (or delay_value=False / no ensemble)"
                )
            setattr(self, name, network)
            self._network_names.append(name)
            return
        if expand_dim is None:
            setattr(self, name, network)
            params = TensorDictParams(from_module(network), no_convert=True)  # shares the nn.Parameters
        else:
            if int(expand_dim) < 1:
                raise ValueError(f"convert_to_functional: expand_dim must be >= 1, got {expand_dim}")
            copies = [from_module(network).data.clone()]
            for _ in range(int(expand_dim) - 1):
                fresh = copy.deepcopy(network)
                for sub in fresh.modules():
                    if hasattr(sub, "reset_parameters") and sub is not fresh:
                        sub.reset_parameters()
                copies.append(from_module(fresh).data.clone())
            stacked = torch.stack(copies, 0)
            params = TensorDictParams(stacked)  # new leaves -> nn.Parameters owned by the loss
            # keep the structure only: the network's own tensors are never used, so they live on
            # the meta device (no memory, not returned by parameters())
            skeleton = copy.deepcopy(network)
            from_module(skeleton).data.to("meta").to_module(skeleton)
            self.__dict__.setdefault("_skeletons", {})[name] = skeleton
            self._expanded[name] = int(expand_dim)
        setattr(self, name + "_params", params)
        if create_target_params:
            target = params.data.clone()
            setattr(self, "target_" + name + "_params", TensorDictParams(target, no_convert=True))
        self._network_names.append(name)

    def _network(self, name: str) -> nn.Module:
        if name in self._expanded:
            return self.__dict__["_skeletons"][name]
        if name not in self._network_names:
            raise KeyError(f"{self._get_name()} has no network {name!r}; registered: {self._network_names}")
        return getattr(self, name)

    def network_params(self, name: str, *, target: bool = False) -> TensorDictBase:
        """The (online or target) parameters of network ``name`` as a TensorDict."""
        self._network(name)
        attr = ("target_" if target else "") + name + "_params"
        if not hasattr(self, attr):
            what = "target parameters" if target else "functional parameters"
            raise KeyError(
                f"{self._get_name()}: network {name!r} has no {what} ({attr}); "
                f"register it with convert_to_functional(..., create_target_params=True)"
            )
        return getattr(self, attr)

    @property
    def target_names(self) -> list[str]:
        """Names of the networks that have target parameters (what the updaters move)."""
        return [n for n in self._network_names if hasattr(self, "target_" + n + "_params")]

    @contextlib.contextmanager
    def target_params(self, name: str, params: TensorDictBase | None = None):
        """Within the block, network ``name`` runs with its target parameters (or ``params``).

        The swapped-in tensors are used as plain tensors: nothing accumulates a gradient in them,
        though gradients still flow to the network's *inputs* (for a loss that differentiates
        through a frozen critic). Yields the network.
        """
        if name in self._expanded:
            raise ValueError(f"{name!r} is an ensemble: use call_network({name!r}, td, target=True)")
        net = self._network(name)
        if params is None:
            params = self.network_params(name, target=True)
        with params.detach().to_module(net, preserve_module_state=False):
            yield net

    def call_network(self, name: str, td: TensorDictBase, *, target: bool = False,
                     params: TensorDictBase | None = None, detach: bool | None = None,
                     _only: NestedKey | None = None) -> TensorDictBase:
        """Runs network ``name`` on ``td`` with its online (default) or target parameters.

        For an ensemble (``expand_dim=E``) the result has a new leading dim ``E``: every copy sees
        the same ``td`` (a loop over the copies, or ``torch.vmap`` over the stacked parameters for
        many tiny networks: :attr:`ensemble_mode`, measured by size). A ``td``
        that already has leading dim ``E`` is *not* broadcast: pass ``td.expand(E, ...)`` and
        map it yourself if each copy needs its own input.

        Args:
            name: a registered network.
            td: input TensorDict (written in place for plain networks, as TensorDictModules do).
            target: use the target parameters.
            params: explicit parameters to use instead (overrides ``target``).
            detach: use the parameters without gradient; defaults to ``target``.
            _only: (internal, for :meth:`network_output`) an output key: an ensemble run in a loop may
                then return just that entry, stacked, as a tensor.
        """
        if params is None:
            params = self.network_params(name, target=target) if (target or self.functional) else None
        if detach is None:
            detach = target
        net = self._network(name)
        if name not in self._expanded:
            if params is None or (not detach and params is getattr(self, name + "_params", None)):
                return net(td)  # the network already holds these parameters
            return self._run_member(name, self._leaves(name, params, detach), td)
        leaves = self._leaves(name, params, detach)
        copies = leaves[0].shape[0]
        if not self._vmap_ensemble(name, copies):
            outs = [self._run_member(name, [t[i] for t in leaves], td.copy()) for i in range(copies)]
            if _only is not None:  # network_output: stack the one entry it reads, not whole TensorDicts
                return torch.stack([o.get(_only) for o in outs], 0)
            return torch.stack(outs, 0)

        def one(tensors, td_in):
            return self._run_member(name, tensors, td_in)

        return torch.vmap(one, (0, None), randomness="different")(leaves, td)

    def _leaves(self, name: str, params: TensorDictBase, detach: bool) -> list[torch.Tensor]:
        """The tensors of ``params`` in ``keys(True, True)`` order, detached if asked (targets need no detach).

        The leaves of the registered online / target parameters are cached (walking a ``TensorDictParams``
        costs ~50 us): the updaters, the optimizers and ``load_state_dict`` change them in place, and a
        cache whose first or last tensor is no longer the stored one (``loss.to(device)``) is rebuilt.
        """
        registered = params is getattr(self, name + "_params", None) or \
            params is getattr(self, "target_" + name + "_params", None)
        cache = self.__dict__.setdefault("_leaf_cache", {})
        hit = cache.get(id(params)) if registered else None
        if hit is not None and hit[0] is params and params.get(hit[1]) is hit[2][0] \
                and params.get(hit[3]) is hit[2][-1]:
            leaves = hit[2]
        else:
            keys = list(params.keys(True, True))
            leaves = [params.get(k) for k in keys]
            if registered:
                cache[id(params)] = (params, keys[0], leaves, keys[-1])
        if detach:
            leaves = [t.detach() if t.requires_grad else t for t in leaves]
        return leaves

    def _slots(self, name: str) -> list[tuple[dict, str]]:
        """Where each parameter of network ``name`` lives: ``(submodule._parameters or _buffers, attribute)``.

        Built once per network, in the order of its parameters' ``keys(True, True)``.
        """
        cache = self.__dict__.setdefault("_param_slots", {})
        slots = cache.get(name)
        if slots is None:
            net, slots = self._network(name), []
            for key in self.network_params(name).keys(True, True):
                key = key if isinstance(key, tuple) else (key,)
                mod = net
                for part in key[:-1]:
                    mod = getattr(mod, part)
                store = mod._parameters if key[-1] in mod._parameters else mod._buffers
                slots.append((store, key[-1]))
            cache[name] = slots
        return slots

    def _run_member(self, name: str, tensors: list[torch.Tensor], td: TensorDictBase) -> TensorDictBase:
        """Runs network ``name`` on ``td`` with ``tensors`` (in :meth:`_slots` order) in place of its parameters.

        The tensors go in as they are, restored afterwards: a swap of a few dict entries. (tensordict's
        ``to_module`` costs ~50-100 us per call for a 3-layer MLP, and by default wraps each tensor in a
        fresh ``nn.Parameter`` -- a detached critic would then still compute weight gradients nobody reads.)
        """
        slots = self._slots(name)
        old = [store[attr] for store, attr in slots]
        try:
            for (store, attr), t in zip(slots, tensors):
                store[attr] = t
            return self._network(name)(td)
        finally:
            for (store, attr), t in zip(slots, old):
                store[attr] = t

    #: an ensemble of more than :attr:`vmap_min_copies` copies, each of at most this many parameters, is
    #: evaluated with one ``torch.vmap`` call; any other with a Python loop over its copies
    #: (``ensemble_mode="auto"``). Measured (SAC update, batch 256, one CPU thread; loop time / vmap time):
    #: 2 critics 64/256/1024 wide 0.86/0.88/0.92; 10 critics 64 wide 1.19-1.38, 256 wide 0.87-0.91, 1024 wide
    #: 0.83-1.19 (noisy). vmap's fixed cost per call only pays off for many tiny networks (10 of ~6k parameters).
    vmap_max_params: ClassVar[int] = 20_000
    vmap_min_copies: ClassVar[int] = 4
    #: ``"auto"`` (by :attr:`vmap_max_params` and :attr:`vmap_min_copies`), ``"vmap"`` or ``"loop"``
    ensemble_mode: str = "auto"

    def _vmap_ensemble(self, name: str, copies: int) -> bool:
        """Whether ensemble ``name`` is evaluated with one ``torch.vmap`` call (else a loop over its copies)."""
        mode = self.ensemble_mode
        if mode == "auto":
            size = self.__dict__.setdefault("_member_sizes", {}).get(name)
            if size is None:
                size = sum(int(t[0].numel()) for t in self.network_params(name).values(True, True))
                self.__dict__["_member_sizes"][name] = size
            return copies > self.vmap_min_copies and size <= self.vmap_max_params
        if mode not in ("vmap", "loop"):
            raise ValueError(f"{self._get_name()}: ensemble_mode must be 'auto', 'vmap' or 'loop', got {mode!r}")
        return mode == "vmap"


    # ------------------------------------------------------------------ value estimators
    def _estimator_network(self) -> nn.Module | None:
        """The value network the default estimator should call (``None``: read stored values)."""
        return None

    def make_value_estimator(self, value_type: "str | ValueEstimators | None" = None, **hyperparams):
        """Builds the value estimator used by this loss; returns ``self``.

        Args:
            value_type: ``"td0"``, ``"td1"``, ``"td_lambda"``, ``"gae"`` or a
                :class:`ValueEstimators` member; defaults to ``default_value_estimator``.
            **hyperparams: passed to the estimator (``gamma``, ``lmbda``, ``value_network``,
                ``average_gae``...). Missing ``gamma``/``lmbda`` come from ``default_value_kwargs``.

        A ``one_step_target`` loss builds no estimator: only ``"td0"`` is accepted, and ``gamma``
        (if given) becomes ``self.gamma``.
        """
        if self.one_step_target:
            return self._set_one_step_gamma(value_type, hyperparams)
        kind = ValueEstimators.parse(value_type if value_type is not None else self.default_value_estimator)
        hp = {}
        for k, v in self.default_value_kwargs.items():
            if k == "lmbda" and kind in (ValueEstimators.TD0, ValueEstimators.TD1):
                continue
            hp[k] = v
        hp.update(hyperparams)
        if "value_network" not in hp:
            hp["value_network"] = self._estimator_network()
        try:
            est = kind.estimator_class(**hp)
        except TypeError as err:
            raise TypeError(f"{self._get_name()}.make_value_estimator({kind.value!r}): {err}") from None
        shared = {k: v for k, v in self._tensor_keys.items() if k in est._tensor_keys}
        est.set_keys(**shared)
        self._set_estimator(est)
        return self

    def _set_one_step_gamma(self, value_type, hyperparams: dict):
        # the target bootstraps from a value that involves the policy or the target networks (a soft
        # value, a smoothed target action, a max over actions) on transitions sampled one at a time
        # from a replay buffer, so the multi-step estimators do not apply
        owner = self._get_name()
        kind = ValueEstimators.parse(value_type if value_type is not None else ValueEstimators.TD0)
        if kind is not ValueEstimators.TD0:
            raise ValueError(f"{owner}.make_value_estimator: only 'td0' is supported (the one-step target; use "
                             f"nstep_return for multi-step targets), got {kind.value!r}")
        extra = sorted(set(hyperparams) - {"gamma"})
        if extra:
            raise TypeError(f"{owner}.make_value_estimator('td0'): unexpected hyperparameter(s) {extra}; "
                            f"expected gamma")
        gamma = float(hyperparams.get("gamma", self.gamma))
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"{owner}.make_value_estimator: gamma must be in [0, 1], got {gamma}")
        self.gamma = gamma
        return self

    def _set_estimator(self, estimator) -> None:
        # kept out of the submodules on purpose: the estimator's value network is the loss's own
        # (already registered), and a lazily built estimator must not change the loss's
        # state_dict keys (a checkpoint would no longer load into a fresh loss)
        self.__dict__["_value_estimator"] = estimator

    @property
    def value_estimator(self):
        """The loss's value estimator (built with ``make_value_estimator()`` defaults on first use)."""
        if self._value_estimator is None:
            self.make_value_estimator()
        return self._value_estimator

    @value_estimator.setter
    def value_estimator(self, estimator) -> None:
        self._set_estimator(estimator)

    def _keys_changed(self, changed: dict) -> None:
        est = self._value_estimator
        if est is not None:
            shared = {k: v for k, v in changed.items() if k in est._tensor_keys}
            if shared:
                est.set_keys(**shared)

    # ------------------------------------------------------------------ reading the batch
    def next_of(self, td: TensorDictBase) -> TensorDictBase:
        """``td["next"]``, with an error that says what a transition must contain; an empty batch is refused."""
        self._check_nonempty(td)
        nxt = td.get("next", None)
        if not isinstance(nxt, TensorDictBase):
            raise KeyError(f"{self._get_name()}: expected transitions with a 'next' sub-TensorDict (next observation, "
                           f"reward, done, terminated), as env.rollout and the collectors write; "
                           f"got keys {keys_list(td)}")
        return nxt

    def entry(self, td: TensorDictBase, name: str, why: str) -> torch.Tensor:
        """``td[tensor_keys.<name>]``, read at the root of the batch; if absent, a ``KeyError`` that says ``why``.

        The error names the key and where it was looked for, and says how to fix it (rename it with
        ``set_keys``, or give the loss a batch of transitions from a rollout or a collector). An
        empty batch raises a ``ValueError``.
        """
        self._check_nonempty(td)
        key = self._tensor_keys[name] if name in self._tensor_keys else getattr(self.tensor_keys, name)
        x = td.get(key, None)
        if x is None:
            raise self._missing_entry(td, key, name, why)
        return x

    def stored_action(self, td: TensorDictBase, *, index: bool = False) -> torch.Tensor:
        """The action taken in each transition (``td[tensor_keys.action]``, at the root), named when missing.

        Args:
            td: the batch.
            index: the actions are class indices (a ``Categorical`` action space): a floating-point
                action is refused with a ``TypeError`` naming the dtype (it would be truncated).
        """
        action = self.entry(td, "action", "the action taken in each transition, which the policy wrote at "
                                          "collection time")
        if index and (action.is_floating_point() or action.is_complex()):
            F.check_index(action, f"{self._get_name()}: {self.tensor_keys.action!r}")
        return action

    def reward_and_terminated(self, td: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r, terminated)`` of each transition as floats ``[*batch, 1]``, read under ``"next"``.

        Only ``terminated`` stops bootstrapping: a truncated episode still has a future value. Data
        without a ``terminated`` entry (older recordings) falls back to ``done``. A reward of another
        shape, or with a non-finite value, raises a ``ValueError`` naming it.
        """
        keys, owner = self.tensor_keys, self._get_name()
        nxt = self.next_of(td)
        reward = nxt.get(keys.reward, None)
        if reward is None:
            raise self._missing_entry(nxt, keys.reward, "reward", "the reward of each transition", in_next=True)
        flag = nxt.get(keys.terminated, None)
        if flag is None:
            flag = nxt.get(keys.done, None)
        if flag is None:
            raise KeyError(f"{owner}: the batch has neither ('next', {keys.terminated!r}) nor ('next', {keys.done!r}) "
                           f"(rename them with set_keys(terminated=..., done=...)); {_SOURCE}; "
                           f"found next keys {keys_list(nxt)}")
        reward = self._as_column(reward, nxt.batch_size, keys.reward, True)
        flag = self._as_column(flag, nxt.batch_size, keys.terminated, True)
        self._check_finite(reward, keys.reward, True, nxt.batch_dims)
        dtype = reward.dtype if reward.is_floating_point() else torch.get_default_dtype()
        return reward.to(dtype), flag.to(dtype)

    def column(self, td: TensorDictBase, name: str, why: str) -> torch.Tensor:
        """The entry ``tensor_keys.<name>`` of ``td`` shaped ``[*batch, 1]``; if absent, a ``KeyError`` saying ``why``.

        A ``[*batch]`` entry gets its trailing dim; any other shape is refused (never a silent broadcast).
        """
        return self._as_column(self.entry(td, name, why), td.batch_size, self._tensor_keys[name], False)

    def advantage(self, td: TensorDictBase) -> torch.Tensor:
        """``td[advantage]`` ``[*batch, 1]``, written first by the value estimator (GAE by default) when missing.

        The estimator writes ``advantage`` and ``value_target`` into ``td`` itself, so a training loop can
        call the loss on a full batch once and reuse them, or call ``loss.value_estimator(batch)`` before
        splitting it into minibatches. A non-finite advantage raises when the data is the cause (a
        stored advantage, or the reward it was computed from); from finite data it is returned as is.
        """
        self._check_nonempty(td)
        key = self.tensor_keys.advantage
        stored = td.get(key, None) is not None
        if not stored:
            with torch.no_grad():
                self.value_estimator(td)
        adv = self.column(td, "advantage", f"the value estimator did not write it; use an advantage estimator "
                                           f"(make_value_estimator('gae')) or provide {key!r}")
        if not _all_finite(adv):  # one check per batch; the cause is looked for only when it fails
            if stored:
                self._check_finite(adv, key, False, td.batch_dims)
            nxt = td.get("next", None)
            reward = nxt.get(self.tensor_keys.reward, None) if isinstance(nxt, TensorDictBase) else None
            if reward is not None:
                self._check_finite(reward, self.tensor_keys.reward, True, td.batch_dims)
        return adv

    def value_target(self, td: TensorDictBase) -> torch.Tensor:
        """``td[value_target]`` ``[*batch, 1]``: the critic's regression target, written by the value estimator."""
        return self.column(td, "value_target", f"written by the value estimator along with "
                                               f"{self.tensor_keys.advantage!r}")

    def _check_nonempty(self, td: TensorDictBase) -> None:
        # a mean over no transitions is NaN: the cause is upstream (no data collected or sampled), say so here
        if td.batch_size.numel() == 0:  # (TensorDict.numel() is 1 for an empty batch)
            raise ValueError(f"{self._get_name()}: got an empty batch (batch_size {list(td.batch_size)}): a loss over "
                             f"no transitions is undefined (its mean would be NaN). Check the collector's "
                             f"frames_per_batch, that the replay buffer holds data before sampling, and how the "
                             f"batch is split into minibatches")

    def _as_column(self, x: torch.Tensor, batch_size, key: NestedKey, in_next: bool) -> torch.Tensor:
        # the common shapes first: the error's text is built only when it is needed
        if x.ndim == len(batch_size) + 1 and x.shape[-1] == 1 and x.shape[:-1] == batch_size:
            return x
        return F.as_column(x, batch_size, f"{self._get_name()}: {_shown(key, in_next)}")

    def _check_finite(self, x: torch.Tensor, key: NestedKey, in_next: bool, batch_dims: int) -> None:
        if _all_finite(x):
            return
        bad = ~torch.isfinite(x)
        if not bool(bad.any()):  # the sum overflowed, no element is non-finite
            return
        shown = _shown(key, in_next)
        first = tuple(int(i) for i in bad.nonzero()[0][:batch_dims])
        raise ValueError(
            f"{self._get_name()}: {shown} holds {int(bad.sum())} non-finite value(s) (NaN or inf), the first at "
            f"batch index {first}: the loss would be NaN, and one optimizer step on it makes every parameter NaN. "
            f"Fix the data (the env's reward, a transform) or drop those transitions before the loss: "
            f"td = td[td[{shown}].reshape(*td.shape, -1).isfinite().all(-1)]")

    def _missing_entry(self, td: TensorDictBase, key: NestedKey, name: str, why: str, *,
                       in_next: bool = False) -> KeyError:
        where = "under 'next'" if in_next else "at the root of the batch"
        return KeyError(
            f"{self._get_name()}: no {_shown(key, in_next)} entry in the batch ({why}); looked for it {where}, as "
            f"tensor_keys.{name} = {key!r} (rename it with set_keys({name}=...)). {_SOURCE[0].upper()}{_SOURCE[1:]}. "
            f"Found {'next ' if in_next else ''}keys {keys_list(td)}")

    # ------------------------------------------------------------------ running networks on the batch
    def network_output(self, name: str, td: TensorDictBase, key: NestedKey, *, action: torch.Tensor | None = None,
                       target: bool = False, frozen: bool = False, params: TensorDictBase | None = None,
                       strict: bool = False) -> torch.Tensor:
        """Runs network ``name`` on the entries of ``td`` it reads (its ``in_keys``) and returns its output ``key``.

        The caller's data is never written: the network sees a shallow copy holding its inputs. When
        an input is missing (and the network fails on it), the ``KeyError`` names it, under
        ``"next"`` when ``td`` is the ``"next"`` part of the batch.

        Args:
            name: a registered network.
            td: the batch (or its ``"next"`` part).
            key: the output entry to return, e.g. ``tensor_keys.state_action_value``.
            action: evaluate a critic at this action instead of the stored one (written under
                ``tensor_keys.action`` in the copy).
            target: the parameters to bootstrap from: the target parameters, or the online ones
                detached when the network has no target.
            frozen: the online parameters, detached (gradients reach the inputs only: a critic
                inside an actor loss).
            params: explicit parameters (e.g. a subset of an ensemble), detached if ``target`` or ``frozen``.
            strict: refuse a batch that lacks one of the inputs, naming it (else the network decides).
        """
        self._check_nonempty(td)
        data = self.network_inputs(name, td, action)
        if strict:
            keys = data.keys(True, True)
            if any(k not in keys for k in self._network(name).in_keys):
                raise self._missing_inputs(name, td, action is not None)
        try:
            if params is None and target and hasattr(self, "target_" + name + "_params"):
                out = self.call_network(name, data, target=True, _only=key)
            else:
                out = self.call_network(name, data, params=params, detach=target or frozen, _only=key)
            if isinstance(out, torch.Tensor):
                return out
        except KeyError as err:
            missing = self._missing_inputs(name, td, action is not None)
            if missing is None:
                raise
            raise missing from err
        return out.get(key)

    def network_inputs(self, name: str, td: TensorDictBase, action: torch.Tensor | None = None) -> TensorDictBase:
        """A shallow copy of the entries of ``td`` that network ``name`` reads, ``action`` written in if given.

        Critics are evaluated on actions the policy proposes without touching the caller's data.
        """
        in_keys = self._network(name).in_keys
        if action is None:
            return td.select(*in_keys, strict=False)
        action_key = self.tensor_keys.action
        data = td.select(*[k for k in in_keys if k != action_key], strict=False)
        data.set(action_key, action)
        return data

    def _missing_inputs(self, name: str, td: TensorDictBase, action_given: bool) -> KeyError | None:
        """The ``KeyError`` naming the inputs of network ``name`` absent from ``td``, or ``None`` if none is."""
        present = set(td.keys(True))
        action_key = self._tensor_keys.get("action")
        missing = [k for k in self._network(name).in_keys
                   if k not in present and not (action_given and k == action_key)]
        if not missing:
            return None
        # the "next" part of a transition holds the step's reward / done flags and no "next" of its own
        flags = [self._tensor_keys.get(k) for k in ("reward", "done", "terminated")]
        in_next = "next" not in present and any(f is not None and f in present for f in flags)
        shown = ", ".join(_shown(k, in_next) for k in missing)
        where = "under 'next', the next state of each transition" if in_next else "at the root of the batch"
        return KeyError(f"{self._get_name()}: the {name} reads [{shown}], absent from the batch (looked for "
                        f"{where}; rename the network's in_keys or the data's keys). {_SOURCE[0].upper()}"
                        f"{_SOURCE[1:]}. Found {'next ' if in_next else ''}keys {keys_list(td)}")

    def action_dist(self, td: TensorDictBase, name: str = "actor_network"):
        """The action distribution the (probabilistic) actor ``name`` gives the states of ``td``."""
        self._check_nonempty(td)
        try:
            return self._network(name).get_dist(self.network_inputs(name, td))
        except KeyError as err:
            missing = self._missing_inputs(name, td, False)
            if missing is None:
                raise
            raise missing from err

    def actor_action(self, td: TensorDictBase, *, target: bool = False, name: str = "actor_network") -> torch.Tensor:
        """The action a deterministic actor (DDPG, TD3) takes in ``td``'s states.

        ``target`` as in :meth:`network_output`. Read under the loss's ``action`` key, or under the
        actor's last output key when it writes another name.
        """
        actor = self._network(name)
        key = self.tensor_keys.action
        return self.network_output(name, td, key if key in actor.out_keys else actor.out_keys[-1], target=target)

    def state_value(self, td: TensorDictBase, name: str = "critic_network") -> torch.Tensor:
        """``V(s)`` ``[*batch, 1]`` from the critic ``name``, read under ``tensor_keys.value``."""
        key = self.tensor_keys.value
        return F.as_column(self.network_output(name, td, key), td.batch_size, f"{self._get_name()}: {key!r}")

    # ------------------------------------------------------------------ construction helpers
    def register_coefficient(self, name: str, value: float, *, trainable: bool) -> None:
        """Adds the scalar ``self.<name>``: an ``nn.Parameter`` when ``trainable``, else a buffer (saved, not trained).

        Example:
            >>> loss = LossModule()
            >>> loss.register_coefficient("log_alpha", 0.0, trainable=True)
            >>> [n for n, _ in loss.named_parameters()]
            ['log_alpha']
        """
        tensor = torch.tensor(float(value))
        if trainable:
            setattr(self, name, nn.Parameter(tensor))
        else:
            self.register_buffer(name, tensor)

    def _require_probabilistic(self, actor: nn.Module) -> None:
        """Stochastic-policy losses need the actor's distribution, not just its action."""
        if not hasattr(actor, "get_dist"):
            raise TypeError(
                f"{self._get_name()}: actor_network must be a probabilistic actor with a get_dist(td) method "
                f"(rlbench.modules.ProbabilisticActor or tensordict's ProbabilisticTensorDictSequential), "
                f"got {type(actor).__name__}")

    def _check_loss_function(self, kind: str, arg: str = "loss_function") -> str:
        """Validates a regression-loss name at construction (not on the first batch)."""
        if kind not in ("l2", "l1", "smooth_l1"):
            where = "" if arg == "loss_function" else f" for {arg}"
            raise ValueError(f"{self._get_name()}: unknown loss_function {kind!r}{where}; "
                             f"expected 'l2', 'l1' or 'smooth_l1'")
        return kind

    def forward(self, td: TensorDictBase) -> TensorDictBase:  # pragma: no cover - abstract
        raise NotImplementedError(f"{self._get_name()} must implement forward(td) -> TensorDict of loss_* terms")

