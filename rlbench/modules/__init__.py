"""Networks, policies, critics, distributions and exploration, all speaking TensorDict.

Files by concern: ``networks`` (MLP, ConvNet, dueling and noisy layers), ``encoders`` (the Nature-DQN
and DMC pixel encoders), ``distributions``
(TanhNormal, Delta, masked categoricals), ``actors`` (Actor, ProbabilisticActor, ValueOperator,
Q-value actors, actor-critic containers), ``distributional`` (C51 heads), ``exploration``
(epsilon-greedy, Gaussian and Ornstein-Uhlenbeck noise) and ``recurrent`` (LSTM/GRU modules that
carry their state in the TensorDict).

``ExplorationType`` and ``set_exploration_type`` are tensordict's ``InteractionType`` and
``set_interaction_type`` (the very same objects ``rlbench.collectors`` exports).
"""
from tensordict.nn import InteractionType as ExplorationType
from tensordict.nn import interaction_type as exploration_type
from tensordict.nn import set_interaction_type as set_exploration_type

from .actors import (
    SAMPLE_LOG_PROB_KEY,
    Actor,
    ActorCriticWrapper,
    ActorValueOperator,
    ProbabilisticActor,
    QValueActor,
    QValueModule,
    ValueOperator,
)
from .distributional import DistributionalDuelingHead, DistributionalQValueActor, DistributionalQValueModule
from .distributions import (
    Delta,
    MaskedCategorical,
    MaskedOneHotCategorical,
    NormalParamExtractor,
    OneHotCategorical,
    TanhDelta,
    TanhNormal,
)
from .dreamer import *  # noqa: F403 - Dreamer's networks (ObsEncoder, RSSMPrior, ...)
from .dreamer import __all__ as _dreamer_names
from .encoders import DMCEncoder, NatureCNN, scale_pixels
from .exploration import AdditiveGaussianModule, EGreedyModule, OrnsteinUhlenbeckProcessModule, exploring
from .networks import MLP, ConvNet, DuelingCnnDQNet, DuelingHead, NoisyLinear, reset_noise
from .recurrent import GRUModule, LSTMModule, RecurrentStatePrimer, recurrent_mode, set_recurrent_mode
from .scaling import ScaleToBounds

__all__ = [
    "ExplorationType",
    "exploration_type",
    "set_exploration_type",
    "SAMPLE_LOG_PROB_KEY",
    "Actor",
    "ProbabilisticActor",
    "ValueOperator",
    "QValueModule",
    "QValueActor",
    "ActorValueOperator",
    "ActorCriticWrapper",
    "DistributionalQValueModule",
    "DistributionalDuelingHead",
    "DistributionalQValueActor",
    "TanhNormal",
    "TanhDelta",
    "Delta",
    "OneHotCategorical",
    "MaskedCategorical",
    "MaskedOneHotCategorical",
    "NormalParamExtractor",
    "EGreedyModule",
    "AdditiveGaussianModule",
    "OrnsteinUhlenbeckProcessModule",
    "exploring",
    "LSTMModule",
    "GRUModule",
    "RecurrentStatePrimer",
    "set_recurrent_mode",
    "recurrent_mode",
    "MLP",
    "ConvNet",
    "NatureCNN",
    "DMCEncoder",
    "scale_pixels",
    "DuelingHead",
    "DuelingCnnDQNet",
    "NoisyLinear",
    "reset_noise",
    "ScaleToBounds",
]
__all__ += list(_dreamer_names)
