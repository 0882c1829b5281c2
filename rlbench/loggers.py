"""The logger interface shared by trainers, recipes and the notebook training monitor.

Dependency-free on purpose: a trainer can type its ``logger`` argument with :class:`Logger`
without importing any widget code. Anything with ``log_scalar(name, value, step)`` is a logger
(``rlbench.widgets.TrainingMonitor``, a TensorBoard writer adapter, a list-backed test double).
"""
from __future__ import annotations

from typing import Mapping, Protocol, runtime_checkable

__all__ = ["Logger", "log_scalars"]


@runtime_checkable
class Logger(Protocol):
    """Receives scalars as training runs.

    ``log_scalar`` is the whole protocol. Optional methods that callers look for (and skip, or say they
    need, when missing): ``log_scalars(values, step)`` (see :func:`log_scalars`), ``log_hparams(dict)``,
    ``flush()``, ``close()``, and ``log_video(name, frames, step, fps=30)``: ``frames`` a ``uint8``
    (or float in ``[0, 1]``) tensor ``[T, H, W, C]`` or ``[T, C, H, W]`` -- what
    :class:`rlbench.envs.transforms.VideoRecorder` needs (rlbench.trainers' ``CSVLogger`` writes mp4
    files, ``TensorboardLogger``, ``WandbLogger`` and ``MultiLogger`` have it too).

    Example:
        >>> class ListLogger:
        ...     def __init__(self):
        ...         self.rows = []
        ...     def log_scalar(self, name, value, step):
        ...         self.rows.append((name, float(value), step))
        >>> logger = ListLogger()
        >>> isinstance(logger, Logger)
        True
        >>> log_scalars(logger, {"loss": 0.5, "return": 10}, step=3)
        >>> logger.rows
        [('loss', 0.5, 3), ('return', 10.0, 3)]
    """

    def log_scalar(self, name: str, value: float, step: int) -> None:
        """Record ``value`` of the metric ``name`` at ``step`` (frames, updates: the caller decides)."""


def log_scalars(logger: Logger, values: Mapping[str, float], step: int) -> None:
    """Log several scalars at one step: ``logger.log_scalars`` when it has one, else one call each."""
    many = getattr(logger, "log_scalars", None)
    if many is not None:
        many(values, step)
        return
    for name, value in values.items():
        logger.log_scalar(name, value, step)
