"""The dream inspector in headless Chromium, from a saved page (no kernel, network blocked).

Three panels painted with real pixels and scrubbed together, the dream panel empty while the model
still observes, the start drop-down jumping to the first imagined frame, plots drawn, strings escaped.
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("anywidget")

from _pictures import CANVAS_STATS, EVIL, FakeWorldModel, real_rollout  # noqa: E402

from rlbench.widgets.dream_inspector import DreamInspector  # noqa: E402

ROOT = ".rlb-dream-inspector"


def wait_drawn(page, step):
    page.wait_for_function(f"document.querySelector('{ROOT}').dataset.drawnStep === '{step}'", timeout=10_000)


def panel(page, name):
    return page.locator(f"{ROOT} .rlb-di-panel[data-panel={name}]")


def test_dream_panels_scrub_together_offline(offline_page, tmp_path, artifacts):
    page, watch = offline_page
    w = DreamInspector(FakeWorldModel(drift=1), real_rollout(), starts=[2, 6], horizon=4, title=EVIL)
    page.goto(Path(w.save_html(tmp_path / "dream.html")).as_uri())
    page.wait_for_selector("[data-rlb-rendered='1']", timeout=15_000)
    wait_drawn(page, 0)
    assert page.locator(f"{ROOT} .rlb-title").inner_text() == EVIL and page.locator(f"{ROOT} img").count() == 0
    assert page.locator(f"{ROOT} .rlb-di-panel").count() == 3
    assert "observed: the dream starts after step 2" in panel(page, "dream").inner_text()
    assert panel(page, "dream").get_attribute("data-frame") == ""
    real0 = page.eval_on_selector(f"{ROOT} .rlb-di-real", CANVAS_STATS)
    assert real0["std"] > 20 and (real0["w"], real0["h"]) == (16, 16)  # the bright square on the dim field

    page.eval_on_selector(f"{ROOT} .rlb-di-slider", "(el) => { el.value = '4'; el.dispatchEvent(new Event('input',"
                          " {bubbles: true})); }")
    wait_drawn(page, 4)
    assert panel(page, "dream").get_attribute("data-frame") == "1"  # 2 steps ahead of start 2
    assert "imagined from step 2 · 2 steps ahead" in panel(page, "dream").inner_text()
    for name in ("real", "reco", "dream"):
        stats = page.eval_on_selector(f"{ROOT} .rlb-di-{name}", CANVAS_STATS)
        assert stats["std"] > 20, (name, stats)  # painted, not blank
    real4 = page.eval_on_selector(f"{ROOT} .rlb-di-real", CANVAS_STATS)
    dream4 = page.eval_on_selector(f"{ROOT} .rlb-di-dream", CANVAS_STATS)
    assert real4["url"] != real0["url"] and dream4["url"] != real4["url"]  # the drifting dream differs

    # picking the second dream jumps to its first imagined frame
    page.select_option(f"{ROOT} .rlb-di-start", "1")
    wait_drawn(page, 7)
    assert page.locator(f"{ROOT} .rlb-di-step").inner_text() == "step 7 / 11"
    assert panel(page, "dream").get_attribute("data-frame") == "4"
    page.focus(ROOT)
    page.keyboard.press("End")
    wait_drawn(page, 11)
    assert "the dream from step 6 ended at step 10" in panel(page, "dream").inner_text()
    # both plots drawn: reward (real, posterior, dream) and frame error
    assert page.locator(f"{ROOT} .rlb-di-plot:not([hidden])").count() == 2
    plot = page.eval_on_selector(f"{ROOT} .rlb-di-plot[data-plot=error] .rlb-di-plot-base",
                                 "(c) => c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
                                 ".some((v, i) => i % 4 === 3 && v > 0)")
    assert plot
    page.locator(ROOT).screenshot(path=str(artifacts / "dream_inspector_saved.png"))
    assert watch.errors == [] and watch.blocked == [] and watch.dialogs == []


LIVE_CELLS = ["""
import sys, torch
sys.path.insert(0, {tests!r})
from _pictures import FakeWorldModel, real_rollout
from rlbench.widgets import DreamInspector, RolloutInspector
td = real_rollout()
td["pixels_stack"] = torch.cat([td["pixels"][:, :1]] * 4, dim=1)  # [T, 4, 16, 16]: a grey stack
DreamInspector(FakeWorldModel(drift=1), td, frames_key="pixels", starts=[2, 6], horizon=4)
""", "RolloutInspector(td, frames_key='pixels_stack', raw_key='pixels')"]


def test_dream_and_stacked_rollout_live_in_jupyterlab(jupyter_lab, browser, artifacts, page_watch, open_and_run_all):
    """The new synced fields (nested packed series, the agent's view) through real comms and the widget manager."""
    import os

    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    tests = str(Path(__file__).resolve().parent)
    nb.cells = [nbformat.v4.new_code_cell(c.strip().replace("{tests!r}", repr(tests))) for c in LIVE_CELLS]
    nb.metadata["kernelspec"] = {"name": os.environ.get("RLBENCH_KERNEL", "rlbench"), "display_name": "rlbench",
                                 "language": "python"}
    nbformat.write(nb, jupyter_lab.root / "dream.ipynb")
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    watch = page_watch(page)
    try:
        open_and_run_all(page, f"{jupyter_lab.url}/lab/tree/dream.ipynb")
        page.wait_for_selector(f"{ROOT}[data-drawn-step='0']", timeout=120_000)
        page.select_option(f"{ROOT} .rlb-di-start", "0")
        page.eval_on_selector(f"{ROOT} .rlb-di-slider", "(el) => { el.value = '4'; el.dispatchEvent(new Event("
                              "'input', {bubbles: true})); }")
        wait_drawn(page, 4)
        assert panel(page, "dream").get_attribute("data-frame") == "1"
        assert page.eval_on_selector(f"{ROOT} .rlb-di-dream", CANVAS_STATS)["std"] > 20
        rollout = page.locator(".rlb-rollout-inspector")
        rollout.wait_for(timeout=60_000)
        page.wait_for_selector(".rlb-rollout-inspector[data-drawn-step='0']", timeout=30_000)
        agent = page.eval_on_selector(".rlb-ri-agent", CANVAS_STATS)
        assert (agent["w"], agent["h"]) == (34, 34) and agent["std"] > 20  # 2x2 tiles of 16x16, 2 px gaps
        page.locator(ROOT).screenshot(path=str(artifacts / "jupyterlab_dream_inspector.png"))
        assert watch.dialogs == [] and watch.errors == []
    except Exception:
        page.screenshot(path=str(artifacts / "jupyterlab_dream_FAILED.png"))
        raise
    finally:
        context.close()
