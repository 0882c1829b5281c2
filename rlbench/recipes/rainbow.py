"""Rainbow: the DQN recipe with every add-on on (double, dueling, n-step, prioritized replay, noisy
nets, distributional C51), so ``rlbench train rainbow`` and ``benchmarks/learning.py`` can name it.

The loop is :func:`rlbench.recipes.dqn.train`; only the defaults differ (:class:`dqn.RainbowConfig`).
"""
from .dqn import RainbowConfig as Config
from .dqn import make_models, train

__all__ = ["Config", "make_models", "train"]
