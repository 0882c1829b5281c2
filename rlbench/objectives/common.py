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
  whole ensemble at once (``torch.vmap``) when it was registered with ``expand_dim``.
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
  kept in sync by ``set_keys``.
"""
from __future__ import annotations

import contextlib
import copy
import enum
from typing import ClassVar, Iterator

import torch
from tensordict import TensorDict, TensorDictBase, TensorDictParams, from_module
from tensordict.utils import NestedKey
from torch import nn

__all__ = ["LossModule", "ValueEstimators", "total_loss"]


class ValueEstimators(enum.Enum):
    """The value estimators a loss can build with :meth:`LossModule.make_value_estimator`.

    ``TD0``: one-step bootstrapped return; ``TD1``: discounted return to the end of the data
    (Monte-Carlo, bootstrapped only at a truncation or at the end); ``TDLambda``: the
    lambda-return; ``GAE``: generalized advantage estimation (Schulman et al., 2016).

    Example:
        >>> ValueEstimators.parse("td_lambda")
        <ValueEstimators.TDLambda: 'td_lambda'>
        >>> ValueEstimators.parse(ValueEstimators.GAE).value
        'gae'
    """

    TD0 = "td0"
    TD1 = "td1"
    TDLambda = "td_lambda"
    GAE = "gae"

    @classmethod
    def parse(cls, kind: "str | ValueEstimators") -> "ValueEstimators":
        """The member named by ``kind`` (a member, its value like ``"gae"``, or its name)."""
        if isinstance(kind, cls):
            return kind
        if isinstance(kind, str):
            low = kind.lower().replace("-", "_")
            for member in cls:
                if low in (member.value, member.name.lower()):
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
        }[self]


def total_loss(loss_td: TensorDictBase) -> torch.Tensor:
    """The sum of the ``loss_*`` entries of a loss's output (the quantity to minimise).

    Example:
        >>> out = TensorDict(loss_actor=torch.tensor(1.0), loss_critic=torch.tensor(2.0),
        ...                  entropy=torch.tensor(5.0))
        >>> total_loss(out)
        tensor(3.)
    """
    terms = [v for k, v in loss_td.items() if isinstance(k, str) and k.startswith("loss_")]
    if not terms:
        raise KeyError(f"total_loss: no 'loss_*' entry in the loss output (keys: {list(loss_td.keys())})")
    return torch.stack([t.sum() if t.ndim else t for t in terms]).sum()


class _KeyView:
    """Read-only attribute view of a loss's key mapping (``loss.tensor_keys.reward``)."""

    __slots__ = ("_keys", "_owner")

    def __init__(self, keys: dict, owner: str):
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_owner", owner)

    def __getattr__(self, name: str) -> NestedKey:
        try:
            return self._keys[name]
        except KeyError:
            raise AttributeError(
                f"{self._owner} has no key named {name!r}; its keys are {sorted(self._keys)}"
            ) from None

    def __setattr__(self, name, value):
        raise AttributeError(f"use {self._owner}.set_keys({name}=...) to rename a key")

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._keys.items())
        return f"{self._owner}.tensor_keys({inner})"


def _check_key(name: str, key) -> NestedKey:
    if isinstance(key, str) or (isinstance(key, tuple) and key and all(isinstance(k, str) for k in key)):
        return key
    raise TypeError(f"set_keys: key {name!r} must be a str or a tuple of str (a tensordict key), got {key!r}")


class _KeysMixin:
    """``default_keys`` / ``set_keys`` / ``tensor_keys`` shared by losses and value estimators."""

    default_keys: ClassVar[dict] = {}

    def _init_keys(self) -> None:
        self._tensor_keys = dict(self.default_keys)

    @property
    def tensor_keys(self) -> _KeyView:
        """The keys this object reads and writes, as attributes (``.tensor_keys.reward``)."""
        return _KeyView(self._tensor_keys, type(self).__name__)

    def set_keys(self, **kwargs: NestedKey):
        """Renames the entries this object reads or writes; unknown names raise a ``ValueError``.

        Returns ``self`` so calls chain.
        """
        unknown = sorted(set(kwargs) - set(self._tensor_keys))
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.set_keys: unknown key name(s) {unknown}; "
                f"expected some of {sorted(self._tensor_keys)}"
            )
        for name, key in kwargs.items():
            self._tensor_keys[name] = _check_key(name, key)
        self._keys_changed(kwargs)
        return self

    def _keys_changed(self, changed: dict) -> None:  # hook for subclasses
        pass


class LossModule(_KeysMixin, nn.Module):
    """Base class of rlbench losses: network/target registration, key names, value estimators.

    Subclasses set ``default_keys`` (and, if they use one, ``default_value_estimator`` and
    ``_estimator_network()``), register their networks in ``__init__`` with
    :meth:`convert_to_functional`, and implement ``forward(td) -> TensorDict`` of ``loss_*`` terms.

    Args:
        functional: if ``False``, networks are used exactly as given (their own parameters are
            trained; no ``<name>_params`` entry, no targets, no ensembles). Useful for modules
            whose parameters cannot be swapped. Default ``True``.

    Example:
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
                :meth:`call_network`, which maps over the copies with ``torch.vmap``.
        """
        if not isinstance(network, nn.Module):
            raise TypeError(f"convert_to_functional: {name!r} must be an nn.Module, got {type(network).__name__}")
        if any(nn.parameter.is_lazy(p) for p in network.parameters()):
            raise ValueError(
                f"convert_to_functional: {name!r} has uninitialized lazy layers (e.g. MLP without in_features); "
                "run it once on a batch of data (or give in_features) before building the loss"
            )
        if hasattr(self, name) and name in self._network_names:
            raise ValueError(f"convert_to_functional: a network named {name!r} is already registered")
        if not self.functional:
            if create_target_params or expand_dim:
                raise ValueError(
                    f"{type(self).__name__}(functional=False) cannot keep target parameters or an ensemble "
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

    def make_target(self, name: str, network: nn.Module) -> None:
        """Shorthand for ``convert_to_functional(network, name, create_target_params=True)``."""
        self.convert_to_functional(network, name, create_target_params=True)

    def _network(self, name: str) -> nn.Module:
        if name in self._expanded:
            return self.__dict__["_skeletons"][name]
        if name not in self._network_names:
            raise KeyError(f"{type(self).__name__} has no network {name!r}; registered: {self._network_names}")
        return getattr(self, name)

    def network_params(self, name: str, *, target: bool = False) -> TensorDictBase:
        """The (online or target) parameters of network ``name`` as a TensorDict."""
        self._network(name)
        attr = ("target_" if target else "") + name + "_params"
        if not hasattr(self, attr):
            what = "target parameters" if target else "functional parameters"
            raise KeyError(
                f"{type(self).__name__}: network {name!r} has no {what} ({attr}); "
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
                     params: TensorDictBase | None = None, detach: bool | None = None) -> TensorDictBase:
        """Runs network ``name`` on ``td`` with its online (default) or target parameters.

        For an ensemble (``expand_dim=E``) the result has a new leading dim ``E``: every copy sees
        the same ``td`` (``torch.vmap`` over the stacked parameters; no Python loop). A ``td``
        that already has leading dim ``E`` is *not* broadcast: pass ``td.expand(E, ...)`` and
        map it yourself if each copy needs its own input.

        Args:
            name: a registered network.
            td: input TensorDict (written in place for plain networks, as TensorDictModules do).
            target: use the target parameters.
            params: explicit parameters to use instead (overrides ``target``).
            detach: use the parameters without gradient; defaults to ``target``.
        """
        if params is None:
            params = self.network_params(name, target=target) if (target or self.functional) else None
        if detach is None:
            detach = target
        net = self._network(name)
        if name not in self._expanded:
            if params is None or (not detach and params is getattr(self, name + "_params", None)):
                return net(td)  # the network already holds these parameters
            p = params.detach() if detach else params
            with p.to_module(net, preserve_module_state=not detach):
                return net(td)
        p = params.detach() if detach else params

        def one(p_i, td_in):
            with p_i.to_module(net):
                return net(td_in)

        return torch.vmap(one, (0, None), randomness="different")(p, td)

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
        """
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
            raise TypeError(f"{type(self).__name__}.make_value_estimator({kind.value!r}): {err}") from None
        shared = {k: v for k, v in self._tensor_keys.items() if k in est._tensor_keys}
        est.set_keys(**shared)
        self._set_estimator(est)
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

    def forward(self, td: TensorDictBase) -> TensorDictBase:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward(td) -> TensorDict of loss_* terms")


# keep TensorDict importable from this module for doctests and subclasses
_ = TensorDict
