"""RolloutInspector and ReplayInspector in a real headless Chromium.

The rollout inspector needs no kernel, so its saved page is the real thing: moving the slider must
change the frame and the shown values. The replay inspector's buttons talk to the kernel; here the
page's model sends its messages to the Python widget through Playwright (``expose_function``), so
the click -> ``_on_msg`` -> synced fields -> redraw loop runs for real without starting Jupyter.
Any JavaScript dialog fails a test: the key ``<img src=x onerror=alert(1)>`` must show as text.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from tensordict import TensorDict

pytest.importorskip("anywidget")

from rlbench.buffers import LazyTensorStorage, PrioritizedReplayBuffer, ReplayBuffer  # noqa: E402
from rlbench.envs import CartPoleEnv  # noqa: E402
from rlbench.widgets.replay_inspector import ReplayInspector  # noqa: E402
from rlbench.widgets.rollout_inspector import RolloutInspector  # noqa: E402

EVIL = "<img src=x onerror=alert(1)>"  # the same hostile key as conftest.EVIL



def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)]


def cartpole_rollout(batch=(), steps=40, seed=0):
    env = CartPoleEnv(batch_size=list(batch), seed=seed)
    td = env.rollout(steps, break_when_any_done=False)
    td["next", EVIL] = torch.arange(td.numel(), dtype=torch.float32).reshape(*td.batch_size, 1)
    return env, td


def open_saved(page, widget, path: Path):
    page.goto(Path(widget.save_html(path)).as_uri())
    page.wait_for_selector("[data-rlb-rendered='1']", timeout=15_000)


def move_slider(page, step: int) -> None:
    page.eval_on_selector(".rlb-ri-slider", "(el, v) => { el.value = String(v); "
                          "el.dispatchEvent(new Event('input', {bubbles: true})); }", step)
    page.wait_for_function(f"document.querySelector('.rlb-rollout-inspector').dataset.drawnStep === '{step}'",
                           timeout=5_000)


def frame_pixels(page) -> str:
    return page.eval_on_selector(".rlb-ri-frame", "(c) => c.toDataURL()")


def value_of(page, key: str) -> str:
    return page.locator(f".rlb-ri-values tr[data-key='{key}'] td").inner_text()


# ---------------------------------------------------------------- rollout (offline page)
def test_rollout_slider_changes_frame_and_values(offline_page, tmp_path, artifacts):
    page, watch = offline_page
    env, td = cartpole_rollout()
    w = RolloutInspector(td, frames=env.render, max_side=300)
    open_saved(page, w, tmp_path / "rollout.html")
    page.wait_for_function("document.querySelector('.rlb-rollout-inspector').dataset.drawnStep === '0'")
    first_frame, first_obs = frame_pixels(page), value_of(page, "observation")
    assert numbers(first_obs) == pytest.approx(td["observation"][0].tolist(), rel=1e-3, abs=1e-6)

    move_slider(page, 25)
    assert frame_pixels(page) != first_frame
    assert numbers(value_of(page, "observation")) == pytest.approx(td["observation"][25].tolist(), rel=1e-3, abs=1e-6)
    assert page.locator(".rlb-ri-step").inner_text().startswith("step 25 / 39")
    assert page.locator(".rlb-ri-frame-caption").inner_text() == "frame at step 25"

    # arrow keys step through, Home/End jump
    page.focus(".rlb-rollout-inspector")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.querySelector('.rlb-rollout-inspector').dataset.drawnStep === '26'")
    assert numbers(value_of(page, "action")) == [float(td["action"][26])]
    page.keyboard.press("End")
    page.wait_for_function("document.querySelector('.rlb-rollout-inspector').dataset.drawnStep === '39'")

    # the evil key is a row label, shown as text
    assert page.locator(".rlb-ri-values th", has_text=EVIL).count() == 1
    assert page.locator(".rlb-rollout-inspector img").count() == 0
    assert watch.dialogs == [] and watch.errors == [] and watch.blocked == []
    page.screenshot(path=str(artifacts / "rollout_inspector.png"), full_page=True)


def test_rollout_play_and_env_selector(offline_page, tmp_path, artifacts):
    page, watch = offline_page
    env, td = cartpole_rollout(batch=(3,), steps=30, seed=1)
    w = RolloutInspector(td, frames=env.render, max_side=240, max_frames=45)  # every 2nd frame
    open_saved(page, w, tmp_path / "rollout_b3.html")
    assert "showing every 2nd frame" in page.locator(".rlb-ri-notes").inner_text()
    move_slider(page, 9)
    assert page.locator(".rlb-ri-frame-caption").inner_text() == "nearest frame: step 8"
    env0 = value_of(page, "observation")
    page.select_option(".rlb-ri-env", "2")
    page.wait_for_function("document.querySelector('.rlb-rollout-inspector').dataset.drawnFrame === '34'")  # 2*15+4
    assert numbers(value_of(page, "observation")) == pytest.approx(td["observation"][2, 9].tolist(), rel=1e-3, abs=1e-6)
    assert value_of(page, "observation") != env0
    # play runs on requestAnimationFrame until the end, then stops
    page.click(".rlb-ri-play")
    page.wait_for_function("document.querySelector('.rlb-rollout-inspector').dataset.step === '29'", timeout=10_000)
    page.wait_for_function("!document.querySelector('.rlb-rollout-inspector').classList.contains('rlb-ri-playing')")
    assert watch.dialogs == [] and watch.errors == []
    page.screenshot(path=str(artifacts / "rollout_inspector_batched.png"), full_page=True)


def test_rollout_without_frames_or_reward_renders(offline_page, tmp_path):
    page, watch = offline_page
    T = 12
    td = TensorDict({"flag": torch.arange(T) % 3 == 0, "count": torch.arange(T, dtype=torch.int64),
                     "x64": torch.linspace(-1, 1, T, dtype=torch.float64),
                     "deep": {"er": {"v": torch.full((T, 2), float("nan"))}}}, [T])
    open_saved(page, RolloutInspector(td), tmp_path / "odd.html")
    root = page.locator(".rlb-rollout-inspector")
    assert root.locator(".rlb-ri-noframe").inner_text() == "no frames"
    assert "no reward key" in root.locator(".rlb-ri-notes").inner_text()
    move_slider_values_only = "(el) => { el.value = '3'; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    page.eval_on_selector(".rlb-ri-slider", move_slider_values_only)
    page.wait_for_function("document.querySelector('.rlb-rollout-inspector').dataset.step === '3'")
    assert value_of(page, "flag") == "true" and value_of(page, "count") == "3"
    assert value_of(page, "deep.er.v") == "[NaN, NaN]"
    assert numbers(value_of(page, "x64")) == pytest.approx([-1 + 2 * 3 / 11], rel=1e-3)
    assert watch.errors == [] and watch.dialogs == []


# ---------------------------------------------------------------- replay (kernel bridged)
BRIDGE_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><style id="css"></style></head>
<body style="margin:16px;font-family:sans-serif"><div id="host"></div>
<script type="module">
const payload = JSON.parse(document.getElementById("payload").textContent);
document.getElementById("css").textContent = payload.css;
const data = { ...payload.state };
const listeners = new Map();
const model = {
  get: (k) => data[k],
  set(k, v) { data[k] = v; for (const fn of [...(listeners.get(`change:${k}`) || [])]) fn(v); },
  on(n, fn) { if (!listeners.has(n)) listeners.set(n, new Set()); listeners.get(n).add(fn); },
  off(n, fn) { listeners.get(n)?.delete(fn); },
  async send(msg) {
    const patch = JSON.parse(await window.kernelSend(JSON.stringify(msg)));
    for (const [k, v] of Object.entries(patch)) model.set(k, v);
  },
  save_changes() {},
};
const url = URL.createObjectURL(new Blob([payload.esm], { type: "text/javascript" }));
const mod = await import(url);
await mod.default.render({ model, el: document.getElementById("host") });
document.body.dataset.rendered = "1";
</script></body></html>"""


def open_bridged(page, widget, path: Path):
    """A page whose model sends messages to ``widget._on_msg`` and applies the changed fields."""
    def kernel_send(text):
        before = widget.view_state()
        widget._on_msg(widget, json.loads(text), [])
        after = widget.view_state()
        return json.dumps({k: v for k, v in after.items() if v != before.get(k)})

    page.expose_function("kernelSend", kernel_send)
    payload = widget._payload()
    assert payload["buffers"] == []  # the replay view has no binary fields
    html = BRIDGE_PAGE.replace("<body", "<body data-x", 1).replace(
        '<div id="host"></div>',
        '<div id="host"></div><script type="application/json" id="payload">'
        + json.dumps(payload).replace("<", "\\u003c") + "</script>")
    path.write_text(html)
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-rendered='1']", timeout=15_000)


def replay_buffer(n=300, capacity=500):
    rb = PrioritizedReplayBuffer(alpha=0.7, beta=0.5, storage=LazyTensorStorage(capacity), batch_size=32)
    g = torch.Generator().manual_seed(0)
    rb.extend(TensorDict({"observation": torch.randn(n, 4, generator=g), EVIL: torch.zeros(n),
                          "next": {"reward": torch.rand(n, 1, generator=g)}}, [n]))
    rb.update_priority(torch.arange(n), torch.rand(n, generator=g) * 3)
    return rb


def test_replay_sample_button_highlights_indices(offline_page, tmp_path, artifacts):
    page, watch = offline_page
    rb = replay_buffer()
    w = ReplayInspector(rb, page_size=50)
    open_bridged(page, w, tmp_path / "replay.html")
    root = page.locator(".rlb-replay-inspector")
    assert root.locator(".rlb-rp-page tbody tr").count() == 50
    page.fill(".rlb-rp-batch", "64")
    page.click(".rlb-rp-sample")
    page.wait_for_function("document.querySelector('.rlb-replay-inspector').dataset.sampled === '64'")
    taken = w.sample["indices"]
    on_page = sorted({i for i in taken if i < 50})
    highlighted = sorted(int(x) for x in root.locator(".rlb-rp-page tr.rlb-rp-hit").evaluate_all(
        "(rows) => rows.map((r) => r.dataset.index)"))
    assert highlighted == on_page and len(taken) == 64
    # the next page comes from the kernel on demand, with its own highlights
    page.click(".rlb-rp-nav[title='next page']")
    page.wait_for_function("document.querySelector('.rlb-replay-inspector').dataset.page === '1'")
    first = root.locator(".rlb-rp-page tbody tr").first.locator("th").inner_text()
    assert first == "50" and w.page["index"] == 1
    highlighted = sorted(int(x) for x in root.locator(".rlb-rp-page tr.rlb-rp-hit").evaluate_all(
        "(rows) => rows.map((r) => r.dataset.index)"))
    assert highlighted == sorted({i for i in taken if 50 <= i < 100})
    # go to an index
    page.fill(".rlb-rp-goto", "275")
    page.dispatch_event(".rlb-rp-goto", "change")
    page.wait_for_function("document.querySelector('.rlb-replay-inspector').dataset.page === '5'")
    # evil key: a column header and a stats row, as text
    assert root.locator(".rlb-rp-page thead th", has_text=EVIL).count() == 1
    assert root.locator(".rlb-rp-stats tbody th", has_text=EVIL).count() == 1
    assert root.locator("img").count() == 0 and watch.dialogs == [] and watch.errors == []
    assert root.locator(".rlb-rp-histbox").is_visible()
    page.screenshot(path=str(artifacts / "replay_inspector.png"), full_page=True)


def test_replay_refresh_and_error_from_the_kernel(offline_page, tmp_path):
    page, watch = offline_page
    rb = ReplayBuffer(storage=LazyTensorStorage(100))
    w = ReplayInspector(rb)
    open_bridged(page, w, tmp_path / "replay_empty.html")
    page.click(".rlb-rp-sample")
    page.wait_for_function("document.querySelector('.rlb-rp-status').textContent.includes('EmptyBufferError')")
    rb.extend(torch.arange(30.0).unsqueeze(-1))
    page.click(".rlb-rp-refresh")
    page.wait_for_function("document.querySelectorAll('.rlb-rp-page tbody tr').length === 30")
    assert "30" in page.locator(".rlb-rp-card").first.inner_text()
    assert page.locator(".rlb-rp-status").inner_text() == ""
    assert watch.errors == []


def test_replay_saved_page_shows_first_page_and_says_what_needs_a_kernel(offline_page, tmp_path, artifacts):
    page, watch = offline_page
    w = ReplayInspector(replay_buffer(), page_size=50)
    w.draw_sample(16)
    open_saved(page, w, tmp_path / "replay_saved.html")
    root = page.locator(".rlb-replay-inspector")
    assert root.locator(".rlb-rp-page tbody tr").count() == 50
    assert "need a running kernel" in root.locator(".rlb-rp-offline").inner_text()
    assert root.locator(".rlb-rp-sample").is_disabled() and root.locator(".rlb-rp-nav").first.is_disabled()
    assert root.get_attribute("data-sampled") == "16"
    assert watch.dialogs == [] and watch.errors == [] and watch.blocked == []
    page.screenshot(path=str(artifacts / "replay_inspector_saved.png"), full_page=True)


# ---------------------------------------------------------------- live JupyterLab (a real kernel)
LIVE_CELLS = [
    f"""
import os
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
import torch
from rlbench.envs import CartPoleEnv
from rlbench.buffers import ReplayBuffer, LazyTensorStorage
from rlbench.widgets import RolloutInspector, ReplayInspector
EVIL = {EVIL!r}
env = CartPoleEnv(seed=0)
td = env.rollout(40, break_when_any_done=False)
td["next", EVIL] = torch.zeros(40, 1)
rb = ReplayBuffer(storage=LazyTensorStorage(100), batch_size=32)
_ = rb.extend(td.clone())
""",
    "RolloutInspector(td, frames=env.render, max_side=240)",
    "ReplayInspector(rb, page_size=50)",
]


@pytest.mark.slow
def test_views_live_in_jupyterlab(jupyter_lab, browser, artifacts, page_watch, open_and_run_all):
    import os

    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.strip()) for c in LIVE_CELLS]
    nb.metadata["kernelspec"] = {"name": os.environ.get("RLBENCH_KERNEL", "rlbench"), "display_name": "rlbench",
                                 "language": "python"}
    nbformat.write(nb, jupyter_lab.root / "views.ipynb")
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    watch = page_watch(page)
    try:
        open_and_run_all(page, f"{jupyter_lab.url}/lab/tree/views.ipynb")
        page.wait_for_selector(".rlb-rollout-inspector[data-drawn-step='0']", timeout=120_000)
        before = frame_pixels(page)
        move_slider(page, 25)
        assert frame_pixels(page) != before
        assert numbers(page.locator(".rlb-ri-values tr[data-key='action'] td").inner_text()) == [
            float(CartPoleEnv(seed=0).rollout(40, break_when_any_done=False)["action"][25])]
        assert page.locator(".rlb-ri-values th", has_text=EVIL).count() == 1

        replay = page.locator(".rlb-replay-inspector")
        replay.wait_for(timeout=60_000)
        replay.locator(".rlb-rp-sample").click()  # the kernel samples 32 of the 40 stored items
        page.wait_for_function("document.querySelector('.rlb-replay-inspector').dataset.sampled === '32'",
                               timeout=30_000)
        distinct = int(re.search(r"\((\d+) distinct\)", replay.locator(".rlb-rp-legend").inner_text()).group(1))
        assert replay.locator(".rlb-rp-page tr.rlb-rp-hit").count() == distinct > 0
        assert replay.locator(".rlb-rp-page thead th", has_text=EVIL).count() == 1
        assert watch.dialogs == []
        replay.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "jupyterlab_views.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "jupyterlab_views_FAILED.png"))
        raise
    finally:
        context.close()
