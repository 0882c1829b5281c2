"""Rainbow: the DQN recipe with every add-on on.

The add-ons are double, dueling, n-step, prioritized replay, noisy nets and distributional C51;
this module exists so ``rlbench train rainbow`` and ``benchmarks/learning.py`` can name it.

The loop is :func:`rlbench.recipes.dqn.train`; only the defaults differ (:class:`dqn.RainbowConfig`: the
fields of :class:`dqn.Config` with every add-on switched on).

Config fields inherited from :class:`~rlbench.recipes.config.RecipeConfig`, with the defaults Rainbow runs
with::

    env='CartPole-v1'  frames=50000  seed=0  torch_threads=1  eval_episodes=20  eval_every=0
    target_return=None  out_dir=None
"""
from .dqn import RainbowConfig as Config
from .dqn import make_models, train

__all__ = ["Config", "make_models", "train"]
