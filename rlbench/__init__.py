"""rlbench: a notebook-first reinforcement-learning workbench for PyTorch.

The library lives in subpackages (``rlbench.specs``, ``rlbench.envs``, ...). ``import rlbench``
stays light: nothing from Jupyter, widgets or plotting is imported until a widget is used.
"""
from . import collectors, envs, specs
from .envs import EnvBase, check_env_specs, step_mdp

__version__ = "0.1.0"

__all__ = ["collectors", "envs", "specs", "EnvBase", "check_env_specs", "step_mdp", "__version__"]
