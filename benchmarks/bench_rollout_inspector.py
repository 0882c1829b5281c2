"""RolloutInspector on a 1,000-step CartPole rollout with rendered frames (issue 5's speed section).

1. **Build time**: ``RolloutInspector(td)`` (encode every numeric key as one binary buffer and JPEG
   all 1,000 frames) against the time to collect the rollout itself,
   ``GymEnv("CartPole-v1", from_pixels=True).rollout(1000)`` (gymnasium's pygame renderer), which
   is what a user waited for just before. Target: building costs less than collecting (< 1x).
2. **Bytes sent** to the browser (series + compressed frames, all of it, once) against the raw
   uint8 frames the rollout holds.
3. **Slider latency** in headless Chromium, on the ``save_html`` page (the same ES module the live
   widget runs): the time from a slider ``input`` event to the new frame being drawn on the canvas,
   median and p95 over many moves, for random jumps (every frame decoded cold) and for scrubbing
   step by step (the LRU cache and prefetch at work). Target: p95 < 33 ms (30 frames per second).
   Skipped, saying so, without Playwright or ``/usr/bin/chromium``.

Run: ``python benchmarks/bench_rollout_inspector.py`` (``--quick``: 100 steps and 20 moves).
"""
from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders headless, without a stderr line

from _harness import best_time, parse_args, report  # noqa: E402

from rlbench.envs import GymEnv  # noqa: E402
from rlbench.widgets.rollout_inspector import RolloutInspector  # noqa: E402

CHROMIUM = os.environ.get("RLBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]

# In the page: move the slider to each target and wait for the view's "rlb-frame" event, which it
# dispatches right after drawImage() put that step's frame on the canvas.
MEASURE_JS = """
async (targets) => {
  const root = document.querySelector('.rlb-rollout-inspector');
  const slider = root.querySelector('.rlb-ri-slider');
  const times = [];
  for (const t of targets) {
    const drawn = new Promise((resolve) => {
      const on = (e) => { if (e.detail.step === t) { root.removeEventListener('rlb-frame', on); resolve(); } };
      root.addEventListener('rlb-frame', on);
    });
    const t0 = performance.now();
    slider.value = String(t);
    slider.dispatchEvent(new Event('input', { bubbles: true }));
    await drawn;
    times.push(performance.now() - t0);
    await new Promise((r) => requestAnimationFrame(() => r()));  // let the page paint between moves
  }
  return times;
}
"""


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def browser_latency(html: Path, steps: int, moves: int, json_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("slider latency: skipped (playwright is not installed)")
        return
    if not Path(CHROMIUM).exists():
        print(f"slider latency: skipped (no Chromium at {CHROMIUM})")
        return
    rng = random.Random(0)
    jumps, prev = [], 0
    while len(jumps) < moves:  # random jumps, never to the step already shown
        t = rng.randrange(steps)
        if t != prev:
            jumps.append(t)
            prev = t
    # then scrub one step at a time from where the jumps ended (each move lands on a new step)
    start = jumps[-1]
    direction = 1 if start + moves < steps else -1
    scrub = [start + direction * k for k in range(1, moves + 1) if 0 <= start + direction * k < steps]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(html.as_uri())
        page.wait_for_selector("[data-rlb-rendered='1']", timeout=30_000)
        page.wait_for_function("document.querySelector('.rlb-rollout-inspector').dataset.drawnStep === '0'")
        random_ms = page.evaluate(MEASURE_JS, jumps)
        scrub_ms = page.evaluate(MEASURE_JS, scrub)
        browser.close()
    for name, ms in (("random jumps", random_ms), ("step-by-step scrub", scrub_ms)):
        print(f"slider -> frame drawn, {name} ({len(ms)} moves): median {statistics.median(ms):.1f} ms, "
              f"p95 {p95(ms):.1f} ms, max {max(ms):.1f} ms")
    report("slider move -> frame drawn, p95 of random jumps", p95(random_ms), 33.0, "ms",
           "a 30 fps frame budget", target="< 1x", json_path=json_path)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    steps = 100 if args.quick else 1000
    moves = 20 if args.quick else 200
    env = GymEnv("CartPole-v1", from_pixels=True)
    env.rollout(5, break_when_any_done=False)  # warm-up: pygame's first render initialises it
    collect = float("inf")
    td = None
    for _ in range(args.repeats):
        start = time.perf_counter()
        td = env.rollout(steps, break_when_any_done=False)
        collect = min(collect, time.perf_counter() - start)
    widget = None

    def build():
        nonlocal widget
        widget = RolloutInspector(td)

    built = best_time(build, args.repeats)
    report(f"RolloutInspector build ({steps} CartPole steps, {steps} frames 600x400)", built, collect, "s",
           f"collecting the rollout (GymEnv from_pixels, {steps} steps)", target="< 1x", json_path=args.json)
    raw = td["pixels"].numel()
    sent = widget.nbytes
    report("bytes sent to the browser (series + JPEG frames, once)", sent / 1e6, raw / 1e6, "MB",
           "the raw uint8 frames", target="small", json_path=args.json)
    print(f"frames: {widget.meta['frames']['count']} at {widget.meta['frames']['width']}x"
          f"{widget.meta['frames']['height']}, {widget.meta['frames']['bytes'] / steps / 1e3:.1f} kB each; "
          f"series: {sent - widget.meta['frames']['bytes']} bytes")
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(widget.save_html(Path(tmp) / "rollout.html"))
        browser_latency(html, steps, moves, args.json)


if __name__ == "__main__":
    main()
