"""Trainers: the pieces of a training loop, and the ``Trainer`` that runs one with hook points.

* :class:`Trainer` runs collect -> (store, sample) -> optimise -> update targets -> push weights ->
  evaluate -> log, with named stages where user functions are registered (``register_op``); TorchRL's
  hook objects (:class:`ReplayBufferTrainer`, :class:`UpdateWeights`, :class:`LogScalar`,
  :class:`LogValidationReward`, in :mod:`rlbench.trainers.hooks`) register themselves on it.
* :class:`RunTracker` does the chores around a hand-written loop (the recipes' loops): clock, training
  returns, periodic evaluation and early stop, logs, and the run's files (checkpoint, CSV logs, curve,
  :func:`write_report`'s HTML report); it returns :class:`TrainResults`.
* :func:`evaluate_policy` is the one evaluator: returns of a policy's episodes in an env (filmed with
  ``recorder=VideoRecorder(...)``; :func:`record_episode` films one episode into a logger). Training
  returns come from :class:`rlbench.collectors.EpisodeReturns` (the Trainer's ``trainer.episodes``,
  a collector's ``collector.episodes``).
* Loggers (:class:`CSVLogger`, :class:`TensorboardLogger`, :class:`WandbLogger`, :class:`MultiLogger`)
  follow the :class:`rlbench.loggers.Logger` protocol; their ``log_video`` writes videos (the CSV logger's as
  mp4 files: :func:`write_mp4`, read back with :func:`read_video`). :func:`save_checkpoint` / :func:`load_checkpoint`
  save and restore models, optimisers, buffers, collectors and RNG states, loading safely (``weights_only``).
"""
from .checkpoint import UnsafeCheckpointError, get_rng_state, load_checkpoint, save_checkpoint, set_rng_state
from .evaluation import evaluate_policy, record_episode
from .hooks import LogScalar, LogValidationReward, ReplayBufferTrainer, UpdateWeights
from .loggers import (
    CSVLogger,
    Logger,
    MultiLogger,
    TensorboardLogger,
    WandbLogger,
    log_scalars,
    read_csv_log,
    read_video,
    write_mp4,
)
from .progress import ProgressBar
from .report import write_report
from .results import TrainResults
from .run import RunTracker, make_run_dir
from .trainer import STAGES, Trainer

__all__ = [
    "Trainer", "STAGES", "ReplayBufferTrainer", "UpdateWeights", "LogScalar", "LogValidationReward",
    "evaluate_policy", "record_episode", "ProgressBar", "RunTracker", "TrainResults", "make_run_dir",
    "write_report",
    "CSVLogger", "TensorboardLogger", "WandbLogger", "MultiLogger", "Logger", "log_scalars", "read_csv_log",
    "read_video", "write_mp4",
    "save_checkpoint", "load_checkpoint", "UnsafeCheckpointError", "get_rng_state", "set_rng_state",
]
