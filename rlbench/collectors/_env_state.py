"""The random state of a Collector's env, for checkpoints: every generator of the env and the envs it wraps.

A torch-native env keeps its whole state in the TensorDict (saving the root saves the env); its
random state is its generators plus the pool of reset states it drew ahead.
"""
from __future__ import annotations

import torch

from ..envs.classic import ClassicControlEnv
from ..envs.common import EnvBase

__all__ = ["env_chain", "state_in_td", "env_rng_state", "set_env_rng_state"]


def env_chain(env) -> list:
    """``env`` and the envs it wraps (``TransformedEnv.base_env``), outermost first."""
    chain = [env]
    while isinstance(getattr(chain[-1], "__dict__", {}).get("base_env"), EnvBase):
        chain.append(chain[-1].__dict__["base_env"])
    return chain


def state_in_td(env) -> bool:
    """Whether the env's whole state travels in its TensorDict (so saving the root saves the env)."""
    return isinstance(env_chain(env)[-1], ClassicControlEnv)


# The classic envs draw reset states ahead from their generator (ClassicControlEnv._fresh_rows): the
# unused rest of that pool is as much part of their random state as the generator itself.
_POOL_ATTRS = ("_pool", "_pool_pos")


def env_rng_state(env) -> list:
    out = []
    for layer in env_chain(env):
        gens = {k: v.get_state() for k, v in vars(layer).items() if isinstance(v, torch.Generator)}
        none = [k for k in ("action_generator",) if getattr(layer, k, 0) is None]
        extra = {k: getattr(layer, k) for k in _POOL_ATTRS if hasattr(layer, k)} if state_in_td(layer) else {}
        out.append({"generators": gens, "none": none, "extra": extra})
    return out


def set_env_rng_state(env, state: list) -> None:
    chain = env_chain(env)
    if len(chain) != len(state):
        raise ValueError(f"Collector.load_state_dict: the saved env had {len(state)} layer(s) (env and wrapped "
                         f"envs), this one has {len(chain)}; build the collector's env the same way")
    for layer, st in zip(chain, state):
        for k, gen_state in st["generators"].items():
            gen = getattr(layer, k, None)
            if not isinstance(gen, torch.Generator):  # e.g. action_generator before any set_seed
                gen = torch.Generator(device=layer.device)
                setattr(layer, k, gen)
            gen.set_state(gen_state)
        for k in st["none"]:
            setattr(layer, k, None)
        for k, v in st["extra"].items():
            setattr(layer, k, v)
