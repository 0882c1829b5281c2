"""Widget costs: building inspectors, what they send to the browser, and the logger's overhead.

1. ``SpecInspector(CartPoleEnv())`` build time against ``repr(env)`` (the text a user would read
   instead), and its self-contained ``save_html`` size.
2. ``TrainingMonitor.log_scalar`` per call (history + throttled pushes at ``max_fps=4``) against
   appending to a Python list (the cheapest possible logger); bytes of one push of a 100k-value
   metric against the raw float64 history (the push is capped at ``max_points``).
3. ``RolloutInspector`` on a 1,000-step CartPole rollout with rendered 400x600 frames: build time
   against rendering the frames alone (the unavoidable part), and bytes sent to the browser against
   the raw frames. (The browser-side scrub latency is measured by the rollout inspector's own test.)

Run: ``python benchmarks/bench_widgets.py`` (``--quick`` for a smoke run).
"""
from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import torch  # noqa: E402
from _harness import best_time, parse_args, report  # noqa: E402

from rlbench.envs import CartPoleEnv  # noqa: E402
from rlbench.widgets import SpecInspector, TrainingMonitor  # noqa: E402


def bench_spec_inspector(args) -> None:
    env = CartPoleEnv()
    SpecInspector(env)  # warm-up: class set-up, first comm
    ours = best_time(lambda: SpecInspector(env), max(args.repeats, 3))
    base = best_time(lambda: repr(env), max(args.repeats, 3))
    report("SpecInspector(CartPoleEnv()) build", ours * 1e3, base * 1e3, "ms", "repr(env)", json_path=args.json)
    with tempfile.TemporaryDirectory() as tmp:
        path = SpecInspector(env).save_html(os.path.join(tmp, "spec.html"))
        size = os.path.getsize(path)
    print(f"SpecInspector save_html: {size / 1024:.1f} KiB self-contained page")


def bench_monitor(args) -> None:
    n = 5_000 if args.quick else 100_000

    def ours():
        m = TrainingMonitor(max_fps=4)
        for i in range(n):
            m.log_scalar("loss", 0.5, i)
        m.close()

    def base():
        rows = []
        for i in range(n):
            rows.append(("loss", 0.5, i))

    t_ours = best_time(ours, args.repeats)
    t_base = best_time(base, args.repeats)
    report(f"TrainingMonitor.log_scalar ({n} calls, per call)", t_ours / n * 1e6, t_base / n * 1e6, "us",
           "list.append logger", json_path=args.json)
    m = TrainingMonitor()
    m._steps["loss"] = list(range(n))
    m._values["loss"] = [float(i) for i in range(n)]
    m._dirty = True
    start = time.perf_counter()
    m.flush()
    push_ms = (time.perf_counter() - start) * 1e3
    sent = len(m.series["loss"]["step"]["data"]) + len(m.series["loss"]["value"]["data"])
    report(f"TrainingMonitor push of a {n}-value metric ({push_ms:.1f} ms)", sent / 1024, n * 16 / 1024, "KiB",
           "raw float64 history", json_path=args.json)


def bench_rollout_inspector(args) -> None:
    try:
        from rlbench.widgets.rollout_inspector import RolloutInspector
    except ImportError:
        print("RolloutInspector not available: skipped")
        return
    steps = 30 if args.quick else 1_000
    env = CartPoleEnv(seed=0)
    td = env.rollout(steps, break_when_any_done=False)
    RolloutInspector(td[:5], frames=env.render)  # warm-up (encoder import)
    holder = {}

    def ours():
        holder["w"] = RolloutInspector(td, frames=env.render)

    t_ours = best_time(ours, args.repeats)
    t_render = best_time(lambda: env.render(td), args.repeats)
    w = holder["w"]
    report(f"RolloutInspector build ({steps} CartPole steps, frames rendered)", t_ours, t_render, "s",
           "rendering the frames alone", json_path=args.json)
    raw = steps * env.screen_height * env.screen_width * 3
    report(f"RolloutInspector bytes to the browser ({steps} steps)", w.nbytes / 2**20, raw / 2**20, "MiB",
           "raw uint8 frames", target="bounded (frames compressed/subsampled)", json_path=args.json)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    torch.manual_seed(0)
    bench_spec_inspector(args)
    bench_monitor(args)
    bench_rollout_inspector(args)


if __name__ == "__main__":
    main()
