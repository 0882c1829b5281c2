"""The ``Inspector`` base class: one anywidget view, its offline HTML copy and its fallbacks.

Every inspector is an :class:`anywidget.AnyWidget` whose front end is ``widgets/<view>.js`` (+ CSS),
assembled by :mod:`rlbench.widgets._static`. Besides the live view, an inspector can write itself as
ONE self-contained HTML file (:meth:`Inspector.save_html`): the same ES module, its CSS and the
widget's synced state (binary buffers as base64) are embedded with a tiny stand-in for the Jupyter
model, so the same ``render({model, el})`` runs from ``file://`` with no kernel and no network.
That HTML is also the ``text/html`` part of the display bundle, which is what static exports
(``jupyter nbconvert --to html`` without stored widget state, GitHub, nbviewer) show.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
from typing import ClassVar, Iterable

import anywidget
import numpy as np
import torch
import traitlets
from ipywidgets.widgets.widget import _remove_buffers

from ._static import load_css, load_esm, offline_boot_js

__all__ = ["Inspector", "pack_array", "escape"]

#: the text/html fallback embeds the whole inspector up to this size; above it, a summary table
MAX_FALLBACK_HTML_BYTES = 8 * 1024 * 1024

# traits every anywidget has; the view's own contract is the rest
_FRAMEWORK_TRAITS = frozenset(anywidget.AnyWidget.class_trait_names(sync=True)) | {"_esm", "_css", "_anywidget_id"}

_DTYPES = {
    torch.float32: "float32", torch.float64: "float64", torch.int8: "int8", torch.uint8: "uint8",
    torch.int16: "int16", torch.int32: "int32", torch.int64: "int64", torch.bool: "bool",
}


def escape(value) -> str:
    """HTML-escape ``str(value)`` (quotes too): the one escape used by Python-built HTML."""
    return html.escape(str(value), quote=True)


def pack_array(x) -> dict:
    """Pack a tensor or array as ``{"dtype", "shape", "data": bytes}`` for a synced trait.

    ipywidgets sends the ``bytes`` as a binary buffer (a ``DataView`` in the browser, decoded by
    ``lib/buffers.js``'s ``unpackArray``); float16/bfloat16 become float32, and the bytes are
    little-endian and C-contiguous.

    Example:
        >>> packed = pack_array(torch.arange(3, dtype=torch.float32))
        >>> packed["dtype"], packed["shape"], len(packed["data"])
        ('float32', [3], 12)
    """
    t = torch.as_tensor(x).detach().cpu()
    if t.dtype not in _DTYPES:
        t = t.to(torch.float32) if t.is_floating_point() else t.to(torch.int64)
    arr = t.contiguous().numpy()
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data": np.ascontiguousarray(arr).tobytes()}


def _json_for_html(obj) -> str:
    # \u003c etc. keep "</script>" and "<!--" in user strings from ending the embedding script tag
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _js_for_html(code: str) -> str:
    return code.replace("</", "<\\/")


class Inspector(anywidget.AnyWidget):
    """Base of the rlbench inspectors: a view name, offline HTML, and HTML/PNG fallbacks.

    A subclass sets ``_view = "<name>"`` (the files ``widgets/<name>.js`` and ``.css``), declares its
    synced traits, and may override :meth:`_summary_rows` (the table shown where nothing can run
    JavaScript) and :meth:`_plot` (the PNG fallback).

    Example:
        >>> class Hello(Inspector):
        ...     _view = "training_monitor"
        >>> w = Hello(title="hi")
        >>> "<table" in w.summary_html() and "hi" in w.summary_html()
        True
    """

    _view: ClassVar[str] = ""

    #: shown in the view's header and the HTML fallback (every view has one)
    title = traitlets.Unicode("").tag(sync=True)

    def __init_subclass__(cls, **kwargs):
        if cls.__dict__.get("_view"):
            # assembled once per class; anywidget turns the class attributes into synced traits
            cls._esm = load_esm(cls._view)
            cls._css = load_css(cls._view)
        super().__init_subclass__(**kwargs)

    # ------------------------------------------------------------------ state and offline HTML
    def view_state(self) -> dict:
        """The view's synced fields (its contract), binary values included, framework traits left out."""
        keys = [k for k in self.keys if k not in _FRAMEWORK_TRAITS]
        return self.get_state(key=keys)

    def _payload(self, max_bytes: int | None = None) -> dict | None:
        state, buffer_paths, buffers = _remove_buffers(self.view_state())
        if max_bytes is not None and sum(len(memoryview(b).cast("B")) for b in buffers) * 4 // 3 > max_bytes:
            return None  # too big to embed: decided before paying for base64 and JSON
        return {
            "view": self._view,
            "esm": self._esm,
            "css": self._css,
            "state": state,
            "buffer_paths": buffer_paths,
            "buffers": [base64.b64encode(bytes(b)).decode("ascii") for b in buffers],
        }

    def to_html(self, full_page: bool = False, max_bytes: int | None = None) -> str | None:
        """The inspector as offline HTML: a fragment (for notebook outputs) or a whole page.

        The fragment shows :meth:`summary_html` until its script replaces it with the live view,
        so a reader that runs no JavaScript still sees the summary. With ``max_bytes``, returns
        None instead of HTML larger than that.
        """
        payload = self._payload(max_bytes)
        if payload is None:
            return None
        payload_json = _json_for_html(payload)
        if max_bytes is not None and len(payload_json) > max_bytes:
            return None
        uid = "rlb-" + hashlib.sha1(payload_json.encode()).hexdigest()[:12]  # deterministic output
        fragment = (
            f'<div class="rlb-offline" data-rlb-id="{uid}">'
            f'<script type="application/json">{payload_json}</script>'
            f'<div class="rlb-offline-note" hidden></div>'
            f'<div class="rlb-offline-host">{self.summary_html()}</div>'
            f'<script type="module">{_js_for_html(offline_boot_js())}\nbootOffline("{uid}");</script>'
            f"</div>"
        )
        if not full_page:
            return fragment
        return (
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{escape(self.title or type(self).__name__)}</title>"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<style>body{margin:16px;font-family:system-ui,-apple-system,'Segoe UI',sans-serif;}"
            ".rlb-offline-note{font-size:12px;color:#8a5a00;margin:4px 0;}"
            "@media (prefers-color-scheme: dark){body{background:#111;color:#ddd;}}</style>"
            f"</head><body>{fragment}</body></html>\n"
        )

    def save_html(self, path: str | os.PathLike) -> str:
        """Write a self-contained HTML file of this inspector (opens offline); returns the path.

        The file holds the view's code, CSS and data; buttons that need the kernel show a note.
        """
        path = os.fspath(path)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_html(full_page=True))
        return path

    # ------------------------------------------------------------------ fallbacks
    def _summary_rows(self) -> Iterable[tuple[str, str]]:
        """(label, value) rows of the static summary table; subclasses add theirs."""
        return [("inspector", type(self).__name__)]

    def summary_html(self) -> str:
        """A small escaped HTML table summarising the inspector (no JavaScript needed)."""
        rows = "".join(
            f"<tr><th style=\"text-align:left;padding-right:1em\">{escape(k)}</th><td>{escape(v)}</td></tr>"
            for k, v in self._summary_rows()
        )
        caption = escape(self.title or type(self).__name__)
        return f'<table class="rlb-summary"><caption style="text-align:left"><b>{caption}</b></caption>{rows}</table>'

    def __repr__(self) -> str:
        return f"{type(self).__name__}(title={self.title!r})"

    def _plot(self, fig) -> bool:
        """Draw the PNG fallback on a matplotlib ``Figure``; return False when there is nothing to plot."""
        return False

    def to_png(self) -> bytes | None:
        """The PNG fallback (matplotlib, imported only now), or None without matplotlib or a plot."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            return None
        fig = Figure(figsize=(6, 2.6), dpi=80, layout="constrained")
        if not self._plot(fig):
            return None
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def _repr_mimebundle_(self, **kwargs):
        """Widget view for live front ends, plus text/html (the offline inspector) and image/png.

        Front ends that render widgets pick the widget view; static exports fall back to the HTML.
        """
        data, metadata = super()._repr_mimebundle_(**kwargs)
        page = self.to_html(max_bytes=MAX_FALLBACK_HTML_BYTES)
        data["text/html"] = page if page is not None else self.summary_html()
        png = self.to_png()
        if png is not None:
            data["image/png"] = base64.b64encode(png).decode("ascii")
        return data, metadata
