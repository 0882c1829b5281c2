"""Collectors: turn an env and a policy into a stream of fixed-size TensorDict batches.

``Collector`` runs in the current process; ``MultiSyncCollector``/``MultiAsyncCollector`` run one
``Collector`` per worker process; ``RayCollector`` runs collectors as Ray actors across a cluster (the ``ray``
extra). ``split_trajectories`` regroups a batch by episode.
``EpisodeReturns`` follows episodes across batches and keeps the returns of those that ended (every
``Collector`` has one, ``collector.episodes``; the trainers use it too).
``ExplorationType``/``set_exploration_type``/``exploration_type`` are tensordict's interaction-type
controls (``InteractionType``/``set_interaction_type``/``interaction_type``) under the names TorchRL
users know.
"""
from .collector import Collector
from .episodes import EpisodeReturns
from .multi import MultiAsyncCollector, MultiSyncCollector
from .ray import RayCollector
from .utils import ExplorationType, exploration_type, set_exploration_type, split_trajectories, traj_ids_from_done

__all__ = [
    "Collector",
    "EpisodeReturns",
    "MultiSyncCollector",
    "MultiAsyncCollector",
    "RayCollector",
    "split_trajectories",
    "traj_ids_from_done",
    "ExplorationType",
    "set_exploration_type",
    "exploration_type",
]
