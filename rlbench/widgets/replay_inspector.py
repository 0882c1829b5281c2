"""ReplayInspector: look inside a replay buffer without copying it to the browser.

The view gets a summary (capacity, fill, write cursor, parts), per-key statistics (computed here in
chunks, so a memory-mapped million-item buffer is read piecewise), a histogram of priorities for a
prioritized sampler, and ONE page of stored items (``page_size`` rows). Other pages, samples and
refreshes are asked for with custom messages (``{"type": "page", "page": k}``, ``{"type": "sample",
"batch_size": n}``, ``{"type": "refresh"}``) and answered by updating the synced fields; nothing
else crosses the wire. A saved page (``save_html`` / nbconvert) shows the summary, stats, histogram
and the first page, and says that paging and sampling need a kernel.

Synced fields (the view's contract, ``widgets/replay_inspector.js``): ``title``, ``summary``,
``stats`` (rows of name/dtype/shape/mean/std/min/max/count/nonfinite), ``histogram`` (``edges``,
``counts``, ``min``/``max``/``mean``; or empty), ``page`` (``index``, ``start``, ``stop``, ``pages``,
``columns``, ``rows`` of display strings, ``newest``), ``sample`` (``indices``, ``batch_size``,
``weights`` summary), ``error`` (the last failure, shown in the view), ``page_size``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import traitlets
from tensordict import TensorDictBase

from ._encode import key_name, leaf_items
from .base import Inspector

__all__ = ["ReplayInspector", "buffer_summary", "buffer_stats", "priority_histogram", "buffer_page"]

#: items read at a time for statistics (bounds the memory a memmap buffer costs us)
STATS_CHUNK = 65_536
#: at most this many sampled indices are sent back (a huge batch is summarised, not listed)
MAX_SAMPLE_INDICES = 4096


def _finite(x: float) -> float | str:
    """JSON has no NaN/inf: keep finite floats, spell the others out."""
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _check_buffer(buffer: Any) -> None:
    missing = [a for a in ("storage", "sampler", "__len__", "__getitem__") if not hasattr(buffer, a)]
    if missing:
        raise TypeError(f"ReplayInspector expects a replay buffer (rlbench.buffers.ReplayBuffer or one with "
                        f"storage, sampler, len() and indexing); {type(buffer).__name__} has no {', '.join(missing)}")


def buffer_summary(buffer: Any) -> dict:
    """Capacity, fill level, write cursor and the buffer's parts, as plain JSON values.

    Example:
        >>> from rlbench.buffers import ReplayBuffer, LazyTensorStorage
        >>> rb = ReplayBuffer(storage=LazyTensorStorage(8)); _ = rb.extend(torch.arange(11))
        >>> s = buffer_summary(rb)
        >>> s["capacity"], s["length"], s["write_cursor"], s["storage"]
        (8, 8, 3, 'LazyTensorStorage')
    """
    _check_buffer(buffer)
    storage, sampler = buffer.storage, buffer.sampler
    writer = getattr(buffer, "writer", None)
    shape = [int(d) for d in getattr(storage, "shape", [getattr(storage, "max_size", len(buffer))])]
    per_row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    capacity = int(np.prod(shape)) if shape else int(getattr(storage, "max_size", 0))
    length = len(buffer)
    summary = {
        "buffer": type(buffer).__name__, "storage": type(storage).__name__,
        "sampler": type(sampler).__name__, "writer": type(writer).__name__ if writer is not None else None,
        "capacity": capacity, "length": int(length), "shape": shape, "ndim": int(getattr(storage, "ndim", 1)),
        "rows": shape[0] if shape else capacity, "items_per_row": per_row,
        "len_rows": int(getattr(storage, "len_rows", math.ceil(length / per_row))),
        "write_cursor": int(getattr(storage, "write_cursor", length % max(1, shape[0] if shape else 1))),
        "fill": length / capacity if capacity else 0.0,
        "batch_size": getattr(buffer, "batch_size", None),
        "prioritized": hasattr(sampler, "priorities"),
    }
    for name in ("alpha", "beta", "eps", "max_priority"):
        if summary["prioritized"] and isinstance(getattr(sampler, name, None), (int, float)):
            summary[name] = _finite(getattr(sampler, name))
    return summary


def _as_tensor_items(chunk: Any) -> Any:
    """A chunk read from the buffer as a TensorDict or tensor; ListStorage chunks are lists."""
    if isinstance(chunk, list):
        if chunk and all(isinstance(c, (torch.Tensor, TensorDictBase)) for c in chunk):
            return torch.stack(chunk)
        return None
    return chunk


def _leaves(items: Any) -> list[tuple[str, torch.Tensor | None]]:
    if isinstance(items, torch.Tensor):
        return [("(tensor)", items)]
    if isinstance(items, TensorDictBase):
        return [(key_name(k), v) for k, v in leaf_items(items)]
    return []


def buffer_stats(buffer: Any, chunk: int = STATS_CHUNK) -> list[dict]:
    """Mean, std, min and max of every numeric leaf key over all stored items, read in chunks.

    Sums run in float64 (a million float32 rewards add up exactly enough); NaN/inf values are counted
    in ``nonfinite`` and left out of the moments; bools are averaged as 0/1 (the fraction true).

    Example:
        >>> from rlbench.buffers import ReplayBuffer, LazyTensorStorage
        >>> from tensordict import TensorDict
        >>> rb = ReplayBuffer(storage=LazyTensorStorage(10))
        >>> _ = rb.extend(TensorDict({"r": torch.tensor([1.0, 2.0, 3.0, float("nan")])}, [4]))
        >>> [(s["name"], s["mean"], s["min"], s["max"], s["count"], s["nonfinite"]) for s in buffer_stats(rb)]
        [('r', 2.0, 1.0, 3.0, 3, 1)]
    """
    n = len(buffer)
    acc: dict[str, dict] = {}
    for start in range(0, n, chunk):
        items = _as_tensor_items(buffer[start:min(n, start + chunk)])
        for name, value in _leaves(items):
            entry = acc.setdefault(name, {"name": name, "dtype": None, "shape": None, "count": 0, "nonfinite": 0,
                                          "sum": 0.0, "sumsq": 0.0, "min": math.inf, "max": -math.inf})
            if value is None or value.dtype.is_complex:
                entry["dtype"] = "object" if value is None else str(value.dtype).replace("torch.", "")
                continue
            entry["dtype"] = str(value.dtype).replace("torch.", "")
            entry["shape"] = list(value.shape[1:])
            x = value.detach().reshape(-1).to("cpu", torch.float64)
            finite = torch.isfinite(x)
            k = int(finite.sum())
            entry["nonfinite"] += x.numel() - k
            if k == 0:
                continue
            x = x[finite] if k < x.numel() else x
            entry["count"] += k
            entry["sum"] += float(x.sum())
            entry["sumsq"] += float((x * x).sum())
            entry["min"] = min(entry["min"], float(x.min()))
            entry["max"] = max(entry["max"], float(x.max()))
    rows = []
    for e in acc.values():
        c = e["count"]
        mean = e["sum"] / c if c else math.nan
        var = max(0.0, e["sumsq"] / c - mean * mean) if c else math.nan
        rows.append({"name": e["name"], "dtype": e["dtype"], "shape": e["shape"], "count": c,
                     "nonfinite": e["nonfinite"], "mean": _finite(mean), "std": _finite(math.sqrt(var)),
                     "min": _finite(e["min"]) if c else None, "max": _finite(e["max"]) if c else None})
    return rows


def priority_histogram(buffer: Any, bins: int = 30) -> dict:
    """Histogram of the stored items' priorities (empty for samplers without priorities)."""
    sampler = buffer.sampler
    n = len(buffer)
    if not hasattr(sampler, "priorities") or n == 0:
        return {}
    p = np.asarray(sampler.priorities(torch.arange(n)), dtype=np.float64)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return {}
    lo, hi = float(p.min()), float(p.max())
    counts, edges = np.histogram(p, bins=bins, range=(lo, hi if hi > lo else lo + 1.0))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts], "min": lo, "max": hi,
            "mean": float(p.mean()), "count": int(p.size)}


def _cell(value: Any, max_items: int = 6) -> str:
    """One stored value as short text: scalars plainly, small vectors in brackets, big ones elided."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool:
            items = ["true" if v else "false" for v in value.reshape(-1)[:max_items].tolist()]
        elif value.is_floating_point():
            items = [f"{v:.4g}" for v in value.reshape(-1)[:max_items].to(torch.float64).tolist()]
        else:
            items = [str(v) for v in value.reshape(-1)[:max_items].tolist()]
        if value.numel() == 1:
            return items[0]  # a [1]-shaped reward or flag reads better as the number itself
        more = value.numel() > max_items
        text = "[" + ", ".join(items) + (", …" if more else "") + "]"
        return text + (f" {list(value.shape)}" if more or value.ndim > 1 else "")
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def buffer_page(buffer: Any, page: int, page_size: int = 50) -> dict:
    """Rows ``[page * page_size, ...)`` of the buffer as display strings (one read of those rows).

    Example:
        >>> from rlbench.buffers import ReplayBuffer, LazyTensorStorage
        >>> rb = ReplayBuffer(storage=LazyTensorStorage(100)); _ = rb.extend(torch.arange(120.0))  # wraps around
        >>> p = buffer_page(rb, 1, page_size=3)
        >>> p["start"], p["stop"], p["pages"], p["columns"], p["rows"][0]
        (3, 6, 34, ['index', '(tensor)'], ['3', '103'])
    """
    n = len(buffer)
    pages = max(1, math.ceil(n / page_size))
    if not isinstance(page, int) or isinstance(page, bool) or not 0 <= page < pages:
        raise IndexError(f"page {page!r} does not exist: the buffer holds {n} items, {pages} page(s) of {page_size}")
    start, stop = page * page_size, min(n, (page + 1) * page_size)
    summary = buffer_summary(buffer)
    per_row = summary["items_per_row"]
    newest = (summary["write_cursor"] - 1) % max(1, summary["rows"]) if n else None
    out = {"index": page, "start": start, "stop": stop, "pages": pages, "page_size": page_size, "total": n,
           "newest_row": newest, "items_per_row": per_row, "columns": ["index"], "rows": []}
    if stop <= start:
        return out
    chunk = buffer[start:stop]
    items = _as_tensor_items(chunk)
    leaves = _leaves(items)
    label = (lambda i: f"{i} ({i // per_row}, {i % per_row})") if per_row > 1 else str
    if leaves:
        out["columns"] += [name for name, _ in leaves]
        for r in range(stop - start):
            out["rows"].append([label(start + r)] + [
                _cell(v[r]) if v is not None else "(not a tensor)" for _, v in leaves])
    else:  # a ListStorage of arbitrary objects
        out["columns"].append("item")
        out["rows"] = [[label(start + r), _cell(item)] for r, item in enumerate(chunk)]
    return out


class ReplayInspector(Inspector):
    """Capacity, fill, write cursor, per-key statistics, priorities, stored items page by page, and samples.

    Args:
        buffer: a replay buffer (``rlbench.buffers.ReplayBuffer`` and subclasses, any storage).
        page_size: stored items per page (only one page is sent at a time).
        title: header text (default: the buffer's class and size).

    Drawing a sample (the view's "Sample" button, or :meth:`draw_sample`) restores the sampler's
    state and the buffer's generator afterwards, so looking does not change what training samples.

    Example:
        >>> from rlbench.buffers import ReplayBuffer, LazyTensorStorage
        >>> from tensordict import TensorDict
        >>> rb = ReplayBuffer(storage=LazyTensorStorage(1000))
        >>> _ = rb.extend(TensorDict({"obs": torch.randn(300, 4), "reward": torch.ones(300, 1)}, [300]))
        >>> w = ReplayInspector(rb, page_size=20)
        >>> w.summary["length"], w.summary["capacity"], len(w.page["rows"]), w.page["pages"]
        (300, 1000, 20, 15)
        >>> len(w.draw_sample(8))
        8
    """

    _view = "replay_inspector"

    summary = traitlets.Dict().tag(sync=True)
    stats = traitlets.List().tag(sync=True)
    histogram = traitlets.Dict().tag(sync=True)
    page = traitlets.Dict().tag(sync=True)
    sample = traitlets.Dict().tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    page_size = traitlets.Int(50).tag(sync=True)

    def __init__(self, buffer: Any, page_size: int = 50, title: str | None = None, **kwargs):
        _check_buffer(buffer)
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self._buffer = buffer
        self._auto_title = title is None  # the default title shows the fill, so refresh() updates it
        super().__init__(title=title or "", page_size=int(page_size), **kwargs)
        self.refresh()
        self.on_msg(self._on_msg)

    @property
    def buffer(self) -> Any:
        return self._buffer

    # ------------------------------------------------------------------ kernel-side actions
    def refresh(self) -> None:
        """Re-read the buffer: summary, statistics, histogram, and the current page."""
        self.summary = s = buffer_summary(self._buffer)
        if self._auto_title:
            self.title = f"{s['buffer']}: {s['length']:,} / {s['capacity']:,} items"
        self.stats = buffer_stats(self._buffer)
        self.histogram = priority_histogram(self._buffer)
        current = self.page.get("index", 0) if self.page else 0
        self.show_page(min(current, max(0, math.ceil(len(self._buffer) / self.page_size) - 1)))
        self.error = ""

    def show_page(self, page: int) -> dict:
        """Load page ``page`` into the view (and return it)."""
        self.page = buffer_page(self._buffer, int(page), self.page_size)
        return self.page

    def draw_sample(self, batch_size: int = 32) -> list[int]:
        """Sample a batch the way training would and highlight its indices; returns them.

        The sampler's state and the buffer's generator are restored afterwards.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        rb = self._buffer
        sampler_state = rb.sampler.state_dict() if hasattr(rb.sampler, "state_dict") else None
        gen = getattr(rb, "generator", None)
        gen_state = gen.get_state() if isinstance(gen, torch.Generator) else None
        try:
            _, info = rb.sample(batch_size, return_info=True)
        finally:
            if sampler_state is not None:
                rb.sampler.load_state_dict(sampler_state)
            if gen_state is not None:
                gen.set_state(gen_state)
        index = torch.as_tensor(info["index"]).reshape(-1).to(torch.long)
        indices = index.tolist()
        sample = {"batch_size": batch_size, "indices": indices[:MAX_SAMPLE_INDICES],
                  "unique": int(index.unique().numel()), "truncated": len(indices) > MAX_SAMPLE_INDICES}
        weight = info.get("priority_weight")
        if weight is not None:
            w = torch.as_tensor(weight, dtype=torch.float64)
            sample["weights"] = {"min": _finite(w.min()), "max": _finite(w.max()), "mean": _finite(w.mean())}
        self.sample = sample
        return indices

    def _on_msg(self, _widget, content, _buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        try:
            if kind == "page":
                self.show_page(content.get("page", 0))
            elif kind == "sample":
                self.draw_sample(int(content.get("batch_size", 32)))
            elif kind == "refresh":
                self.refresh()
            else:
                raise ValueError(f"unknown request {kind!r}; expected 'page', 'sample' or 'refresh'")
            self.error = ""
        except Exception as err:  # shown in the view: a widget callback has nowhere else to report
            self.error = f"{type(err).__name__}: {err}"

    # ------------------------------------------------------------------ fallbacks
    def _summary_rows(self):
        s = self.summary
        rows = [("buffer", f"{s['buffer']} ({s['storage']}, {s['sampler']}, {s['writer']})"),
                ("stored", f"{s['length']:,} of {s['capacity']:,} items ({100 * s['fill']:.1f}%)"),
                ("write cursor", f"row {s['write_cursor']} of {s['rows']}")]
        for st in self.stats:
            rows.append((st["name"], f"{st['dtype']} {st['shape']}: mean {st['mean']:.4g} std {st['std']:.4g} "
                         f"min {st['min']:.4g} max {st['max']:.4g}" if isinstance(st["mean"], float) and st["count"]
                         else f"{st['dtype']}: no finite values"))
        if self.histogram:
            h = self.histogram
            rows.append(("priorities", f"min {h['min']:.4g}, mean {h['mean']:.4g}, max {h['max']:.4g}"))
        return rows

    def _plot(self, fig) -> bool:
        h = self.histogram
        if not h:
            return False
        ax = fig.add_subplot(1, 1, 1)
        edges = np.asarray(h["edges"])
        ax.bar(edges[:-1], h["counts"], width=np.diff(edges), align="edge")
        ax.set_xlabel("priority")
        ax.set_ylabel("items")
        ax.set_title(self.title, fontsize=9)
        return True
