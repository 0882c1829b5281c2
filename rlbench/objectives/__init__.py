"""Losses, value estimators and target-network updaters.

Every loss is a :class:`LossModule`: built from the networks it trains, called on a TensorDict of
transitions, returning a TensorDict whose ``loss_*`` entries sum to the quantity to minimise
(:func:`total_loss`), plus detached diagnostics. Value estimators (:mod:`rlbench.objectives.value`)
compute returns and advantages vectorized over batch and time; :func:`nstep_return` turns
collected batches into n-step transitions; :class:`SoftUpdate` / :class:`HardUpdate` move target
networks.

Files by concern: ``common`` (the base: networks, targets, keys, estimators, reading the batch),
``functional`` (the losses' math as plain tensor functions), ``utils`` (updaters, distances),
``value/`` (estimators), ``multistep``, and one file per algorithm family (``dqn``, ``ddpg``,
``td3``, ``sac``, ``redq``, ``a2c``, ``ppo``, ``impala``). A loss's ``forward`` calls ``common`` and
``functional``, which never call back: to follow one update, read the loss's file, then those two.
"""
from .a2c import A2CLoss
from .common import LossModule, ValueEstimators, total_loss
from .ddpg import DDPGLoss
from .dqn import DistributionalDQNLoss, DQNLoss, project_distribution
from .dreamer import DreamerActorLoss, DreamerModelLoss, DreamerValueLoss
from .impala import IMPALALoss
from .multistep import MultiStep, nstep_return
from .ppo import ClipPPOLoss, KLPENPPOLoss, PPOLoss
from .redq import REDQLoss
from .sac import DiscreteSACLoss, SACLoss
from .td3 import TD3Loss
from .utils import HardUpdate, SoftUpdate, TargetNetUpdater, distance_loss, hold_out_params
from .value import (
    GAE,
    TD0Estimator,
    TD1Estimator,
    TDLambdaEstimator,
    ValueEstimatorBase,
    VTrace,
    generalized_advantage_estimate,
    reverse_linear_recurrence,
    td0_return_estimate,
    td1_return_estimate,
    td_lambda_return_estimate,
    vtrace_advantage_estimate,
)

__all__ = [
    "LossModule",
    "ValueEstimators",
    "total_loss",
    "DQNLoss",
    "DistributionalDQNLoss",
    "project_distribution",
    "DDPGLoss",
    "TD3Loss",
    "SACLoss",
    "DiscreteSACLoss",
    "REDQLoss",
    "A2CLoss",
    "DreamerModelLoss",
    "DreamerActorLoss",
    "DreamerValueLoss",
    "PPOLoss",
    "ClipPPOLoss",
    "KLPENPPOLoss",
    "IMPALALoss",
    "nstep_return",
    "MultiStep",
    "SoftUpdate",
    "HardUpdate",
    "TargetNetUpdater",
    "distance_loss",
    "hold_out_params",
    "GAE",
    "TD0Estimator",
    "TD1Estimator",
    "TDLambdaEstimator",
    "ValueEstimatorBase",
    "VTrace",
    "generalized_advantage_estimate",
    "reverse_linear_recurrence",
    "td0_return_estimate",
    "td1_return_estimate",
    "td_lambda_return_estimate",
    "vtrace_advantage_estimate",
]
