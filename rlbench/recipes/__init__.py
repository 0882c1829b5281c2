"""Recipes: one documented, top-to-bottom training loop per algorithm, built from library parts.

Each recipe module has a ``Config`` dataclass (every field documented), ``make_models(env, config)``
and ``train(config, logger=None, progress=True) -> TrainResults``. Use one from Python::

    from rlbench.recipes import ppo
    results = ppo.train(ppo.Config(env="CartPole-v1"))

or from the shell: ``rlbench train ppo --env CartPole-v1``.

Adding a recipe: write ``rlbench/recipes/<algo>.py`` as described in :mod:`rlbench.recipes._common`,
then add its line to :data:`ALGORITHMS` below, e.g. ``"sac": "rlbench.recipes.sac",``. Modules are
imported only when asked for, so ``import rlbench.recipes`` stays cheap.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from ._common import apply_overrides, config_docs, evaluate, make_env
from ._run import TrainResults

__all__ = ["ALGORITHMS", "get_recipe", "TrainResults", "make_env", "evaluate", "config_docs", "apply_overrides"]

ALGORITHMS: dict[str, str] = {
    "ppo": "rlbench.recipes.ppo",
    "a2c": "rlbench.recipes.a2c",
    "dqn": "rlbench.recipes.dqn",
    "rainbow": "rlbench.recipes.rainbow",
    "ddpg": "rlbench.recipes.ddpg",
    "td3": "rlbench.recipes.td3",
    "sac": "rlbench.recipes.sac",
    "redq": "rlbench.recipes.redq",
}
"""Recipe name -> module path. One line per algorithm."""


def get_recipe(name: str) -> ModuleType:
    """The recipe module registered as ``name`` (case-insensitive).

    Example:
        >>> get_recipe("ppo").Config().env
        'CartPole-v1'
        >>> get_recipe("nope")
        Traceback (most recent call last):
        ...
        ValueError: unknown algorithm 'nope': known algorithms are a2c, ...ppo...
    """
    key = str(name).lower()
    if key not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}: known algorithms are {', '.join(sorted(ALGORITHMS))}")
    return importlib.import_module(ALGORITHMS[key])
