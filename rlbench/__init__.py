"""rlbench: a notebook-first reinforcement-learning workbench for PyTorch.

The library lives in subpackages (``rlbench.specs``, ``rlbench.envs``, ``rlbench.modules``,
``rlbench.collectors``, ``rlbench.buffers``, ``rlbench.objectives``, ``rlbench.trainers``; the recipes
in ``rlbench.recipes`` are imported when asked for). ``import rlbench`` stays light: nothing from
Jupyter, widgets or plotting is imported until a widget (``rlbench.widgets``) or a report is used.
"""
from . import buffers, collectors, envs, loggers, modules, objectives, specs, trainers
from .envs import EnvBase, check_env_specs, step_mdp

__version__ = "0.1.0"

__all__ = ["buffers", "collectors", "envs", "loggers", "modules", "objectives", "specs", "trainers",
           "EnvBase", "check_env_specs", "step_mdp", "__version__"]
