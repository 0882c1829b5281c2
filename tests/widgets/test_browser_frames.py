"""The rollout inspector's picture panels in headless Chromium.

An Atari rollout's raw frame beside the stacked observation as the agent sees it, both painted with
real pixels and scrubbed together.
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("anywidget")

from _pictures import CANVAS_STATS  # noqa: E402

from rlbench.widgets.rollout_inspector import RolloutInspector  # noqa: E402


def atari_rollout(steps=8):
    from rlbench.envs import AtariPreprocessing, GymEnv
    from rlbench.envs.transforms import RenameTransform, TransformedEnv

    base = GymEnv("ALE/Pong-v5", frameskip=1)
    raw = TransformedEnv(base, RenameTransform(["observation"], [("raw", "pixels")], create_copy=True))
    env = TransformedEnv(raw, AtariPreprocessing().transforms())
    env.set_seed(0)
    return env.rollout(steps, break_when_any_done=False)


def wait_drawn(page, step):
    page.wait_for_function(f"document.querySelector('.rlb-rollout-inspector').dataset.drawnStep === '{step}'",
                           timeout=10_000)


def test_atari_raw_frame_and_stacked_view_scrub_together(offline_page, tmp_path, artifacts):
    page, watch = offline_page
    td = atari_rollout()
    w = RolloutInspector(td, title="Pong <b>raw</b> vs agent")
    page.goto(Path(w.save_html(tmp_path / "atari.html")).as_uri())
    page.wait_for_selector("[data-rlb-rendered='1']", timeout=15_000)
    wait_drawn(page, 0)
    panels = page.locator(".rlb-ri-panel")
    assert panels.count() == 2
    assert page.locator(".rlb-ri-panel[data-panel=frame] figcaption").inner_text() == "raw frame (raw.pixels)"
    assert (page.locator(".rlb-ri-panel[data-panel=agent] figcaption").inner_text()
            == "agent's view: pixels · 4 stacked 84×84 grey frames, oldest first")
    assert page.locator(".rlb-title").inner_text() == "Pong <b>raw</b> vs agent"  # escaped, shown as text
    raw0 = page.eval_on_selector(".rlb-ri-frame", CANVAS_STATS)
    agent0 = page.eval_on_selector(".rlb-ri-agent", CANVAS_STATS)
    assert (raw0["w"], raw0["h"]) == (160, 210) and (agent0["w"], agent0["h"]) == (170, 170)
    # real pictures, not blank canvases: Pong's grey field, paddles and score give many levels
    assert agent0["std"] > 10 and agent0["levels"] > 8, agent0
    assert raw0["std"] > 10 and raw0["levels"] > 8, raw0
    # the 2x2 tiles sit where the Python side put them: the grey separator column at x = 84..85
    sep = page.eval_on_selector(".rlb-ri-agent", "(c) => Array.from(c.getContext('2d').getImageData(84, 0, 2, 170)"
                                ".data.filter((_, i) => i % 4 === 0))")
    assert sum(abs(v - 128) < 24 for v in sep) > 0.8 * len(sep)

    page.eval_on_selector(".rlb-ri-slider", "(el) => { el.value = '7'; el.dispatchEvent(new Event('input', "
                          "{bubbles: true})); }")
    wait_drawn(page, 7)
    assert page.eval_on_selector(".rlb-ri-agent", CANVAS_STATS)["url"] != agent0["url"]
    assert page.locator(".rlb-ri-frame-caption").inner_text() == "frame at step 7"
    page.locator(".rlb-rollout-inspector").screenshot(path=str(artifacts / "rollout_atari_stack.png"))
    assert watch.errors == [] and watch.blocked == [] and watch.dialogs == []
