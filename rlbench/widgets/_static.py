"""Find the front-end sources and assemble each view's ES module (no bundler).

The front end lives in the repository's top-level ``widgets/`` folder. A wheel ships it as
``rlbench/_widgets_static`` (pyproject force-includes it); an editable install reads the source tree.

anywidget loads a view as ONE module from a blob URL, so relative imports cannot resolve in the
browser. Views and helpers are still written as ordinary ES modules (``import { h } from
"./lib/escape.js";``), which keeps them testable with ``node --test``; :func:`load_esm` inlines each
imported helper file once (dependencies first, ``export`` keywords dropped) in place of the imports.
Only that named-import form of a relative ``.js`` file is allowed; anything else is an error here,
not a blank widget in the browser.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

__all__ = ["static_dir", "load_esm", "load_css", "offline_boot_js"]

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # .../rlbench
_ENV_VAR = "RLBENCH_WIDGETS_DIR"

_IMPORT_RE = re.compile(r"""^\s*import\s*\{[^}]*\}\s*from\s*["'](\.{1,2}/[\w./-]+\.js)["']\s*;?\s*$""")
_ANY_IMPORT_RE = re.compile(r"""^\s*import\b|^\s*export\s+\*|^\s*export\s*\{[^}]*\}\s*from\b""")
_EXPORT_RE = re.compile(r"^export\s+(?=(?:async\s+)?function\b|const\b|let\b|class\b)", re.M)


def static_dir(package_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding the front-end sources (``lib/``, ``<view>.js``, ``<view>.css``).

    Looked up in order: the ``RLBENCH_WIDGETS_DIR`` environment variable; ``_widgets_static`` inside
    the installed package (a wheel); the source tree's ``widgets/`` beside the package (editable).

    Args:
        package_dir: the ``rlbench`` package folder to search from (default: this installation's).

    Raises:
        FileNotFoundError: naming every place that was searched.
    """
    override = os.environ.get(_ENV_VAR)
    pkg = Path(package_dir) if package_dir is not None else _PACKAGE_DIR
    candidates = ([Path(override)] if override else []) + [pkg / "_widgets_static", pkg.parent / "widgets"]
    for candidate in candidates:
        if (candidate / "lib").is_dir():
            return candidate
    raise FileNotFoundError(
        "rlbench widgets: front-end files not found; looked in "
        + ", ".join(str(c) for c in candidates)
        + " (a wheel ships them as rlbench/_widgets_static; a source checkout has widgets/ at its top level)"
    )


def _read(path: Path) -> str:
    return _read_cached(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _read_cached(path: str, mtime_ns: int) -> str:  # mtime in the key: edits show up without a restart
    return Path(path).read_text(encoding="utf-8")


def _inline(path: Path, seen: set[Path], out: list[str], top: bool) -> str:
    """Append ``path``'s imported helpers to ``out`` (once each) and return its own body."""
    body = []
    for lineno, line in enumerate(_read(path).splitlines(), 1):
        match = _IMPORT_RE.match(line)
        if match:
            dep = (path.parent / match.group(1)).resolve()
            if not dep.is_file():
                raise FileNotFoundError(f"{path.name}:{lineno}: imports {match.group(1)!r}, but {dep} does not exist")
            if dep not in seen:
                seen.add(dep)
                out.append(f"// ---- {dep.parent.name}/{dep.name}\n" + _inline(dep, seen, out, top=False))
            continue
        if _ANY_IMPORT_RE.match(line):
            raise ValueError(
                f"{path.name}:{lineno}: unsupported import {line.strip()!r}; views and helpers may only use "
                "`import { a, b } from \"./relative/file.js\";` (everything is inlined into one module)"
            )
        body.append(line)
    text = "\n".join(body)
    if not top:
        if re.search(r"^export\s+default\b", text, re.M):
            raise ValueError(f"{path.name}: a helper module must not have a default export")
        text = _EXPORT_RE.sub("", text)
    return text


def load_esm(view: str, root: Path | None = None) -> str:
    """The view's ES module source with its helper imports inlined (``view`` is e.g. "spec_inspector")."""
    root = static_dir() if root is None else Path(root)
    path = root / f"{view}.js"
    if not path.is_file():
        raise FileNotFoundError(f"rlbench widgets: no view module {path.name} in {root}")
    seen: set[Path] = {path.resolve()}
    parts: list[str] = []
    own = _inline(path.resolve(), seen, parts, top=True)
    return "\n".join(parts + [f"// ---- {path.name}", own]) + "\n"


def load_css(view: str, root: Path | None = None) -> str:
    """``common.css`` followed by the view's own CSS (if it has one)."""
    root = static_dir() if root is None else Path(root)
    chunks = []
    for name in ("common.css", f"{view}.css"):
        path = root / name
        if path.is_file():
            chunks.append(_read(path))
    return "\n".join(chunks)


def offline_boot_js(root: Path | None = None) -> str:
    """``lib/offline.js`` as a classic-free module body (exports dropped) for the saved pages."""
    root = static_dir() if root is None else Path(root)
    parts: list[str] = []
    path = (root / "lib" / "offline.js").resolve()
    own = _inline(path, {path}, parts, top=False)
    return "\n".join(parts + [own])
