"""The inspectors in a real headless Chromium.

Saved pages and an nbconvert export opened offline (network blocked), and a live JupyterLab
session driven by Playwright.

Screenshots go to tests/artifacts/ (git-ignored). Any JavaScript dialog fails a test: the
hostile key ``<img src=x onerror=alert(1)>`` must show as text.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("anywidget")
nbformat = pytest.importorskip("nbformat")

from rlbench.envs import CartPoleEnv  # noqa: E402
from rlbench.specs import Unbounded  # noqa: E402
from rlbench.widgets import SpecInspector, TrainingMonitor  # noqa: E402

EVIL = "<img src=x onerror=alert(1)>"

ROOT = Path(__file__).resolve().parents[2]
KERNEL = os.environ.get("RLBENCH_KERNEL", "rlbench")

SETUP_CELL = f"""
import os
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
from rlbench.envs import CartPoleEnv
from rlbench.specs import Unbounded
from rlbench.widgets import SpecInspector, TrainingMonitor
EVIL = {EVIL!r}
env = CartPoleEnv()
env.observation_spec[EVIL] = Unbounded((1,))  # declared, never produced: a spec mismatch
"""
SPEC_CELL = "SpecInspector(env)"
ROLLOUT_CELL = """
from rlbench.widgets import RolloutInspector
rollout_env = CartPoleEnv(seed=0)
td = rollout_env.rollout(40, break_when_any_done=False)
RolloutInspector(td, frames=rollout_env.render, max_side=300)
"""
REPLAY_CELL = """
import torch
from rlbench.buffers import LazyTensorStorage, PrioritizedReplayBuffer
from rlbench.widgets import ReplayInspector
rb = PrioritizedReplayBuffer(alpha=0.7, beta=0.5, storage=LazyTensorStorage(200), batch_size=16)
rb.extend(td.reshape(-1).exclude("next").clone())
rb.update_priority(torch.arange(40), torch.linspace(0.1, 3.0, 40))
ReplayInspector(rb)
"""
MONITOR_CELL = """
monitor = TrainingMonitor(title="training")
for i in range(200):
    monitor.log_scalars({"loss": 1.0 / (i + 1), "return": (i % 25) * 2.0}, step=i)
monitor.close()
monitor
"""


def evil_env():
    env = CartPoleEnv()
    env.observation_spec[EVIL] = Unbounded((1,))
    return env


def notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.strip()) for c in cells]
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "rlbench", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def assert_spec_inspector_shows_evil_key_as_text(root, watch):
    keys = root.locator("td.rlb-si-key").all_inner_texts()
    assert any(EVIL in k for k in keys), keys
    assert root.locator("img").count() == 0  # the key was not parsed as markup
    assert watch.dialogs == [], f"a dialog fired: {watch.dialogs}"


# ---------------------------------------------------------------- offline: save_html
def test_save_html_opens_offline_with_data(offline_page, tmp_path, artifacts):
    page, watch = offline_page
    w = SpecInspector(evil_env(), title=EVIL)
    w.run_check()
    w.draw_sample()
    page.goto((Path(w.save_html(tmp_path / "spec.html"))).as_uri())
    page.wait_for_selector("[data-rlb-rendered]", timeout=10_000)
    root = page.locator(".rlb-spec-inspector")
    assert root.locator(".rlb-title").inner_text() == EVIL
    assert_spec_inspector_shows_evil_key_as_text(root, watch)
    # check_env_specs' findings, side by side: the evil key is declared but never produced
    row = root.locator(".rlb-si-mismatches tr", has_text="missing").first
    assert EVIL in row.inner_text() and "no such key in the data" in row.inner_text()
    assert "observation_spec[observation]" in root.locator(".rlb-si-sample").inner_text()
    # no kernel: the buttons say so instead of failing silently
    assert root.locator("button[data-action=sample]").is_disabled()
    assert "need a running kernel" in root.locator(".rlb-toolbar .rlb-note").inner_text()
    page.screenshot(path=str(artifacts / "spec_inspector_saved.png"), full_page=True)
    # nested Composites collapse and expand (in the browser, no kernel needed)
    rows = root.locator("table.rlb-si-tree tbody tr")
    before = rows.count()
    root.locator("tr[data-key=observation_spec] .rlb-si-toggle").click()
    assert rows.count() == before - 4  # observation, state, step_count and the evil key hidden
    root.locator("tr[data-key=observation_spec] .rlb-si-toggle").click()
    assert rows.count() == before
    assert watch.errors == [] and watch.blocked == []

    monitor = TrainingMonitor(title="saved monitor")
    for i in range(300):
        monitor.log_scalars({"loss": 1.0 / (i + 1), "return": float(i % 30)}, step=i)
    monitor.close()
    page.goto(Path(monitor.save_html(tmp_path / "monitor.html")).as_uri())
    page.wait_for_selector("[data-rlb-rendered]", timeout=10_000)
    lines = page.locator(".rlb-training-monitor path.rlb-chart-line")
    assert lines.count() == 2
    assert len(lines.first.get_attribute("d")) > 200  # a real curve, not an empty path
    assert "2 metrics · step 299" in page.locator(".rlb-subtitle").inner_text()
    page.screenshot(path=str(artifacts / "training_monitor_saved.png"), full_page=True)
    assert watch.errors == [] and watch.blocked == [] and watch.dialogs == []


# ---------------------------------------------------------------- offline: nbconvert export
def test_nbconvert_export_renders_offline(offline_page, tmp_path, artifacts):
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    page, watch = offline_page
    nb = notebook(SETUP_CELL, SPEC_CELL, MONITOR_CELL)
    # widget state not stored (JupyterLab's default when saving): nbconvert then uses text/html
    NotebookClient(nb, kernel_name=KERNEL, timeout=120, store_widget_state=False,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    body, _ = HTMLExporter().from_notebook_node(nb)
    path = tmp_path / "export.html"
    path.write_text(body)
    page.goto(path.as_uri())
    page.wait_for_function("document.querySelectorAll('[data-rlb-rendered]').length === 2", timeout=15_000)
    assert_spec_inspector_shows_evil_key_as_text(page.locator(".rlb-spec-inspector"), watch)
    assert page.locator(".rlb-training-monitor path.rlb-chart-line").count() == 2
    page.screenshot(path=str(artifacts / "nbconvert_export.png"), full_page=True)
    assert watch.errors == [] and watch.dialogs == []


# ---------------------------------------------------------------- live JupyterLab
def test_jupyterlab_live(jupyter_lab, browser, artifacts, page_watch, open_and_run_all):
    cells = [SETUP_CELL, SPEC_CELL, MONITOR_CELL, ROLLOUT_CELL, REPLAY_CELL]
    nbformat.write(notebook(*cells), jupyter_lab.root / "live.ipynb")
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    watch = page_watch(page)
    try:
        open_and_run_all(page, f"{jupyter_lab.url}/lab/tree/live.ipynb")
        spec = page.locator(".rlb-spec-inspector")
        spec.wait_for(timeout=120_000)
        assert_spec_inspector_shows_evil_key_as_text(spec, watch)

        spec.locator("button[data-action=sample]").click()
        spec.locator(".rlb-si-sample").wait_for(timeout=20_000)
        assert "action_spec" in spec.locator(".rlb-si-sample").inner_text()
        spec.locator("button[data-action=check]").click()
        spec.locator(".rlb-si-check[data-status=mismatch]").wait_for(timeout=30_000)
        mismatch = spec.locator(".rlb-si-mismatches tr", has_text="missing").first
        assert EVIL in mismatch.inner_text()
        assert "Traceback" not in spec.inner_text()

        monitor = page.locator(".rlb-training-monitor")
        monitor.wait_for(timeout=30_000)
        page.wait_for_function(
            "document.querySelectorAll('.rlb-training-monitor path.rlb-chart-line').length === 2", timeout=20_000)
        assert "step 199" in monitor.locator(".rlb-subtitle").inner_text()
        spec.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "jupyterlab_live.png"))
        monitor.screenshot(path=str(artifacts / "jupyterlab_training_monitor.png"))

        # the other inspectors through the real widget manager and comms
        rollout = page.locator(".rlb-rollout-inspector")
        rollout.wait_for(timeout=60_000)
        page.wait_for_function("document.querySelector('.rlb-rollout-inspector').dataset.drawnStep === '0'",
                               timeout=20_000)
        slider = rollout.locator(".rlb-ri-slider")
        slider.fill("25")
        page.wait_for_function("document.querySelector('.rlb-rollout-inspector').dataset.drawnStep === '25'",
                               timeout=10_000)
        assert rollout.locator(".rlb-ri-step").inner_text().startswith("step 25")
        rollout.screenshot(path=str(artifacts / "jupyterlab_rollout_inspector.png"))

        replay = page.locator(".rlb-replay-inspector")
        replay.wait_for(timeout=60_000)
        replay.scroll_into_view_if_needed()
        replay.locator(".rlb-rp-sample").click()
        page.wait_for_function("document.querySelector('.rlb-replay-inspector').dataset.sampled > 0",
                               timeout=20_000)
        assert replay.locator(".rlb-rp-page tr.rlb-rp-hit").count() > 0
        replay.screenshot(path=str(artifacts / "jupyterlab_replay_inspector.png"))
        assert watch.dialogs == []
    except Exception:
        page.screenshot(path=str(artifacts / "jupyterlab_live_FAILED.png"))
        raise
    finally:
        context.close()
