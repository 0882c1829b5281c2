"""TrainingMonitor: history, throttled pushes (fake clock), CSV, synced data, Logger protocol."""
from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import torch

pytest.importorskip("anywidget")

from rlbench.loggers import Logger, log_scalars  # noqa: E402
from rlbench.widgets import TrainingMonitor  # noqa: E402


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def decode(packed):
    return np.frombuffer(packed["data"], dtype=packed["dtype"]).tolist()


def test_is_a_logger_and_records_history():
    m = TrainingMonitor()
    assert isinstance(m, Logger)
    m.log_scalar("loss", torch.tensor(0.5), 10)
    m.log_scalar("loss", 0.25, 20)
    m.log_scalar("return", 3)  # step defaults to the count so far
    m.log_scalar("return", 4)
    assert m.history == {"loss": [(10, 0.5), (20, 0.25)], "return": [(0, 3.0), (1, 4.0)]}


def test_pushes_at_most_max_fps_and_flushes_on_exit():
    clock = FakeClock()
    with TrainingMonitor(max_fps=4, clock=clock) as m:
        m.log_scalar("loss", 1.0, 0)  # first call pushes at once
        assert m.pushes == 1 and decode(m.series["loss"]["value"]) == [1.0]
        for i in range(1, 50):  # 49 calls within 0.1 s: coalesced, nothing pushed
            clock.now += 0.002
            m.log_scalar("loss", float(i), i)
        assert m.pushes == 1 and m.series["loss"]["count"] == 1
        clock.now += 0.25  # a quarter second later the next call pushes everything so far
        m.log_scalar("loss", 50.0, 50)
        assert m.pushes == 2 and m.series["loss"]["count"] == 51
        clock.now += 0.01
        m.log_scalar("loss", 51.0, 51)
        assert m.pushes == 2
    assert m.pushes == 3 and decode(m.series["loss"]["value"])[-1] == 51.0  # final flush on exit
    m.close()
    assert m.pushes == 3  # nothing new: no push


def test_log_scalars_is_one_push():
    clock = FakeClock()
    m = TrainingMonitor(clock=clock)
    log_scalars(m, {"a": 1.0, "b": 2.0}, step=5)
    assert m.pushes == 1 and set(m.series) == {"a", "b"}
    assert decode(m.series["b"]["step"]) == [5.0]


def test_sent_points_are_capped_and_keep_the_last():
    m = TrainingMonitor(max_points=100, clock=FakeClock())
    for i in range(10_000):
        m._steps.setdefault("x", []).append(i)
        m._values.setdefault("x", []).append(float(i * i))
    m._dirty = True
    m.flush()
    steps = decode(m.series["x"]["step"])
    assert len(steps) == 100 and steps[0] == 0 and steps[-1] == 9999
    assert m.series["x"]["count"] == 10_000
    assert decode(m.series["x"]["value"])[-1] == 9999.0**2


def test_to_csv_round_trip(tmp_path):
    m = TrainingMonitor()
    m.log_scalars({"loss": 0.1, "return": 1.5}, step=1)
    m.log_scalar("loss", 1 / 3, 2)
    with open(m.to_csv(tmp_path / "h.csv")) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["name", "step", "value"]
    assert rows[1:] == [["loss", "1", "0.1"], ["loss", "2", repr(1 / 3)], ["return", "1", "1.5"]]


def test_bad_values_and_settings_are_named():
    m = TrainingMonitor()
    with pytest.raises(TypeError, match="expected a number, got str 'abc'"):
        m.log_scalar("loss", "abc", 0)
    with pytest.raises(ValueError, match=r"expected a scalar, got a tensor of shape \(2,\)"):
        m.log_scalar("loss", torch.ones(2), 0)
    with pytest.raises(ValueError, match="max_fps must be > 0, got 0"):
        TrainingMonitor(max_fps=0)
    with pytest.raises(ValueError, match="max_points must be >= 2"):
        TrainingMonitor(max_points=1)


def test_fallbacks():
    m = TrainingMonitor(title="PPO")
    assert m.to_png() is None  # nothing logged, nothing to plot
    m.log_scalar("loss", 2.0, 7)
    rows = dict(m._summary_rows())
    assert rows == {"metrics": "1", "loss": "last 2 at step 7 (1 values)"}
    assert m.to_png().startswith(b"\x89PNG")


def test_saved_notebook_shows_the_final_curves_not_an_empty_monitor():
    """A notebook executed (and saved) without widget state keeps the monitor's final fallback.

    The static HTML and PNG copies of the output are rewritten on close, so an nbconvert export or
    a reopened notebook shows the logged metrics instead of the empty monitor of display time.
    """
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    code = ("from rlbench.widgets import TrainingMonitor\n"
            "monitor = TrainingMonitor(title='PPO')\n"
            "display(monitor)\n"
            "for step in range(5):\n"
            "    monitor.log_scalar('loss', 1.0 / (step + 1), step)\n"
            "monitor.close()")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    kernel = os.environ.get("RLBENCH_KERNEL", "rlbench")
    nbclient.NotebookClient(nb, kernel_name=kernel, timeout=120, store_widget_state=False).execute()
    outputs = [o for o in nb.cells[0].outputs if o.get("output_type") in ("display_data", "update_display_data")]
    assert len(outputs) == 1, outputs  # the update rewrote the displayed output in place
    data = outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in data  # the live view is still there
    assert "last 0.2 at step 4 (5 values)" in data["text/html"]
    assert "image/png" in data  # an empty monitor has no PNG: this one plots the curve
