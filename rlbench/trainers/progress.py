"""A training progress bar: frames done, with the recent return and loss in its postfix.

Built on ``tqdm.auto`` so it is a widget in Jupyter and a text bar in a terminal. ``tqdm`` is
imported when the first bar is made (``tqdm.auto`` looks for ipywidgets, which ``import rlbench``
must not pull in).
"""
from __future__ import annotations

import time
from typing import Any

__all__ = ["ProgressBar"]


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class ProgressBar:
    """Frames progress with a postfix of the latest metrics, redrawn at most every ``min_interval`` seconds.

    Redrawing a notebook widget costs milliseconds (a message to the browser); a fast loop
    updating it every batch would spend more time drawing than training, so postfix changes are
    kept and drawn when ``min_interval`` has passed (and always by :meth:`close`).

    Args:
        total: frames expected (``None``: unknown, the bar just counts).
        desc: the label in front of the bar.
        min_interval: least seconds between two redraws.
        disable: make every call a no-op (``Trainer(progress_bar=False)``).
        **tqdm_kwargs: passed to ``tqdm`` (e.g. ``file=sys.stdout``, ``leave=False``).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> bar = ProgressBar(total=100, desc="ppo", file=out, min_interval=0.0)
        >>> bar.update(50, episode_return=21.5, loss=0.123456)
        >>> bar.close()
        >>> "50%" in out.getvalue() and "episode_return=21.5, loss=0.1235" in out.getvalue()
        True
    """

    def __init__(self, total: int | None = None, *, desc: str | None = None, min_interval: float = 0.5,
                 disable: bool = False, **tqdm_kwargs: Any):
        self.disable = bool(disable)
        self.min_interval = float(min_interval)
        self._postfix: dict[str, str] = {}
        self._last_draw = -float("inf")
        self._dirty = False
        self.bar = None
        if self.disable:
            return
        from tqdm.auto import tqdm

        kwargs = {"total": total, "desc": desc, "unit": "frames", "unit_scale": True, "dynamic_ncols": True,
                  "mininterval": self.min_interval}
        kwargs.update(tqdm_kwargs)
        self.bar = tqdm(**kwargs)

    @property
    def n(self) -> int:
        """Frames counted so far."""
        return 0 if self.bar is None else int(self.bar.n)

    def update(self, frames: int = 0, **postfix: Any) -> None:
        """Count ``frames`` more and remember ``postfix`` values (``None`` values are ignored)."""
        if self.bar is None:
            return
        for key, value in postfix.items():
            if value is not None:
                self._postfix[key] = _fmt(value)
                self._dirty = True
        now = time.monotonic()
        if self._dirty and now - self._last_draw >= self.min_interval:
            self.bar.set_postfix(self._postfix, refresh=False)
            self._dirty = False
            self._last_draw = now
        # tqdm itself redraws at most every `mininterval` seconds
        self.bar.update(int(frames))

    def close(self) -> None:
        """Draw the final state and close the bar."""
        if self.bar is None:
            return
        if self._dirty:
            self.bar.set_postfix(self._postfix, refresh=False)
            self._dirty = False
        self.bar.close()
        self.bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
