"""Recipes: one documented, top-to-bottom training loop per algorithm, built from library parts.

Each recipe module has a ``Config`` dataclass (every field documented), ``make_models(env, config)``
and ``train(config, logger=None, progress=True) -> TrainResults``. Use one from Python::

    from rlbench.recipes import ppo
    results = ppo.train(ppo.Config(env="CartPole-v1"))

or from the shell: ``rlbench train ppo --env CartPole-v1``.

What the recipes share, one module per concern:

* :mod:`rlbench.recipes.config`: the shared Config fields (``RecipeConfig``, ``OnPolicyConfig``,
  ``OffPolicyConfig``) and the CLI's parsing of them (``config_docs``, ``apply_overrides``).
* :mod:`rlbench.recipes.envs`: envs from a name (``make_env``: gymnasium ids, ``native:``, ``dmc:`` tasks,
  ``ALE/`` ids, from states or ``pixels=True``), seeding (``start_run``) and the seeded evaluation
  (``evaluate``).
* :mod:`rlbench.recipes.models`: networks built from an env's specs (MLPs for vectors; the Nature CNN
  or the SAC-AE/DrQ encoder, shared by actor and critic, for pixels).
* The standard suites (DeepMind Control, Atari, MuJoCo) get each recipe's published hyperparameters
  for that family (``Config.FAMILY_DEFAULTS``, sources cited in each Config) for every field the user
  does not set; ``rlbench train ALGO --env ENV --print-config`` shows them.
* :mod:`rlbench.recipes.replay`: what off-policy loops store (``transitions``) and how often they update
  (``updates_due``).
* The run's chores (clock, periodic evaluation, early stop, logs, files) are
  :class:`rlbench.trainers.RunTracker`, which returns :class:`rlbench.trainers.TrainResults`.

How a recipe plugs in
---------------------
A recipe is one module ``rlbench/recipes/<algo>.py`` with three public names:

* ``Config``: a ``@dataclass`` subclassing one of :mod:`~rlbench.recipes.config`'s shared configs,
  whose every field has a default and a one-line *attribute docstring* (a string literal on the
  line after the field): ``rlbench train <algo> --help`` lists them and a test checks that no field
  is undocumented. The module docstring lists every field the Config inherits, with its default
  (a test checks that too). The :data:`~rlbench.recipes.config.COMMON_FIELDS` (``env``, ``frames``,
  ``seed``, ``eval_episodes``, ``eval_every``, ``target_return``, ``out_dir``) are read by the CLI,
  by ``benchmarks/learning.py`` and by the ``RunTracker``.
* ``make_models(env, config)``: builds the networks from the env's specs.
* ``train(config, logger=None, progress=True) -> TrainResults``: the training loop, top to bottom. It
  starts with ``start_run(config)``, builds its loss, optimiser and (off-policy) replay buffer in
  plain sight, and hands the chores to a ``RunTracker`` so the loop itself shows only the algorithm.

Then add its line to :data:`ALGORITHMS` below, e.g. ``"sac": "rlbench.recipes.sac",``. Recipe modules
are imported only when asked for, so ``import rlbench.recipes`` stays cheap.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from ..trainers import TrainResults
from .config import OffPolicyConfig, OnPolicyConfig, RecipeConfig, apply_overrides, config_docs
from .envs import evaluate, make_env, start_run
from .replay import transitions, updates_due

__all__ = ["ALGORITHMS", "get_recipe", "TrainResults", "make_env", "start_run", "evaluate", "config_docs",
           "apply_overrides", "RecipeConfig", "OnPolicyConfig", "OffPolicyConfig", "transitions", "updates_due"]

ALGORITHMS: dict[str, str] = {
    "ppo": "rlbench.recipes.ppo",
    "a2c": "rlbench.recipes.a2c",
    "dqn": "rlbench.recipes.dqn",
    "rainbow": "rlbench.recipes.rainbow",
    "ddpg": "rlbench.recipes.ddpg",
    "td3": "rlbench.recipes.td3",
    "sac": "rlbench.recipes.sac",
    "redq": "rlbench.recipes.redq",
    "impala": "rlbench.recipes.impala",
    "dreamer": "rlbench.recipes.dreamer",
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
