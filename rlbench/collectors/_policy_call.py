"""How the Collector calls a policy: the exploration mode it runs under, and a faster direct call.

A plain ``TensorDictModule`` (exact class, default options, no hooks) is called as "read in_keys,
run the module, write out_keys", skipping tensordict's dispatch; the fused loop
(:mod:`rlbench.collectors._fused`) calls the same module on tensors.
"""
from __future__ import annotations

import torch
from tensordict.nn import TensorDictModule

from ..modules.actors import Actor, ValueOperator
from .utils import ExplorationType

__all__ = ["resolve_exploration", "direct_call", "is_plain_module", "NotDirect"]


def resolve_exploration(value) -> ExplorationType:
    if isinstance(value, ExplorationType):
        return value
    try:
        return ExplorationType(value) if not isinstance(value, str) else ExplorationType[value.upper()]
    except (KeyError, ValueError):
        choices = ", ".join(e.name for e in ExplorationType)
        raise ValueError(f"Collector: exploration_type must be an ExplorationType ({choices}), got {value!r}") from None


def direct_call(policy):
    """A faster equivalent of a plain ``TensorDictModule(module, in_keys, out_keys)``, or None.

    A ``TensorDictModule`` call goes through tensordict's dispatch wrappers and ``nn.Module.__call__``
    (several microseconds, a real share of a step with a small MLP). For the plain case -- exact
    class, default options, no hooks -- reading the inputs, calling the wrapped module and writing
    the outputs is the same thing. Anything else runs the module as it is.
    """
    if not is_plain_module(policy):
        return None
    hooks = torch.nn.modules.module
    if (
        getattr(policy, "_kwargs", 0) is not None or getattr(policy, "method", 0) is not None
        or getattr(policy, "method_kwargs", 0) or getattr(policy, "inplace", None) is not True
        or policy._forward_hooks or policy._forward_pre_hooks
        or getattr(hooks, "_global_forward_hooks", None) or getattr(hooks, "_global_forward_pre_hooks", None)
        or not policy.in_keys or not policy.out_keys
    ):
        return None
    module, in_keys, out_keys = policy.module, list(policy.in_keys), list(policy.out_keys)
    n_out = len(out_keys)

    def call(td):
        out = module(*[td.get(k) for k in in_keys])
        if type(out) is torch.Tensor and n_out == 1:
            td.set(out_keys[0], out)
        elif isinstance(out, tuple) and len(out) == n_out:
            for k, v in zip(out_keys, out):
                td.set(k, v)
        else:  # raised before anything is written; the caller then runs the TensorDictModule itself
            raise NotDirect
        return td

    # for the fused loop (rlbench.collectors._fused), which calls the module on tensors directly
    call.module, call.in_keys, call.out_keys, call.n_out = module, in_keys, out_keys, n_out
    return call


def is_plain_module(policy) -> bool:
    """A TensorDictModule whose call is exactly "read in_keys, run module, write out_keys"."""
    if type(policy) is TensorDictModule or type(policy) is ValueOperator:
        return True
    return type(policy) is Actor and not policy.safe  # a safe Actor also projects into its spec


class NotDirect(Exception):
    pass
