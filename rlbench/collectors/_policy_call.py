"""How the Collector calls a policy: the exploration mode it runs under, and a faster direct call.

What takes the direct call (:func:`direct_call`), read as "read the inputs, run each stage on tensors,
write the outputs", skipping tensordict's dispatch (several microseconds per module call):

- a plain ``TensorDictModule`` (exact class, or rlbench's ``Actor`` without ``safe`` / ``ValueOperator``):
  default options, no hooks;
- a ``TensorDictSequential`` (exact class, in place, no ``selected_out_keys``, not partial-tolerant) of
  such modules, nested sequences included;
- a ``ProbabilisticTensorDictSequential`` / rlbench ``ProbabilisticActor`` (not ``safe``): such modules
  followed by one ``ProbabilisticTensorDictModule`` head whose ``distribution_class`` is a
  ``torch.distributions`` class without a joint ``sample_and_log_prob`` (``Categorical``,
  ``OneHotCategorical``, ``Normal``, ``Independent`` ...), one sample key, no ``num_samples`` and no
  generator. Under ``ExplorationType.RANDOM`` the head draws ``rsample()`` if the distribution has one,
  else ``sample()``, and writes ``log_prob`` of that draw when ``return_log_prob`` -- what tensordict's
  head does, so the numbers and the RNG draws are the same. Under any other exploration type the call
  raises :class:`NotDirect` before running anything and the collector calls the policy itself.

Everything else (hooks, ``safe`` projections, ``TanhNormal``-style joint sampling, composite
distributions, modules returning dicts ...) runs the policy as it is. The fused loop
(:mod:`rlbench.collectors._fused`) calls :meth:`DirectPolicy.run` on a dict of tensors.
"""
from __future__ import annotations

import torch
from tensordict.nn import (
    InteractionType,
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModule,
    TensorDictSequential,
    interaction_type,
)

from ..modules.actors import Actor, ProbabilisticActor, ValueOperator
from .utils import ExplorationType

__all__ = ["resolve_exploration", "direct_call", "is_plain_module", "NotDirect", "DirectPolicy"]

_hooks = torch.nn.modules.module


def resolve_exploration(value) -> ExplorationType:
    if isinstance(value, ExplorationType):
        return value
    try:
        return ExplorationType(value) if not isinstance(value, str) else ExplorationType[value.upper()]
    except (KeyError, ValueError):
        choices = ", ".join(e.name for e in ExplorationType)
        raise ValueError(f"Collector: exploration_type must be an ExplorationType ({choices}), got {value!r}") from None


class NotDirect(Exception):
    """Raised by a direct call before it writes anything: the caller runs the policy itself."""


def _no_hooks(module: torch.nn.Module) -> bool:
    return not (module._forward_hooks or module._forward_pre_hooks)


def _plain_stage(module):
    """``(nn.Module, in_keys, out_keys)`` of a plain TensorDictModule, or None."""
    if not is_plain_module(module):
        return None
    if (
        getattr(module, "_kwargs", 0) is not None or getattr(module, "method", 0) is not None
        or getattr(module, "method_kwargs", 0) or getattr(module, "inplace", None) is not True
        or not _no_hooks(module) or not module.in_keys or not module.out_keys
    ):
        return None
    return module.module, list(module.in_keys), list(module.out_keys)


def _sequence_stages(modules) -> list | None:
    """The plain stages of a sequence's modules, in order (nested plain sequences flattened), or None."""
    stages = []
    for module in modules:
        if type(module) is TensorDictSequential:
            if not _plain_sequence(module):
                return None
            inner = _sequence_stages(module.module)
            if inner is None:
                return None
            stages += inner
            continue
        stage = _plain_stage(module)
        if stage is None:
            return None
        stages.append(stage)
    return stages


def _plain_sequence(seq) -> bool:
    return (
        getattr(seq, "inplace", None) in (None, True) and not getattr(seq, "_select_before_return", True)
        and not getattr(seq, "partial_tolerant", True) and _no_hooks(seq)
    )


def _direct_head(head):
    """``(head, sample key, log-prob key or None)`` for a head the direct call can sample, or None."""
    if type(head) is not ProbabilisticTensorDictModule or not _no_hooks(head):
        return None
    cls = head.distribution_class
    if not (isinstance(cls, type) and issubclass(cls, torch.distributions.Distribution)):
        return None
    if not cls.__module__.startswith("torch.distributions"):
        return None  # tensordict's / rlbench's own distributions may sample jointly, or as a TensorDict
    if callable(getattr(cls, "sample_and_log_prob", None)) or callable(getattr(cls, "rsample_and_log_prob", None)):
        return None
    if (
        head.num_samples is not None or getattr(head, "_generator", None) is not None
        or getattr(head, "_generator_key", None) is not None or len(head.dist_sample_keys) != 1
        or (head.return_log_prob and len(head.log_prob_keys) != 1)
    ):
        return None
    return head, head.dist_sample_keys[0], (head.log_prob_key if head.return_log_prob else None)


class DirectPolicy:
    """A policy's stages run on tensors: ``(nn.Module, in_keys, out_keys)`` each, then an optional head.

    Attributes:
        in_keys: the keys the call reads from its input (those no earlier stage writes).
        out_keys: every key the call writes, in the order the policy itself writes them.
    """

    def __init__(self, stages: list, head=None):
        self.stages = [(m, ins, outs, len(outs)) for m, ins, outs in stages]
        self.head = None
        written, reads = [], []
        for _, ins, outs, _ in self.stages:
            reads += [k for k in ins if k not in written and k not in reads]
            written += [k for k in outs if k not in written]
        if head is not None:
            module, sample_key, lp_key = head
            self.head = (module, list(module.dist_keys), list(module.in_keys), sample_key, lp_key)
            reads += [k for k in module.in_keys if k not in written and k not in reads]
            written += [k for k in (sample_key, lp_key) if k is not None and k not in written]
        self.in_keys, self.out_keys = reads, written

    def compiled(self, compile_kwargs: dict) -> "DirectPolicy":
        """The same call with each stage's ``nn.Module`` through ``torch.compile(module, **compile_kwargs)``.

        The head (distribution, sampling) stays eager: compiled random ops draw other numbers than eager.
        """
        out = DirectPolicy.__new__(DirectPolicy)
        out.__dict__.update(self.__dict__)
        out.stages = [(torch.compile(m, **compile_kwargs), ins, outs, n) for m, ins, outs, n in self.stages]
        return out

    def check(self) -> None:
        """Raise :class:`NotDirect` if this call cannot run now (a head outside ``RANDOM``, global hooks)."""
        if getattr(_hooks, "_global_forward_hooks", None) or getattr(_hooks, "_global_forward_pre_hooks", None):
            raise NotDirect
        if self.head is not None:
            module = self.head[0]
            if (interaction_type() or module.default_interaction_type) is not InteractionType.RANDOM:
                raise NotDirect

    def run(self, values: dict) -> dict:
        """Run the stages on ``values`` (a dict holding :attr:`in_keys`), adding the outputs to it.

        Raises :class:`NotDirect` when a module returns something else than a tensor or a tuple of
        ``len(out_keys)`` tensors (only the first stage's output can be checked before anything ran).
        The caller has :meth:`check`-ed that the call applies (the fused loop does once per batch).
        """
        for module, ins, outs, n_out in self.stages:
            out = module(*[values[k] for k in ins])
            if type(out) is torch.Tensor and n_out == 1:
                values[outs[0]] = out
            elif isinstance(out, tuple) and len(out) == n_out:
                for k, v in zip(outs, out):
                    values[k] = v
            else:
                raise NotDirect
        if self.head is not None:
            module, dist_keys, in_keys, sample_key, lp_key = self.head
            kwargs = {(dk[-1] if isinstance(dk, tuple) else dk): values[k] for dk, k in zip(dist_keys, in_keys)}
            dist = module.distribution_class(**kwargs, **module.distribution_kwargs)
            # tensordict's head under RANDOM: rsample when the distribution has it, else sample
            sample = dist.rsample() if dist.has_rsample else dist.sample()
            values[sample_key] = sample
            if lp_key is not None:
                values[lp_key] = dist.log_prob(sample)
        return values

    def __call__(self, td):
        """Call on a TensorDict: read :attr:`in_keys`, run, write :attr:`out_keys` into ``td``."""
        self.check()
        values = self.run({k: td.get(k) for k in self.in_keys})
        for k in self.out_keys:
            td.set(k, values[k])
        return td


def direct_call(policy) -> DirectPolicy | None:
    """A faster equivalent of ``policy`` (see the module docstring for what qualifies), or None.

    A tensordict module call goes through tensordict's dispatch wrappers and ``nn.Module.__call__``
    (several microseconds each, a real share of a step with a small MLP). For the plain cases reading
    the inputs, calling the wrapped modules and writing the outputs is the same thing.
    """
    if policy is None:
        return None
    stage = _plain_stage(policy)
    if stage is not None:
        return DirectPolicy([stage])
    kind = type(policy)
    if kind is TensorDictSequential:
        stages = _sequence_stages(policy.module) if _plain_sequence(policy) else None
        return DirectPolicy(stages) if stages else None
    if kind is ProbabilisticTensorDictSequential or (kind is ProbabilisticActor and not policy.safe):
        if not _plain_sequence(policy) or len(policy.module) < 2:
            return None
        head = _direct_head(policy.module[-1])
        if head is None:
            return None
        stages = _sequence_stages(list(policy.module)[:-1])
        return DirectPolicy(stages, head) if stages is not None else None
    return None


def is_plain_module(policy) -> bool:
    """A TensorDictModule whose call is exactly "read in_keys, run module, write out_keys"."""
    if type(policy) is TensorDictModule or type(policy) is ValueOperator:
        return True
    return type(policy) is Actor and not policy.safe  # a safe Actor also projects into its spec
