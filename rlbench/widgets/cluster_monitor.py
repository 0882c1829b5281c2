"""``ClusterMonitor``: live per-actor throughput, policy lag and restarts of a distributed collector."""
from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

import traitlets

from ..collectors.ray import ACTOR_STAT_FIELDS as ACTOR_FIELDS
from .monitor import TrainingMonitor

__all__ = ["ClusterMonitor"]

_ACTOR_METRIC = re.compile(r"^actor/(\d+)/(\w+)$")


def _fmt(value, digits: int) -> str:
    return "?" if value is None else f"{value:.{digits}g}"


class ClusterMonitor(TrainingMonitor):
    """A :class:`TrainingMonitor` that also shows each remote actor: frames/s, batches, policy lag, restarts.

    It is a logger like the TrainingMonitor (pass it as ``logger=`` to a recipe): every scalar is kept
    in :attr:`history` and plotted, and the scalars named ``actor/<i>/<field>`` (``field`` one of
    ``fps``, ``batches``, ``policy_lag_mean``, ``policy_lag_max``, ``restarts``) also fill row ``i`` of
    the actors table. The IMPALA recipe logs exactly these (from ``RayCollector.actor_stats()``); in a
    loop of your own, :meth:`log_actor_stats` takes that list directly (and the node each actor runs on).
    The view draws one frames/s line per actor and the policy lag: the learner's ``policy_lag`` when it
    is logged, else each actor's mean.

    Args:
        title: shown above the table.
        **kwargs: as :class:`TrainingMonitor` (``max_fps``, ``max_points``, ``clock``...).

    Synced fields: ``title``; ``series`` (as :class:`TrainingMonitor`); ``actors``: ``[{"actor", "node",
    "fps", "batches", "policy_lag_mean", "policy_lag_max", "restarts"}]`` (see ``widgets/README.md``).

    Example:
        >>> monitor = ClusterMonitor()
        >>> stats = [{"actor": 0, "node": "a1b2c3d4", "frames": 640, "batches": 2, "fps": 900.0,
        ...           "policy_lag_mean": 0.5, "policy_lag_max": 1, "restarts": 0}]
        >>> monitor.log_actor_stats(stats, step=640)
        >>> monitor.log_scalar("actor/1/fps", 450.0, step=640)  # what the IMPALA recipe logs
        >>> monitor.close()
        >>> [(row["actor"], row["fps"]) for row in monitor.actors]
        [(0, 900.0), (1, 450.0)]
        >>> monitor.history["actor/0/policy_lag_mean"]
        [(640, 0.5)]
    """

    _view = "cluster_monitor"

    actors = traitlets.List().tag(sync=True)

    def __init__(self, title: str = "Cluster", **kwargs):
        self._rows: dict[int, dict] = {}
        super().__init__(title=title, **kwargs)

    # ------------------------------------------------------------------ Logger interface
    def log_scalar(self, name: str, value, step: int | None = None) -> None:
        """Record one value (as :meth:`TrainingMonitor.log_scalar`); ``actor/<i>/<field>`` also updates row ``i``."""
        self._note(str(name), value)
        super().log_scalar(name, value, step)

    def log_scalars(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Record several metrics at one step (one push at most)."""
        for name, value in values.items():
            self._note(str(name), value)
        super().log_scalars(values, step)

    def log_actor_stats(self, stats: Sequence[Mapping], step: int | None = None) -> None:
        """Record a collector's per-actor stats (``RayCollector.actor_stats()``: a list of dicts with ``actor``).

        Each numeric field (``fps``, ``batches``, ``policy_lag_mean``, ``policy_lag_max``, ``restarts``) is
        logged as ``actor/<i>/<field>``; ``node`` is kept for the table only.
        """
        values = {}
        for row in stats:
            if "actor" not in row:
                raise KeyError(f"ClusterMonitor.log_actor_stats: each entry needs an 'actor' index, got keys "
                               f"{sorted(row)} (pass RayCollector.actor_stats())")
            i = int(row["actor"])
            if row.get("node") is not None:
                self._row(i)["node"] = str(row["node"])
            values.update({f"actor/{i}/{field}": row[field] for field in ACTOR_FIELDS if field in row})
        self.log_scalars(values, step)

    def _row(self, i: int) -> dict:
        return self._rows.setdefault(i, {"actor": i, "node": None, **{f: None for f in ACTOR_FIELDS}})

    def _note(self, name: str, value) -> None:
        match = _ACTOR_METRIC.match(name)
        if match and match.group(2) in ACTOR_FIELDS:
            value = float(value)
            self._row(int(match.group(1)))[match.group(2)] = int(value) if match.group(2) in (
                "batches", "restarts") and value.is_integer() else value

    # ------------------------------------------------------------------ pushing
    def flush(self) -> None:
        """Send the latest data (the actors table with the series) to the front end now."""
        rows = self.actor_rows()
        if rows != self.actors:
            self.actors = rows
        super().flush()

    def actor_rows(self) -> list[dict]:
        """The actors table: one dict per actor seen so far, by index (``None`` where a field was never logged)."""
        return [dict(self._rows[i]) for i in sorted(self._rows)]

    # ------------------------------------------------------------------ fallbacks
    def _summary_rows(self) -> Iterable[tuple[str, str]]:
        rows = [("actors", str(len(self._rows)))]
        for row in self.actor_rows():
            fps, lag, lag_max = _fmt(row["fps"], 4), _fmt(row["policy_lag_mean"], 3), _fmt(row["policy_lag_max"], 3)
            node = f", node {row['node']}" if row["node"] else ""
            rows.append((f"actor {row['actor']}", f"{fps} frames/s, {row['batches'] or 0} batches, lag {lag} "
                                                   f"(max {lag_max}), {row['restarts'] or 0} restarts{node}"))
        return rows

    def _plot(self, fig) -> bool:
        history = self.history
        fps = sorted((int(m.group(1)), name) for name in history if (m := _ACTOR_METRIC.match(name))
                     and m.group(2) == "fps")
        if not fps:
            return super()._plot(fig)
        lag_names = ["policy_lag"] if "policy_lag" in history else [
            name for name in history if (m := _ACTOR_METRIC.match(name)) and m.group(2) == "policy_lag_mean"]
        axes = fig.subplots(1, 2 if lag_names else 1, squeeze=False)[0]
        for i, name in fps:
            axes[0].plot(*zip(*history[name]), lw=1.2, label=f"actor {i}")
        axes[0].set_title("frames/s per actor", fontsize=9)
        axes[0].legend(fontsize=7)
        for name in lag_names:
            axes[1].plot(*zip(*history[name]), lw=1.2, label=name)
        if lag_names:
            axes[1].set_title("policy lag (updates)", fontsize=9)
        for ax in axes:
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        return True

    def __repr__(self) -> str:
        return f"ClusterMonitor(title={self.title!r}, actors={len(self._rows)}, metrics={len(self.history)})"
