"""Notebook inspectors (anywidget): specs, rollouts, replay buffers and live training plots.

Imported lazily: ``import rlbench`` never imports this package (it needs anywidget/ipywidgets,
the ``notebooks`` extra). :func:`show` picks the right inspector for an object.
"""
from __future__ import annotations

import importlib.util

# a clear message instead of a bare ModuleNotFoundError deep inside base.py
if importlib.util.find_spec("anywidget") is None or importlib.util.find_spec("ipywidgets") is None:  # pragma: no cover
    raise ImportError("rlbench.widgets needs anywidget and ipywidgets: pip install 'rlbench[notebooks]'")

from .base import Inspector, pack_array
from .cluster_monitor import ClusterMonitor
from .monitor import TrainingMonitor
from .spec_inspector import SpecInspector

__all__ = ["ClusterMonitor", "Inspector", "SpecInspector", "TrainingMonitor", "show", "pack_array"]


def _optional(name: str):
    """RolloutInspector / ReplayInspector / DreamInspector (built beside this package); None while absent."""
    import importlib

    module = {"RolloutInspector": ".rollout_inspector", "ReplayInspector": ".replay_inspector",
              "DreamInspector": ".dream_inspector", "DreamWorldModel": ".dream_inspector",
              "DreamerAdapter": ".dream_inspector"}[name]
    try:
        mod = importlib.import_module(module, __name__)
    except ModuleNotFoundError as err:
        if err.name != __name__ + module:  # a broken dependency is a real error, not "absent"
            raise
        return None
    return getattr(mod, name, None)


def show(obj, **kwargs):
    """The inspector for ``obj``.

    An env or spec -> SpecInspector, a rollout TensorDict -> RolloutInspector, a replay buffer
    (has ``storage`` and ``sampler``) -> ReplayInspector.

    Keyword arguments go to the inspector.

    Example:
        >>> from rlbench.envs import CartPoleEnv
        >>> type(show(CartPoleEnv())).__name__
        'SpecInspector'
    """
    from tensordict import TensorDictBase

    from ..envs import EnvBase
    from ..specs import Spec

    if isinstance(obj, (EnvBase, Spec)):
        return SpecInspector(obj, **kwargs)
    if isinstance(obj, TensorDictBase):
        cls = _optional("RolloutInspector")
        if cls is None:
            raise TypeError("show(TensorDict): the RolloutInspector is not available in this installation")
        return cls(obj, **kwargs)
    if hasattr(obj, "storage") and hasattr(obj, "sampler"):
        cls = _optional("ReplayInspector")
        if cls is None:
            raise TypeError("show(replay buffer): the ReplayInspector is not available in this installation")
        return cls(obj, **kwargs)
    raise TypeError(
        f"show() cannot inspect a {type(obj).__module__}.{type(obj).__qualname__}; it supports an env "
        "(EnvBase) or a spec (Spec/Composite), a rollout TensorDict, and a replay buffer (an object with "
        "`storage` and `sampler`)"
    )


def __getattr__(name):
    if name in ("RolloutInspector", "ReplayInspector", "DreamInspector", "DreamWorldModel", "DreamerAdapter"):
        cls = _optional(name)
        if cls is not None:
            return cls
    raise AttributeError(f"module 'rlbench.widgets' has no attribute {name!r}")
