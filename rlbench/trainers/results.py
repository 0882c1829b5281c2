"""``TrainResults``: what a training run returns (a recipe's ``train``, :meth:`RunTracker.finish`).

Its own module so that :mod:`rlbench.trainers.run` (which makes it) and :mod:`rlbench.trainers.report`
(which draws it) both import it without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TrainResults"]


@dataclass
class TrainResults:
    """What a recipe's ``train`` returns (made by :meth:`RunTracker.finish`).

    Example:
        >>> r = TrainResults(algo="ppo", env="CartPole-v1", final_eval_return=500.0, final_eval_std=0.0,
        ...                  eval_episodes=20, frames=20000, wall_time=5.0, train_time=4.0)
        >>> r.summary()
        'final mean evaluation return: 500.0 over 20 episodes'
    """

    algo: str
    """Recipe name."""
    env: str
    """Env name as given to make_env."""
    final_eval_return: float
    """Mean return of the final deterministic evaluation."""
    final_eval_std: float
    """Its standard deviation over the episodes."""
    eval_episodes: int
    """Episodes in each evaluation."""
    frames: int
    """Env steps collected."""
    wall_time: float
    """Seconds from start to end of train(), evaluations included."""
    train_time: float
    """Seconds spent training (collection and optimisation), evaluations excluded."""
    curve: list = field(default_factory=list)
    """One dict per evaluation: frames, train_time, eval_return, eval_std."""
    train_curve: list = field(default_factory=list)
    """(frames, mean return of recent training episodes) pairs, one per logged iteration."""
    solved_frames: int | None = None
    """Frames when an evaluation first reached config.target_return (None if never)."""
    solved_time: float | None = None
    """Training seconds at that moment."""
    run_dir: str | None = None
    """Folder with the checkpoint, logs and report (None when nothing was written)."""
    files: dict = field(default_factory=dict)
    """Paths of the files written: checkpoint, logs, curve, report, results."""
    config: dict = field(default_factory=dict)
    """The config that ran."""
    videos: list = field(default_factory=list)
    """Paths of the run's videos (mp4 files, e.g. recorded evaluation episodes), absolute or relative to
    ``run_dir``; :func:`~rlbench.trainers.write_report` shows them (and, when this is empty, the mp4 files
    it finds in ``videos/`` folders under ``run_dir``)."""

    def summary(self) -> str:
        """The one-line result the CLI prints last."""
        return f"final mean evaluation return: {self.final_eval_return:.1f} over {self.eval_episodes} episodes"
