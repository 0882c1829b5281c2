"""Trainers: the training loop with hook points, loggers, progress bars and checkpoints.

:class:`Trainer` runs collect -> (store, sample) -> optimise -> update targets -> push weights ->
evaluate -> log, with named stages where user functions are registered (``register_op``).
Loggers (:class:`CSVLogger`, :class:`TensorboardLogger`, :class:`WandbLogger`, :class:`MultiLogger`)
follow the :class:`rlbench.loggers.Logger` protocol. :func:`save_checkpoint` / :func:`load_checkpoint`
save and restore models, optimisers, buffers, collectors and RNG states, loading safely
(``weights_only``).
"""
from .checkpoint import UnsafeCheckpointError, get_rng_state, load_checkpoint, save_checkpoint, set_rng_state
from .loggers import CSVLogger, Logger, MultiLogger, TensorboardLogger, WandbLogger, log_scalars, read_csv_log
from .progress import ProgressBar
from .trainer import STAGES, Trainer, evaluate_policy

__all__ = [
    "Trainer", "STAGES", "evaluate_policy", "ProgressBar",
    "CSVLogger", "TensorboardLogger", "WandbLogger", "MultiLogger", "Logger", "log_scalars", "read_csv_log",
    "save_checkpoint", "load_checkpoint", "UnsafeCheckpointError", "get_rng_state", "set_rng_state",
]
