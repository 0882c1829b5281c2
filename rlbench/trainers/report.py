"""The HTML report of a training run: learning curve (a PNG embedded as base64), config, and the run's videos.

The page is one file except for the videos: they stay mp4 files beside it (e.g. a ``CSVLogger``'s
``videos/`` folder), linked by paths relative to the report so that the run folder can be moved whole.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .results import TrainResults

__all__ = ["write_report", "report_videos"]


def _curve_figure(results: TrainResults):
    """The learning curve as a bare matplotlib ``Figure``; names are drawn verbatim (no math text)."""
    # a bare Figure draws without any backend: pyplot (and a notebook's inline backend) stays untouched
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2), dpi=100)
    ax = fig.add_subplot()
    frames = [row["frames"] for row in results.curve]
    mean = np.array([row["eval_return"] for row in results.curve])
    std = np.array([row["eval_std"] for row in results.curve])
    if results.train_curve:
        ax.plot(*zip(*results.train_curve), color="tab:orange", lw=1, label="training episodes (recent mean)")
    ax.plot(frames, mean, marker="o", color="tab:blue", label="mean evaluation return")
    ax.fill_between(frames, mean - std, mean + std, alpha=0.25, label="± 1 std")
    target = results.config.get("target_return")
    if target is not None:
        ax.axhline(target, color="gray", ls="--", lw=1, label=f"target {target:g}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("return")
    # names are user text: matplotlib would read "$...$" in them as math and fail on e.g. "$$" or "$}{$"
    # (issue 13 item 12); parse_math=False draws them as written, usetex=False even under rcParams' usetex
    ax.set_title(f"{results.algo} on {results.env}", parse_math=False, usetex=False)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def _curve_png(results: TrainResults) -> bytes:
    import io

    fig = _curve_figure(results)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def report_videos(results: TrainResults) -> list[Path]:
    """The videos a report shows, as existing file paths.

    ``results.videos`` (relative paths are from ``results.run_dir``), or when empty the mp4 files in
    ``videos/`` folders under ``results.run_dir`` (where a :class:`~rlbench.trainers.CSVLogger` in the run
    folder writes them), sorted by path. Missing files are left out.

    Example:
        >>> from rlbench.trainers import TrainResults
        >>> report_videos(TrainResults("ppo", "CartPole-v1", 1.0, 0.0, 1, 10, 1.0, 1.0))  # no run folder
        []
    """
    base = Path(results.run_dir) if results.run_dir else None
    if results.videos:
        paths = [Path(v) if base is None or Path(v).is_absolute() else base / v for v in results.videos]
    elif base is not None and base.is_dir():
        paths = sorted(base.glob("**/videos/*.mp4"))
    else:
        paths = []
    return [p for p in paths if p.is_file()]


def _videos_html(videos: list[Path], report_dir: Path) -> str:
    import html
    from urllib.parse import quote

    if not videos:
        return ""
    items = []
    for video in videos:
        rel = Path(os.path.relpath(video.resolve(), report_dir.resolve())).as_posix()
        src = html.escape(quote(rel), quote=True)  # a URL path: spaces, "#", "?" percent-encoded
        items.append(f'<figure><video controls preload="metadata" src="{src}"></video>'
                     f"<figcaption>{html.escape(video.name)}</figcaption></figure>")
    return "<h2>Videos</h2>" + "".join(items)


def write_report(path: str | os.PathLike, results: TrainResults) -> Path:
    """Write a small HTML report: learning curve (PNG embedded as base64), evaluations, config and videos.

    The videos (see :func:`report_videos`) are ``<video controls>`` elements whose sources are paths
    relative to the report's folder; every string shown is HTML-escaped.

    Example:
        >>> import tempfile, os
        >>> from rlbench.trainers import TrainResults
        >>> r = TrainResults("ppo", "CartPole-v1", 500.0, 0.0, 20, 1000, 2.0, 1.5,
        ...                  curve=[{"frames": 500, "train_time": 1.0, "eval_return": 20.0, "eval_std": 1.0},
        ...                         {"frames": 1000, "train_time": 1.5, "eval_return": 500.0, "eval_std": 0.0}])
        >>> html = write_report(os.path.join(tempfile.mkdtemp(), "report.html"), r).read_text()
        >>> "data:image/png;base64," in html and "500.0" in html
        True
    """
    import base64
    import html

    path = Path(path)
    png = base64.b64encode(_curve_png(results)).decode("ascii") if results.curve or results.train_curve else ""
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(str(k))}</td><td>{esc(str(v))}</td></tr>" for k, v in results.config.items())
    curve = "".join(f"<tr><td>{r['frames']}</td><td>{r['train_time']:.2f}</td><td>{r['eval_return']:.1f}</td>"
                    f"<td>{r['eval_std']:.1f}</td></tr>" for r in results.curve)
    solved = (f"reached the target at {results.solved_frames} env steps ({results.solved_time:.1f} s of training)"
              if results.solved_frames is not None else "")
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{esc(results.algo)} on {esc(results.env)}</title>
<style>body{{font-family:sans-serif;max-width:760px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}video{{max-width:100%}}</style></head><body>
<h1>{esc(results.algo)} on {esc(results.env)}</h1>
<p><b>{esc(results.summary())}</b> (std {results.final_eval_std:.1f}); {results.frames} env steps,
{results.train_time:.1f} s of training, {results.wall_time:.1f} s in all. {esc(solved)}</p>
{f'<img alt="learning curve" src="data:image/png;base64,{png}">' if png else ''}
<h2>Evaluations</h2><table><tr><th>env steps</th><th>train s</th><th>mean return</th><th>std</th></tr>{curve}</table>
<h2>Config</h2><table>{rows}</table>
{_videos_html(report_videos(results), path.parent)}
</body></html>
"""
    path.write_text(page)
    return path
