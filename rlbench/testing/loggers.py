"""``ListLogger``: a logger that keeps every scalar in a list, for tests that check what a run logged."""
from __future__ import annotations

__all__ = ["ListLogger"]


class ListLogger:
    """Records every ``log_scalar`` call as a ``(name, value, step)`` row, in call order.

    It follows the :class:`rlbench.loggers.Logger` protocol and nothing more (no ``log_hparams``, no
    ``close``), so it can also stand for a minimal user logger. Values are stored as Python floats
    (a 0-d tensor is converted) and steps as ints.

    Attributes:
        rows: ``[(name, value, step), ...]``.

    Example:
        >>> import torch
        >>> logger = ListLogger()
        >>> logger.log_scalar("loss", torch.tensor(0.5), 10)
        >>> logger.log_scalar("loss", 0.25, 20)
        >>> logger.log_scalar("eval/return", 9, 20)
        >>> logger.rows[0], logger.steps("loss"), logger.values("loss"), logger.series("eval/return")
        (('loss', 0.5, 10), [10, 20], [0.5, 0.25], [(20, 9.0)])
    """

    def __init__(self):
        self.rows: list[tuple[str, float, int]] = []

    def log_scalar(self, name: str, value, step: int) -> None:
        """Append ``(name, float(value), int(step))``."""
        self.rows.append((name, float(value), int(step)))

    def steps(self, name: str) -> list[int]:
        """The steps at which ``name`` was logged."""
        return [step for n, _, step in self.rows if n == name]

    def values(self, name: str) -> list[float]:
        """The values logged under ``name``, in order."""
        return [value for n, value, _ in self.rows if n == name]

    def series(self, name: str) -> list[tuple[int, float]]:
        """``[(step, value), ...]`` of ``name`` (the layout of :func:`rlbench.trainers.read_csv_log`)."""
        return [(step, value) for n, value, step in self.rows if n == name]

    def names(self) -> list[str]:
        """Every name logged, in order of first appearance."""
        return list(dict.fromkeys(n for n, _, _ in self.rows))
