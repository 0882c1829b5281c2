"""ClusterMonitor: the actors table from logged scalars or actor_stats(), pushes, fallbacks, the view in Chromium."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("anywidget")

from rlbench.loggers import Logger  # noqa: E402
from rlbench.recipes.impala import actor_logs  # noqa: E402
from rlbench.widgets import ClusterMonitor, TrainingMonitor  # noqa: E402

EVIL = '<img src=x onerror="alert(1)">'


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeCollector:
    """What the IMPALA recipe reads of a RayCollector: actor_stats()."""

    def __init__(self, n=2):
        self.stats = [{"actor": i, "node": f"node{i}", "frames": 0, "batches": 0, "fps": 0.0, "policy_lag_mean": 0.0,
                       "policy_lag_max": 0, "restarts": 0} for i in range(n)]

    def actor_stats(self):
        return [dict(s) for s in self.stats]


def decode(packed):
    return np.frombuffer(packed["data"], dtype=packed["dtype"]).tolist()


def test_recipe_logs_fill_the_actor_table_and_the_series():
    clock = Clock()
    monitor = ClusterMonitor(clock=clock, max_fps=1.0)
    assert isinstance(monitor, Logger) and isinstance(monitor, TrainingMonitor)
    collector = FakeCollector()
    for step in range(1, 4):
        for s in collector.stats:
            s.update(batches=step, fps=100.0 * (s["actor"] + 1) + step, policy_lag_mean=step / 2,
                     policy_lag_max=step)
        monitor.log_scalars({**actor_logs(collector), "loss/critic": 1.0 / step, "policy_lag": step - 1.0},
                            step=step * 320)
        clock.now += 0.1  # faster than max_fps: pushes are coalesced
    assert monitor.pushes == 1  # the first call only
    assert [r["fps"] for r in monitor.actors] == [101.0, 201.0]  # what the first push carried
    monitor.close()
    assert monitor.actors == [
        {"actor": 0, "node": None, "fps": 103.0, "batches": 3, "policy_lag_mean": 1.5, "policy_lag_max": 3.0,
         "restarts": 0},
        {"actor": 1, "node": None, "fps": 203.0, "batches": 3, "policy_lag_mean": 1.5, "policy_lag_max": 3.0,
         "restarts": 0}]
    assert decode(monitor.series["actor/1/fps"]["value"]) == [201.0, 202.0, 203.0]
    assert decode(monitor.series["actor/1/fps"]["step"]) == [320.0, 640.0, 960.0]
    assert monitor.history["loss/critic"][-1] == (960, 1.0 / 3)  # every scalar, as a TrainingMonitor


def test_log_actor_stats_keeps_nodes_and_escapes_them_in_the_fallbacks():
    monitor = ClusterMonitor(title=EVIL)
    stats = FakeCollector(1).actor_stats()
    stats[0].update(node=EVIL, fps=12.5, batches=4, policy_lag_mean=0.25, policy_lag_max=1, restarts=2)
    monitor.log_actor_stats(stats, step=10)
    monitor.close()
    assert monitor.actors[0]["node"] == EVIL and monitor.actors[0]["restarts"] == 2
    html = monitor.summary_html()
    assert EVIL not in html and "&lt;img" in html
    assert "12.5 frames/s, 4 batches, lag 0.25 (max 1), 2 restarts" in html
    assert monitor.to_png()[:4] == b"\x89PNG"
    with pytest.raises(KeyError, match="needs an 'actor' index"):
        monitor.log_actor_stats([{"fps": 1.0}])


def test_saved_page_draws_one_fps_line_per_actor_and_the_table(offline_page, tmp_path):
    page, watch = offline_page
    monitor = ClusterMonitor(title=EVIL)
    collector = FakeCollector(2)
    collector.stats[0]["node"] = EVIL
    for step in range(1, 40):
        for s in collector.stats:
            s.update(batches=step, fps=1000.0 + 50 * s["actor"] + (step % 7), policy_lag_mean=0.5,
                     policy_lag_max=2, restarts=int(s["actor"] == 1 and step > 20))
        monitor.log_actor_stats(collector.actor_stats(), step=step * 320)
        monitor.log_scalars({"policy_lag": float(step % 3), "loss/objective": 1.0 / step}, step=step * 320)
    monitor.close()
    page.goto(Path(monitor.save_html(tmp_path / "cluster.html")).as_uri())
    page.wait_for_selector("[data-rlb-rendered]", timeout=10_000)
    root = page.locator(".rlb-cluster-monitor")
    assert root.locator(".rlb-title").inner_text() == EVIL  # shown as text, never parsed
    rows = root.locator("table.rlb-cm-actors tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("td").all_inner_texts() == ["0", EVIL, "1004", "39", "0.5", "2", "0"]
    assert "rlb-cm-restarted" in (rows.nth(1).get_attribute("class") or "")
    assert root.locator("[data-chart=fps] path.rlb-chart-line").count() == 2
    assert root.locator("[data-chart=lag] path.rlb-chart-line").count() == 1
    assert root.locator("[data-metric='loss/objective'] path.rlb-chart-line").count() == 1
    assert root.locator("[data-metric='actor/0/batches']").count() == 0  # in the table, not charted
    status = root.locator(".rlb-cm-status").inner_text()
    assert status == "2 actors · 2058 frames/s in all · lag 0.5 (max 2) · 1 restart"  # 1004 + 1054
    assert root.locator("img").count() == 0
    assert watch.errors == [] and watch.blocked == [] and watch.dialogs == []
