"""Losses, value estimators and target-network updaters.

Every loss is a :class:`LossModule`: built from the networks it trains, called on a TensorDict of
transitions, returning a TensorDict whose ``loss_*`` entries sum to the quantity to minimise
(:func:`total_loss`). Value estimators (:mod:`rlbench.objectives.value`) compute returns and
advantages vectorized over batch and time.
"""
from .common import LossModule, ValueEstimators, total_loss
from .utils import HardUpdate, SoftUpdate, TargetNetUpdater, distance_loss, hold_out_params

__all__ = [
    "LossModule",
    "ValueEstimators",
    "total_loss",
    "SoftUpdate",
    "HardUpdate",
    "TargetNetUpdater",
    "distance_loss",
    "hold_out_params",
]
