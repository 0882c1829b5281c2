"""``TrainingMonitor``: a logger that draws live plots of every scalar in the notebook."""
from __future__ import annotations

import csv
import math
import os
import time
from typing import Callable, Iterable, Mapping

import numpy as np
import torch
import traitlets

from .base import Inspector, pack_array

__all__ = ["TrainingMonitor"]


def _as_float(value) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"TrainingMonitor.log_scalar: expected a scalar, got a tensor of shape {tuple(value.shape)}")
        return float(value.item())
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"TrainingMonitor.log_scalar: expected a number, got {type(value).__name__} {value!r}") from err


class TrainingMonitor(Inspector):
    """Live line plots of losses, returns and any logged scalar (a :class:`rlbench.loggers.Logger`).

    Every call records into :attr:`history`; the front end gets the data at most ``max_fps`` times
    a second (calls in between are coalesced into the next push), plus a final push on
    :meth:`close` or when a ``with`` block ends. Without a front end it just records, so the same
    code runs in scripts and tests; :meth:`to_csv` writes everything out.

    Displayed in a notebook, the monitor also keeps the output's static copies current (the HTML
    and PNG that a saved notebook, an nbconvert export or a reopened notebook without widget state
    shows): they are rewritten on :meth:`close` and at most every ``fallback_every`` seconds while
    data arrives, so a saved notebook shows the final curves, not an empty monitor.

    Args:
        title: shown above the plots.
        max_fps: most pushes to the front end per second.
        max_points: most points per metric sent to the front end (the history keeps all).
        clock: seconds, monotonic (tests pass a fake one).
        fallback_every: least seconds between rewrites of the displayed output's static copies
            (each rewrite redraws the live view too, so not on every push).

    Synced fields: ``title``; ``series``: ``{name: {"step": packed float64, "value": packed float64,
    "count": int}}`` (see ``widgets/README.md``).

    Example:
        >>> with TrainingMonitor(title="PPO") as monitor:
        ...     for step in range(3):
        ...         monitor.log_scalar("loss", 1.0 / (step + 1), step)
        >>> monitor.history["loss"]
        [(0, 1.0), (1, 0.5), (2, 0.3333333333333333)]
    """

    _view = "training_monitor"

    series = traitlets.Dict().tag(sync=True)

    def __init__(self, title: str = "Training", max_fps: float = 4.0, max_points: int = 2000,
                 clock: Callable[[], float] = time.monotonic, fallback_every: float = 10.0, **kwargs):
        if not max_fps > 0:
            raise ValueError(f"TrainingMonitor: max_fps must be > 0, got {max_fps}")
        if max_points < 2:
            raise ValueError(f"TrainingMonitor: max_points must be >= 2, got {max_points}")
        super().__init__(title=title, **kwargs)
        self.max_fps = float(max_fps)
        self.max_points = int(max_points)
        self._clock = clock
        self._steps: dict[str, list] = {}
        self._values: dict[str, list[float]] = {}
        self._last_push = -math.inf
        self._dirty = False
        self.fallback_every = float(fallback_every)
        self._displays: list = []  # IPython DisplayHandles of the outputs showing this monitor
        self._last_fallback = -math.inf
        self.pushes = 0  # how many times data went to the front end (tests and curious users)

    # ------------------------------------------------------------------ Logger interface
    def log_scalar(self, name: str, value, step: int | None = None) -> None:
        """Record one value; ``step`` defaults to the number of values already logged under ``name``."""
        value = _as_float(value)
        steps = self._steps.setdefault(str(name), [])
        self._values.setdefault(str(name), []).append(value)
        steps.append(len(steps) if step is None else int(step))
        self._dirty = True
        self._maybe_push()

    def log_scalars(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Record several metrics at one step (one push at most)."""
        for name, value in values.items():
            value = _as_float(value)
            steps = self._steps.setdefault(str(name), [])
            self._values.setdefault(str(name), []).append(value)
            steps.append(len(steps) if step is None else int(step))
        self._dirty = True
        self._maybe_push()

    # ------------------------------------------------------------------ history
    @property
    def history(self) -> dict[str, list[tuple[int, float]]]:
        """``{name: [(step, value), ...]}`` of everything logged, in logging order."""
        return {name: list(zip(self._steps[name], self._values[name])) for name in self._steps}

    def to_csv(self, path: str | os.PathLike) -> str:
        """Write the history as ``name,step,value`` rows (one per logged value); returns the path."""
        path = os.fspath(path)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["name", "step", "value"])
            for name in self._steps:
                for step, value in zip(self._steps[name], self._values[name]):
                    writer.writerow([name, step, repr(value)])
        return path

    # ------------------------------------------------------------------ pushing
    def _maybe_push(self) -> None:
        if self._clock() - self._last_push >= 1.0 / self.max_fps:
            self.flush()

    def flush(self) -> None:
        """Send the latest data to the front end now (if anything changed since the last push)."""
        if not getattr(self, "_dirty", False):
            return
        self._dirty = False
        self._last_push = self._clock()
        self.pushes += 1
        self.series = {name: self._packed(name) for name in self._steps}
        if self._displays and self._clock() - self._last_fallback >= self.fallback_every:
            self._refresh_displays()

    def _packed(self, name: str) -> dict:
        steps = np.asarray(self._steps[name], dtype=np.float64)
        values = np.asarray(self._values[name], dtype=np.float64)
        if len(steps) > self.max_points:  # evenly spaced points, always the last one
            idx = np.unique(np.linspace(0, len(steps) - 1, self.max_points).round().astype(np.int64))
            steps, values = steps[idx], values[idx]
        return {"step": pack_array(torch.from_numpy(steps)), "value": pack_array(torch.from_numpy(values)),
                "count": len(self._steps[name])}

    def close(self) -> None:
        """Final push; the plots stay on screen.

        Unlike ``Widget.close`` this keeps the view open (call :meth:`dispose` to close the widget itself).
        """
        if getattr(self, "_steps", None) is not None:  # also reached from Widget.__del__ after a failed init
            self.flush()
            if self._displays:
                self._refresh_displays()

    def dispose(self) -> None:
        """Close the widget (its views disappear), after a final push."""
        self.close()
        super().close()

    def __enter__(self) -> "TrainingMonitor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ displayed outputs
    def _ipython_display_(self) -> None:
        """Display with a display id, so that :meth:`close` can rewrite the output's static copies."""
        from IPython.display import display

        data, metadata = self._repr_mimebundle_()
        handle = display(data, metadata=metadata, raw=True, display_id=True)
        if handle is not None:
            self._displays.append(handle)
        self._last_fallback = self._clock()

    def _refresh_displays(self) -> None:
        # the whole bundle is sent again (widget view included): a display update replaces all of it
        data, metadata = self._repr_mimebundle_()
        for handle in self._displays:
            handle.update(data, metadata=metadata, raw=True)
        self._last_fallback = self._clock()

    # ------------------------------------------------------------------ fallbacks
    def _summary_rows(self) -> Iterable[tuple[str, str]]:
        rows = [("metrics", str(len(self._steps)))]
        for name in self._steps:
            rows.append((name, f"last {self._values[name][-1]:.4g} at step {self._steps[name][-1]} "
                               f"({len(self._values[name])} values)"))
        return rows

    def _plot(self, fig) -> bool:
        names = list(self._steps)[:6]
        if not names:
            return False
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        for ax, name in zip(axes, names):
            ax.plot(self._steps[name], self._values[name], lw=1.2)
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        return True

    def __repr__(self) -> str:
        return f"TrainingMonitor(title={self.title!r}, metrics={list(self._steps)})"
